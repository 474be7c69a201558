// Issue 16, admin surface security: every admin endpoint answers loopback / unix-socket peers or
// the admin token; changes need the token whenever one is set (loopback too); a browser page on
// another origin cannot change anything. In-process (app.inject with a remote address) for every
// endpoint and rule, then over real sockets: the service listening on all addresses and called
// from this machine's non-loopback address, where a peer without the token is refused.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../../../decision-service/src/app.ts';
import { parseEnv } from '../../../decision-service/src/config/env.ts';
import { createLogger } from '../../../decision-service/src/logger.ts';
import { freePort } from '../../../scripts/lib/nginx.ts';
import { ask } from '../../helpers/http.ts';
import { startService } from '../../helpers/service.ts';

const TOKEN = 'admin-token-0123456789abcdef';
const READS = ['/v1/inventory', '/v1/audit', '/v1/audit?filter=all', '/v1/overrides', '/console', '/v1/console/state', '/metrics'];
const REMOTE = '203.0.113.9';
const json = { 'content-type': 'application/json' };
const override = JSON.stringify({ key: 'ip:198.51.100.7', action: 'allow', ttl_s: 60, note: 'ticket 1', by: 'ana' });

function app(env: Record<string, string>) {
  const built = buildApp(parseEnv({ VERDICT_POLICY_WATCH: '0', VERDICT_STATE_DIR: mkdtempSync(join(tmpdir(), 'verdict-state-')), ...env }), { logger: createLogger('silent') });
  return built.app;
}

t.test('with a token: reads from loopback or with the token; changes only with the token', async (t) => {
  const a = app({ VERDICT_ADMIN_TOKEN: TOKEN });
  t.teardown(() => a.close());
  for (const url of READS) {
    t.equal((await a.inject({ url })).statusCode, 200, `${url} from loopback`);
    t.equal((await a.inject({ url, remoteAddress: REMOTE })).statusCode, 401, `${url} from ${REMOTE} without the token`);
    t.equal((await a.inject({ url, remoteAddress: REMOTE, headers: { authorization: `Bearer ${TOKEN}x` } })).statusCode, 401, `${url} with a wrong token`);
    t.equal((await a.inject({ url, remoteAddress: REMOTE, headers: { authorization: `Bearer ${TOKEN}` } })).statusCode, 200, `${url} with the token`);
  }
  const post = (headers: Record<string, string>, remoteAddress?: string) =>
    a.inject({ method: 'POST', url: '/v1/overrides', payload: override, headers: { ...json, ...headers }, remoteAddress });
  const local = await post({});
  t.equal(local.statusCode, 401, 'a change from loopback without the token is refused while a token is set');
  t.match(local.json().error.message, /VERDICT_ADMIN_TOKEN/, 'the refusal names the fix');
  t.equal((await post({}, REMOTE)).statusCode, 401);
  const made = await post({ authorization: `Bearer ${TOKEN}` }, REMOTE);
  t.equal(made.statusCode, 201, 'with the token from anywhere');
  t.equal(made.json().via, 'token');
  const id = made.json().id as string;
  t.equal((await a.inject({ method: 'DELETE', url: `/v1/overrides/${id}` })).statusCode, 401, 'delete from loopback without the token');
  t.equal((await a.inject({ method: 'DELETE', url: `/v1/overrides/${id}`, remoteAddress: REMOTE, headers: { authorization: `Bearer ${TOKEN}` } })).statusCode, 200);
  // decide and healthz are not admin endpoints: unchanged
  t.equal((await a.inject({ url: '/healthz', remoteAddress: REMOTE })).statusCode, 200);
  const metrics = await a.inject({ url: '/metrics' });
  t.match(metrics.body, /verdict_auth_failures_total\{transport="admin",reason="no token"\} [1-9]/, 'refusals are counted');
});

t.test('without a token: loopback may read and change; others nothing', async (t) => {
  const a = app({});
  t.teardown(() => a.close());
  for (const url of READS) t.equal((await a.inject({ url, remoteAddress: REMOTE })).statusCode, 401, `${url} from ${REMOTE}`);
  t.equal((await a.inject({ method: 'POST', url: '/v1/overrides', payload: override, headers: json, remoteAddress: REMOTE })).statusCode, 401);
  const made = await a.inject({ method: 'POST', url: '/v1/overrides', payload: override, headers: json });
  t.equal(made.statusCode, 201, 'loopback changes while no token is set');
  t.equal(made.json().via, 'loopback');
  // a page on another origin in the operator's browser: refused
  const cross = await a.inject({ method: 'POST', url: '/v1/overrides', payload: override, headers: { ...json, origin: 'http://evil.example', host: '127.0.0.1:9400' } });
  t.equal(cross.statusCode, 403, 'a foreign Origin is refused');
  t.equal((await a.inject({ method: 'POST', url: '/v1/overrides', payload: override, headers: { 'content-type': 'text/plain' } })).statusCode, 415, 'no simple (CORS-free) form posts');
  t.equal((await a.inject({ method: 'POST', url: '/v1/overrides', payload: override, headers: { ...json, origin: 'http://127.0.0.1:9400', host: '127.0.0.1:9400' } })).statusCode, 201, 'the console itself (same origin) may');
});

t.test('VERDICT_ADMIN_LOOPBACK=false: loopback needs the token too', async (t) => {
  const a = app({ VERDICT_ADMIN_TOKEN: TOKEN, VERDICT_ADMIN_LOOPBACK: 'false' });
  t.teardown(() => a.close());
  for (const url of READS) t.equal((await a.inject({ url })).statusCode, 401, url);
  t.equal((await a.inject({ url: '/console', headers: { authorization: `Bearer ${TOKEN}` } })).statusCode, 200);
});

/** A non-loopback IPv4 address of this machine, if it has one. */
function externalAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

t.test('real sockets: a non-loopback peer without the token is refused', async (t) => {
  const ext = externalAddress();
  if (!ext) {
    t.plan(0, 'this machine has no non-loopback IPv4 address to call from');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'verdict-admin-'));
  const secret = join(dir, 'gateway.secret');
  writeFileSync(secret, 'gateway-secret-0123456789abcdef0123456789\n', { mode: 0o600 });
  const port = await freePort();
  const svc = await startService({
    port,
    env: { VERDICT_LISTEN: `0.0.0.0:${port}`, VERDICT_GATEWAY_SECRET_FILE: secret, VERDICT_ADMIN_TOKEN: TOKEN, VERDICT_STATE_DIR: dir },
  });
  t.teardown(() => svc.stop());
  for (const path of READS) {
    const url = `http://${ext}:${port}${path}`;
    const refused = await ask(url, { localAddress: ext });
    t.equal(refused.status, 401, `${path} from ${ext} without the token`);
    t.equal((await ask(url, { localAddress: ext, headers: { authorization: `Bearer ${TOKEN}` } })).status, 200, `${path} from ${ext} with the token`);
    t.equal((await ask(`http://127.0.0.1:${port}${path}`)).status, 200, `${path} from loopback`);
  }
  const post = (addr: string, headers: Record<string, string>) =>
    ask(`http://${addr}:${port}/v1/overrides`, { method: 'POST', body: override, headers: { ...json, ...headers }, localAddress: addr === '127.0.0.1' ? undefined : addr });
  t.equal((await post(ext, {})).status, 401, 'a change from outside without the token');
  t.equal((await post('127.0.0.1', {})).status, 401, 'a change from loopback without the token (one is set)');
  t.equal((await post(ext, { authorization: `Bearer ${TOKEN}` })).status, 201, 'a change with the token');
});
