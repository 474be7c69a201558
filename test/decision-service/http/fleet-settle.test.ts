// A fleet of real services sharing a real Redis, asked over real sockets as nginx's auth_request
// asks: a customer's page load on instance A issues their session; their login a moment later on
// instance B is not judged on B's lagging view ("session never issued"). B reads what it had not
// merged from Redis first (VERDICT_REDIS_SETTLE_MS); an instance with it set to 0 shows the
// failure this prevents.

import { createHmac } from 'node:crypto';
import t from 'tap';
import { DecideResponseType } from '../../../decision-service/src/wire/codec.ts';
import { freePort } from '../../../scripts/lib/nginx.ts';
import { startRedis } from '../../helpers/redis.ts';
import { decideFrame, FrameClient } from '../wire/frame-client.ts';
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

const browserFields = {
  user_agent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  accept_language: 'en-US,en;q=0.9',
  header_names: ['host', 'user-agent', 'accept', 'accept-language', 'cookie'],
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
  const framePort = await freePort();
  const [a, b, lagging] = await Promise.all([
    startService({ env: shared }),
    // a wait a loaded CI machine's Redis always answers within (the default is 10 ms)
    startService({ env: { ...shared, VERDICT_FRAME_LISTEN: `127.0.0.1:${framePort}`, VERDICT_REDIS_SETTLE_MS: '500' } }),
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
  t.match(await b.metrics(), /^verdict_redis_settle_timeouts \d+$/m, 'the settles Redis did not answer in time are counted');

  // a session nobody issued is still found out after settling
  const forged = await ask(b, 'POST', '/api/auth/login', 'made-up-by-a-script', '198.51.100.99');
  t.ok(forged.reasons.includes('session.never_issued'), `a made-up session is still never issued (${forged.reasons.join(',')})`);

  // over frames (the Lua gateway's transport): the settled answer keeps its place; the request
  // queued behind it on the same connection is answered after it, each naming its own request
  const sid = createHmac('sha1', shared.VERDICT_IDENTIFIER_KEY).update('customer-three').digest();
  t.equal((await ask(a, 'GET', '/', 'customer-three', '203.0.113.30')).action, 'ALLOW');
  await new Promise((r) => setTimeout(r, 300));
  const c = await FrameClient.open(framePort);
  t.teardown(() => c.close());
  c.send(
    decideFrame({ ...browserFields, request_id: 'login-3', client_ip: '203.0.113.30', method: 'POST', path: '/api/auth/login', session_hash: sid, cookie_names: ['sid'] }),
    decideFrame({ ...browserFields, request_id: 'page-4', client_ip: '203.0.113.31', method: 'GET', path: '/' }),
  );
  const answers = (await c.waitFor(2)).map((x) => DecideResponseType.toObject(DecideResponseType.decode(x.payload), { defaults: true }) as { request_id: string; reasons: string[] });
  t.same(answers.map((x) => x.request_id), ['login-3', 'page-4'], 'answered in the order asked');
  t.notOk(answers[0]?.reasons.includes('session.never_issued'), `the login over frames sees the issued session (${answers[0]?.reasons.join(',') || 'none'})`);
});
