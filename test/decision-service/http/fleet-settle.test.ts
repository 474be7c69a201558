// A fleet of real services sharing a real Redis, asked over real sockets as nginx's auth_request
// asks: a customer's page load on instance A issues their session; their login a moment later on
// instance B is not judged on B's lagging view ("session never issued"). B reads what it had not
// merged from Redis first (VERDICT_REDIS_SETTLE_MS); an instance with it set to 0 shows the
// failure this prevents.

import t from 'tap';
import { startRedis } from '../../helpers/redis.ts';
import { startService, type ServiceHandle } from '../../helpers/service.ts';

const redis = await startRedis();
t.teardown(() => redis.stop());

const shared = {
  VERDICT_REDIS_URL: redis.url,
  VERDICT_REDIS_PREFIX: 'fleet-settle:',
  VERDICT_REDIS_FLUSH_MS: '20',
  VERDICT_REDIS_REFRESH_MS: '50',
  VERDICT_IDENTIFIER_KEY: 'fleet-settle-test-identifier-key',
};

const browser = {
  'user-agent': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  'accept-language': 'en-US,en;q=0.9',
  accept: 'text/html,application/xhtml+xml',
};

/** As nginx's auth_request subrequest for the client's request; returns the verdict headers. */
async function ask(svc: ServiceHandle, method: string, uri: string, sid: string, ip: string): Promise<{ action: string; reasons: string[] }> {
  const r = await fetch(`http://${svc.addr}/v1/auth`, {
    headers: { ...browser, 'x-original-method': method, 'x-original-uri': uri, 'x-real-ip': ip, cookie: `sid=${sid}` },
  });
  await r.arrayBuffer();
  return { action: r.headers.get('x-verdict-action') ?? '', reasons: (r.headers.get('x-verdict-reasons') ?? '').split(',').filter(Boolean) };
}

const metric = async (svc: ServiceHandle, name: string): Promise<number> => {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(await svc.metrics());
  return m ? Number(m[1]) : 0;
};

t.test('a login on another instance than the page load sees the session the page issued', async (t) => {
  const [a, b, lagging] = await Promise.all([
    startService({ env: shared }),
    startService({ env: shared }),
    startService({ env: { ...shared, VERDICT_REDIS_SETTLE_MS: '0' } }),
  ]);
  t.teardown(async () => { await a.stop(); await b.stop(); await lagging.stop(); });

  for (const [i, sid] of ['customer-one', 'customer-two'].entries()) {
    const ip = `203.0.113.${20 + i}`;
    t.equal((await ask(a, 'GET', '/', sid, ip)).action, 'ALLOW', 'the page load on A');
    await new Promise((r) => setTimeout(r, 300)); // A's flush (20 ms) is long done
    const target = i === 0 ? lagging : b;
    const login = await ask(target, 'POST', '/api/auth/login', sid, ip);
    if (i === 0) {
      t.ok(login.reasons.includes('session.never_issued'), `without settling, the instance that never saw the page load finds the session never issued (${login.action}: ${login.reasons.join(',')})`);
    } else {
      t.notOk(login.reasons.includes('session.never_issued'), `B reads the session A issued (${login.action}: ${login.reasons.join(',') || 'none'})`);
    }
  }
  t.ok(await metric(b, 'verdict_settled_total') >= 1, 'B counted the decision it settled');
  t.equal(await metric(lagging, 'verdict_settled_total'), 0, 'the instance with VERDICT_REDIS_SETTLE_MS=0 never waits');

  // a session nobody issued is still found out after settling
  const forged = await ask(b, 'POST', '/api/auth/login', 'made-up-by-a-script', '198.51.100.99');
  t.ok(forged.reasons.includes('session.never_issued'), `a made-up session is still never issued (${forged.reasons.join(',')})`);
});
