// The simulated gateway's challenges and clearance (issue 13): the cookie jar binds to network
// and User-Agent, who solves and who cannot, cleared requests, solves counted per campaign, and
// the report's fields. A test detector under the test's control challenges (or blocks) what it is
// told to, so these do not move when the real detectors are tuned.
import { join } from 'node:path';
import t from 'tap';
import { loadPolicyFile } from '../../decision-service/src/config/policy.ts';
import { signal, type DetectorFactory } from '../../decision-service/src/engine/signal.ts';
import { repoRoot } from '../../scripts/lib/nginx.ts';
import { browserLike, ChallengeClients, medianSolveS, MOBILE_SLOWDOWN, runsSolver } from '../../bench/traffic/challenge-clients.ts';
import type { TrafficLine } from '../../bench/traffic/format.ts';
import { CHALLENGE_DEFAULTS, ClearanceGate, satisfies } from '../../bench/traffic/gateway-clearance.ts';
import { renderMarkdown, ScoreBuilder } from '../../bench/traffic/report.ts';
import { fileUpstream, replay, VerdictGuard, type Upstream } from '../../bench/traffic/replay.ts';
import { DEMO_HMAC_KEY, DEMO_LOCATIONS, gatewayOptions } from '../../bench/traffic/to-request.ts';

const policy = loadPolicyFile(join(repoRoot, 'policies/default.yaml'));
const T0 = 1763800000000;
const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';
const FIREFOX = 'Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0';

function line(over: Partial<TrafficLine> & { ua?: string }): TrafficLine {
  const { ua, ...rest } = over;
  return {
    ts: T0, ip: '198.51.100.7', method: 'POST', host: 'shop.example', path: '/api/auth/login', query: '', body: { username: 'u1', password: 'p' },
    headers: [['user-agent', ua ?? CHROME], ['content-type', 'application/json'], ['sec-fetch-mode', 'cors']],
    status: 401, label: 'human:u1', ...rest,
  };
}

/** Logins score 65 (challenge band of identity routes: difficulty 17); paths under /blockme score 100 (block, cached per IP). */
const logins: DetectorFactory = () => ({
  name: 'test_challenges',
  inspect(f, out) {
    if (f.req.path === '/api/auth/login') out.push(signal('test.login', 65, false));
    if (f.req.path.startsWith('/api/blockme')) out.push(signal('test.block', 100, false, { key: 'ip', ttl_s: 600 }));
  },
});

const guard = (locations = DEMO_LOCATIONS) => new VerdictGuard({ policy, detectors: [logins], startMs: T0, gateway: gatewayOptions({ locations }) });

t.test('the clearance cookie binds to the /24 and the exact User-Agent, and expires', async (t) => {
  const gate = new ClearanceGate(DEMO_HMAC_KEY);
  const l = line({});
  const token = gate.issue(l, 16, 3600, T0);
  t.same(gate.check(token, l, T0 + 5000), { state: 'VALID', level: 16, ageS: 5 });
  t.equal(gate.check(token, { ...l, ip: '198.51.100.200' }, T0).state, 'VALID', 'another address of the same /24');
  t.equal(gate.check(token, { ...l, ip: '198.51.101.7' }, T0).state, 'INVALID', 'another network');
  t.equal(gate.check(token, line({ ua: `${CHROME} ` }), T0).state, 'INVALID', 'another User-Agent (one byte)');
  t.equal(gate.check(token, l, T0 + 3601_000).state, 'EXPIRED');
  t.equal(gate.check(undefined, l, T0).state, 'NONE');
  t.equal(new ClearanceGate('another-gateway-key-0123456789').check(token, l, T0).state, 'INVALID', 'signed by another key');

  const clients = new ChallengeClients();
  clients.store(l, token, T0 + 3600_000);
  t.equal(clients.cookie(l), token, 'the jar hands it back to the same person');
  t.equal(clients.cookie({ ...l, ts: T0 + 3600_000 }), undefined, 'until its Max-Age runs out');
  t.equal(clients.cookie({ ...l, label: 'human:u2' }), undefined, 'another person has their own jar');
  t.equal(clients.cookie({ ...l, host: 'other.example' }), undefined, 'per host');
  t.equal(clients.cookie({ ...l, ip: '203.0.113.9' }), token, 'a person moving networks keeps the cookie (which then fails the check)');
});

t.test('a browser user challenged once solves, gets through, and is not challenged again within the TTL', async (t) => {
  const lines = [
    line({}),
    line({ ts: T0 + 60_000 }),
    line({ ts: T0 + 7_300_000 }), // after the clearance's hour
  ];
  const res = await replay(lines, guard(), fileUpstream);
  t.equal(res[0]!.action, 'CHALLENGE', 'the first login is challenged');
  t.equal(res[0]!.challenge?.difficulty, 17, 'difficulty raised with the score (16 at the threshold)');
  t.equal(res[0]!.passed, true);
  t.equal(res[0]!.solves, 1);
  t.equal(res[0]!.hashes, 2 ** 17);
  t.equal(res[0]!.status, 401, 'the retried login reached the upstream');
  t.not(res[0]!.finalAction, 'CHALLENGE');
  t.equal(res[1]!.clearance, 'VALID');
  t.equal(res[1]!.source, 'service', 'the demo\'s identity locations decide cleared requests inline');
  t.equal(res[1]!.action, 'TAG');
  t.ok(res[1]!.reasons.includes('clearance.accepted'), 'the service sees the clearance and lets it through tagged');
  t.equal(res[1]!.solves, 0);
  t.equal(res[2]!.clearance, 'NONE', 'the browser dropped the cookie at its Max-Age');
  t.equal(res[2]!.action, 'CHALLENGE', 'challenged again after the clearance\'s lifetime');
  t.equal(res[2]!.solves, 1);

  // cleared=async: a valid clearance is not waited on; scored after the response
  const async = DEMO_LOCATIONS.map((l) => (l.routeTag === 'auth' ? { ...l, challenge: { cleared: 'async' as const } } : l));
  const r2 = await replay(lines.slice(0, 2), guard(async), fileUpstream);
  t.equal(r2[1]!.source, 'cleared', 'a valid clearance is not waited on (cleared=async)');
  t.equal(r2[1]!.action, 'ALLOW');
  t.same(r2[1]!.reasons, ['test.login', 'clearance.accepted'], 'scored after the response: the service accepts the clearance');
});

t.test('scripts and apps without the solver never pass; apps with it and old browsers (no-JS fallback) do', async (t) => {
  const lines = [
    line({ ua: 'curl/8.4.0', label: 'attack:creds' }),
    line({ ua: 'ShopApp/5.2.1 (Android 13; Pixel 7)', label: 'human:app1', ip: '203.0.113.5' }),
    line({ ua: 'ShopApp/5.3.0 (Android 14; Pixel 7)', label: 'human:app2', ip: '203.0.114.5', sim: { client: 'app-solver' } }),
    // IE11 cannot parse the solver: its login page navigation gets the no-JS fallback (wait, level 0)
    line({ ua: 'Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko', label: 'human:ie', ip: '203.0.115.5', headers: [['user-agent', 'Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko'], ['accept', 'text/html, application/xhtml+xml, */*'], ['content-type', 'application/x-www-form-urlencoded']] }),
    // the same old browser's API call gets the JSON descriptor: nothing it can run
    line({ label: 'human:ie2', ip: '203.0.116.5', headers: [['user-agent', 'Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko'], ['accept', 'application/json'], ['content-type', 'application/json']] }),
  ];
  const res = await replay(lines, guard(), fileUpstream);
  t.same(res.map((r) => r.action), ['CHALLENGE', 'CHALLENGE', 'CHALLENGE', 'CHALLENGE', 'CHALLENGE']);
  t.match(res[0], { passed: false, finalAction: 'CHALLENGE', status: 429, solves: 0, client: 'script', why: 'cannot solve' });
  t.match(res[1], { passed: false, client: 'app', why: 'cannot solve' });
  t.match(res[2], { passed: true, client: 'app-solver', solves: 1 });
  t.match(res[3], { passed: false, client: 'browser-nojs', why: 'no fallback' }, 'difficulty 17 is above the base 16: no fallback offered');
  t.match(res[4], { passed: false, client: 'browser-nojs', why: 'no fallback' });

  // at the base difficulty the fallback is offered; its level 0 counts as the base
  const ask = { kind: 'POW' as const, difficulty: 16, ttlS: 3600, navigation: true, nojs: true, nojsWaitS: 5 };
  const m = new ChallengeClients().meet(lines[3]!, ask, 0);
  t.match(m, { pass: true, level: 0, hashes: 0, solveS: 5 });
  t.ok(satisfies({ state: 'VALID', level: 0, ageS: 1 }, 16, CHALLENGE_DEFAULTS), 'level 0 meets a cached base challenge');
  t.notOk(satisfies({ state: 'VALID', level: 0, ageS: 1 }, 17, CHALLENGE_DEFAULTS), '... and nothing above it');
  t.notOk(satisfies({ state: 'INVALID', level: 0, ageS: 0 }, 0, CHALLENGE_DEFAULTS));
  t.match(new ChallengeClients().meet(line({ ua: 'python-requests/2.31.0', label: 'attack:w', sim: { client: 'script-nojs' } }), ask, 0), { pass: true, level: 0 }, 'a script can take the fallback too');
});

t.test('a cached BLOCK applies whatever the clearance; a second challenge of one request is solved once more, then given up', async (t) => {
  const lines = [
    line({}),
    line({ ts: T0 + 10_000, method: 'GET', path: '/api/blockme/1', body: undefined }),
    line({ ts: T0 + 20_000, method: 'GET', path: '/api/orders/1', body: undefined }),
  ];
  const res = await replay(lines, guard(), fileUpstream);
  t.equal(res[0]!.passed, true);
  t.match(res[1], { clearance: 'VALID', source: 'cleared', action: 'ALLOW', reasons: ['test.block'] }, 'cleared: let through, blocked only after the response (and cached)');
  t.equal(res[2]!.clearance, 'VALID');
  t.equal(res[2]!.source, 'cache', 'the block cached for the IP applies to a cleared request');
  t.equal(res[2]!.action, 'BLOCK');
  t.equal(res[2]!.status, 403);

  const clients = new ChallengeClients();
  const ask = { kind: 'POW' as const, difficulty: 16, ttlS: 3600, navigation: false, nojs: true, nojsWaitS: 5 };
  t.equal(clients.meet(line({}), ask, 1).pass, true);
  t.match(clients.meet(line({}), ask, 2), { pass: false, why: 'solved enough' });
  t.match(clients.meet(line({}), { ...ask, kind: 'STATUS' }, 0), { pass: false, why: 'nothing to solve' });
});

t.test('a solving client loses time: its later requests come after the retry', async (t) => {
  const sent: string[] = [];
  const upstream: Upstream = { send: async (l) => { sent.push(`${l.path}@${l.ts - T0}`); return 200; }, close: async () => {} };
  const lines = [line({}), line({ ts: T0 + 50, method: 'GET', path: '/api/users/1/profile', body: undefined }), line({ ts: T0 + 60, label: 'human:other', ip: '192.0.2.1', method: 'GET', path: '/about', body: undefined })];
  const res = await replay(lines, guard(), upstream);
  t.equal(res[0]!.passed, true);
  t.equal(sent[0], '/about@60', 'another person is not held up');
  t.match(sent[1], /^\/api\/auth\/login@\d+$/, 'the login is sent again after the solve');
  const retryAt = Number(sent[1]!.split('@')[1]);
  t.ok(retryAt >= 300, `the retry waits for the solve and the page round trips (${retryAt} ms)`);
  t.equal(sent[2], `/api/users/1/profile@${retryAt + 50}`, 'the same person\'s next request moved back by as much');
});

t.test('solves are counted per campaign: a crew that changes network pays again, a sticky one once', async (t) => {
  const solver = (ts: number, ip: string, label: string): TrafficLine => line({ ts, ip, ua: 'python-requests/2.31.0', label, sim: { client: 'solver' } });
  const lines: TrafficLine[] = [];
  for (let i = 0; i < 6; i++) {
    lines.push(solver(T0 + i * 120_000, `198.51.${100 + i}.7`, 'attack:rotating'));
    lines.push(solver(T0 + i * 120_000 + 1000, '203.0.113.7', 'attack:sticky'));
  }
  lines.sort((a, b) => a.ts - b.ts);
  const res = await replay(lines, guard(), fileUpstream);
  const b = new ScoreBuilder();
  b.add('w', lines, res);
  const { campaigns } = b.result();
  const rot = campaigns.find((c) => c.id === 'rotating')!;
  const sticky = campaigns.find((c) => c.id === 'sticky')!;
  t.match(rot, { requests: 6, challenged: 6, passed: 6, solves: 6, hashes: 6 * 2 ** 17, stopped: 0 });
  t.match(sticky, { requests: 6, challenged: 1, passed: 1, solves: 1, hashes: 2 ** 17, stopped: 0 });
  t.equal(sticky.clearance.VALID, 5, 'the rest went through on its clearance');
  t.ok(rot.solve_s > 0);

  // the same crew keeping its jar while it rotates carries an invalid clearance each time
  const jarLines = lines.filter((l) => l.label === 'attack:rotating').map((l) => ({ ...l, sim: { client: 'solver' as const, actor: 'w1' } }));
  const r2 = await replay(jarLines, guard(), fileUpstream);
  t.same(r2.map((r) => r.clearance), ['NONE', 'INVALID', 'INVALID', 'INVALID', 'INVALID', 'INVALID']);
  t.ok(r2[1]!.reasons.includes('clearance.invalid'), 'an invalid clearance is evidence');
});

t.test('report: humans challenged and passed apart from humans stopped; per campaign cost; Markdown columns', async (t) => {
  const lines = [
    line({ label: 'human:a' }),
    line({ label: 'human:b', ua: 'ShopApp/5.2.1 (Android 13; Pixel 7)', ip: '203.0.113.5' }),
    line({ label: 'human:c', ip: '203.0.114.5', method: 'GET', path: '/api/blockme/1', body: undefined }),
    line({ label: 'human:d', ip: '203.0.115.5', method: 'GET', path: '/about', body: undefined }),
    line({ label: 'attack:x', ua: 'python-requests/2.31.0', ip: '203.0.116.5', sim: { client: 'solver' } }),
  ];
  const res = await replay(lines, guard(), fileUpstream);
  const b = new ScoreBuilder();
  b.add('w', lines, res);
  const card = b.result();
  t.match(card.humans, { requests: 4, blocked: 1, challenged: 2, challenged_passed: 1, stopped: 2, users: 4, users_affected: 3, users_stopped: 2, solves: 1 });
  t.same(card.humans.stopped_by, { blocked: 1, 'app: cannot solve': 1 });
  t.same(card.humans_by_scenario.w, card.humans);
  t.match(card.campaigns[0], { id: 'x', challenged: 1, passed: 1, solves: 1, stopped: 0, stopped_after_detection: 0, blocked_after_detection: 1 });
  const md = renderMarkdown({ policy: 'p', ...card, baseline: card }, { seed: 1, scenarios: ['w'], wallS: 1, lines: lines.length });
  t.match(md, /\| solved past \| never through \| solves paid \|/);
  t.match(md, /\| x \| 1 \| 100\.0% \| #1 \(0s\) \| 100\.0% \| 100\.0% \| 0\.0% \| 1 \(1\.3e5\) \|/);
  t.match(md, /\| Verdict \| 4 \| 1 \| 2 \| 50\.000% \| 1 \| 2 \| 50\.0% \| 4 \| 3 \| 2 \| 1 \|/);
  t.match(md, /by cause: app: cannot solve 1, blocked 1\./);
});

t.test('client kinds from the User-Agent (traffic without sim.client) and the solve-time table', async (t) => {
  const c = new ChallengeClients({ appSolverShare: 0 });
  const kind = (ua: string, label = 'human:x') => c.kindOf(line({ ua, label }));
  t.equal(kind(CHROME), 'browser');
  t.equal(kind(FIREFOX), 'browser');
  t.equal(kind('Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/49.0.2623.112 Safari/537.36'), 'browser-nojs', 'Chrome 49 has no async functions');
  t.equal(kind('Mozilla/5.0 (Linux; U; Android 4.4.2; zh-cn; GT-I9500 Build/KOT49H) AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 Mobile Safari/534.30'), 'browser-nojs');
  t.equal(kind('okhttp/4.12.0'), 'app', 'non-browser human clients: none ship the solver at share 0');
  t.equal(new ChallengeClients({ appSolverShare: 1 }).kindOf(line({ ua: 'okhttp/4.12.0' })), 'app-solver');
  t.equal(kind(CHROME, 'attack:a'), 'headless', 'a bot with a browser UA is assumed to solve');
  t.equal(kind('python-requests/2.31.0', 'attack:a'), 'script');
  t.equal(c.kindOf(line({ label: 'attack:a', sim: { client: 'script' } })), 'script', 'a declared kind wins over the UA');
  t.notOk(browserLike('Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)'));
  t.notOk(runsSolver('Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko'));
  t.ok(runsSolver('Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1'));
  t.equal(medianSolveS(17), medianSolveS(16) * 2, 'one more bit, twice the work');
  t.ok(MOBILE_SLOWDOWN > 1);
});
