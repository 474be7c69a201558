import t from 'tap';
import { buildApp } from '../../../decision-service/src/app.ts';
import { parseEnv } from '../../../decision-service/src/config/env.ts';
import { templateOf } from '../../../decision-service/src/engine/inventory.ts';
import { createLogger } from '../../../decision-service/src/logger.ts';
import { OutcomeBatchType } from '../../../decision-service/src/wire/codec.ts';
import { policy } from '../../helpers/policy.ts';

t.test('templates collapse ids', async (t) => {
  t.equal(templateOf('/api/orders/500123'), '/api/orders/{id}');
  t.equal(templateOf('/api/users/42/profile'), '/api/users/{id}/profile');
  t.equal(templateOf('/api/items/3f2b9c1e-8a7d-4c2b-9e1f-0a1b2c3d4e5f'), '/api/items/{id}');
  t.equal(templateOf('/api/promo/claim'), '/api/promo/claim');
  t.equal(templateOf('/static/app.js'), '/static/app.js');
});

t.test('GET /v1/inventory learns endpoints, shadows, zombies and account oracles', async (t) => {
  const built = buildApp(parseEnv({ VERDICT_POLICY_WATCH: '0', VERDICT_ADMIN_TOKEN: 'admin-token-0123456789' }), {
    logger: createLogger('silent'),
    policy: policy({ routes: [
      { name: 'login', class: 'identity', methods: ['POST'], path: '/api/auth/login' },
      { name: 'old-login', class: 'identity', methods: ['POST'], path: '/api/v1/login', deprecated: true },
      { name: 'order', class: 'object', methods: ['GET'], path: '/api/orders/{id}' },
    ] }),
  });
  t.teardown(() => built.app.close());
  const a = built.app;
  const decide = (id: string, fields: Record<string, unknown>) =>
    a.inject({ method: 'POST', url: '/v1/decide', payload: { request_id: id, client_ip: '198.51.100.1', method: 'GET', ...fields } });
  await decide('a', { method: 'POST', path: '/api/auth/login', identifier: 'alice' });
  await decide('b', { method: 'POST', path: '/api/auth/login', identifier: 'nobody' });
  await decide('c', { path: '/api/orders/1', has_authorization: true });
  await decide('d', { path: '/api/orders/2', has_authorization: true });
  await decide('e', { path: '/api/debug/dump' });
  await decide('f', { method: 'POST', path: '/api/v1/login', identifier: 'x' });
  await a.inject({
    method: 'POST', url: '/v1/outcomes', headers: { 'content-type': 'application/x-protobuf' },
    payload: Buffer.from(OutcomeBatchType.encode(OutcomeBatchType.fromObject({ outcomes: [{ request_id: 'a', status: 401 }, { request_id: 'b', status: 404 }, { request_id: 'c', status: 200 }] })).finish()),
  });
  const res = await a.inject({ url: '/v1/inventory' });
  t.equal(res.statusCode, 200);
  const eps = res.json().endpoints as Array<Record<string, unknown>>;
  const by = (m: string, tpl: string) => eps.find((e) => e.method === m && e.template === tpl);
  t.match(by('POST', '/api/auth/login'), { route: 'login', status: 'declared', requests: 2, reveals_account_existence: true, statuses: { 401: 1, 404: 1 } });
  t.match(by('GET', '/api/orders/{id}'), { requests: 2, credentials_share: 1, reveals_account_existence: false });
  t.match(by('GET', '/api/debug/dump'), { route: null, status: 'shadow' });
  t.match(by('POST', '/api/v1/login'), { status: 'zombie' });

  t.equal((await a.inject({ url: '/v1/inventory', remoteAddress: '203.0.113.1' })).statusCode, 401, 'remote without token');
  t.equal((await a.inject({ url: '/v1/inventory', remoteAddress: '203.0.113.1', headers: { authorization: 'Bearer admin-token-0123456789' } })).statusCode, 200);
});
