// Issue 16, the decision audit trail: a stopped request can be looked up by its id with the
// reasons, the keys they acted on and the thresholds; ALLOW verdicts only by sample; verdicts a
// gateway enforced from its cache are recorded as such; no raw identifier, password, token or
// cookie in any record or in the JSON Lines file; the file rotates; with a real Redis one
// instance answers for another's request ids.
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../../../decision-service/src/app.ts';
import { parseEnv } from '../../../decision-service/src/config/env.ts';
import { createLogger } from '../../../decision-service/src/logger.ts';
import { startRedis } from '../../helpers/redis.ts';

const RAW_ID = 'alice.secret@example.com';
const RAW_TOKEN_B64 = Buffer.from('token-hash-bytes-0123456789abcd').toString('base64');

function app(env: Record<string, string> = {}) {
  const built = buildApp(parseEnv({ VERDICT_POLICY_WATCH: '0', VERDICT_STATE_DIR: mkdtempSync(join(tmpdir(), 'verdict-state-')), ...env }), { logger: createLogger('silent') });
  return built.app;
}

const decide = (a: ReturnType<typeof app>, body: Record<string, unknown>) =>
  a.inject({ method: 'POST', url: '/v1/decide', payload: { client_ip: '198.51.100.23', method: 'GET', mode: 'INLINE', ...body } });

t.test('a stop is explained by request id; allows only by sample; nothing raw', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'verdict-audit-'));
  const file = join(dir, 'audit.jsonl');
  const a = app({ VERDICT_AUDIT_FILE: file });
  t.teardown(() => a.close());

  const stop = await decide(a, { request_id: 'req-stop-1', path: '/actuator/env', token_hash: RAW_TOKEN_B64 });
  t.equal(stop.json().action, 'BLOCK', 'the probe is blocked');
  await decide(a, { request_id: 'req-allow-1', path: '/' });
  // a login carrying an identifier: its record holds the keyed hash only
  await decide(a, { request_id: 'req-login-1', method: 'POST', path: '/api/auth/login', identifier: RAW_ID, password_hash: Buffer.from('pw-hash-0123456789').toString('base64') });

  const res = await a.inject({ url: '/v1/audit?request_id=req-stop-1' });
  t.equal(res.statusCode, 200);
  const r = res.json();
  t.match(r, { kind: 'decision', request_id: 'req-stop-1', action: 'BLOCK', source: 'service', method: 'GET', path: '/actuator/env', route: 'actuator' });
  t.ok(r.reasons.length > 0, 'reasons recorded');
  t.ok(r.evidence.length > 0, 'evidence recorded');
  for (const e of r.evidence) t.match(e, { code: String, strength: Number, key: String }, 'each signal names its key and strength');
  t.match(r.thresholds, { tag: Number, challenge: Number, block: Number }, 'the thresholds it was judged against');
  t.equal(r.keys.ip, '198.51.100.23');
  t.equal(r.keys.principal, RAW_TOKEN_B64, 'the gateway\'s keyed token hash, as the gateway cache spells it');

  const allow = await a.inject({ url: '/v1/audit?request_id=req-allow-1' });
  t.equal(allow.statusCode, 404, 'ALLOW verdicts are not recorded at sample 0');
  t.match(allow.json().error.message, /VERDICT_AUDIT_ALLOW_SAMPLE/, 'the 404 says why');

  const stops = (await a.inject({ url: '/v1/audit?filter=stops' })).json().records as Array<{ request_id: string }>;
  t.ok(stops.some((s) => s.request_id === 'req-stop-1'), 'recent stops list it');
  t.equal((await a.inject({ url: '/v1/audit?filter=bogus' })).statusCode, 400);

  // cache-enforced stop reported in an outcome batch
  await a.inject({ method: 'POST', url: '/v1/outcomes', payload: { gateway_id: 'gw-1', outcomes: [{ request_id: 'req-cached-1', client_ip: '198.51.100.23', method: 'GET', path: '/actuator/env?x=1', status: 403, action: 'BLOCK', from_cache: true }] } });
  const cached = (await a.inject({ url: '/v1/audit?request_id=req-cached-1' })).json();
  t.match(cached, { source: 'cache', action: 'BLOCK', path: '/actuator/env' });

  // the file: written off the decide path, same records, nothing raw
  await new Promise((r) => setTimeout(r, 600));
  const text = readFileSync(file, 'utf8');
  t.ok(text.includes('"request_id":"req-stop-1"'), 'the JSON Lines file has the stop');
  const everything = text + JSON.stringify((await a.inject({ url: '/v1/audit?filter=all&limit=1000' })).json());
  t.notOk(everything.includes(RAW_ID), 'no raw identifier anywhere');
  t.notOk(everything.toLowerCase().includes('alice'), 'not even part of it');
});

t.test('allow sample 1 records allows; the file rotates', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'verdict-audit-'));
  const file = join(dir, 'audit.jsonl');
  const a = app({ VERDICT_AUDIT_FILE: file, VERDICT_AUDIT_ALLOW_SAMPLE: '1', VERDICT_AUDIT_FILE_MAX_MB: '1', VERDICT_AUDIT_FILE_KEEP: '2' });
  t.teardown(() => a.close());
  await decide(a, { request_id: 'allow-sampled', path: '/' });
  t.equal((await a.inject({ url: '/v1/audit?request_id=allow-sampled' })).statusCode, 200);
  // ≈ 1,000-byte records: 3,500 of them pass 1 MiB at least three times over
  for (let round = 0; round < 7; round++) {
    for (let i = 0; i < 500; i++) await decide(a, { request_id: `fill-${round}-${i}`, path: `/page/${i}` });
    await new Promise((r) => setTimeout(r, 400));
  }
  const files = readdirSync(dir).sort();
  t.same(files, ['audit.jsonl', 'audit.jsonl.1', 'audit.jsonl.2'], 'current file plus VERDICT_AUDIT_FILE_KEEP rotated ones');
  t.ok(readFileSync(join(dir, 'audit.jsonl.1')).length <= 1.1 * 2 ** 20, 'rotated near the size limit');
  t.notOk(existsSync(join(dir, 'audit.jsonl.3')));
});

t.test('with Redis, any instance explains any instance\'s stop', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const env = { VERDICT_REDIS_URL: redis.url, VERDICT_REDIS_PREFIX: `audit-${process.pid}:` };
  const a = app(env);
  const b = app(env);
  t.teardown(async () => { await a.close(); await b.close(); });
  await new Promise((r) => setTimeout(r, 300)); // connect
  await decide(a, { request_id: 'fleet-stop-1', path: '/actuator/env' });
  let found: { statusCode: number; json(): { instance: string; action: string } } | undefined;
  for (let i = 0; i < 40; i++) {
    found = await b.inject({ url: '/v1/audit?request_id=fleet-stop-1' });
    if (found.statusCode === 200) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(found?.statusCode, 200, 'instance B finds A\'s record');
  t.equal(found?.json().action, 'BLOCK');
  const stops = (await b.inject({ url: '/v1/audit?filter=stops' })).json().records as Array<{ request_id: string }>;
  t.ok(stops.some((s) => s.request_id === 'fleet-stop-1'), 'B\'s recent stops include A\'s');
});

t.test('a counting rule\'s stop is audited with its counts and the threshold it crossed', async (t) => {
  const a = app();
  t.teardown(() => a.close());
  // one address and browser walking many phone numbers through the reset route
  let stopped: string | undefined;
  for (let i = 0; i < 60 && !stopped; i++) {
    const r = await decide(a, {
      request_id: `walk-${i}`, method: 'POST', path: '/api/auth/password-reset', identifier: `1380013${String(1000 + i)}`,
      user_agent: 'python-requests/2.31', client_ip: '203.0.113.77',
    });
    if (r.json().action === 'CHALLENGE' || r.json().action === 'BLOCK') stopped = `walk-${i}`;
  }
  t.ok(stopped, 'the walk is stopped');
  const rec = (await a.inject({ url: `/v1/audit?request_id=${stopped}` })).json();
  const counted = (rec.evidence as Array<{ code: string; count?: number; threshold?: number; of?: number }>).filter((e) => e.count !== undefined);
  t.ok(counted.length > 0, `a signal carries its counts: ${JSON.stringify(rec.evidence)}`);
  for (const e of counted) {
    t.type(e.threshold, 'number', `${e.code}: the threshold`);
    if (e.of !== undefined) t.ok(e.of >= e.count!, `${e.code}: a share's count is out of its attempts`);
  }
});
