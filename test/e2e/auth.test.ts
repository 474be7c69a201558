// The trust boundary (issue 11), end to end: the real service with a gateway secret (every
// client proves it, loopback included) and admin access by token only (so this machine's
// 127.0.0.1 counts as "another address"), the
// real Lua gateway (HTTP and frames) and the njs gateway deciding with the secret, and every
// attack of the issue tried from outside and refused.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { freePort, startNginx } from '../../scripts/lib/nginx.ts';
import { gatewayKey, helloPayload, signHttp } from '../../decision-service/src/auth/gateway-auth.ts';
import { DecideRequestType } from '../../decision-service/src/wire/codec.ts';
import { ask, sumSeries } from '../helpers/http.ts';
import { startEchoUpstream } from '../helpers/servers.ts';
import { startService, type ServiceHandle } from '../helpers/service.ts';

const SECRET = 'gateway-secret-0123456789abcdef0123456789';
const ADMIN = 'admin-token-0123456789abcdef';
const key = gatewayKey(SECRET);
const dir = mkdtempSync(join(tmpdir(), 'verdict-auth-'));
const secretFile = join(dir, 'gateway.secret');
writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o644 });

let service: ServiceHandle;
let framePort: number;
t.before(async () => {
  framePort = await freePort();
  service = await startService({
    env: {
      VERDICT_GATEWAY_SECRET_FILE: secretFile,
      VERDICT_ADMIN_LOOPBACK: 'false',
      VERDICT_ADMIN_TOKEN: ADMIN,
      VERDICT_FRAME_LISTEN: `127.0.0.1:${framePort}`,
    },
  });
});
t.teardown(async () => { await service?.stop(); });

const url = () => `http://127.0.0.1:${service.port}`;
const victim = (over: Record<string, unknown> = {}) => ({
  request_id: `attack-${Math.random().toString(16).slice(2)}`, ts_ms: Date.now(), client_ip: '203.0.113.9', method: 'GET',
  host: 'shop.example', path: '/internal/admin/users', mode: 'INLINE', gateway_id: 'host/1234', ...over,
});

async function authFailures(): Promise<number> {
  const m = await (await fetch(`${url()}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
  return sumSeries(m, 'verdict_auth_failures_total');
}

t.test('attacks from an unauthenticated client are refused and counted', async (t) => {
  const before = await authFailures();
  const decide = await fetch(`${url()}/v1/decide`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(victim()) });
  t.equal(decide.status, 401, 'POST /v1/decide without proof');
  t.equal((await decide.json()).error.code, 'AUTH');

  const outcomes = {
    gateway_id: 'host/1234',
    outcomes: Array.from({ length: 5 }, (_, i) => ({ request_id: `forged-${i}`, ts_ms: Date.now(), client_ip: '198.51.100.7', method: 'POST', path: '/api/auth/login', status: 401, auth_result: 'failure' })),
  };
  t.equal((await fetch(`${url()}/v1/outcomes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(outcomes) })).status, 401, 'POST /v1/outcomes without proof');

  const forged = JSON.stringify(victim());
  const wrongKey = signHttp(gatewayKey('x'.repeat(40)), '/v1/decide', forged, Date.now());
  t.equal((await fetch(`${url()}/v1/decide`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-verdict-auth': wrongKey }, body: forged })).status, 401, 'signed with a key the service does not hold');
  const stale = signHttp(key, '/v1/decide', forged, Date.now() - 10 * 60_000);
  t.equal((await fetch(`${url()}/v1/decide`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-verdict-auth': stale }, body: forged })).status, 401, 'a replayed header ten minutes old');
  const other = signHttp(key, '/v1/decide', JSON.stringify(victim({ client_ip: '203.0.113.10' })), Date.now());
  t.equal((await fetch(`${url()}/v1/decide`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-verdict-auth': other }, body: forged })).status, 401, 'a header lifted from another body');

  t.equal((await fetch(`${url()}/v1/auth`, { headers: { 'x-original-uri': '/internal/x', 'x-real-ip': '203.0.113.9' } })).status, 401, 'GET /v1/auth without the bearer');
  t.equal((await fetch(`${url()}/metrics`)).status, 401, '/metrics without the admin token');
  t.equal((await fetch(`${url()}/v1/inventory`)).status, 401, '/v1/inventory without the admin token');

  // frames: a DECIDE with no HELLO, and a HELLO replayed from another connection
  const frame = (type: number, payload: Uint8Array) => {
    const b = Buffer.alloc(5 + payload.length);
    b.writeUInt32BE(payload.length + 1, 0);
    b[4] = type;
    Buffer.from(payload).copy(b, 5);
    return b;
  };
  const talk = (first: (challenge: Buffer) => Buffer) => new Promise<{ types: number[]; text: string; closed: boolean }>((resolve) => {
    const s = connect(framePort, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const types: number[] = [];
    let text = '';
    let sent = false;
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 5 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const len = buf.readUInt32BE(0);
        const type = buf[4] as number;
        const payload = buf.subarray(5, 4 + len);
        types.push(type);
        if (type === 15) text = payload.toString();
        if (type === 7 && !sent) { sent = true; s.write(first(Buffer.from(payload))); }
        buf = buf.subarray(4 + len);
      }
    });
    s.on('close', () => resolve({ types, text, closed: true }));
    s.on('error', () => {});
    setTimeout(() => { s.destroy(); resolve({ types, text, closed: false }); }, 2000);
  });
  const decideBytes = DecideRequestType.encode(DecideRequestType.fromObject({ ...victim(), mode: 0 })).finish();
  const noHello = await talk(() => frame(1, decideBytes));
  t.same(noHello.types, [7, 15], 'CHALLENGE, then an ERROR for the DECIDE');
  t.match(noHello.text, /^AUTH:/);
  t.ok(noHello.closed, 'and the connection is closed');
  const replayed = await talk(() => Buffer.concat([frame(8, helloPayload(key, Buffer.alloc(16, 1))), frame(1, decideBytes)]));
  t.same(replayed.types, [7, 15], 'a HELLO for another challenge is refused');
  const good = await talk((ch) => Buffer.concat([frame(8, helloPayload(key, ch)), frame(1, decideBytes)]));
  t.same(good.types.slice(0, 2), [7, 2], 'the right HELLO: CHALLENGE, then the VERDICT');

  t.ok(await authFailures() >= before + 9, 'every refusal counted in verdict_auth_failures_total');
});

t.test('authenticated, but the state cannot be poisoned', async (t) => {
  const post = async (path: string, body: unknown) => {
    const text = JSON.stringify(body);
    return fetch(`${url()}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-verdict-auth': signHttp(key, path, text, Date.now()) }, body: text });
  };
  // forged outcomes for requests the service never decided do not land on an identifier
  const forged = {
    gateway_id: 'forger/1',
    outcomes: Array.from({ length: 6 }, (_, i) => ({ request_id: `never-decided-${i}`, ts_ms: Date.now(), client_ip: `198.51.100.${i + 1}`, method: 'POST', path: '/api/auth/login', route_tag: 'auth', status: 401, auth_result: 'failure' })),
  };
  const ack = await post('/v1/outcomes', forged);
  t.equal(ack.status, 200);
  t.equal((await ack.json()).accepted, 0, 'no outcome accepted for a request the service did not decide');

  // ts_ms ten years ahead is clamped to the service clock: the decision is made "now"
  const future = await post('/v1/decide', victim({ ts_ms: Date.now() + 10 * 365 * 86_400_000, mode: 'ASYNC' }));
  t.equal(future.status, 200);
  const inv = await fetch(`${url()}/v1/inventory`, { headers: { authorization: `Bearer ${ADMIN}` } });
  t.equal(inv.status, 200, 'the inventory still answers (no date out of range)');
  const text = await inv.text();
  t.notOk(/"20(3[6-9]|[4-9]\d)-/.test(text), 'no time ten years ahead anywhere in the inventory');
});

for (const transport of ['http', 'frame'] as const) {
  t.test(`the Lua gateway decides with the secret (${transport})`, async (t) => {
    const upstream = await startEchoUpstream();
    const nginx = await startNginx({
      upstream: `127.0.0.1:${upstream.port}`,
      service: transport === 'frame' ? `frame:127.0.0.1:${framePort}` : `127.0.0.1:${service.port}`,
      init: { secret_file: secretFile, outcome_flush_ms: 100 },
      locations: 'location / { set $verdict_budget_ms 1000; include verdict-location.conf; proxy_pass http://verdict_app; }',
    });
    t.teardown(async () => { await nginx.stop(); await upstream.close(); });
    const before = await authFailures();
    for (let i = 0; i < 3; i++) {
      const ok = await ask(`${nginx.url}/`);
      t.equal(ok.status, 200);
      t.equal(JSON.parse(ok.body).headers['x-verdict-fail-open'], undefined, 'decided, not failed open');
      t.equal((await ask(`${nginx.url}/internal/admin/users`)).status, 403, 'blocked by the service');
    }
    t.equal(await authFailures(), before, 'no refusal for the real gateway');
  });
}

t.test('the njs gateway decides with the secret', async (t) => {
  const upstream = await startEchoUpstream();
  const nginx = await startNginx({
    variant: 'njs',
    upstream: `127.0.0.1:${upstream.port}`,
    service: `127.0.0.1:${service.port}`,
    extraHttp: `    js_var $verdict_secret "${SECRET}";\n`,
    locations: 'location / { set $verdict_budget_ms 1000; include verdict-njs-location.conf; proxy_pass http://verdict_app; }',
  });
  t.teardown(async () => { await nginx.stop(); await upstream.close(); });
  const ok = await ask(`${nginx.url}/`);
  t.equal(ok.status, 200);
  t.equal(JSON.parse(ok.body).headers['x-verdict-fail-open'], undefined, 'decided, not failed open');
  t.equal((await ask(`${nginx.url}/internal/admin/users`)).status, 403, 'blocked by the service');
});

t.test('a gateway without the secret is refused and fails open', async (t) => {
  const upstream = await startEchoUpstream();
  const nginx = await startNginx({
    upstream: `127.0.0.1:${upstream.port}`,
    service: `127.0.0.1:${service.port}`,
    locations: 'location / { set $verdict_budget_ms 1000; include verdict-location.conf; proxy_pass http://verdict_app; }',
  });
  t.teardown(async () => { await nginx.stop(); await upstream.close(); });
  const r = await ask(`${nginx.url}/internal/admin/users`);
  t.equal(r.status, 200, 'not decided: fails open');
  t.equal(JSON.parse(r.body).headers['x-verdict-fail-open'], 'http error');
});
