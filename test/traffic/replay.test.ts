import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadPolicyFile } from '../../decision-service/src/config/policy.ts';
import { signal, type DetectorFactory } from '../../decision-service/src/engine/signal.ts';
import { repoRoot } from '../../scripts/lib/nginx.ts';
import { parseTrafficText } from '../../bench/traffic/format.ts';
import { ScoreBuilder } from '../../bench/traffic/report.ts';
import { BaselineGuard, fileUpstream, replay, ShopUpstream, VerdictGuard } from '../../bench/traffic/replay.ts';
import { summarize } from '../../bench/traffic/replay-cli.ts';
import { marksPolicy } from '../helpers/service.ts';

const fixture = parseTrafficText(readFileSync(join(repoRoot, 'test/traffic/fixtures/small.jsonl'), 'utf8'));
const policy = loadPolicyFile(join(repoRoot, 'policies/default.yaml'));

// A detector under the test's control (the real ones evolve): order lookups without credentials
// are blocked and the verdict is cached for the client IP for 60 s. It also records outcomes.
const observed: number[] = [];
const ordersWithoutCredentials: DetectorFactory = () => ({
  name: 'test_orders',
  inspect(f, out) {
    if (f.req.path.startsWith('/api/orders/') && !f.hasCredentials) out.push({ ...signal('test.orders_without_credentials', 100, false), cache: { key: 'ip', ttl_s: 60 } });
  },
  observe(o) {
    observed.push(o.status);
  },
});

t.test('the fixture replays to known counts (cache hits, TTL expiry, async and off locations)', async (t) => {
  observed.length = 0;
  const guard = new VerdictGuard({ policy, detectors: [ordersWithoutCredentials], startMs: fixture[0]!.ts });
  const results = await replay(fixture, guard, fileUpstream);
  t.same(results.map((r) => r.action), ['ALLOW', 'ALLOW', 'ALLOW', 'BLOCK', 'BLOCK', 'BLOCK', 'ALLOW', 'ALLOW', 'ALLOW', 'ALLOW', 'BLOCK', 'ALLOW']);
  t.same(results.map((r) => r.source), ['async', 'off', 'service', 'service', 'cache', 'cache', 'service', 'service', 'async', 'service', 'service', 'async']);
  t.same(results.map((r) => r.status), [200, 200, 401, 403, 403, 403, 200, 200, 404, 200, 403, 200], 'blocked requests answer 403, the rest the file status');
  t.equal(observed.length, 11, 'every guarded request (all but /static) reports an outcome');
  t.same(observed.slice(0, 3), [200, 401, 403]);

  const s = summarize(policy.version, fixture, results);
  t.same(s.actions, { ALLOW: 8, BLOCK: 4 });
  t.same(s.sources, { async: 3, off: 1, service: 6, cache: 2 });
  t.equal(s.reasons['test.orders_without_credentials'], 4);

  const b = new ScoreBuilder();
  b.add('fixture', fixture, results);
  const { campaigns, humans } = b.result();
  t.equal(campaigns.length, 1);
  t.match(campaigns[0], { id: 'a1', requests: 6, blocked: 3, challenged: 0, allowed: 3, first_detection_at: 1, first_detection_s: 0, blocked_after_detection: 0.5 });
  t.same(humans, { requests: 5, blocked: 1, challenged: 0, users: 2, users_affected: 1, challenged_passed: 0, stopped: 1, users_stopped: 1, solves: 0, solve_s: 0, stopped_by: { blocked: 1 } });
});

t.test('with clean marks on, the request of a marked client is not waited on (scored after it)', async (t) => {
  const marked = loadPolicyFile(marksPolicy());
  const guard = new VerdictGuard({ policy: marked, detectors: [ordersWithoutCredentials], startMs: fixture[0]!.ts });
  const results = await replay(fixture, guard, fileUpstream);
  // the 8th request carries the token the 7th, clean, was marked by
  t.same(results.map((r) => r.source), ['async', 'off', 'service', 'service', 'cache', 'cache', 'service', 'cleared', 'async', 'service', 'service', 'async']);
  t.same(results.map((r) => r.action), ['ALLOW', 'ALLOW', 'ALLOW', 'BLOCK', 'BLOCK', 'BLOCK', 'ALLOW', 'ALLOW', 'ALLOW', 'ALLOW', 'BLOCK', 'ALLOW'], 'the same verdicts');
});

t.test('the baseline replays the fixture without blocking (far under every limit)', async (t) => {
  const results = await replay(fixture, new BaselineGuard(), fileUpstream);
  t.ok(results.every((r) => r.action === 'ALLOW'));
});

t.test('the in-process shop answers truthfully and maps simulated tokens to issued ones', async (t) => {
  const shop = new ShopUpstream({ users: 50 });
  const line = (path: string, extra: object = {}) => ({ ts: 0, ip: '198.51.100.1', method: 'GET', host: '', path, query: '', headers: [] as Array<[string, string]>, ...extra });
  t.equal(await shop.send(line('/api/orders/500000')), 401, 'no token');
  t.equal(await shop.send(line('/api/orders/500000', { headers: [['authorization', 'Bearer sim-token-1']] })), 401, 'unknown simulated token');
  const { makeUsers } = await import('../../scripts/demo-shop/users.ts');
  const u = makeUsers(42, 50)[0]!;
  const login = line('/api/auth/login', { method: 'POST', headers: [['content-type', 'application/json']], body: { username: u.phone, password: u.password }, sim: { issues_token: 'sim-token-1' } });
  t.equal(await shop.send(login), 200);
  t.equal(await shop.send(line(`/api/users/${u.id}/profile`, { headers: [['authorization', 'Bearer sim-token-1']] })), 200, 'the simulated token now stands for the issued one');
  const u2 = makeUsers(42, 50)[1]!;
  t.equal(await shop.send(line(`/api/users/${u2.id}/profile`, { headers: [['authorization', 'Bearer earlier']], sim: { token_user: u2.username } })), 200, 'a pre-existing session is opened out of band');
  await shop.close();
});
