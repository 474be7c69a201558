// Issue 17.4 end to end: real nginx + the Lua gateway + the real service with VERDICT_WEBHOOK_URL
// pointing at a local receiver. A scanner probing sensitive paths gets its address cached as
// blocked (sensitive_path's address cache, switched on here), and the receiver gets a signed
// key.blocked event for it (and campaign.detected) whose payload holds nothing raw the scanner
// sent: no query value, token, cookie or phone number.
import t from 'tap';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NginxHandle } from '../../scripts/lib/nginx.ts';
import { verifySignature } from '../../decision-service/src/service/webhook.ts';
import { ask, sleep, sumSeries } from '../helpers/http.ts';
import { startEchoUpstream } from '../helpers/servers.ts';
import { addressCachePolicy, startService, type ServiceHandle } from '../helpers/service.ts';
import { luaVariant } from '../helpers/variants.ts';

const SECRET = 'e2e-webhook-secret-0123456789abcdef';
const PHONE = '13800138000';
const TOKEN = 'eyJraw-bearer-token-e2e-0123456789';
const COOKIE = 'rawsessioncookievalue0123456789';
const UA = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36', accept: 'text/html' };

interface Delivery { headers: IncomingHttpHeaders; body: string }
const deliveries: Delivery[] = [];

let service: ServiceHandle;
let nginx: NginxHandle;
let base: string;

t.before(async () => {
  const receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => { body += d.toString(); });
    req.on('end', () => {
      deliveries.push({ headers: req.headers, body });
      res.writeHead(204);
      res.end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/verdict`;
  const upstream = await startEchoUpstream();
  service = await startService({ policy: addressCachePolicy(), env: { VERDICT_WEBHOOK_URL: hookUrl, VERDICT_WEBHOOK_SECRET: SECRET } });
  nginx = await luaVariant.start({ upstream: `127.0.0.1:${upstream.port}`, service: service.addr });
  base = `http://127.0.0.1:${nginx.port}`;
  t.teardown(async () => {
    await nginx.stop();
    await service.stop();
    await upstream.close();
    await new Promise<void>((r) => { receiver.closeAllConnections(); receiver.close(() => r()); });
  });
});

t.test('a scanner blocked by address reaches the webhook as a signed key.blocked event, with nothing raw', async (t) => {
  const client = '127.0.0.81';
  const headers = { ...UA, authorization: `Bearer ${TOKEN}`, cookie: `sid=${COOKIE}` };
  for (let i = 0; i < 8; i++) await ask(`${base}/actuator/env?phone=${PHONE}&i=${i}`, { localAddress: client, headers });
  await sleep(300);
  t.equal((await ask(`${base}/`, { localAddress: client, headers: UA })).status, 403, 'the address is refused from the gateway cache');

  type Ev = { type: string; key?: string; ttl_s?: number; family?: string; id: string; ts: string; reasons?: string[] };
  let events: Ev[] = [];
  for (let i = 0; i < 50; i++) {
    events = deliveries.flatMap((d) => (JSON.parse(d.body) as { events: Ev[] }).events);
    if (events.some((e) => e.type === 'key.blocked')) break;
    await sleep(100);
  }
  const blocked = events.filter((e) => e.type === 'key.blocked');
  t.equal(blocked.length, 1, `one key.blocked: ${JSON.stringify(events)}`);
  t.match(blocked[0], { key: `ip:${client}`, ttl_s: 300, route: 'actuator' });
  t.ok(blocked[0]?.reasons?.includes('probe.sensitive_path'), 'with the reasons of the decision that cached it');
  t.ok(events.some((e) => e.type === 'campaign.detected' && e.family === 'probing'), 'and the probing campaign, first');

  for (const d of deliveries) {
    t.ok(verifySignature(SECRET, String(d.headers['x-verdict-signature']), d.body), 'every delivery is signed with the shared secret');
    const ids = (JSON.parse(d.body) as { events: Ev[] }).events.map((e) => e.id).join(',');
    t.equal(d.headers['x-verdict-event-id'], ids, 'and names its events');
  }
  const all = deliveries.map((d) => d.body).join('\n');
  for (const raw of [PHONE, TOKEN, COOKIE, 'phone=']) t.notOk(all.includes(raw), `no ${raw} in any payload`);

  const metrics = await service.metrics();
  t.ok(sumSeries(metrics, 'verdict_webhook_events_total', 'result="delivered"') >= 2, 'deliveries counted in Prometheus');
  t.equal(sumSeries(metrics, 'verdict_webhook_events_total', 'result="dropped"'), 0, 'none dropped');
});
