// Issue 15, no call when nothing is at stake: an inline decision that found nothing on an
// inline_unless_cleared route marks the client clean (an ALLOW the gateway caches under its
// principal, else session, else device); identity and promo routes never mark; anything found on
// a marked client takes the mark back, once, for the gateways that cached it (OutcomeAck).
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../../../decision-service/src/app.ts';
import { parseEnv } from '../../../decision-service/src/config/env.ts';
import { ConfigError } from '../../../decision-service/src/errors.ts';
import { VirtualClock } from '../../../decision-service/src/engine/clock.ts';
import { Engine } from '../../../decision-service/src/engine/engine.ts';
import { createLogger } from '../../../decision-service/src/logger.ts';
import { MemoryStore } from '../../../decision-service/src/state/memory-store.ts';
import { BASE_ROUTES, policy, request } from '../../helpers/policy.ts';
import { marksPolicy } from '../../helpers/service.ts';

const MARKS_POLICY = marksPolicy();

const TOKEN = Buffer.from('token-of-alice');
const SESSION = Buffer.from('session-of-alice');
const DEVICE = Buffer.from('device-of-alice');
const BROWSER = { user_agent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0', accept_language: 'en', header_names: ['host', 'user-agent', 'accept', 'accept-language'] };

const MARKS = { clean_marks: { ttl_s: 120 } };

function setup(overrides: Parameters<typeof policy>[0] = {}) {
  const clock = new VirtualClock(1_763_800_000_000);
  const engine = new Engine({ policy: policy({ ...MARKS, ...overrides }), store: new MemoryStore({ maxKeys: 10_000 }), clock, identifierKey: Buffer.alloc(32, 1) });
  let n = 0;
  const decide = (fields: Record<string, unknown>) => engine.decide(request({ request_id: `r${++n}`, gateway_id: 'gw-1', ...BROWSER, ...fields }));
  return { clock, engine, decide };
}

t.test('a clean inline read marks its client: principal, else session, else device', async (t) => {
  const { decide } = setup();
  const order = { path: '/api/orders/1001', authorization: true };
  const byToken = decide({ ...order, token_hash: TOKEN, session_hash: SESSION, device_hash: DEVICE });
  t.equal(byToken.action, 'ALLOW');
  t.same(byToken.reasons, []);
  t.equal(byToken.cache_key, `principal:${TOKEN.toString('base64')}`, 'the strongest key it carries');
  t.equal(byToken.cache_ttl_s, 120, 'clean_marks.ttl_s');
  t.equal(decide({ path: '/', session_hash: SESSION, device_hash: DEVICE }).cache_key, `session:${SESSION.toString('base64')}`);
  t.equal(decide({ path: '/', device_hash: DEVICE }).cache_key, `device:${DEVICE.toString('base64')}`);
  t.equal(decide({ path: '/' }).cache_key, '', 'an address alone is never marked: a crowd can share it');
});

t.test('no mark: identity and promo routes, async and monitor decisions, marks off, a route opted out', async (t) => {
  const { decide } = setup();
  const carry = { token_hash: TOKEN, session_hash: SESSION };
  t.equal(decide({ ...carry, path: '/api/promo/info' }).cache_key, '', 'promo stays inline');
  const login = decide({ ...carry, method: 'POST', path: '/api/auth/login', identifier: 'alice', password_hash: Buffer.from('pw') });
  t.equal(login.cache_key, '', `identity stays inline (${login.action} ${login.reasons.join(',')})`);
  t.equal(decide({ ...carry, path: '/', mode: 'ASYNC' }).cache_key, '', 'only an inline decision marks: an async one is the mark being used');
  t.equal(decide({ ...carry, path: '/', mode: 'MONITOR' }).cache_key, '', 'a monitor location never skips');
  t.equal(setup({ clean_marks: { ttl_s: 0 } }).decide({ ...carry, path: '/' }).cache_key, '', 'ttl_s 0: no marks');
  t.equal(new Engine({ policy: policy(), store: new MemoryStore({ maxKeys: 100 }), clock: new VirtualClock(0), identifierKey: Buffer.alloc(32, 1) })
    .decide(request({ ...carry, path: '/' })).cache_key, '', 'off by default');
  const routes = BASE_ROUTES.map((r) => (r.name === 'home' ? { ...r, inline_unless_cleared: false } : r));
  t.equal(setup({ routes }).decide({ ...carry, path: '/' }).cache_key, '', 'inline_unless_cleared: false');
  const internal = decide({ ...carry, path: '/internal/admin' });
  t.not(internal.action, 'ALLOW', 'evidence: no mark, whatever the route');
  t.equal(internal.cache_key.startsWith('principal:') && internal.action === 'ALLOW', false);
});

t.test('the policy refuses inline_unless_cleared on identity and promo routes, naming the field', async (t) => {
  const routes = BASE_ROUTES.map((r) => (r.name === 'login' ? { ...r, inline_unless_cleared: true } : r));
  const message = (() => {
    try {
      policy({ routes });
    } catch (err) {
      return err instanceof ConfigError ? err.message : `not a ConfigError: ${String(err)}`;
    }
    return 'accepted';
  })();
  t.match(message, /routes\[2\]\.inline_unless_cleared/, message);
  t.match(message, /always decided inline/);
  const bad = BASE_ROUTES.map((r) => (r.name === 'order' ? { ...r, inline_unless_cleared: 'yes' } : r));
  t.throws(() => policy({ routes: bad as never }), { message: /routes\[5\]\.inline_unless_cleared/ });
});

t.test('evidence on a marked client takes the mark back once, for the gateways that cached it', async (t) => {
  const { decide, clock } = setup();
  const mark = decide({ path: '/', token_hash: TOKEN });
  t.ok(mark.cache_key);
  decide({ path: '/', token_hash: TOKEN, gateway_id: 'gw-2' }); // a second gateway caches it too
  const probe = decide({ path: '/internal/admin', token_hash: TOKEN, mode: 'ASYNC' });
  t.same(probe.unmark, [{ key: mark.cache_key, gateways: ['gw-1', 'gw-2'] }], 'the late decision of a skipped request takes it back');
  t.equal(decide({ path: '/internal/admin', token_hash: TOKEN }).unmark, undefined, 'once');
  // an expired mark is not taken back (nothing is cached any more)
  decide({ path: '/', session_hash: SESSION });
  clock.advance(121_000);
  t.equal(decide({ path: '/internal/admin', session_hash: SESSION }).unmark, undefined, 'expired');
});

t.test('the service: marks counted, taken back in the marking gateway\'s next OutcomeAck only', async (t) => {
  const a = buildApp(parseEnv({ VERDICT_POLICY: MARKS_POLICY, VERDICT_POLICY_WATCH: '0', VERDICT_STATE_DIR: mkdtempSync(join(tmpdir(), 'verdict-state-')), VERDICT_IDENTIFIER_KEY: 'identifier-key-0123456789' }), { logger: createLogger('silent') }).app;
  t.teardown(() => a.close());
  const token = TOKEN.toString('base64');
  const base = { client_ip: '198.51.100.9', method: 'GET', authorization: true, token_hash: token, ...BROWSER };
  const d = (await a.inject({ method: 'POST', url: '/v1/decide', payload: { ...base, request_id: 'm1', path: '/api/orders/7', gateway_id: 'gw-a', mode: 'INLINE' } })).json();
  t.match(d, { action: 'ALLOW', cache_key: `principal:${token}`, cache_ttl_s: 120 });
  const ack = async (gateway: string, outcomes: unknown[] = []) =>
    (await a.inject({ method: 'POST', url: '/v1/outcomes', payload: { gateway_id: gateway, outcomes } })).json() as { unmarked_keys?: string[]; verdicts: unknown[] };
  t.equal((await ack('gw-a')).unmarked_keys, undefined, 'nothing to take back yet');
  // the skipped request comes back in an async outcome: a probe of an internal route
  const late = { request_id: 'm2', status: 404, action: 'ALLOW', request: { ...base, request_id: 'm2', path: '/internal/admin', mode: 'ASYNC' } };
  t.equal((await ack('gw-b', [late])).unmarked_keys, undefined, 'another gateway never cached it');
  t.same((await ack('gw-a')).unmarked_keys, [`principal:${token}`], 'the marking gateway drops it');
  t.equal((await ack('gw-a')).unmarked_keys, undefined, 'once');
  const metrics = (await a.inject({ method: 'GET', url: '/metrics' })).body;
  t.match(metrics, /verdict_clean_marks_given_total 1\b/);
  t.match(metrics, /verdict_clean_marks_taken_back_total 1\b/);
});
