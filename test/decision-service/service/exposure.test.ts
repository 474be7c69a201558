// Issue 17, the service side: decisions ask for inspection by the route class's share; inspected
// responses reach the inventory (also for requests decided from the gateway's cache or async);
// the inventory flags unmasked kinds, inconsistent masking and more records than requested; the
// first unmasked flag per endpoint and kind is an endpoint.exposure risk event; metrics count by
// endpoint (capped); the ack carries the policy's patterns to gateways on another version.
import t from 'tap';
import { VirtualClock } from '../../../decision-service/src/engine/clock.ts';
import { Engine } from '../../../decision-service/src/engine/engine.ts';
import { EndpointExposureStats, MAX_KINDS } from '../../../decision-service/src/engine/exposure.ts';
import { templateOf } from '../../../decision-service/src/engine/inventory.ts';
import { SettledUrls, urlHash } from '../../../decision-service/src/engine/settled-urls.ts';
import { hash32 } from '../../../decision-service/src/state/distinct.ts';
import { createLogger } from '../../../decision-service/src/logger.ts';
import { DecisionService, MAX_EXPOSURE_ROUTES } from '../../../decision-service/src/service/decision-service.ts';
import { createMetrics } from '../../../decision-service/src/service/metrics.ts';
import { RiskEvents, type RiskEventWithTime } from '../../../decision-service/src/service/risk-events.ts';
import { MemoryStore } from '../../../decision-service/src/state/memory-store.ts';
import { openOutcomeBatch } from '../../../decision-service/src/wire/codec.ts';
import type { PolicyInput } from '../../../decision-service/src/config/policy-schema.ts';
import { BASE_ROUTES, policy, request } from '../../helpers/policy.ts';

const ROUTES: PolicyInput['routes'] = [
  ...BASE_ROUTES,
  { name: 'profile', class: 'object', methods: ['GET'], path: '/api/users/{id}/profile' },
  { name: 'users', class: 'protected', methods: ['GET'], path: '/api/users' },
  { name: 'news', class: 'public', methods: ['GET'], path: '/news/**' },
];

function setup(responses: PolicyInput['responses'] = {}) {
  const pol = policy({ routes: ROUTES, responses });
  const engine = new Engine({ policy: pol, store: new MemoryStore({ maxKeys: 10_000 }), clock: new VirtualClock(1_800_000_000_000), identifierKey: Buffer.alloc(32) });
  const metrics = createMetrics(false);
  const riskEvents = new RiskEvents();
  const events: RiskEventWithTime[] = [];
  riskEvents.subscribe((e) => events.push(e));
  const service = new DecisionService({ engine: () => engine, metrics, logger: createLogger('silent'), responses: () => pol.responses, riskEvents });
  const outcomes = (list: unknown[], patterns_version = '') => service.outcomes(openOutcomeBatch({ gateway_id: 'gw', outcomes: list, patterns_version }, 'json'));
  const decide = (id: string, path: string, extra: Record<string, unknown> = {}) => service.decide(request({ request_id: id, gateway_id: 'gw', path, has_authorization: true, ...extra }));
  const endpoint = (m: string, tpl: string) => engine.inventory.snapshot(pol.responses).find((e) => e.method === m && e.template === tpl);
  return { pol, engine, metrics, events, service, outcomes, decide, endpoint };
}

const phone = (unmasked: number, masked = 0) => ({ inspected_bytes: 900, records: 1, findings: [{ kind: 'cn_mobile', unmasked, masked, value_hashes: [] }] });

t.test('inspect is asked by the route class share, for INLINE and MONITOR answers only', async (t) => {
  const s = setup({ inspect: { public: 0.5 } });
  t.equal(s.decide('a', '/api/users/1/profile').inspect, true, 'object: 1');
  t.notOk(s.decide('b', '/static/app.js').inspect, 'static: 0');
  t.notOk(s.decide('c', '/api/users/2/profile', { mode: 'ASYNC' }).inspect, 'ASYNC answers come after the response');
  t.equal(s.decide('d', '/api/users/3/profile', { mode: 'MONITOR' }).inspect, true);
  t.notOk(s.decide('e', '/internal/x', { client_ip: '203.0.113.9' }).inspect, 'a request that is stopped has no response to inspect');
  let asked = 0;
  // MONITOR: every answer lets the response through (INLINE ones from one tool at one instant would be challenged)
  for (let i = 0; i < 400; i++) if (s.decide(`n${i}`, `/news/${i}`, { mode: 'MONITOR', has_authorization: false }).inspect) asked++;
  t.ok(asked > 140 && asked < 260, `public at 0.5: ${asked} of 400 asked`);
  const none = new DecisionService({ engine: () => s.engine, metrics: undefined, logger: createLogger('silent') });
  t.notOk(none.decide(request({ path: '/api/users/1/profile', has_authorization: true })).inspect, 'no responses section: never asked');
});

t.test('unmasked phones on one endpoint: flagged after min_responses, one event, metrics', async (t) => {
  const s = setup();
  for (let i = 0; i < 4; i++) s.decide(`p${i}`, `/api/users/${i}/profile`);
  await s.outcomes([0, 1, 2, 3].map((i) => ({ request_id: `p${i}`, status: 200, method: 'GET', path: `/api/users/${i}/profile`, bytes_sent: 1200, response: phone(1) })));
  let e = s.endpoint('GET', '/api/users/{id}/profile');
  t.match(e?.exposure, { inspected: 4, flags: [] }, 'not before min_responses (5)');
  t.same(s.events, []);
  // the fifth comes from the gateway's cache: the service never decided it, the path finds the endpoint
  await s.outcomes([{ request_id: 'cached-1', status: 200, method: 'GET', path: '/api/users/9/profile', from_cache: true, response: phone(2) }]);
  e = s.endpoint('GET', '/api/users/{id}/profile');
  t.match(e?.exposure, {
    inspected: 5, records_mean: 1, bytes_mean: 960, flags: ['unmasked:cn_mobile'],
    kinds: [{ kind: 'cn_mobile', unmasked_responses: 5, masked_responses: 0, unmasked_values: 6, values_per_response: 1.2, unmasked_share: 1 }],
  });
  t.equal(s.events.length, 1, 'one endpoint.exposure event');
  t.match(s.events[0], { type: 'endpoint.exposure', route: 'GET /api/users/{id}/profile', kind: 'cn_mobile', responses: 5, unmasked_share: 1 });
  await s.outcomes([{ request_id: 'cached-2', status: 200, method: 'GET', path: '/api/users/10/profile', response: phone(1) }]);
  t.equal(s.events.length, 1, 'and only once per endpoint and kind');
  const text = await s.metrics.registry.metrics();
  t.match(text, /verdict_endpoint_sensitive_responses_total\{route="GET \/api\/users\/\{id\}\/profile",kind="cn_mobile",masked="false"\} 6/);
  t.match(text, /verdict_endpoint_exposures_total\{kind="cn_mobile"\} 1/);
  t.match(text, /verdict_response_samples_total 6/);
  // no event payload, metric or view holds anything but counts, kinds and the template
  t.notMatch(JSON.stringify([s.events, s.endpoint('GET', '/api/users/{id}/profile')]), /\/api\/users\/\d/);
});

/** A sample holding unmasked mobile numbers with these keyed hashes (8 bytes each). */
const values = (...names: string[]) => ({
  inspected_bytes: 900, records: names.length,
  findings: [{ kind: 'cn_mobile', unmasked: names.length, masked: 0, value_hashes: names.map((n) => Buffer.from(n.padEnd(8, '.').slice(0, 8)).toString('base64')) }],
});

t.test('settling: a URL that shows everyone the same values (or none) is sampled; new URLs and new values are not', async (t) => {
  const s = setup({ settle: { after: 10, inspect: 0.05 } });
  let n = 0;
  /** `count` requests to `url` (# → a running number), each answered with `sample()`. */
  const serve = async (count: number, url: string, sample: () => unknown, query = '') => {
    const list: unknown[] = [];
    for (let i = 0; i < count; i++, n++) {
      const path = url.replace('#', String(n));
      s.decide(`r${n}`, path, { mode: 'MONITOR', query });
      list.push({ request_id: `r${n}`, status: 200, method: 'GET', path, response: sample() });
    }
    await s.outcomes(list);
  };
  const asked = (path: string, query = '', times = 400) => {
    let k = 0;
    for (let i = 0; i < times; i++) if (s.decide(`a${n++}`, path, { mode: 'MONITOR', query }).inspect) k++;
    return k;
  };
  const promo = '/api/promo/info';
  t.equal(asked(promo, '', 1), 1, 'a URL never inspected: its class share (promo: 1)');
  // page 1 of a public winners list: the same people in every response, whoever asks
  await serve(9, promo, () => values('alice', 'bob', 'carol'), 'page=1');
  t.equal(asked(promo, 'page=1', 1), 1, 'not settled before `after` responses in a row agreed');
  await serve(1, promo, () => values('carol', 'alice', 'bob'), 'page=1');
  const settled = asked(promo, 'page=1');
  t.ok(settled > 5 && settled < 45, `settled: ${settled} of 400 asked at 0.05`);
  t.equal(asked(promo, 'page=2', 1), 1, 'the next page is a URL of its own: a crawler walking pages is inspected');
  t.match(s.endpoint('GET', promo)?.exposure, { flags: ['unmasked:cn_mobile'] }, 'the endpoint is still listed as returning unmasked numbers');
  // the list changes: every response is looked at again until it settles anew
  await serve(1, promo, () => values('bob', 'dave'), 'page=1');
  t.equal(asked(promo, 'page=1', 50), 50, 'a response with other values unsettles it');

  // customers' own profiles: a URL each, never settled
  await serve(200, '/api/users/#/profile', () => values(`p${n}`));
  t.equal(asked('/api/users/7/profile', '', 20), 20, 'a customer\'s own data: inspected');

  // a list with no sensitive values settles too, and a dump unsettles it
  await serve(12, '/api/users', () => ({ records: 10, requested_limit: 10 }), 'limit=10');
  t.ok(asked('/api/users', 'limit=10', 200) < 30, 'no sensitive values: settled (protected class share 0.25 → 0.05)');
  await serve(1, '/api/users', () => ({ records: 500, requested_limit: 10 }), 'limit=10');
  t.ok(asked('/api/users', 'limit=10', 200) > 30, 'more records than requested: back to its class share');
});

t.test('settling off (after: 0), or a settle share above the class share, leaves the class share', async (t) => {
  const s = setup({ settle: { after: 0 } });
  for (let i = 0; i < 30; i++) s.decide(`w${i}`, '/api/promo/info', { mode: 'MONITOR' });
  await s.outcomes(Array.from({ length: 30 }, (_, i) => ({ request_id: `w${i}`, status: 200, method: 'GET', path: '/api/promo/info', response: values('alice') })));
  t.equal(s.decide('w-last', '/api/promo/info', { mode: 'MONITOR' }).inspect, true);
  const pol = policy({ routes: ROUTES, responses: { settle: { after: 5, inspect: 0.5 } } });
  const settled = new SettledUrls();
  const news = urlHash('GET', '/news', '');
  t.equal(urlHash('GET', '/news', 'p=1'), hash32('GET /news?p=1'), 'a URL\'s hash is hash32 of "<method> <path>?<query>", made without the string');
  for (let i = 0; i < 10; i++) settled.observe(news, { inspected_bytes: 1, truncated: false, records: 1, requested_limit: 0, findings: [] }, pol.responses);
  t.equal(settled.share(news, 0.1, pol.responses), 0.1, 'never above the class share');
  t.equal(settled.share(news, 1, pol.responses), 0.5);
  // two URLs on one slot of the table take it from each other: neither settles while both come
  const slot = (h: number) => h & 0xffff;
  let other = '';
  for (let i = 0; !other; i++) if (slot(urlHash('GET', '/news', `p=${i}`)) === slot(news)) other = `p=${i}`;
  const otherHash = urlHash('GET', '/news', other);
  const none = { inspected_bytes: 1, truncated: false, records: 1, requested_limit: 0, findings: [] };
  for (let i = 0; i < 10; i++) {
    settled.observe(otherHash, none, pol.responses);
    settled.observe(news, none, pol.responses);
  }
  t.equal(settled.share(otherHash, 1, pol.responses), 1, `GET /news?${other} shares a slot with GET /news: not settled`);
  t.equal(settled.share(news, 1, pol.responses), 1, 'nor is GET /news, its count started again');
});

t.test('an endpoint never learned gets no samples; unknown kinds are ignored', async (t) => {
  const s = setup();
  const ack = await s.outcomes([{ request_id: 'x', status: 200, method: 'GET', path: '/api/never/seen', response: phone(1) }]);
  t.equal(ack.accepted, 0);
  t.equal(s.endpoint('GET', '/api/never/seen'), undefined, 'a forged outcome creates no endpoint');
  s.decide('a', '/api/users/1/profile');
  await s.outcomes([{ request_id: 'a', status: 200, method: 'GET', path: '/api/users/1/profile', response: { findings: [{ kind: 'made_up_kind', unmasked: 9 }] } }]);
  t.same(s.endpoint('GET', '/api/users/{id}/profile')?.exposure?.kinds, [], 'a kind the policy does not define is not counted');
});

t.test('async outcomes (metadata in the outcome) on a class no detector watches reach the inventory', async (t) => {
  const s = setup();
  const req = { request_id: 'as1', client_ip: '198.51.100.7', method: 'GET', path: '/news/1', mode: 'ASYNC' };
  await s.outcomes([{ request_id: 'as1', status: 200, method: 'GET', path: '/news/1', request: req, response: { records: 3, findings: [{ kind: 'email', unmasked: 2 }] } }]);
  t.match(s.endpoint('GET', '/news/{id}')?.exposure, { inspected: 1, kinds: [{ kind: 'email', unmasked_values: 2 }] });
});

t.test('masked inconsistently, and more records than requested', async (t) => {
  const s = setup();
  for (let i = 0; i < 6; i++) {
    s.decide(`u${i}`, `/api/users/${i}/profile`);
    s.decide(`o${i}`, `/api/orders/${i}`);
    s.decide(`l${i}`, '/api/users', { query: 'limit=10' });
  }
  const list: unknown[] = [];
  for (let i = 0; i < 6; i++) {
    list.push({ request_id: `u${i}`, status: 200, method: 'GET', path: `/api/users/${i}/profile`, response: phone(1) });
    list.push({ request_id: `o${i}`, status: 200, method: 'GET', path: `/api/orders/${i}`, response: phone(0, 1) });
    // the last answer ignores the limit: 500 records for 10 asked
    list.push({ request_id: `l${i}`, status: 200, method: 'GET', path: '/api/users', response: { records: i === 5 ? 500 : 11, requested_limit: 10, truncated: i === 5 } });
  }
  await s.outcomes(list);
  t.same(s.endpoint('GET', '/api/users/{id}/profile')?.exposure?.flags, ['unmasked:cn_mobile', 'masked_inconsistently:cn_mobile']);
  t.same(s.endpoint('GET', '/api/orders/{id}')?.exposure?.flags, [], 'the endpoint that masks is not flagged');
  t.match(s.endpoint('GET', '/api/users')?.exposure, { over_requested: 1, over_baseline: 0, truncated: 1, records_p50: 15, flags: ['more_records_than_requested'] });
});

t.test('no limit: well over the endpoint\'s own baseline is more than requested too', async (t) => {
  const s = setup();
  const list: unknown[] = [];
  for (let i = 0; i < 12; i++) s.decide(`b${i}`, '/api/users');
  for (let i = 0; i < 11; i++) list.push({ request_id: `b${i}`, status: 200, method: 'GET', path: '/api/users', response: { records: 20 + (i % 3) } });
  await s.outcomes(list);
  t.same(s.endpoint('GET', '/api/users')?.exposure?.flags, [], 'steady sizes: no flag');
  await s.outcomes([{ request_id: 'b11', status: 200, method: 'GET', path: '/api/users', response: { records: 2000 } }]);
  const x = s.endpoint('GET', '/api/users')?.exposure;
  t.match(x, { over_baseline: 1, flags: ['more_records_than_requested'] });
  t.ok((x?.records_mean ?? 0) < 25, `the dump is not learned as the baseline (${x?.records_mean})`);
});

t.test('patterns go out in the ack when the gateway runs another version', async (t) => {
  const s = setup({ patterns: [{ name: 'employee_id', regex: 'EMP\\d{6}' }] });
  const v = s.pol.responses.patternsVersion;
  const first = await s.outcomes([], '');
  t.same([first.patterns_version, first.patterns], [v, [{ name: 'employee_id', regex: 'EMP\\d{6}' }]]);
  const again = await s.outcomes([], v);
  t.same([again.patterns_version, again.patterns], [undefined, undefined], 'same version: nothing');
  const none = setup();
  const fresh = await none.outcomes([], '');
  t.equal(fresh.patterns_version, undefined, 'no patterns and a gateway with none: nothing');
  const stale = await none.outcomes([], v);
  t.same([stale.patterns_version, stale.patterns], [none.pol.responses.patternsVersion, []], 'a gateway with patterns the policy dropped is told to clear them');
});

t.test('the metric names at most MAX_EXPOSURE_ROUTES endpoints, the rest as "other"', async (t) => {
  const s = setup();
  const n = MAX_EXPOSURE_ROUTES + 5;
  const list: unknown[] = [];
  for (let i = 0; i < n; i++) {
    s.decide(`r${i}`, `/news/section${String.fromCharCode(97 + (i % 26))}${Math.floor(i / 26)}x`);
    list.push({ request_id: `r${i}`, status: 200, method: 'GET', path: `/news/section${String.fromCharCode(97 + (i % 26))}${Math.floor(i / 26)}x`, response: phone(1) });
  }
  await s.outcomes(list);
  const values = (await s.metrics.endpointSensitive.get()).values;
  t.equal(values.length, MAX_EXPOSURE_ROUTES + 1);
  t.equal(values.find((v) => v.labels.route === 'other')?.value, 5);
});

t.test('bounded: at most MAX_KINDS kinds per endpoint, whatever the policy reloads brought', async (t) => {
  const base = policy().responses;
  const kinds = Array.from({ length: MAX_KINDS + 10 }, (_, i) => `k${i}`);
  const settings = { ...base, kinds: new Set(kinds) };
  const stats = new EndpointExposureStats('GET /x');
  for (let i = 0; i < kinds.length; i += 8) stats.add({ inspected_bytes: 1, truncated: false, records: 1, requested_limit: 0, findings: kinds.slice(i, i + 8).map((kind) => ({ kind, unmasked: 1, masked: 0, value_hashes: [] })) }, 10, settings, undefined);
  t.equal(stats.kinds.size, MAX_KINDS);
});

t.test('templates never carry a sensitive value into metrics and events', async (t) => {
  t.equal(templateOf('/api/users/13800001234/profile'), '/api/users/{id}/profile', 'a phone number');
  t.equal(templateOf('/api/users/11010519491231002X/profile'), '/api/users/{id}/profile', 'a resident ID number ending in X');
  t.equal(templateOf('/api/users/alice@example.com'), '/api/users/{id}', 'an e-mail address');
  t.equal(templateOf('/api/users/alice%40example.com/orders'), '/api/users/{id}/orders', 'a percent-encoded one');
  t.equal(templateOf('/api/cards/6222020200112233445'), '/api/cards/{id}', 'a card number');
  t.equal(templateOf('/api/promo/claim'), '/api/promo/claim');
});
