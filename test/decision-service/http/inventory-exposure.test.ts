// Issue 17 through the real app (HTTP routes, both encodings): POST /v1/decide answers `inspect`;
// outcome batches with response samples reach GET /v1/inventory (the documented shape), the
// console state's exposure list, the console page and /metrics; the ack carries the patterns.
import t from 'tap';
import { buildApp } from '../../../decision-service/src/app.ts';
import { parseEnv } from '../../../decision-service/src/config/env.ts';
import { createLogger } from '../../../decision-service/src/logger.ts';
import { DecideRequestType, DecideResponseType, OutcomeAckType, OutcomeBatchType } from '../../../decision-service/src/wire/codec.ts';
import { BASE_ROUTES, policy } from '../../helpers/policy.ts';

t.test('inspect, inventory exposure, console and metrics', async (t) => {
  const built = buildApp(parseEnv({ VERDICT_POLICY_WATCH: '0' }), {
    logger: createLogger('silent'),
    processMetrics: false,
    policy: policy({
      routes: [...BASE_ROUTES, { name: 'profile', class: 'object', methods: ['GET'], path: '/api/users/{id}/profile' }],
      responses: { patterns: [{ name: 'employee_id', regex: 'EMP\\d{6}' }], exposure: { min_responses: 3 } },
    }),
  });
  t.teardown(() => built.app.close());
  const a = built.app;

  const json = await a.inject({ method: 'POST', url: '/v1/decide', payload: { request_id: 'j1', client_ip: '198.51.100.1', method: 'GET', path: '/api/users/1/profile', has_authorization: true } });
  t.equal(json.json().inspect, true, 'JSON: an object route is inspected (share 1)');
  const pbReq = { request_id: 'p1', client_ip: '198.51.100.2', method: 'GET', path: '/api/users/2/profile', has_authorization: true };
  const pb = await a.inject({ method: 'POST', url: '/v1/decide', headers: { 'content-type': 'application/x-protobuf' }, payload: Buffer.from(DecideRequestType.encode(DecideRequestType.fromObject(pbReq)).finish()) });
  t.equal((DecideResponseType.decode(pb.rawPayload) as unknown as { inspect: boolean }).inspect, true, 'protobuf: inspect = 12 set');
  const stat = await a.inject({ method: 'POST', url: '/v1/decide', payload: { request_id: 's1', client_ip: '198.51.100.3', method: 'GET', path: '/static/a.js' } });
  t.equal(stat.json().inspect, undefined, 'static (share 0): no inspect field');

  const sample = (n: number) => ({ inspected_bytes: 700, records: 1, findings: [{ kind: 'cn_mobile', unmasked: n, value_hashes: [Buffer.alloc(8, n)] }, { kind: 'employee_id', masked: 1 }] });
  const outcomes = [
    { request_id: 'j1', status: 200, method: 'GET', path: '/api/users/1/profile', bytes_sent: 800, response: sample(1) },
    { request_id: 'p1', status: 200, method: 'GET', path: '/api/users/2/profile', bytes_sent: 800, response: sample(1) },
    { request_id: 'c1', status: 200, method: 'GET', path: '/api/users/3/profile', bytes_sent: 800, from_cache: true, response: sample(2) },
  ];
  const ackRes = await a.inject({
    method: 'POST', url: '/v1/outcomes', headers: { 'content-type': 'application/x-protobuf' },
    payload: Buffer.from(OutcomeBatchType.encode(OutcomeBatchType.fromObject({ gateway_id: '', outcomes })).finish()),
  });
  t.equal(ackRes.statusCode, 200);
  const ack = OutcomeAckType.toObject(OutcomeAckType.decode(ackRes.rawPayload), { defaults: true });
  t.match(ack, { accepted: 2, patterns: [{ name: 'employee_id', regex: 'EMP\\d{6}' }] });
  t.match(ack.patterns_version, /^[0-9a-f]{12}$/);
  const again = await a.inject({ method: 'POST', url: '/v1/outcomes', payload: { outcomes: [], patterns_version: ack.patterns_version } });
  t.same(Object.keys(again.json()).sort(), ['accepted', 'revoked_keys', 'verdicts'], 'JSON ack: no patterns for a gateway on the same version');

  const inv = (await a.inject({ url: '/v1/inventory' })).json();
  t.equal(inv.patterns_version, ack.patterns_version);
  const profile = inv.endpoints.find((e: { template: string }) => e.template === '/api/users/{id}/profile');
  t.same(profile.exposure, {
    inspected: 3, truncated: 0, records_mean: 1, records_p50: 1, records_p95: 1, bytes_mean: 800, over_requested: 0, over_baseline: 0,
    kinds: [
      { kind: 'cn_mobile', unmasked_responses: 3, masked_responses: 0, unmasked_values: 4, masked_values: 0, values_per_response: 1.33, unmasked_share: 1 },
      { kind: 'employee_id', unmasked_responses: 0, masked_responses: 3, unmasked_values: 0, masked_values: 3, values_per_response: 1, unmasked_share: 0 },
    ],
    flags: ['unmasked:cn_mobile'],
  }, 'the documented shape');
  t.equal(inv.endpoints.find((e: { template: string }) => e.template === '/static/a.js').exposure, null, 'never inspected: null');

  const state = (await a.inject({ url: '/v1/console/state' })).json();
  t.same(state.exposure.map((e: { template: string }) => e.template), ['/api/users/{id}/profile'], 'the console lists inspected endpoints');
  const page = (await a.inject({ url: '/console' })).body;
  t.match(page, /Exposure: what responses give away/);
  t.match(page, /returns unmasked /, 'the page renders flags in words');

  const metrics = (await a.inject({ url: '/metrics' })).body;
  t.match(metrics, /verdict_endpoint_sensitive_responses_total\{route="GET \/api\/users\/\{id\}\/profile",kind="cn_mobile",masked="false"\} 3/);
  t.match(metrics, /verdict_endpoint_sensitive_responses_total\{route="GET \/api\/users\/\{id\}\/profile",kind="employee_id",masked="true"\} 3/);
  t.match(metrics, /verdict_response_samples_total 3/);
  t.match(metrics, /verdict_endpoint_exposures_total\{kind="cn_mobile"\} 1/);
});
