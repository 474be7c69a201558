// Issue 17.4, where events come from: the audit trail raises key.blocked for a cacheable BLOCK
// (once while the block lasts) and campaign.detected the first time a reason family acts on a key
// (once per family and key within the window), through the real app's decide path. No raw
// identifier, query string or token in any event; monitor-mode locations raise none.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../../../decision-service/src/app.ts';
import { parseEnv } from '../../../decision-service/src/config/env.ts';
import { createLogger } from '../../../decision-service/src/logger.ts';
import { familyOf } from '../../../decision-service/src/service/audit.ts';
import { RiskEvents, type RiskEventWithTime } from '../../../decision-service/src/service/risk-events.ts';
import { addressCachePolicy } from '../../helpers/service.ts';

const PHONE = '13800138000';
const EMAIL = 'alice.secret@example.com';
const UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36';

function app() {
  const events = new RiskEvents();
  const got: RiskEventWithTime[] = [];
  events.subscribe((e) => got.push(e));
  // the address cache on: these cases follow a scanner whose address the gateways are told to refuse
  const built = buildApp(parseEnv({ VERDICT_POLICY: addressCachePolicy(), VERDICT_POLICY_WATCH: '0', VERDICT_STATE_DIR: mkdtempSync(join(tmpdir(), 'verdict-state-')) }), { logger: createLogger('silent'), events });
  return { a: built.app, got, events: built.events };
}

t.test('the bus handed in is the app\'s', async (t) => {
  const { a, events } = app();
  t.teardown(() => a.close());
  t.ok(events instanceof RiskEvents);
});

t.test('a scanner: one campaign.detected, then one key.blocked when the address is cached as blocked', async (t) => {
  const { a, got } = app();
  t.teardown(() => a.close());
  const probe = (i: number, ip = '198.51.100.40', mode = 'INLINE') => a.inject({
    method: 'POST', url: '/v1/decide',
    payload: { request_id: `probe-${ip}-${i}`, client_ip: ip, method: 'GET', mode, path: '/actuator/env', query: `phone=${PHONE}&email=${EMAIL}`, user_agent: UA, token_hash: Buffer.from('raw-token-bytes-xyz').toString('base64') },
  });
  const actions: string[] = [];
  for (let i = 0; i < 8; i++) actions.push((await probe(i)).json().action as string);
  t.same(actions, Array(8).fill('BLOCK'), 'every probe blocked');
  const campaigns = got.filter((e) => e.type === 'campaign.detected');
  const blocks = got.filter((e) => e.type === 'key.blocked');
  // the actuator is also an internal route called from outside: two families act on the address
  t.same(campaigns.map((e) => e.type === 'campaign.detected' && e.family).sort(), ['probing', 'unauthorized_access'],
    `one campaign.detected per family and key over 8 probes: ${JSON.stringify(campaigns)}`);
  t.match(campaigns.find((e) => e.type === 'campaign.detected' && e.family === 'probing'), { family: 'probing', action: 'BLOCK', route: 'actuator', request_id: 'probe-198.51.100.40-0', subject: 'ip:198.51.100.40', id: String, ts: String });
  t.ok(campaigns[0]?.type === 'campaign.detected' && campaigns[0].reasons.includes('probe.sensitive_path'));
  t.equal(blocks.length, 1, 'one key.blocked while the block lasts, though later probes are blocked and cacheable too');
  t.match(blocks[0], { type: 'key.blocked', key: 'ip:198.51.100.40', ttl_s: 300, route: 'actuator' });
  const text = JSON.stringify(got);
  t.notOk(text.includes(PHONE) || text.includes(EMAIL) || text.includes('raw-token-bytes') || text.includes('phone='), 'nothing raw from the request');

  // another address is another key
  await probe(0, '198.51.100.41');
  t.equal(got.filter((e) => e.type === 'campaign.detected').length, 4);
  // a monitor location enforces nothing: no event
  const before = got.length;
  for (let i = 0; i < 6; i++) await probe(i, '198.51.100.42', 'MONITOR');
  t.equal(got.length, before, 'monitor mode raises no event');
});

t.test('an identifier walk on login: campaign.detected for enumeration, keyed, nothing raw', async (t) => {
  const { a, got } = app();
  t.teardown(() => a.close());
  for (let i = 0; i < 12; i++) {
    await a.inject({
      method: 'POST', url: '/v1/decide',
      payload: { request_id: `walk-${i}`, client_ip: '198.51.100.50', method: 'POST', path: '/api/auth/login', identifier: `1380013${String(8000 + i)}`, user_agent: UA, content_type: 'application/json' },
    });
  }
  const enumeration = got.filter((e) => e.type === 'campaign.detected' && e.family === 'enumeration');
  t.ok(enumeration.length >= 1, `enumeration detected: ${JSON.stringify(got.map((e) => e.type === 'campaign.detected' ? `${e.family} ${e.subject}` : e.type))}`);
  t.equal(new Set(enumeration.map((e) => e.type === 'campaign.detected' ? e.subject : '')).size, enumeration.length, 'once per key');
  const text = JSON.stringify(got);
  for (let i = 0; i < 12; i++) t.notOk(text.includes(`1380013${String(8000 + i)}`), `phone ${i} not in any event`);
});

t.test('families', async (t) => {
  t.equal(familyOf('cs.password_spray'), 'credential_stuffing');
  t.equal(familyOf('enum.identifier_fanout.client'), 'enumeration');
  t.equal(familyOf('bola.young_not_found_surge'), 'traversal');
  t.equal(familyOf('exfil.distinct_values.principal'), 'exfil');
  t.equal(familyOf('newthing.x'), 'newthing', 'an unknown prefix names itself');
  t.equal(familyOf('dry_run:cs.failure_rate'), undefined, 'monitor-only rules act on nothing');
  t.equal(familyOf('override.block'), undefined);
  t.equal(familyOf('clearance.required'), undefined);
});

t.test('with VERDICT_WEBHOOK_URL, the app delivers what any publisher raises on its bus (endpoint.exposure too) and flushes on close', async (t) => {
  const { createServer } = await import('node:http');
  const { verifySignature } = await import('../../../decision-service/src/service/webhook.ts');
  const bodies: Array<{ sig: string; body: string }> = [];
  const rx = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => { body += d.toString(); });
    req.on('end', () => { bodies.push({ sig: String(req.headers['x-verdict-signature']), body }); res.writeHead(204); res.end(); });
  });
  await new Promise<void>((r) => rx.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { rx.closeAllConnections(); rx.close(() => r()); }));
  const port = (rx.address() as { port: number }).port;
  const key = 'app-webhook-secret-0123456789';
  const built = buildApp(parseEnv({
    VERDICT_POLICY_WATCH: '0', VERDICT_STATE_DIR: mkdtempSync(join(tmpdir(), 'verdict-state-')),
    VERDICT_WEBHOOK_URL: `http://127.0.0.1:${port}/in`, VERDICT_WEBHOOK_SECRET: key,
  }), { logger: createLogger('silent') });
  built.events.publish({ type: 'endpoint.exposure', route: 'GET /api/users/{id}/profile', kind: 'cn_mobile', responses: 40, unmasked_share: 0.95 });
  await built.app.close(); // the shutdown flush delivers it
  t.equal(bodies.length, 1, 'delivered by close()');
  t.ok(verifySignature(key, bodies[0]?.sig ?? '', bodies[0]?.body ?? ''), 'signed');
  t.match(JSON.parse(bodies[0]?.body ?? '{}'), { events: [{ type: 'endpoint.exposure', route: 'GET /api/users/{id}/profile', kind: 'cn_mobile', responses: 40, unmasked_share: 0.95 }] });
});
