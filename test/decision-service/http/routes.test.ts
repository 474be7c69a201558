import t from 'tap';
import { buildApp } from '../../../decision-service/src/app.ts';
import { parseEnv } from '../../../decision-service/src/config/env.ts';
import { createLogger } from '../../../decision-service/src/logger.ts';
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
