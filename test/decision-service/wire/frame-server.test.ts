// The framed transport against hostile and stuck clients: answers stay in order and the
// connection usable after bad frames; oversize frames are refused unread; a client that never
// reads cannot make the service buffer; idle, stalled and surplus connections are closed.

import type { Socket } from 'node:net';
import t, { type Test } from 'tap';
import { buildApp } from '../../../decision-service/src/app.ts';
import { parseEnv } from '../../../decision-service/src/config/env.ts';
import { VirtualClock } from '../../../decision-service/src/engine/clock.ts';
import { createLogger } from '../../../decision-service/src/logger.ts';
import { DecideResponseType, OutcomeAckType } from '../../../decision-service/src/wire/codec.ts';
import { FRAME, frame } from '../../../decision-service/src/wire/frame-server.ts';
import { policy } from '../../helpers/policy.ts';
import { decideFrame, FrameClient, outcomesFrame, text } from './frame-client.ts';

async function service(t: Test, env: Record<string, string> = {}, clock?: VirtualClock) {
  const built = buildApp(parseEnv({ VERDICT_POLICY_WATCH: '0', ...env }), { logger: createLogger('silent'), policy: policy(), clock });
  const sockets: Socket[] = [];
  built.frameServer.on('connection', (s: Socket) => sockets.push(s));
  await new Promise<void>((resolve) => built.frameServer.listen(0, '127.0.0.1', resolve));
  t.teardown(() => built.app.close());
  const port = (built.frameServer.address() as { port: number }).port;
  const clients: FrameClient[] = [];
  t.teardown(() => clients.forEach((c) => c.close()));
  const open = async () => {
    const c = await FrameClient.open(port);
    clients.push(c);
    return c;
  };
  const metrics = async () => (await built.app.inject({ url: '/metrics' })).body;
  const connections = () => new Promise<number>((resolve) => built.frameServer.getConnections((_e, n) => resolve(n)));
  return { built, port, open, metrics, sockets, connections };
}

const requestId = (a: { payload: Buffer }) => (DecideResponseType.decode(a.payload) as unknown as { request_id: string }).request_id;

t.test('answers keep request order across outcome batches, bad and oversize frames', async (t) => {
  const s = await service(t, { VERDICT_DECIDE_BODY_LIMIT: '4096' });
  const c = await s.open();
  const outcomes = Array.from({ length: 300 }, (_, i) => ({ request_id: `o${i}`, status: 404, request: { client_ip: '192.0.2.9', method: 'GET', path: `/api/orders/${i}`, mode: 1 } }));
  c.send(
    decideFrame({ request_id: 'a' }),
    outcomesFrame({ gateway_id: 'gw', outcomes }),
    decideFrame({ request_id: 'b' }),
    frame(9, Buffer.from('x')),
    frame(FRAME.PING, Buffer.alloc(0)),
    frame(FRAME.DECIDE, Buffer.alloc(5000, 0x0a)),
    decideFrame({ request_id: 'c', client_ip: 'nope' }),
    decideFrame({ request_id: 'd' }),
  );
  const got = await c.waitFor(8);
  t.same(got.map((a) => a.type), [FRAME.VERDICT, FRAME.ACK, FRAME.VERDICT, FRAME.ERROR, FRAME.PONG, FRAME.ERROR, FRAME.ERROR, FRAME.VERDICT]);
  t.equal(requestId(got[0]!), 'a');
  t.equal((OutcomeAckType.decode(got[1]!.payload) as unknown as { accepted: number }).accepted, 300);
  t.equal(requestId(got[2]!), 'b');
  t.match(text(got[3]), /^BAD_BODY: .*unknown frame type 9/);
  t.match(text(got[5]), /^BODY_TOO_LARGE: .*5000 bytes/);
  t.match(text(got[6]), /^INVALID_FIELD: .*client_ip/);
  t.equal(requestId(got[7]!), 'd');
  t.notOk(c.closed, 'still open');
});

t.test('an oversize decide frame arriving in pieces is discarded unread; the stream resynchronises', async (t) => {
  const s = await service(t, { VERDICT_DECIDE_BODY_LIMIT: '4096' });
  const c = await s.open();
  const big = frame(FRAME.DECIDE, Buffer.alloc(200_000, 0x41));
  c.send(big.subarray(0, 1000));
  await new Promise((r) => setTimeout(r, 50));
  c.send(big.subarray(1000), decideFrame({ request_id: 'after' }));
  const got = await c.waitFor(2);
  t.match(text(got[0]), /^BODY_TOO_LARGE/);
  t.equal(requestId(got[1]!), 'after');
});

t.test('a length beyond every limit closes the connection; others keep working', async (t) => {
  const s = await service(t);
  const bad = await s.open();
  const good = await s.open();
  const header = Buffer.alloc(5);
  header.writeUInt32BE(0x7fffffff, 0);
  header[4] = FRAME.DECIDE;
  bad.send(header);
  await bad.waitClosed();
  good.send(decideFrame({ request_id: 'ok' }));
  t.equal(requestId((await good.waitFor(1))[0]!), 'ok');
  t.match(await s.metrics(), /verdict_frame_connections_closed_total\{reason="frame_too_large"\} 1/);
});

t.test('INLINE decides past their deadline answer DEADLINE, uncomputed, and the connection goes on', async (t) => {
  const clock = new VirtualClock(1_800_000_000_000);
  const s = await service(t, {}, clock);
  const c = await s.open();
  // The gateway's clock runs 3 s behind the service's: only the difference to the fastest counts.
  const gw = (ts: number, id: string, extra: Record<string, unknown> = {}) =>
    decideFrame({ request_id: id, gateway_id: 'gw-1/7', ts_ms: ts, budget_ms: 25, ...extra });
  const base = clock.now() - 3000;
  c.send(gw(base, 'fresh'));
  await c.waitFor(1);
  clock.advance(1000);
  c.send(
    gw(base + 1000 - 5, 'a-bit-late'),
    gw(base + 1000 - 200, 'stale'),
    gw(base + 1000 - 200, 'stale-async', { mode: 1 }),
    gw(base + 1000 - 200, 'stale-no-budget', { budget_ms: 0 }),
    gw(base + 1000, 'fresh-again'),
  );
  const got = await c.waitFor(6);
  t.equal(requestId(got[1]!), 'a-bit-late');
  t.equal(text(got[2]), 'DEADLINE: the gateway deadline passed before the decision started');
  t.equal(requestId(got[3]!), 'stale-async', 'ASYNC has no deadline');
  t.equal(requestId(got[4]!), 'stale-no-budget', 'budget 0 = no deadline');
  t.equal(requestId(got[5]!), 'fresh-again');
  const m = await s.metrics();
  t.match(m, /verdict_decide_expired_total\{transport="frame"\} 1/);
  t.notMatch(m, /verdict_bad_requests_total\{endpoint="frame",code="DEADLINE"\}/, 'not a bad request');
  t.match(m, /verdict_decisions_total\{action="ALLOW",route_class="public",mode="INLINE"\} 4/, 'the stale one was not decided');
});

t.test('a client that sends and never reads gets backpressure, not a growing buffer', async (t) => {
  const s = await service(t);
  const c = await s.open();
  c.socket.pause(); // never read the answers
  const chunk = Buffer.concat(Array.from({ length: 500 }, (_, i) => decideFrame({ request_id: `r${i}`, path: `/p/${i}` })));
  let offered = 0;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  // Offer until the service stops reading: loopback's kernel buffers take a few MB first, which
  // takes a loaded machine longer than a fixed second or two (this test used to flake on that).
  const until = Date.now() + 15_000;
  let drained = true;
  while (Date.now() < until && !s.sockets[0]?.isPaused()) {
    if (drained) {
      offered += chunk.length;
      drained = c.socket.write(chunk);
      if (!drained) c.socket.once('drain', () => { drained = true; });
    }
    await sleep(drained ? 0 : 20);
  }
  // More offered now is not read: it stays paused.
  c.socket.write(chunk);
  offered += chunk.length;
  await sleep(300);
  const server = s.sockets[0]!;
  t.ok(server.isPaused(), 'the service stopped reading the connection');
  t.ok(server.writableLength < 1024 * 1024, `answers buffered for the client: ${server.writableLength} bytes`);
  // Kernel buffers on loopback hold a few MB; beyond them the service took nothing more.
  t.ok(server.bytesRead < 32 * 1024 * 1024, `the service read ${server.bytesRead} of at least ${offered} bytes offered`);
  c.close();
  for (let i = 0; i < 100 && (await s.connections()) > 0; i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(await s.connections(), 0, 'the connection is gone when the client is');
});

t.test('idle connections and half-sent frames are closed after their timeouts', async (t) => {
  const s = await service(t, { VERDICT_KEEPALIVE_TIMEOUT_MS: '1000', VERDICT_REQUEST_TIMEOUT_MS: '300' });
  const idle = await s.open();
  const stalled = await s.open();
  const started = Date.now();
  stalled.send(decideFrame({ request_id: 'x' }).subarray(0, 7));
  await stalled.waitClosed(5000);
  const stalledAfter = Date.now() - started;
  await idle.waitClosed(5000);
  const idleAfter = Date.now() - started;
  t.ok(stalledAfter < idleAfter, `half-sent frame closed first (${stalledAfter} ms vs idle ${idleAfter} ms)`);
  t.ok(idleAfter >= 800, `idle closed after ~1 s (${idleAfter} ms)`);
  const m = await s.metrics();
  t.match(m, /verdict_frame_connections_closed_total\{reason="request_timeout"\} 1/);
  t.match(m, /verdict_frame_connections_closed_total\{reason="idle"\} 1/);
});

t.test('at VERDICT_MAX_CONNECTIONS a newcomer evicts the connection idle longest; active ones keep working', async (t) => {
  const s = await service(t, { VERDICT_MAX_CONNECTIONS: '2' });
  const a = await s.open();
  const b = await s.open();
  // Both registered and active, b last...
  a.send(frame(FRAME.PING, Buffer.alloc(0)));
  await a.waitFor(1);
  b.send(frame(FRAME.PING, Buffer.alloc(0)));
  await b.waitFor(1);
  // ...then a again: b is now the one idle longest.
  a.send(decideFrame({ request_id: 'a1' }));
  t.equal(requestId((await a.waitFor(2))[1]!), 'a1');
  const third = await s.open();
  await b.waitClosed();
  t.pass('the connection idle longest was closed');
  third.send(decideFrame({ request_id: 'new' }));
  t.equal(requestId((await third.waitFor(1))[0]!), 'new', 'the newcomer is served');
  a.send(decideFrame({ request_id: 'still' }));
  t.equal(requestId((await a.waitFor(3))[2]!), 'still', 'the active connection is untouched');
  const m = await s.metrics();
  t.match(m, /verdict_connections_evicted_total\{transport="frame",reason="least_recent"\} 1/);
  t.notMatch(m, /verdict_connections_refused_total\{transport="frame"\} [1-9]/, 'nobody refused');
  t.equal(await s.connections(), 2);
});

t.test('outcome batches over the count limit are refused before decoding', async (t) => {
  const s = await service(t, { VERDICT_OUTCOMES_MAX_BATCH: '10' });
  const c = await s.open();
  c.send(outcomesFrame({ gateway_id: 'gw', outcomes: Array.from({ length: 11 }, (_, i) => ({ request_id: `o${i}` })) }), frame(FRAME.PING, Buffer.alloc(0)));
  const got = await c.waitFor(2);
  t.match(text(got[0]), /^BODY_TOO_LARGE: .*11 outcomes, more than 10/);
  t.equal(got[1]?.type, FRAME.PONG);
});
