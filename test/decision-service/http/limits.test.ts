// HTTP size, count, nesting and connection limits, checked before any parsing work.

import { connect } from 'node:net';
import t from 'tap';
import { buildApp } from '../../../decision-service/src/app.ts';
import { parseEnv } from '../../../decision-service/src/config/env.ts';
import { jsonDepth } from '../../../decision-service/src/http/json-body.ts';
import { createLogger } from '../../../decision-service/src/logger.ts';
import { DecideRequestType, OutcomeBatchType } from '../../../decision-service/src/wire/codec.ts';
import { policy } from '../../helpers/policy.ts';

function app(env: Record<string, string> = {}) {
  const built = buildApp(parseEnv({ VERDICT_POLICY_WATCH: '0', ...env }), { logger: createLogger('silent'), policy: policy() });
  t.teardown(() => built.app.close());
  return built.app;
}

const DECIDE = { client_ip: '1.2.3.4', method: 'GET', path: '/' };

t.test('jsonDepth counts objects and arrays, not brackets inside strings', async (t) => {
  t.equal(jsonDepth('{"a":[1,{"b":[]}]}', 8), 4);
  t.equal(jsonDepth('{"p":"[[[{{{\\"]]]"}', 8), 1);
  t.equal(jsonDepth('"just a string"', 8), 0);
  t.equal(jsonDepth('['.repeat(1_000_000), 8), 9, 'stops at the first level beyond the limit');
});

t.test('each endpoint has its own body limit; over it is a 413 before parsing', async (t) => {
  const a = app({ VERDICT_DECIDE_BODY_LIMIT: '4096', VERDICT_OUTCOMES_BODY_LIMIT: '65536' });
  const big = await a.inject({ method: 'POST', url: '/v1/decide', payload: { ...DECIDE, user_agent: 'x'.repeat(5000) } });
  t.equal(big.statusCode, 413);
  t.equal(big.json().error.code, 'BODY_TOO_LARGE');
  t.match(big.json().error.message, /over 4096 bytes \(VERDICT_DECIDE_BODY_LIMIT\)/);
  t.equal(big.headers.connection, 'close', 'the rest of a refused body is not read');
  const pb = Buffer.from(DecideRequestType.encode(DecideRequestType.fromObject({ ...DECIDE, referer: 'r'.repeat(5000) })).finish());
  t.equal((await a.inject({ method: 'POST', url: '/v1/decide', headers: { 'content-type': 'application/x-protobuf' }, payload: pb })).statusCode, 413);
  const outcomes = Array.from({ length: 100 }, (_, i) => ({ request_id: `o${i}`, status: 200, path: `/p/${i}`, client_ip: '1.2.3.4' }));
  t.equal((await a.inject({ method: 'POST', url: '/v1/outcomes', payload: { outcomes } })).statusCode, 200, 'a 6 KB batch fits the outcomes limit');
  const many = Array.from({ length: 2000 }, (_, i) => ({ request_id: `o${i}`, status: 200, path: `/p/${i}` }));
  t.equal((await a.inject({ method: 'POST', url: '/v1/outcomes', payload: { outcomes: many } })).statusCode, 413);
  t.equal((await a.inject({ method: 'POST', url: '/v1/decide', payload: DECIDE })).statusCode, 200, 'still serving');
});

t.test('the largest DecideRequest the schema accepts fits the default decide limit', async (t) => {
  const a = app();
  const max = {
    ...DECIDE, request_id: 'r'.repeat(128), host: 'h'.repeat(256), path: `/${'p'.repeat(4095)}`, query: 'q'.repeat(4096),
    user_agent: 'u'.repeat(1024), accept: 'a'.repeat(1024), referer: 'r'.repeat(2048), origin: 'o'.repeat(512), sec_ch_ua: 's'.repeat(512),
    header_names: Array.from({ length: 128 }, () => 'h'.repeat(128)), cookie_names: Array.from({ length: 64 }, () => 'c'.repeat(128)),
    identifier: 'i'.repeat(256), gateway_id: 'g'.repeat(128),
  };
  const pb = Buffer.from(DecideRequestType.encode(DecideRequestType.fromObject(max)).finish());
  t.ok(pb.length > 16 * 1024, `${pb.length} bytes`);
  t.equal((await a.inject({ method: 'POST', url: '/v1/decide', headers: { 'content-type': 'application/x-protobuf' }, payload: pb })).statusCode, 200);
  t.equal((await a.inject({ method: 'POST', url: '/v1/decide', payload: max })).statusCode, 200, 'and as JSON');
});

t.test('outcome batches over the count limit are refused whole', async (t) => {
  const a = app({ VERDICT_OUTCOMES_MAX_BATCH: '3' });
  const batch = { gateway_id: 'gw', outcomes: Array.from({ length: 4 }, (_, i) => ({ request_id: `o${i}`, status: 200 })) };
  const json = await a.inject({ method: 'POST', url: '/v1/outcomes', payload: batch });
  t.equal(json.statusCode, 413);
  t.match(json.json().error.message, /4 outcomes, more than 3/);
  const pb = Buffer.from(OutcomeBatchType.encode(OutcomeBatchType.fromObject(batch)).finish());
  t.equal((await a.inject({ method: 'POST', url: '/v1/outcomes', headers: { 'content-type': 'application/x-protobuf' }, payload: pb })).statusCode, 413);
  const bad = await a.inject({ method: 'POST', url: '/v1/outcomes', payload: { outcomes: [{ status: 200 }, { status: 'x' }] } });
  t.equal(bad.statusCode, 400);
  t.match(bad.json().error.message, /outcomes\.1\.status/);
  const m = (await a.inject({ url: '/metrics' })).body;
  t.notMatch(m, /verdict_outcomes_total\{/, 'a rejected batch applies nothing');
});

t.test('deep JSON is refused by a linear scan before JSON.parse', async (t) => {
  const a = app({ VERDICT_OUTCOMES_BODY_LIMIT: String(8 * 1024 * 1024) });
  const nested = '{"outcomes":' + '['.repeat(4_000_000) + ']'.repeat(4_000_000) + '}';
  const started = performance.now();
  const res = await a.inject({ method: 'POST', url: '/v1/outcomes', headers: { 'content-type': 'application/json' }, payload: nested });
  const ms = performance.now() - started;
  t.equal(res.statusCode, 400);
  t.equal(res.json().error.code, 'TOO_DEEP');
  // Generous: the old parse-then-validate path took over a second on this body.
  t.ok(ms < 500, `answered in ${ms.toFixed(0)} ms`);
  const ok = { outcomes: [{ status: 200, request: { ...DECIDE, header_names: ['host'] } }] };
  t.equal((await a.inject({ method: 'POST', url: '/v1/outcomes', payload: ok })).statusCode, 200, 'the deepest wire message passes');
  t.equal((await a.inject({ method: 'POST', url: '/v1/decide', payload: { ...DECIDE, path: '/[[[[[[[[[[[[' } })).statusCode, 200, 'brackets in strings are text');
  const proto = await a.inject({ method: 'POST', url: '/v1/decide', headers: { 'content-type': 'application/json' }, payload: '{"__proto__":{"x":1},"client_ip":"1.2.3.4","method":"GET","path":"/"}' });
  t.equal(proto.statusCode, 400, 'prototype keys are refused as before');
});

t.test('timeouts and the connection cap reach the HTTP server', async (t) => {
  const a = app({ VERDICT_MAX_CONNECTIONS: '2', VERDICT_REQUEST_TIMEOUT_MS: '2000', VERDICT_KEEPALIVE_TIMEOUT_MS: '5000' });
  await a.listen({ host: '127.0.0.1', port: 0 });
  t.equal(a.server.maxConnections, undefined, 'newcomers are not refused at the cap: it evicts');
  t.equal(a.server.requestTimeout, 2000);
  t.equal(a.server.headersTimeout, 2000);
  t.equal(a.server.keepAliveTimeout, 5000);
  t.equal(a.server.timeout, 2000);
  const port = (a.server.address() as { port: number }).port;
  const open = async () => {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => {});
    await new Promise((r) => s.once('connect', r));
    return s;
  };
  const ask = (s: ReturnType<typeof connect>) => {
    const answer = new Promise<string>((resolve) => s.once('data', (d: Buffer) => resolve(d.toString())));
    s.write('GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n');
    return answer;
  };
  const idle = await open();
  const closedIdle = new Promise((r) => idle.once('close', r));
  const active = await open();
  t.match(await ask(active), /^HTTP\/1.1 200/);
  // At the cap: the newcomer is served, and the connection idle longest (no request yet) goes.
  const newcomer = await open();
  await closedIdle;
  t.pass('the idle connection was evicted');
  t.match(await ask(newcomer), /^HTTP\/1.1 200/);
  t.match(await ask(active), /^HTTP\/1.1 200/, 'the active connection is untouched');
  active.destroy();
  newcomer.destroy();
  const m = (await a.inject({ url: '/metrics' })).body;
  t.match(m, /verdict_connections_evicted_total\{transport="http",reason="least_recent"\} 1/);
});
