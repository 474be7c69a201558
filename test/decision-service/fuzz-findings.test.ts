// Regressions for the service bugs the fuzzer found (test/fuzz/service.test.ts): each reproducer
// of /tmp/s3-bugs.md, answered as it must be now. (Finding 5, chunked bodies in tiny chunks, is
// http/chunked-body.test.ts: it needs a service child to measure.)

import type { Socket } from 'node:net';
import t, { type Test } from 'tap';
import { buildApp } from '../../decision-service/src/app.ts';
import { parseEnv } from '../../decision-service/src/config/env.ts';
import { VirtualClock } from '../../decision-service/src/engine/clock.ts';
import { createLogger } from '../../decision-service/src/logger.ts';
import { DecideRequestType, DecideResponseType, OutcomeBatchType, OutcomeAckType, decodeDecideRequest } from '../../decision-service/src/wire/codec.ts';
import { fastValidateDecide } from '../../decision-service/src/wire/fast-validate.ts';
import { FRAME, frame } from '../../decision-service/src/wire/frame-server.ts';
import { decideRequestSchema } from '../../decision-service/src/wire/schema.ts';
import { policy } from '../helpers/policy.ts';
import { decideFrame, FrameClient, outcomesFrame, text } from './wire/frame-client.ts';

function service(t: Test, clock?: VirtualClock) {
  const built = buildApp(parseEnv({ VERDICT_POLICY_WATCH: '0' }), { logger: createLogger('silent'), policy: policy(), clock });
  t.teardown(() => built.app.close());
  return built;
}

/** A uint64 as protobufjs takes it (a Long's two words): exact beyond 2^53, unlike a number. */
const u64 = (text: string) => {
  const v = BigInt(text);
  return { low: Number(v & 0xffffffffn) | 0, high: Number(v >> 32n) | 0, unsigned: true };
};

const pb = (fields: Record<string, unknown>) =>
  Buffer.from(DecideRequestType.encode(DecideRequestType.fromObject({ client_ip: '192.0.2.1', method: 'GET', path: '/', ...fields })).finish());

t.test('1. /v1/inventory answers after requests stamped at the edge of time', async (t) => {
  const { app } = service(t);
  // the fuzzer's reproducer: ASYNC, ts_ms = 2^53 - 1 (accepted: the largest exact uint64)
  const r = await app.inject({ method: 'POST', url: '/v1/decide', payload: { client_ip: '192.0.2.1', method: 'GET', path: '/', mode: 'ASYNC', ts_ms: Number.MAX_SAFE_INTEGER } });
  t.equal(r.statusCode, 200);
  // and as the nested request of an outcome (scored late, ASYNC)
  const batch = Buffer.from(OutcomeBatchType.encode(OutcomeBatchType.fromObject({
    outcomes: [{ request_id: 'o', status: 200, request: { client_ip: '192.0.2.2', method: 'POST', path: '/api/x', ts_ms: u64('9007199254740991'), mode: 1 } }],
  })).finish());
  t.equal((await app.inject({ method: 'POST', url: '/v1/outcomes', headers: { 'content-type': 'application/x-protobuf' }, payload: batch })).statusCode, 200);
  const inv = await app.inject({ url: '/v1/inventory' });
  t.equal(inv.statusCode, 200, inv.body.slice(0, 200));
  for (const e of inv.json().endpoints as Array<{ first_seen: string; last_seen: string }>) {
    t.ok(!Number.isNaN(Date.parse(e.first_seen)) && !Number.isNaN(Date.parse(e.last_seen)), `times are ISO text: ${e.first_seen}`);
  }
});

t.test('1. the inventory snapshot never throws on a stored time, even one past the Date range', async (t) => {
  // a clock past Date's range (8.64e15 ms): every time the engine stores is out of range
  const { app } = service(t, new VirtualClock(8_700_000_000_000_000));
  t.equal((await app.inject({ method: 'POST', url: '/v1/decide', payload: { client_ip: '192.0.2.1', method: 'GET', path: '/' } })).statusCode, 200);
  const inv = await app.inject({ url: '/v1/inventory' });
  t.equal(inv.statusCode, 200, inv.body.slice(0, 200));
  t.equal(inv.json().endpoints[0].first_seen, '+275760-09-13T00:00:00.000Z', 'clamped to the last time a Date holds');
});

t.test('2. uint64 values above 2^53 - 1 are refused, never read negative or rounded', async (t) => {
  const { app } = service(t);
  // the fuzzer's reproducer: ts_ms = 2^63 (varint 80 80 80 80 80 80 80 80 80 01), ASYNC
  const hex = '1a093139322e302e322e31220347455432012f1080808080808080808001880201';
  const r = await app.inject({ method: 'POST', url: '/v1/decide', headers: { 'content-type': 'application/x-protobuf' }, payload: Buffer.from(hex, 'hex') });
  t.equal(r.statusCode, 400);
  t.equal(r.json().error.code, 'INVALID_FIELD');
  t.match(r.json().error.message, /ts_ms: at most 9007199254740991 \(2\^53 - 1\), got 9223372036854775808/);
  for (const v of ['9007199254740992', '9223372036854775807', '18446744073709551615']) {
    t.throws(() => decodeDecideRequest(pb({ ts_ms: u64(v) }), 'protobuf'), new RegExp(`ts_ms: .*got ${v}`), `ts_ms ${v}`);
  }
  t.equal(decodeDecideRequest(pb({ ts_ms: u64('9007199254740991') }), 'protobuf').ts_ms, Number.MAX_SAFE_INTEGER);
  t.equal(decodeDecideRequest(pb({ ts_ms: u64('4294967296') }), 'protobuf').ts_ms, 2 ** 32);
  // JSON: decimal text and numbers
  const json = (ts: unknown) => app.inject({ method: 'POST', url: '/v1/decide', payload: { client_ip: '192.0.2.1', method: 'GET', path: '/', ts_ms: ts } });
  t.match((await json('9999999999999999')).json().error.message, /ts_ms: at most 9007199254740991/);
  t.equal((await json(1e19)).statusCode, 400);
  t.equal((await json({ low: 0, high: -1 })).statusCode, 400, 'a Long-shaped JSON value is read unsigned too');
  t.equal((await json('9007199254740991')).statusCode, 200);
  // Outcome.bytes_sent and Outcome.ts_ms
  const outcome = (fields: Record<string, unknown>) => Buffer.from(OutcomeBatchType.encode(OutcomeBatchType.fromObject({ outcomes: [{ request_id: 'o', status: 200, ...fields }] })).finish());
  const post = (body: Buffer) => app.inject({ method: 'POST', url: '/v1/outcomes', headers: { 'content-type': 'application/x-protobuf' }, payload: body });
  const bytes = await post(outcome({ bytes_sent: u64('18446744073709551615') }));
  t.equal(bytes.statusCode, 400);
  t.match(bytes.json().error.message, /outcomes\.0\.bytes_sent: at most/);
  t.match((await post(outcome({ ts_ms: u64('9223372036854775808') }))).json().error.message, /outcomes\.0\.ts_ms: at most/);
  t.equal((await post(outcome({ bytes_sent: u64('9007199254740991') }))).statusCode, 200);
});

t.test('2. the hot-path validator agrees with zod on every uint64 edge', async (t) => {
  for (const v of ['0', '1', '4294967295', '4294967296', '1763800000000', '9007199254740991', '9007199254740992', '9223372036854775807', '9223372036854775808', '18446744073709551615']) {
    const msg = DecideRequestType.decode(pb({ ts_ms: u64(v) })) as unknown as Record<string, unknown>;
    const fast = fastValidateDecide(msg);
    const slow = decideRequestSchema.safeParse(msg);
    t.equal(fast !== undefined, slow.success, `${v}: same verdict (${slow.success ? 'accepted' : 'refused'})`);
    if (fast && slow.success) t.equal(fast.ts_ms, slow.data.ts_ms, `${v}: same value`);
    if (slow.success) t.equal(String(slow.data.ts_ms), v, `${v}: exact`);
  }
});

t.test('3. a URL with a bad %-escape gets the catalogue error body', async (t) => {
  const { app } = service(t);
  for (const [method, url] of [['POST', '/v1/%zz'], ['GET', '/%E0%A4%A'], ['POST', '/v1/decide%']] as const) {
    const r = await app.inject({ method, url });
    t.equal(r.statusCode, 404, `${method} ${url}`);
    t.same(Object.keys(r.json()), ['error']);
    t.equal(r.json().error.code, 'NOT_FOUND');
    t.match(r.json().error.message, /cannot be decoded/);
  }
  t.equal((await app.inject({ method: 'POST', url: '/v1/decide', payload: { client_ip: '192.0.2.1', method: 'GET', path: '/' } })).statusCode, 200, 'still serving');
});

async function frames(t: Test) {
  const built = service(t);
  const sockets: Socket[] = [];
  built.frameServer.on('connection', (s: Socket) => sockets.push(s));
  await new Promise<void>((resolve) => built.frameServer.listen(0, '127.0.0.1', resolve));
  const port = (built.frameServer.address() as { port: number }).port;
  const open = async () => {
    const c = await FrameClient.open(port);
    t.teardown(() => c.close());
    return c;
  };
  return { open, app: built.app };
}

const requestId = (a: { payload: Buffer }) => (DecideResponseType.decode(a.payload) as unknown as { request_id: string }).request_id;

t.test('4. frames before a zero or oversized length are answered, then an ERROR, then the close', async (t) => {
  const s = await frames(t);
  for (const [name, bad] of [['zero', '00000000'], ['ffffffff', 'ffffffff']] as const) {
    const c = await s.open();
    // the fuzzer's reproducer: DECIDE, PING, then the bad length, in one write
    c.send(Buffer.from(`00000017010a01611a093139322e302e322e31220347455432012f0000000105${bad}`, 'hex'));
    await c.waitClosed(5000);
    t.same(c.answers.map((a) => a.type), [FRAME.VERDICT, FRAME.PONG, FRAME.ERROR], `${name}: both answers, then an ERROR`);
    t.equal(requestId(c.answers[0]!), 'a');
    t.match(text(c.answers[2]), name === 'zero' ? /^BAD_BODY: .*frame length of 0/ : /^BODY_TOO_LARGE: .*over every limit/);
  }
  // an outcome batch still being applied when the bad length arrives: its ACK goes out first
  const c = await s.open();
  const outcomes = Array.from({ length: 500 }, (_, i) => ({ request_id: `o${i}`, status: 404, request: { client_ip: '192.0.2.9', method: 'GET', path: `/api/orders/${i}`, mode: 1 } }));
  c.send(decideFrame({ request_id: 'before' }), outcomesFrame({ gateway_id: 'gw', outcomes }), decideFrame({ request_id: 'after' }), Buffer.alloc(4));
  await c.waitClosed(5000);
  t.same(c.answers.map((a) => a.type), [FRAME.VERDICT, FRAME.ACK, FRAME.VERDICT, FRAME.ERROR]);
  t.equal((OutcomeAckType.decode(c.answers[1]!.payload) as unknown as { accepted: number }).accepted, 500);
  t.equal(requestId(c.answers[2]!), 'after');
  const m = (await s.app.inject({ url: '/metrics' })).body;
  t.match(m, /verdict_frame_connections_closed_total\{reason="bad_length"\} 2/);
  t.match(m, /verdict_frame_connections_closed_total\{reason="frame_too_large"\} 1/);
  // and the transport still serves
  const fresh = await s.open();
  fresh.send(frame(FRAME.PING, Buffer.alloc(0)));
  t.equal((await fresh.waitFor(1))[0]?.type, FRAME.PONG);
});
