// Issue 17.4, delivery: the webhook against a real local HTTP receiver (node:http on an ephemeral
// port). Signed bodies verify (and a tampered or stale one does not); 500 and timeouts are retried
// with the same event ids; Retry-After is waited out; a 400 is final; a full queue drops its
// oldest events and counts them; close() flushes for a bounded time; Prometheus counts it all.
import t from 'tap';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { createLogger } from '../../../decision-service/src/logger.ts';
import { RISK_EVENT_TYPES, RiskEvents, type RiskEventWithTime } from '../../../decision-service/src/service/risk-events.ts';
import { Webhook, createWebhookMetrics, retryAfterMs, signature, verifySignature, type WebhookOptions } from '../../../decision-service/src/service/webhook.ts';

const SECRET = 'whsec-0123456789abcdef';

interface Received {
  readonly at: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

/** A receiver answering with `answer(n)` for its n-th request (0-based); records every request. */
async function receiver(answer: (n: number, res: ServerResponse) => void): Promise<{ url: string; got: Received[]; close(): Promise<void> }> {
  const got: Received[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => { body += d.toString(); });
    req.on('end', () => {
      const n = got.length;
      got.push({ at: Date.now(), headers: req.headers, body });
      answer(n, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hooks/verdict`,
    got,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

function hook(url: string, over: Partial<WebhookOptions> = {}): Webhook {
  return new Webhook({
    url,
    secret: Buffer.from(SECRET),
    events: new Set(RISK_EVENT_TYPES),
    queueMax: 100,
    timeoutMs: 500,
    maxAttempts: 4,
    batchMax: 20,
    logger: createLogger('silent'),
    retryBaseMs: 20,
    retryMaxMs: 2000,
    ...over,
  });
}

let seq = 0;
function blocked(key = 'ip:203.0.113.7'): RiskEventWithTime {
  seq += 1;
  return { type: 'key.blocked', key, ttl_s: 300, reasons: ['probe.sensitive_path'], route: 'actuator', request_id: `r-${seq}`, id: `ev-${seq}`, ts: new Date().toISOString() };
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const ok = (_n: number, res: ServerResponse) => { res.writeHead(204); res.end(); };

t.test('a delivery is signed, names its events and verifies at the receiver', async (t) => {
  const rx = await receiver(ok);
  const w = hook(rx.url);
  const bus = new RiskEvents();
  w.attach(bus);
  t.teardown(async () => { await w.close(); await rx.close(); });
  bus.publish({ type: 'key.blocked', key: 'ip:203.0.113.7', ttl_s: 300, reasons: ['probe.sensitive_path'], route: 'actuator', request_id: 'req-1' });
  await until(() => rx.got.length === 1);
  const r = rx.got[0] as Received;
  const sig = String(r.headers['x-verdict-signature']);
  t.match(sig, /^t=\d+,v1=[0-9a-f]{64}$/, 'Stripe-style signature header');
  t.ok(verifySignature(SECRET, sig, r.body), 'verifies with the shared secret');
  t.notOk(verifySignature('another-secret-0123', sig, r.body), 'not with another secret');
  t.notOk(verifySignature(SECRET, sig, r.body.replace('203.0.113.7', '203.0.113.8')), 'not for a changed body');
  const tSent = Number(/t=(\d+)/.exec(sig)?.[1]);
  t.notOk(verifySignature(SECRET, sig, r.body, tSent + 301), 'not once older than the tolerance (a replay)');
  t.ok(verifySignature(SECRET, signature(SECRET, tSent, r.body), r.body, tSent), 'signature() is what was sent');
  const body = JSON.parse(r.body) as { events: RiskEventWithTime[] };
  t.equal(body.events.length, 1);
  t.match(body.events[0], { type: 'key.blocked', key: 'ip:203.0.113.7', ttl_s: 300, route: 'actuator', request_id: 'req-1', id: String, ts: String });
  t.equal(r.headers['x-verdict-event-id'], body.events[0]?.id, 'X-Verdict-Event-Id names the event');
  t.match(String(r.headers['user-agent']), /^verdict-webhook\//);
  t.equal(r.headers['content-type'], 'application/json');
  await until(() => (w.stats()['key.blocked|delivered'] ?? 0) === 1);
});

t.test('a 500 is retried with the same event ids, then delivered', async (t) => {
  const rx = await receiver((n, res) => { res.writeHead(n === 0 ? 500 : 200); res.end(); });
  const w = hook(rx.url);
  t.teardown(async () => { await w.close(); await rx.close(); });
  w.enqueue(blocked());
  await until(() => rx.got.length === 2 && (w.stats()['key.blocked|delivered'] ?? 0) === 1);
  t.equal(rx.got[0]?.body, rx.got[1]?.body, 'the same body');
  t.equal(rx.got[0]?.headers['x-verdict-event-id'], rx.got[1]?.headers['x-verdict-event-id'], 'the same ids: the receiver can deduplicate');
  t.ok(verifySignature(SECRET, String(rx.got[1]?.headers['x-verdict-signature']), String(rx.got[1]?.body)), 'the retry is signed too');
  t.same(w.stats(), { 'key.blocked|queued': 1, 'key.blocked|retried': 1, 'key.blocked|delivered': 1 });
});

t.test('Retry-After is waited out', async (t) => {
  const rx = await receiver((n, res) => {
    if (n === 0) { res.writeHead(429, { 'retry-after': '1' }); res.end(); return; }
    res.writeHead(200); res.end();
  });
  const w = hook(rx.url, { retryBaseMs: 10 });
  t.teardown(async () => { await w.close(); await rx.close(); });
  w.enqueue(blocked());
  await until(() => rx.got.length === 2);
  const gap = (rx.got[1]?.at ?? 0) - (rx.got[0]?.at ?? 0);
  t.ok(gap >= 950, `the retry came after the 1 s the receiver asked for (${gap} ms), not after the 10 ms backoff`);
  t.ok(gap < 1800, `and not much later (${gap} ms)`);
  t.equal(retryAfterMs('2', 0), 2000);
  t.equal(retryAfterMs(new Date(10_000).toUTCString(), 4000), 6000, 'an HTTP date');
  t.equal(retryAfterMs('soon', 0), 0);
});

t.test('a 400 is final: counted as rejected, not retried', async (t) => {
  const rx = await receiver((_n, res) => { res.writeHead(400); res.end('bad signature'); });
  const w = hook(rx.url);
  t.teardown(async () => { await w.close(); await rx.close(); });
  w.enqueue(blocked());
  await until(() => (w.stats()['key.blocked|rejected'] ?? 0) === 1);
  await new Promise((r) => setTimeout(r, 200));
  t.equal(rx.got.length, 1, 'one request only');
  t.equal(w.stats()['key.blocked|retried'], undefined);
});

t.test('a full queue drops its oldest events and counts them', async (t) => {
  const rx = await receiver(ok);
  const w = hook(rx.url, { queueMax: 3, batchMax: 10 });
  t.teardown(async () => { await w.close(); await rx.close(); });
  const sent = [1, 2, 3, 4, 5].map((i) => blocked(`ip:192.0.2.${i}`));
  for (const e of sent) w.enqueue(e); // synchronously: the first delivery starts on the next turn
  t.equal(w.depth, 3, 'bounded');
  await until(() => (w.stats()['key.blocked|delivered'] ?? 0) === 3);
  const keys = (JSON.parse(rx.got[0]?.body ?? '{}') as { events: Array<{ key: string }> }).events.map((e) => e.key);
  t.same(keys, ['ip:192.0.2.3', 'ip:192.0.2.4', 'ip:192.0.2.5'], 'the newest three, in order, in one POST');
  t.equal(w.stats()['key.blocked|dropped'], 2, 'the two oldest dropped and counted');
});

t.test('a timeout is retried', async (t) => {
  const rx = await receiver((n, res) => {
    if (n === 0) { setTimeout(() => { res.writeHead(200); res.end(); }, 1500); return; }
    res.writeHead(200); res.end();
  });
  const w = hook(rx.url, { timeoutMs: 200 });
  t.teardown(async () => { await w.close(); await rx.close(); });
  const started = Date.now();
  w.enqueue(blocked());
  await until(() => (w.stats()['key.blocked|delivered'] ?? 0) === 1);
  t.equal(rx.got.length, 2, 'a second attempt');
  t.equal(w.stats()['key.blocked|retried'], 1);
  t.ok(Date.now() - started < 1400, 'did not wait for the slow answer');
});

t.test('a receiver that is down: retried with backoff, then given up and counted', async (t) => {
  const rx = await receiver(ok);
  const url = rx.url;
  await rx.close(); // nothing listens there any more
  const w = hook(url, { maxAttempts: 3, retryBaseMs: 20 });
  t.teardown(() => w.close());
  w.enqueue(blocked());
  await until(() => (w.stats()['key.blocked|failed'] ?? 0) === 1);
  t.equal(w.stats()['key.blocked|retried'], 2, 'maxAttempts 3 = 2 retries');
});

t.test('close() delivers what is queued, within its bound', async (t) => {
  const rx = await receiver((_n, res) => setTimeout(() => { res.writeHead(200); res.end(); }, 50));
  const w = hook(rx.url, { batchMax: 1 });
  t.teardown(() => rx.close());
  for (let i = 0; i < 4; i++) w.enqueue(blocked());
  await w.close(1500);
  t.equal(rx.got.length, 4, 'all four delivered before close() returned');
  t.equal(w.stats()['key.blocked|delivered'], 4);
  w.enqueue(blocked());
  t.equal(w.depth, 0, 'a closed webhook takes no more events');
});

t.test('close() gives up at its bound when the receiver keeps failing', async (t) => {
  const rx = await receiver((_n, res) => { res.writeHead(503); res.end(); });
  const w = hook(rx.url, { batchMax: 1, retryBaseMs: 5000, maxAttempts: 10 });
  t.teardown(() => rx.close());
  w.enqueue(blocked());
  w.enqueue(blocked());
  await until(() => w.stats()['key.blocked|retried'] === 1); // the first attempt failed; a 2.5-5 s backoff has started
  const started = Date.now();
  await w.close(300);
  const took = Date.now() - started;
  t.ok(took < 1000, `bounded (${took} ms)`);
  t.equal(rx.got.length, 3, 'one last try of the first instead of its long backoff, one try of the second');
  t.equal(w.stats()['key.blocked|dropped'], 2, 'both events counted as dropped');
});

t.test('only the configured event types are queued; Prometheus has the counters and the depth', async (t) => {
  const rx = await receiver(ok);
  const registry = new Registry();
  const w = hook(rx.url, { events: new Set(['endpoint.exposure'] as const), metrics: createWebhookMetrics(registry) });
  t.teardown(async () => { await w.close(); await rx.close(); });
  w.enqueue(blocked());
  w.enqueue({ type: 'endpoint.exposure', route: 'GET /api/users/{id}/profile', kind: 'cn_mobile', responses: 40, unmasked_share: 1, id: 'ev-x', ts: new Date().toISOString() });
  await until(() => (w.stats()['endpoint.exposure|delivered'] ?? 0) === 1);
  t.equal(rx.got.length, 1);
  t.notOk(rx.got[0]?.body.includes('key.blocked'), 'the filtered type is not sent');
  const text = await registry.metrics();
  t.match(text, /verdict_webhook_events_total\{type="endpoint.exposure",result="delivered"\} 1/);
  t.match(text, /verdict_webhook_queue_depth 0/);
});

t.test('close() does not wait out an attempt in flight past its bound', async (t) => {
  const rx = await receiver((_n, res) => setTimeout(() => { res.writeHead(200); res.end(); }, 3000));
  const w = hook(rx.url, { timeoutMs: 5000 });
  t.teardown(() => rx.close());
  w.enqueue(blocked());
  await until(() => rx.got.length === 1);
  const started = Date.now();
  await w.close(300);
  const took = Date.now() - started;
  t.ok(took < 1000, `the slow attempt was cut at the bound (${took} ms)`);
  t.equal(w.stats()['key.blocked|dropped'], 1, 'and its event counted as dropped');
});
