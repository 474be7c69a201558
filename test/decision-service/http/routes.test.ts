import t from 'tap';
import { createHmac } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../../../decision-service/src/app.ts';
import { parseEnv } from '../../../decision-service/src/config/env.ts';
import { bearerHeader, gatewayKey } from '../../../decision-service/src/auth/gateway-auth.ts';
import { createLogger } from '../../../decision-service/src/logger.ts';
import type { DecideRequest } from '../../../decision-service/src/wire/schema.ts';
import { DecideRequestType, DecideResponseType, OutcomeAckType, OutcomeBatchType } from '../../../decision-service/src/wire/codec.ts';
import { policy } from '../../helpers/policy.ts';

function app(overrides: Parameters<typeof policy>[0] = {}) {
  const built = buildApp(parseEnv({ VERDICT_POLICY_WATCH: '0' }), { logger: createLogger('silent'), policy: policy(overrides) });
  t.teardown(() => built.app.close());
  return built.app;
}

t.test('JSON decide answers JSON', async (t) => {
  const res = await app().inject({ method: 'POST', url: '/v1/decide', payload: { client_ip: '198.51.100.7', method: 'GET', path: '/internal/x' } });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /application\/json/);
  t.match(res.json(), { action: 'BLOCK', reasons: ['authz.internal_from_outside', 'authz.missing_credentials'], policy_version: 't1' });
});

t.test('protobuf decide answers protobuf, or JSON when Accept asks', async (t) => {
  const a = app();
  const body = Buffer.from(DecideRequestType.encode(DecideRequestType.fromObject({ request_id: 'q1', client_ip: '198.51.100.7', method: 'GET', path: '/' })).finish());
  const res = await a.inject({ method: 'POST', url: '/v1/decide', headers: { 'content-type': 'application/x-protobuf' }, payload: body });
  t.equal(res.statusCode, 200);
  t.equal(res.headers['content-type'], 'application/x-protobuf');
  const decoded = DecideResponseType.toObject(DecideResponseType.decode(res.rawPayload), { enums: String, defaults: true });
  t.match(decoded, { request_id: 'q1', action: 'ALLOW', score: 0 });
  const asJson = await a.inject({ method: 'POST', url: '/v1/decide', headers: { 'content-type': 'application/x-protobuf', accept: 'application/json' }, payload: body });
  t.equal(asJson.json().action, 'ALLOW');
});

t.test('garbage gets a clean 4xx, never a crash', async (t) => {
  const a = app();
  const cases = [
    { headers: { 'content-type': 'application/json' }, payload: '{"client_ip":' },
    { headers: { 'content-type': 'application/json' }, payload: '[]' },
    { headers: { 'content-type': 'text/plain' }, payload: 'hello' },
    { headers: { 'content-type': 'application/x-protobuf' }, payload: Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]) },
    { headers: { 'content-type': 'application/x-protobuf' }, payload: Buffer.alloc(64, 0xff) },
  ];
  for (const c of cases) {
    const res = await a.inject({ method: 'POST', url: '/v1/decide', ...c });
    t.ok(res.statusCode >= 400 && res.statusCode < 500, `${res.statusCode} for ${String(c.payload).slice(0, 20)}`);
    t.type(res.json().error.code, 'string');
  }
  const after = await a.inject({ method: 'POST', url: '/v1/decide', payload: { client_ip: '1.2.3.4', method: 'GET', path: '/' } });
  t.equal(after.statusCode, 200, 'still serving');
  t.equal((await a.inject({ url: '/nope' })).statusCode, 404);
});

t.test('outcomes are counted, async requests scored, and cacheable blocks returned', async (t) => {
  const a = app({ ip_lists: { deny: ['192.0.2.1'] } });
  const payload = Buffer.from(OutcomeBatchType.encode(OutcomeBatchType.fromObject({
    gateway_id: 'gw',
    outcomes: [
      { request_id: 'o1', status: 404 },
      { request_id: 'o2', status: 200, request: { request_id: 'o2', client_ip: '192.0.2.1', method: 'GET', path: '/', mode: 1 } },
    ],
  })).finish());
  const res = await a.inject({ method: 'POST', url: '/v1/outcomes', headers: { 'content-type': 'application/x-protobuf' }, payload });
  t.equal(res.statusCode, 200);
  const ack = OutcomeAckType.toObject(OutcomeAckType.decode(res.rawPayload), { enums: String });
  t.equal(ack.accepted, 1, 'o2 scored (async metadata); o1 was never decided here: ignored');
  t.match(ack.verdicts, [{ action: 'BLOCK', cache_key: 'ip:192.0.2.1', cache_ttl_s: 300 }]);
  const metrics = (await a.inject({ url: '/metrics' })).body;
  t.match(metrics, /verdict_outcomes_total\{status_class="4xx"\} 1/);
  t.match(metrics, /verdict_outcomes_total\{status_class="2xx"\} 1/);
  t.match(metrics, /verdict_decisions_total\{action="BLOCK",route_class="public",mode="ASYNC"\} 1/);
});

t.test('health and metrics', async (t) => {
  const a = app();
  await a.inject({ method: 'POST', url: '/v1/decide', payload: { client_ip: '1.2.3.4', method: 'GET', path: '/.env' } });
  t.same((await a.inject({ url: '/healthz' })).json(), { status: 'ok', policy_version: 't1' });
  const m = (await a.inject({ url: '/metrics' })).body;
  t.match(m, /verdict_decisions_total\{action="BLOCK",route_class="protected",mode="INLINE"\} 1/);
  t.match(m, /verdict_decision_reasons_total\{reason="probe.sensitive_path"\} 1/);
  t.match(m, /verdict_decide_duration_seconds_count\{encoding="json"\} 1/);
  t.match(m, /verdict_policy_info\{version="t1"\} 1/);
});

t.test('GET /v1/auth answers auth_request statuses from forwarded headers', async (t) => {
  const a = app();
  const ask = (headers: Record<string, string>) => a.inject({ method: 'GET', url: '/v1/auth', headers: { 'x-real-ip': '198.51.100.7', ...headers } });
  const allowed = await ask({ 'x-original-method': 'GET', 'x-original-uri': '/?q=1' });
  t.equal(allowed.statusCode, 204);
  const blocked = await ask({ 'x-original-method': 'GET', 'x-original-uri': '/internal/admin' });
  t.equal(blocked.statusCode, 403);
  t.match(blocked.headers['x-verdict-reasons'], /authz.internal_from_outside/);
  const withToken = await ask({ 'x-original-method': 'GET', 'x-original-uri': '/api/orders/1', authorization: 'Bearer abc' });
  t.equal(withToken.statusCode, 204);
  t.equal((await ask({ 'x-original-method': 'get', 'x-original-uri': '/' })).statusCode, 400, 'bad method is a clean 400');
});

t.test('GET /v1/auth decides through the shared service: reason counters, latency, decisions by AUTH_REQUEST', async (t) => {
  const a = app();
  const res = await a.inject({ method: 'GET', url: '/v1/auth', headers: { 'x-real-ip': '198.51.100.7', 'x-original-method': 'GET', 'x-original-uri': '/.env' } });
  t.equal(res.statusCode, 403);
  const m = (await a.inject({ url: '/metrics' })).body;
  t.match(m, /verdict_decisions_total\{action="BLOCK",route_class="protected",mode="AUTH_REQUEST"\} 1/);
  t.match(m, /verdict_decision_reasons_total\{reason="probe.sensitive_path"\} 1/);
  t.match(m, /verdict_decide_duration_seconds_count\{encoding="auth_request"\} 1/);
  const bad = await a.inject({ method: 'GET', url: '/v1/auth', headers: { 'x-original-method': 'get', 'x-original-uri': '/' } });
  t.equal(bad.json().error.code, 'INVALID_FIELD');
  t.match((await a.inject({ url: '/metrics' })).body, /verdict_bad_requests_total\{endpoint="\/v1\/auth",code="INVALID_FIELD"\} 1/);
});

t.test('GET /v1/auth builds the Lua gateway\'s DecideRequest, with location settings from its query string', async (t) => {
  const config = parseEnv({ VERDICT_POLICY_WATCH: '0', VERDICT_IDENTIFIER_KEY: 'auth-request-test-key-0123' });
  const built = buildApp(config, { logger: createLogger('silent'), policy: policy() });
  t.teardown(() => built.app.close());
  const seen: DecideRequest[] = [];
  const decide = built.engine.decideOrSettle.bind(built.engine);
  built.engine.decideOrSettle = (r, waitMs) => {
    seen.push({ ...r });
    return decide(r, waitMs);
  };
  const hash = (v: string) => createHmac('sha1', config.identifierKey).update(v).digest();
  // as nginx forwards a subrequest: its own headers first, then the client's in order
  const nginx: Record<string, string> = { host: 'verdict_backend', 'x-original-method': 'POST', 'x-original-uri': '/api/auth/login?a=1', 'x-real-ip': '203.0.113.5', connection: 'close' };
  const client: Record<string, string> = { 'User-Agent': 'UA', Cookie: 'sid=S; SESSIONID=X', 'X-Device-Id': 'D', 'X-Dev': 'MINE', Authorization: 'Bearer  TOK' };
  const ask = (url: string, extra: Record<string, string> = {}) => built.app.inject({ method: 'GET', url, headers: { ...nginx, ...client, ...extra } });

  t.equal((await ask('/v1/auth')).statusCode, 204);
  t.match(seen[0], {
    client_ip: '203.0.113.5', method: 'POST', path: '/api/auth/login', query: 'a=1', host: 'verdict_backend', route_tag: '',
    header_names: ['host', 'user-agent', 'cookie', 'x-device-id', 'x-dev', 'authorization'],
    cookie_names: ['sid', 'SESSIONID'], auth_scheme: 'bearer', mode: 'INLINE', gateway_id: '', budget_ms: 0,
  });
  t.same(seen[0]?.session_hash, hash('S'), 'defaults: the sid cookie');
  t.same(seen[0]?.device_hash, hash('D'), 'defaults: x-device-id');
  t.same(seen[0]?.token_hash, hash('TOK'), 'the credential after the scheme, trimmed as Lua does');

  t.equal((await ask('/v1/auth?route_tag=login&session_cookie=SESSIONID&device_header=X-Dev')).statusCode, 204);
  t.match(seen[1], { route_tag: 'login' });
  t.same(seen[1]?.session_hash, hash('X'), 'session_cookie from the query');
  t.same(seen[1]?.device_hash, hash('MINE'), 'device_header from the query');
  await ask('/v1/auth?device_header=bad%20name');
  t.same(seen[2]?.device_hash, hash('D'), 'an invalid setting yields the default');

  const many = Object.fromEntries(Array.from({ length: 80 }, (_, i) => [`x-h${i}`, 'v']));
  const cookies = Array.from({ length: 70 }, (_, i) => `c${i}=1`).join('; ');
  t.equal((await ask('/v1/auth', { ...many, cookie: cookies })).statusCode, 204, 'many headers and cookies still get a verdict');
  t.equal(seen[3]?.header_names.length, 64, 'the gateway\'s 64 header names');
  t.equal(seen[3]?.cookie_names.length, 64, 'the cookie names the service accepts');
});

t.test('GET /v1/auth without the gateway proof: the shared error path, counted', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'verdict-auth-request-'));
  writeFileSync(join(dir, 'gateway.secret'), `${'s'.repeat(40)}\n`);
  const built = buildApp(parseEnv({ VERDICT_POLICY_WATCH: '0', VERDICT_GATEWAY_SECRET_FILE: join(dir, 'gateway.secret') }), { logger: createLogger('silent'), policy: policy() });
  t.teardown(() => built.app.close());
  const res = await built.app.inject({ method: 'GET', url: '/v1/auth', headers: { 'x-original-uri': '/', 'x-real-ip': '198.51.100.7' } });
  t.equal(res.statusCode, 401);
  t.equal(res.json().error.code, 'AUTH');
  const ok = await built.app.inject({ method: 'GET', url: '/v1/auth', headers: { 'x-original-uri': '/', 'x-real-ip': '198.51.100.7', 'x-verdict-auth': bearerHeader(gatewayKey('s'.repeat(40))) } });
  t.equal(ok.statusCode, 204, 'with the derived bearer');
  const m = await built.app.inject({ url: '/metrics' });
  t.equal(m.statusCode, 200, 'a loopback admin');
  t.match(m.body, /verdict_bad_requests_total\{endpoint="\/v1\/auth",code="AUTH"\} 1/, 'counted like any refused call');
});

t.test('late-verdict capture: cacheable verdicts come back in the asking gateway\'s next OutcomeAck', async (t) => {
  const a = app({ ip_lists: { deny: ['192.0.2.7'] } });
  const d = await a.inject({ method: 'POST', url: '/v1/decide', payload: { client_ip: '192.0.2.7', method: 'GET', path: '/', gateway_id: 'gw-1/42' } });
  t.equal(d.json().cache_key, 'ip:192.0.2.7');
  const other = await a.inject({ method: 'POST', url: '/v1/outcomes', payload: { gateway_id: 'gw-2/7', outcomes: [] } });
  t.same(other.json().verdicts, [], 'another gateway gets nothing');
  const ack = await a.inject({ method: 'POST', url: '/v1/outcomes', payload: { gateway_id: 'gw-1/42', outcomes: [] } });
  t.match(ack.json().verdicts, [{ action: 'BLOCK', cache_key: 'ip:192.0.2.7' }]);
  const again = await a.inject({ method: 'POST', url: '/v1/outcomes', payload: { gateway_id: 'gw-1/42', outcomes: [] } });
  t.same(again.json().verdicts, [], 'delivered once');
});
