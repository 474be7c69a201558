// `npm run explain`: for a stopped person, the reason, the key it acted on and the evidence behind
// that key; for a cached verdict, the request that stored it. Test detectors under the test's
// control (the real ones evolve).
import { join } from 'node:path';
import t from 'tap';
import { loadPolicyFile } from '../../decision-service/src/config/policy.ts';
import { signal, type DetectorFactory } from '../../decision-service/src/engine/signal.ts';
import { repoRoot } from '../../scripts/lib/nginx.ts';
import { ExplainGuard, explainAll, Recorder, renderExplanation, subjectOf, summary } from '../../bench/traffic/explain.ts';
import type { TrafficLine } from '../../bench/traffic/format.ts';
import { fileUpstream, replay } from '../../bench/traffic/replay.ts';

const policy = loadPolicyFile(join(repoRoot, 'policies/default.yaml'));
const T0 = 1763800000000;
const UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';

/** The third login from 203.0.113.40 on is blocked for the address (evidence on `ip`), cached 60 s. */
const sharedAddress: DetectorFactory = () => {
  let logins = 0;
  return {
    name: 'test_shared',
    inspect(f, out) {
      if (f.req.path !== '/api/auth/login' || f.ip !== '203.0.113.40') return;
      if (++logins >= 3) out.push(Object.assign(signal('test.failures.ip', 100, false, { key: 'ip', ttl_s: 60 }), { subject: 'ip', failures: logins - 1 }));
    },
  };
};

function line(i: number, label: string, over: Partial<TrafficLine> = {}): TrafficLine {
  return {
    ts: T0 + i * 1000, ip: '203.0.113.40', method: 'POST', host: 'shop.example', path: '/api/auth/login', query: '',
    headers: [['user-agent', UA], ['content-type', 'application/json']], body: { username: `u${i}`, password: 'p' }, status: 401, label, sim: { customer: 'office', client: 'browser' }, ...over,
  };
}

t.test('a stopped person: the reason, the key, who else was behind it; a cached verdict names the request that stored it', async (t) => {
  const lines = [
    line(0, 'attack:stuff'),
    line(1, 'human:1'),
    line(2, 'human:2'),
    line(3, 'human:3', { method: 'GET', path: '/api/users/3/profile', body: undefined, status: 200 }),
    line(4, 'human:4', { ip: '198.51.100.9', status: 200 }),
  ];
  const rec = new Recorder();
  const guard = new ExplainGuard(rec, { policy, startMs: T0, detectors: [sharedAddress] }, lines);
  const results = await replay(lines, guard, fileUpstream);
  t.same(results.map((r) => r.action === 'BLOCK' || r.action === 'CHALLENGE'), [false, false, true, true, false], 'the third login and the next request from the address');
  const xs = explainAll(lines, results, rec, { windowS: 600 });
  t.equal(xs.length, 2);
  const [first, cached] = xs;
  t.match(first, { index: 3, label: 'human:2', customer: 'office', source: 'service' });
  t.equal(first!.signals.length, 1);
  t.match(first!.signals[0], { code: 'test.failures.ip', subject: 'ip', key: '203.0.113.40', detector: 'test_shared', extra: { failures: 2 } });
  t.match(first!.signals[0]!.evidence, { subject: 'ip', requests: 3, people: 2, campaigns: { stuff: 1 }, logins: 3, login_failures: 2, login_failures_by_campaigns: 1, paths: 1 }, 'the two people before it and the campaign (the blocked login itself answered 403)');
  t.match(cached, { index: 4, label: 'human:3', source: 'cache', cache: { key: 'ip:203.0.113.40', index: 2, label: 'human:2', action: first!.action } });
  const text = renderExplanation(first!);
  t.match(text, /reason test\.failures\.ip \(score 100, test_shared\)/);
  t.match(text, /key ip 203\.0\.113\.40: 3 requests to 1 path in the 10 min before, from 2 people and 1 campaign \(stuff 1\); 3 logins, 2 failed \(1 of those by campaigns\)/);
  t.match(renderExplanation(cached!), /cache key ip:203\.0\.113\.40: stored by #3 \(human:2/);
  t.match(cached!.cache!.signals, [{ code: 'test.failures.ip', subject: 'ip', key: '203.0.113.40', evidence: { people: 2 } }], "the storing request's reason, key and evidence");
  t.match(renderExplanation(cached!), /\n    reason test\.failures\.ip[^\n]*\n      key ip 203\.0\.113\.40: 3 requests/);
  const s = summary(xs);
  t.same(s.byCustomer, [['office', 2]]);
  t.same(s.byReason.map(([k]) => k).sort(), ['(cache) ip key, stored for test.failures.ip', 'test.failures.ip on ip']);
});

t.test("a signal's key: its subject, else the code's suffix, else the request", async (t) => {
  t.equal(subjectOf(Object.assign(signal('a.b', 1, false), { subject: 'tool' })), 'tool');
  const bare = signal('cs.failure_rate.client', 1, false) as unknown as Record<string, unknown>;
  delete bare.subject;
  t.equal(subjectOf(bare as never), 'client');
  delete (bare as { subject?: unknown }).subject;
  bare.code = 'probe.sensitive_path';
  t.equal(subjectOf(bare as never), 'request');
});
