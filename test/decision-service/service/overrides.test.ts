// Issue 16, overrides in the service: an allow lets a blocked client through at once and revokes
// the gateway cache keys of its audited stops (once per gateway, in the OutcomeAck); a block
// stops a client and is cached at the gateway; identifiers are hashed on arrival; bad keys are
// refused naming the fix; every change is audited (who, when, why); overrides survive a restart
// (VERDICT_STATE_DIR) and, through a real Redis, reach every instance and its gateways.
import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../../../decision-service/src/app.ts';
import { parseEnv } from '../../../decision-service/src/config/env.ts';
import { createLogger } from '../../../decision-service/src/logger.ts';
import { startRedis } from '../../helpers/redis.ts';
import { addressCachePolicy } from '../../helpers/service.ts';

const json = { 'content-type': 'application/json' };

function app(env: Record<string, string> = {}) {
  return buildApp(parseEnv({ VERDICT_POLICY_WATCH: '0', VERDICT_STATE_DIR: mkdtempSync(join(tmpdir(), 'verdict-state-')), VERDICT_IDENTIFIER_KEY: 'identifier-key-0123456789', ...env }), { logger: createLogger('silent') }).app;
}
type App = ReturnType<typeof app>;

const decide = async (a: App, ip: string, path: string, extra: Record<string, unknown> = {}) =>
  (await a.inject({ method: 'POST', url: '/v1/decide', payload: { request_id: `r-${Math.random()}`, client_ip: ip, method: 'GET', path, gateway_id: 'gw-a', mode: 'INLINE', ...extra } })).json() as { action: string; reasons: string[]; cache_key: string; cache_ttl_s: number };
const ack = async (a: App, gateway = 'gw-a') =>
  (await a.inject({ method: 'POST', url: '/v1/outcomes', payload: { gateway_id: gateway, outcomes: [] } })).json() as { revoked_keys?: string[] };
const post = (a: App, body: Record<string, unknown>) => a.inject({ method: 'POST', url: '/v1/overrides', headers: json, payload: body });

t.test('allow: the next decision passes, the cached stop is revoked once per gateway; block: stops and caches', async (t) => {
  const a = app({ VERDICT_POLICY: addressCachePolicy() });
  t.teardown(() => a.close());
  const ip = '198.51.100.77';
  let d = await decide(a, ip, '/actuator/env');
  // each probe's URL is cached for everyone (target:) until the address has probed cache_after times
  for (let i = 0; i < 6 && !d.cache_key.startsWith('ip:'); i++) d = await decide(a, ip, '/actuator/env');
  t.equal(d.action, 'BLOCK');
  t.equal(d.cache_key, `ip:${ip}`, 'repeated probes: the gateway is asked to cache the block on the address');
  await ack(a); // gw-a is known from here on

  const made = await post(a, { key: `ip:${ip}`, action: 'allow', ttl_s: 600, note: 'customer ticket 4711', by: 'ana' });
  t.equal(made.statusCode, 201);
  const o = made.json();
  t.match(o, { key: `ip:${ip}`, action: 'ALLOW', note: 'customer ticket 4711', by: 'ana', via: 'loopback' });
  const after = await decide(a, ip, '/actuator/env');
  t.equal(after.action, 'ALLOW', 'the service honours it at once');
  t.same(after.reasons, ['override.allow']);
  t.equal(after.cache_key, '');
  // the address's cached block, and the probed URL its first probes had refused to everyone
  const revoked = (await ack(a)).revoked_keys ?? [];
  t.same(revoked.filter((k) => !k.startsWith('target:')), [`ip:${ip}`], 'the gateway is told to drop its cached block');
  t.ok(revoked.some((k) => k.startsWith('target:')), 'and the probed URL its stops cached');
  t.same((await ack(a)).revoked_keys ?? [], [], 'once');
  t.same((await ack(a, 'gw-new')).revoked_keys, revoked, 'a gateway first heard from now gets recent revocations too');

  // the engine's verdict without the override is kept in the audit record
  const stops = (await a.inject({ url: '/v1/audit?filter=all&limit=20' })).json().records as Array<Record<string, unknown>>;
  t.ok(stops.some((r) => r.kind === 'decision' && r.override === o.id && r.would_action === 'BLOCK'), 'audited: overridden BLOCK');
  const log = (await a.inject({ url: '/v1/audit?filter=overrides' })).json().records as Array<Record<string, unknown>>;
  t.match(log[0], { kind: 'override', change: 'create', id: o.id, by: 'ana', via: 'loopback', note: 'customer ticket 4711' }, 'the override itself is audited');

  // block
  const blk = (await post(a, { key: 'subnet:203.0.113.0/24', action: 'block', ttl_s: 120, note: 'abuse wave' })).json();
  const b = await decide(a, '203.0.113.50', '/');
  t.match(b, { action: 'BLOCK', reasons: ['override.block'], cache_key: 'subnet:203.0.113.0/24' });
  t.ok(b.cache_ttl_s > 0 && b.cache_ttl_s <= 120, 'cached no longer than the override lives');
  t.equal((await a.inject({ method: 'DELETE', url: `/v1/overrides/${blk.id}` })).statusCode, 200);
  t.same((await ack(a)).revoked_keys, ['subnet:203.0.113.0/24'], 'deleting a block revokes its cached verdict');
  t.equal((await decide(a, '203.0.113.50', '/')).action, 'ALLOW');
  t.equal((await a.inject({ method: 'DELETE', url: `/v1/overrides/${blk.id}` })).statusCode, 404);
});

t.test('identifiers are hashed on arrival; bad keys are refused naming the fix', async (t) => {
  const a = app();
  t.teardown(() => a.close());
  const made = (await post(a, { key: 'identifier:13800001234', action: 'block', ttl_s: 60 })).json();
  t.match(made.key, /^identifier:[A-Za-z0-9+/]{22}$/, 'stored as the keyed hash');
  t.notMatch(JSON.stringify((await a.inject({ url: '/v1/overrides' })).json()), /13800001234/, 'the raw identifier is kept nowhere');
  const d = await decide(a, '192.0.2.10', '/api/auth/login', { method: 'POST', identifier: '13800001234' });
  t.equal(d.action, 'BLOCK', 'a login for that account is blocked');
  t.equal(d.cache_key, '', 'identifiers are not gateway cache keys');
  for (const [body, field] of [
    [{ key: 'mac:aa', action: 'allow' }, /key: write "<type>:<value>"/],
    [{ key: 'ip:999.1.1.1', action: 'allow' }, /not an IP address/],
    [{ key: 'ip:192.0.2.1', action: 'maybe' }, /action/],
    [{ key: 'ip:192.0.2.1', action: 'allow', ttl_s: 0 }, /ttl_s/],
    [{ key: 'ip:192.0.2.1', action: 'allow', extra: 1 }, /extra|Unrecognized/],
  ] as const) {
    const r = await post(a, body as Record<string, unknown>);
    t.equal(r.statusCode, 400, JSON.stringify(body));
    t.match(r.json().error.message, field);
  }
});

t.test('overrides survive a restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'verdict-state-'));
  const a = app({ VERDICT_STATE_DIR: dir });
  const o = (await post(a, { key: 'ip:192.0.2.44', action: 'block', ttl_s: 600, note: 'persist me' })).json();
  await a.close();
  t.match(readFileSync(join(dir, 'overrides.json'), 'utf8'), /persist me/);
  const b = app({ VERDICT_STATE_DIR: dir });
  t.teardown(() => b.close());
  t.same(((await b.inject({ url: '/v1/overrides' })).json().overrides as Array<{ id: string }>).map((x) => x.id), [o.id]);
  t.equal((await decide(b, '192.0.2.44', '/')).action, 'BLOCK', 'and apply after it');
});

t.test('with Redis: an override made on one instance applies on the other and reaches its gateways', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const env = { VERDICT_REDIS_URL: redis.url, VERDICT_REDIS_PREFIX: `ovr-${process.pid}:` };
  const a = app(env);
  const b = app(env);
  t.teardown(async () => { await a.close(); await b.close(); });
  await new Promise((r) => setTimeout(r, 300));
  await ack(b, 'gw-b'); // B's gateway is known before the override
  t.equal((await post(a, { key: 'ip:192.0.2.99', action: 'block', ttl_s: 600 })).statusCode, 201);
  let seen = '';
  for (let i = 0; i < 40 && seen !== 'BLOCK'; i++) {
    seen = (await decide(b, '192.0.2.99', '/')).action;
    if (seen !== 'BLOCK') await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(seen, 'BLOCK', 'instance B applies A\'s override within the sync interval');
  const id = ((await a.inject({ url: '/v1/overrides' })).json().overrides as Array<{ id: string }>)[0]?.id;
  await a.inject({ method: 'DELETE', url: `/v1/overrides/${id}` });
  let revoked: string[] = [];
  for (let i = 0; i < 40 && revoked.length === 0; i++) {
    revoked = (await ack(b, 'gw-b')).revoked_keys ?? [];
    if (revoked.length === 0) await new Promise((r) => setTimeout(r, 100));
  }
  t.same(revoked, ['ip:192.0.2.99'], 'B\'s gateway gets the revocation A made');
  t.equal((await decide(b, '192.0.2.99', '/')).action, 'ALLOW', 'and B no longer blocks');
});
