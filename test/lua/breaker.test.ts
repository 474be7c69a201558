// verdict.breaker inside nginx: the state machine (it opens on a dead service, never on a slow
// one), the background probe of the open breaker (its interval, its lock, what a failed and an
// answered probe do), and the overload gauge with the shedding of low-priority calls it drives.
import t from 'tap';
import { OutcomeBatchType } from '../../decision-service/src/wire/codec.ts';
import { ask, echoed, sumSeries, sleep } from '../helpers/http.ts';
import { startEchoUpstream } from '../helpers/servers.ts';
import { startLuaNginx, startStandIn, type LuaNginx, type StandIn } from './harness.ts';

const COOLDOWN_MS = 200;
const PROBE_TIMEOUT_MS = 500;

// A test location running `body` with the modules at hand; it answers cjson.encode(answer).
// The tests change breaker settings of config.http in the one worker and restore them.
const luaLocation = (path: string, body: string) => `
    location = ${path} {
        content_by_lua_block {
            local cjson = require "cjson.safe"
            local breaker = require "verdict.breaker"
            local d = ngx.shared.verdict_state
            local c = require("verdict.config").http
            local answer
${body}
            ngx.print(cjson.encode(answer))
        }
    }`;

const locations = `${luaLocation('/breaker', `
            local saved = { c.breaker_failures, c.breaker_min_span_ms }
            local steps = {}
            local function step(name) steps[#steps + 1] = { name, breaker.is_open(), breaker.state_code() } end
            c.breaker_failures, c.breaker_min_span_ms = 3, 200
            d:flush_all()
            step("fresh")
            breaker.failure("timeout") breaker.failure("timeout") breaker.failure("timeout")
            step("3 quick failures")
            ngx.sleep(0.25) ngx.update_time()
            breaker.success()
            breaker.failure("timeout")
            step("an answer in between: a slow service")
            ngx.sleep(0.1) ngx.update_time()
            breaker.failure("timeout") breaker.failure("timeout")
            step("failures in a row, but the last answer is recent")
            ngx.sleep(0.15) ngx.update_time()
            breaker.failure("refused")
            step("nothing back for the span")
            d:flush_all()
            c.breaker_min_span_ms = 0
            breaker.failure("refused") breaker.failure("refused")
            step("span 0: 2 failures")
            breaker.success()
            breaker.failure("refused") breaker.failure("refused")
            step("span 0: an answer restarts the count")
            breaker.failure("refused")
            step("span 0: 3 failures")
            d:flush_all()
            c.breaker_failures, c.breaker_min_span_ms = saved[1], saved[2]
            answer = steps`)}
${luaLocation('/overload', `
            local saved = c.shed_timeout_share
            -- a window of calls, then the next window reads its share
            c.shed_timeout_share = 0.2
            for i = 1, 10 do breaker.observe(i <= 3) end
            local before = breaker.overloaded()
            ngx.sleep(1.01) ngx.update_time()
            breaker.observe(false)
            local after = breaker.overloaded()
            c.shed_timeout_share = 0
            local off = breaker.overloaded()
            c.shed_timeout_share = 0.2
            for i = 1, 10 do breaker.observe(i <= 1) end
            ngx.sleep(1.01) ngx.update_time()
            breaker.observe(false)
            local below = breaker.overloaded()
            ngx.sleep(2.01) ngx.update_time()
            local stale = breaker.overloaded()
            c.shed_timeout_share = saved
            answer = { before, after, off, below, stale }`)}
${luaLocation('/open', `
            local saved = { c.breaker_failures, c.breaker_min_span_ms }
            d:flush_all()
            c.breaker_failures, c.breaker_min_span_ms = 1, 0
            breaker.failure("refused")
            c.breaker_failures, c.breaker_min_span_ms = saved[1], saved[2]
            answer = { breaker.is_open(), breaker.state_code() }`)}
${luaLocation('/state', `
            answer = { breaker.is_open(), breaker.state_code() }`)}
${luaLocation('/reset', `
            d:flush_all()
            answer = {}`)}
    location /low/ {
        set $verdict_priority low;
        set $verdict_budget_ms 30;
        include verdict-location.conf;
        proxy_pass http://verdict_app;
    }
    location /normal/ {
        set $verdict_budget_ms 30;
        include verdict-location.conf;
        proxy_pass http://verdict_app;
    }`;

let lua: LuaNginx;
let service: StandIn;
t.before(async () => {
  const upstream = await startEchoUpstream();
  t.teardown(() => upstream.close());
  service = await startStandIn(t, { status: 500 });
  lua = await startLuaNginx(t, {
    locations,
    upstream: `127.0.0.1:${upstream.port}`,
    service: `127.0.0.1:${service.port}`,
    // the shed test makes timed-out calls for over a second: the breaker must stay closed then
    init: { outcomes_enabled: false, breaker_cooldown_ms: COOLDOWN_MS, breaker_probe_timeout_ms: PROBE_TIMEOUT_MS, breaker_failures: 1000 },
  });
});

/** Probes the stand-in received since index `from`. */
const probesSince = (from: number) => service.requests.slice(from).filter((r) => r.path === '/v1/outcomes');

t.test('state machine: opens when calls fail and nothing comes back for the span, not on a slow service', async (t) => {
  const steps = await lua.post<Array<[string, boolean, number]>>('/breaker');
  t.same(steps.map(([name, open]) => [name, open]), [
    ['fresh', false],
    ['3 quick failures', false],
    ['an answer in between: a slow service', false],
    ['failures in a row, but the last answer is recent', false],
    ['nothing back for the span', true],
    ['span 0: 2 failures', false],
    ['span 0: an answer restarts the count', false],
    ['span 0: 3 failures', true],
  ]);
  t.equal(steps.find(([n]) => n === 'nothing back for the span')?.[2], 1, 'state code 1 while open');
  t.equal(steps[0]?.[2], 0, 'state code 0 while closed');
});

t.test('overload gauge: the timed-out share of the last full second, against shed_timeout_share', async (t) => {
  const [before, after, off, below, stale] = await lua.post<boolean[]>('/overload');
  t.equal(before, false, 'no share before a window ends');
  t.equal(after, true, '3 of 10 timed out: 30% >= 20%');
  t.equal(off, false, 'shed_timeout_share 0: never');
  t.equal(below, false, '1 of 10 timed out: 10% < 20%');
  t.equal(stale, false, 'a silent window resets the share');
});

t.test('open: one probe per cool-down; a failed probe keeps it open and is counted by cause', async (t) => {
  service.mode = { status: 500 };
  const from = service.requests.length;
  t.same(await lua.post('/open'), [true, 1], 'opened');
  await sleep(1100);
  const probes = probesSince(from);
  t.same(await lua.post('/state'), [true, 1], 'still open');
  // the timer ticks every 50 ms: without the cool-down this would be about 20
  t.ok(probes.length >= 3 && probes.length <= 7, `a probe every ${COOLDOWN_MS} ms (${probes.length} in 1.1 s)`);
  const gaps = probes.slice(1).map((p, i) => p.at - (probes[i]?.at ?? 0));
  t.ok(gaps.every((g) => g >= COOLDOWN_MS - 20), `no two probes closer than the cool-down (${gaps.join(', ')} ms)`);
  const batch = OutcomeBatchType.toObject(OutcomeBatchType.decode(probes[0]?.body ?? Buffer.alloc(0)), { defaults: true });
  t.equal(batch.outcomes.length, 0, 'a probe is an empty OutcomeBatch');
  t.ok(batch.gateway_id, 'naming this gateway');
  const m = (await ask(lua.nginx.metricsUrl)).body;
  const counted = sumSeries(m, 'verdict_gateway_breaker_probes_failed_total', 'cause="http error"');
  t.ok(Math.abs(counted - probesSince(from).length) <= 1, `each failed probe counted (${counted})`);
});

t.test('open: a probe that hangs holds the lock; no second probe starts before its deadline', async (t) => {
  service.mode = 'hang';
  await sleep(PROBE_TIMEOUT_MS); // whatever probe was in flight ends
  let code = 0;
  for (let i = 0; i < 50 && code !== 2; i++) { await sleep(20); code = (await lua.post<[boolean, number]>('/state'))[1]; }
  t.equal(code, 2, 'state code 2: a probe in flight');
  const from = service.requests.length;
  await sleep(1200);
  const probes = probesSince(from);
  // cool-down 200 ms, deadline 500 ms: a probe every 500 ms, not every 200 ms
  t.ok(probes.length >= 1 && probes.length <= 3, `${probes.length} probes in 1.2 s`);
  const gaps = probes.slice(1).map((p, i) => p.at - (probes[i]?.at ?? 0));
  t.ok(gaps.every((g) => g >= PROBE_TIMEOUT_MS - 20), `each after the previous one's deadline (${gaps.join(', ')} ms)`);
  const m = (await ask(lua.nginx.metricsUrl)).body;
  t.ok(sumSeries(m, 'verdict_gateway_breaker_probes_failed_total', 'cause="timeout"') >= 1, 'counted as timeouts');
});

t.test('open: the first answered probe closes it, within one cool-down', async (t) => {
  service.mode = { status: 200 };
  await sleep(PROBE_TIMEOUT_MS); // the hung probe ends
  t.same(await lua.post('/open'), [true, 1], 'opened again');
  const opened = Date.now();
  let state: [boolean, number] = [true, 1];
  while (state[0] && Date.now() - opened < 2000) {
    await sleep(20);
    state = await lua.post('/state');
  }
  const took = Date.now() - opened;
  t.same(state, [false, 0], 'closed');
  t.ok(took <= COOLDOWN_MS + 300, `after ${took} ms (a cool-down, a 50 ms timer tick, the answer)`);
  const r = await ask(`${lua.nginx.url}/normal/x`);
  t.equal(echoed(r).headers['x-verdict-fail-open'], undefined, 'and calls go out again');
});

t.test('overload: calls from low-priority locations are shed, normal ones still go out', async (t) => {
  await lua.post('/reset');
  service.mode = { status: 200 };
  const failOpen = async (path: string) => echoed(await ask(`${lua.nginx.url}${path}`)).headers['x-verdict-fail-open'];
  t.equal(await failOpen('/low/1'), undefined, 'not overloaded: a low-priority call goes out');

  // a second later the first timed-out call starts a fresh one-second window of the gauge
  await sleep(1050);
  service.mode = 'hang';
  for (let i = 0; i < 5; i++) t.equal(await failOpen('/normal/1'), 'timeout');
  await sleep(1050);
  t.equal(await failOpen('/normal/2'), 'timeout', 'the next second starts with the share of the last: 100% timed out');
  const calls = service.requests.length;
  t.equal(await failOpen('/low/2'), 'shed', 'low priority: shed');
  t.equal(service.requests.length, calls, 'without a call');
  t.equal(await failOpen('/normal/3'), 'timeout', 'normal priority: still called');
  t.equal(service.requests.length, calls + 1);
  const m = (await ask(lua.nginx.metricsUrl)).body;
  t.equal(sumSeries(m, 'verdict_gateway_shed_total', 'what="low priority call"'), 1);
  t.equal(sumSeries(m, 'verdict_gateway_fail_open_total', 'cause="shed"'), 1);
});
