import t from 'tap';
import { VirtualClock } from '../../../decision-service/src/engine/clock.ts';
import { Engine } from '../../../decision-service/src/engine/engine.ts';
import { hashIdentifier } from '../../../decision-service/src/engine/features.ts';
import { MemoryStore } from '../../../decision-service/src/state/memory-store.ts';
import { policy, request } from '../../helpers/policy.ts';

const KEY = Buffer.alloc(32, 7);

function engine(overrides: Parameters<typeof policy>[0] = {}, clock = new VirtualClock(1_700_000_000_000)) {
  return new Engine({ policy: policy(overrides), store: new MemoryStore({ maxKeys: 1000 }), clock, identifierKey: KEY });
}

t.test('a clean request on a public route is allowed with no reasons', async (t) => {
  const d = engine().decide(request({ path: '/' }));
  t.equal(d.action, 'ALLOW');
  t.equal(d.score, 0);
  t.same(d.reasons, []);
  t.equal(d.cache_key, '');
  t.equal(d.policy_version, 't1');
});

t.test('protected and object routes without credentials are blocked', async (t) => {
  const e = engine();
  const d = e.decide(request({ path: '/api/orders/5' }));
  t.equal(d.action, 'BLOCK');
  t.same(d.reasons, ['authz.missing_credentials']);
  t.equal(e.decide(request({ path: '/unknown' })).action, 'BLOCK', 'routes absent from the policy default to protected');
  for (const creds of [{ has_authorization: true, auth_scheme: 'bearer' }, { token_hash: Buffer.alloc(20, 1) }, { session_hash: Buffer.alloc(20, 2) }]) {
    t.equal(e.decide(request({ path: '/api/orders/5', ...creds })).action, 'ALLOW', JSON.stringify(Object.keys(creds)));
  }
  t.equal(e.decide(request({ method: 'GET', path: '/api/promo/info' })).action, 'ALLOW', 'promo info is open');
  t.equal(e.decide(request({ method: 'POST', path: '/api/promo/claim' })).action, 'BLOCK', 'claim declares auth: required');
});

t.test('internal routes: blocked from outside, allowed from internal ranges', async (t) => {
  const e = engine();
  const outside = e.decide(request({ path: '/internal/admin/users', has_authorization: true }));
  t.equal(outside.action, 'BLOCK');
  t.ok(outside.reasons.includes('authz.internal_from_outside'));
  t.equal(e.decide(request({ client_ip: '10.1.2.3', path: '/internal/admin/users', has_authorization: true })).action, 'ALLOW');
  t.equal(e.decide(request({ client_ip: '127.0.0.1', path: '/internal/admin/users', has_authorization: true })).action, 'BLOCK', 'loopback is outside by default');
});

t.test('sensitive probes are blocked on any route, in path or query', async (t) => {
  const e = engine();
  for (const path of ['/.env', '/app/.git/config', '/actuator/env', '/backup.sql', '/wp-login.php', '/swagger-ui.html', '/static/../../etc/passwd', '/db.tar.gz']) {
    const d = e.decide(request({ path }));
    t.equal(d.action, 'BLOCK', path);
    t.ok(d.reasons.includes('probe.sensitive_path'), path);
  }
  t.equal(e.decide(request({ path: '/', query: 'file=../../etc/passwd' })).action, 'BLOCK');
  for (const path of ['/static/app.js', '/', '/api/auth/login']) {
    t.notOk(e.decide(request({ path, method: path === '/api/auth/login' ? 'POST' : 'GET' })).reasons.includes('probe.sensitive_path'), path);
  }
});

t.test('IP allow and deny lists', async (t) => {
  const e = engine({ ip_lists: { allow: ['203.0.113.0/24'], deny: ['192.0.2.66'], deny_cache_ttl_s: 120 } });
  const denied = e.decide(request({ client_ip: '192.0.2.66' }));
  t.equal(denied.action, 'BLOCK');
  t.same(denied.reasons, ['ip.denylist']);
  t.equal(denied.cache_key, 'ip:192.0.2.66');
  t.equal(denied.cache_ttl_s, 120);
  const allowed = e.decide(request({ client_ip: '203.0.113.9', path: '/.env' }));
  t.equal(allowed.action, 'ALLOW', 'allow list wins over detectors');
});

t.test('monitor mode reports but never enforces', async (t) => {
  const e = engine({ detectors: { missing_credentials: { monitor: true } } });
  const d = e.decide(request({ path: '/api/orders/5' }));
  t.equal(d.action, 'ALLOW');
  t.equal(d.dry_run, true);
  t.equal(d.wouldAction, 'BLOCK');
  t.same(d.reasons, ['dry_run:authz.missing_credentials']);
});

t.test('thresholds per class map the score to tag / challenge / block', async (t) => {
  const mk = (score: number) => engine({
    detectors: { missing_credentials: { score } },
    thresholds: { object: { tag: 20, challenge: 50, block: 90 } },
  });
  t.equal(mk(10).decide(request({ path: '/api/orders/1' })).action, 'ALLOW');
  t.equal(mk(30).decide(request({ path: '/api/orders/1' })).action, 'TAG');
  t.equal(mk(60).decide(request({ path: '/api/orders/1' })).action, 'CHALLENGE');
  t.equal(mk(95).decide(request({ path: '/api/orders/1' })).action, 'BLOCK');
});

t.test('signals combine as independent evidence and blocks carry the strongest cache spec', async (t) => {
  const e = engine({ detectors: { missing_credentials: { score: 50 }, sensitive_path: { score: 50, cache: { key: 'subnet', ttl_s: 60 }, cache_after: 1 } } });
  const d = e.decide(request({ client_ip: '198.51.100.7', path: '/api/orders/.env' }));
  t.equal(d.score, 75, '1 - 0.5 * 0.5');
  t.equal(d.action, 'CHALLENGE');
  t.equal(d.cache_key, 'subnet:198.51.100.0/24', 'blocks and challenges are cached');
  const e2 = engine({ detectors: { sensitive_path: { cache: { key: 'device', ttl_s: 60 }, cache_after: 1 } } });
  t.equal(e2.decide(request({ path: '/.env' })).cache_key, '', 'no device id, no device key');
  const withDevice = e2.decide(request({ path: '/.env', device_hash: Buffer.from('abc') }));
  t.equal(withDevice.cache_key, `device:${Buffer.from('abc').toString('base64')}`);
  t.equal(withDevice.cache_ttl_s, 60);
});

t.test('policy swap takes effect on the next decision', async (t) => {
  const e = engine();
  t.equal(e.decide(request({ path: '/api/orders/1' })).action, 'BLOCK');
  e.setPolicy(policy({ version: 't2', detectors: { missing_credentials: { enabled: false } } }));
  const d = e.decide(request({ path: '/api/orders/1' }));
  t.equal(d.action, 'ALLOW');
  t.equal(d.policy_version, 't2');
});

t.test('identifiers are reduced to keyed hashes', async (t) => {
  const a = hashIdentifier(KEY, ' 13800001234 ');
  t.equal(a, hashIdentifier(KEY, '13800001234'));
  t.not(a, hashIdentifier(Buffer.alloc(32, 8), '13800001234'), 'depends on the key');
  t.notMatch(a, /1380000/);
});

t.test('the engine uses the injected clock, and outcomes reach detectors', async (t) => {
  const clock = new VirtualClock(5_000);
  const seen: unknown[] = [];
  const e = new Engine({
    policy: policy(), store: new MemoryStore({ maxKeys: 10 }), clock, identifierKey: KEY,
    detectors: [() => ({
      name: 'probe',
      inspect(f, out) { out.push({ code: `t.now_${f.now}`, score: 1, monitor: false, cache: undefined }); },
      observe(o, f) { seen.push([o.status, f?.route.name]); },
    })],
  });
  t.same(e.decide(request({ request_id: 'r1', path: '/api/orders/9' })).reasons, ['t.now_5000']);
  clock.advance(1000);
  t.same(e.decide(request({ request_id: 'r2' })).reasons, ['t.now_6000']);
  e.observe({ request_id: 'r1', status: 404 } as never);
  e.observe({ request_id: 'gone', status: 200 } as never);
  t.same(seen, [[404, 'order'], [200, undefined]]);
});

t.test('the raw identifier does not outlive the decision', async (t) => {
  const e = engine();
  const req = request({ request_id: 'p1', method: 'POST', path: '/api/auth/login', identifier: '13800001234', password_hash: Buffer.from('x') });
  e.decide(req);
  t.equal(req.identifier, '', 'scrubbed from the request the engine keeps');
  t.notMatch(JSON.stringify(e.inventory.snapshot()), /13800001234/);
});
