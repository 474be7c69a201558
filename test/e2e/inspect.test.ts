// Issue 17, response inspection end to end: real nginx with the Lua gateway, the real decision
// service, and an upstream answering JSON with phone numbers, ID numbers, cards and e-mail
// addresses (masked and not, some written in pieces that cut values in two). The gateway's
// outcome batches are read on the wire by a capture proxy between nginx and the service (it
// forwards every call unchanged and decodes each OutcomeBatch with the service's proto): the
// gateway's wire contract. Checked: each inspected response's ResponseSample equals the TS
// reference's for the same body; the client gets the upstream's bytes unchanged; non-JSON,
// compressed, HEAD, `$verdict_inspect off` and unlucky `auto` responses carry no sample; no raw
// value reaches nginx's error log.
import t from 'tap';
import { createServer, request, type Server } from 'node:http';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { startNginx, type NginxHandle } from '../../scripts/lib/nginx.ts';
import { OutcomeBatchType } from '../../decision-service/src/wire/codec.ts';
import { inspectResponse } from '../../decision-service/src/gateway/sensitive.ts';
import type { ResponseSample } from '../../decision-service/src/wire/schema.ts';
import { ask, sleep } from '../helpers/http.ts';
import { startService, testPolicy, type ServiceHandle } from '../helpers/service.ts';

const HMAC_KEY = 'inspect-e2e-hmac-key-0123456789';
const RAW = ['13812345678', '15900001111', '11010519491231002X', '4111111111111111', 'zhang.san@example.com', '6222021234567894'];

// ------------------------------------------------------------------ upstream

const users = JSON.stringify({
  users: [
    { id: 1, name: '张三', phone: '13812345678', id_no: '11010519491231002X', email: 'Zhang.San@Example.com' },
    { id: 2, name: '李四', phone: '15900001111', card: '4111 1111 1111 1111', email: 'l***@example.com' },
    { id: 3, name: '王五', phone: '138****5678', card: '6222 **** **** 1234', ref: 'order-213812345678' },
  ],
});
// written in pieces that cut a phone number, a card and an e-mail address in two
const pieces = ['{"items":[{"phone":"1381', '2345678","card":"62220212', '34567894"},{"mail":"zhang.san@exa', 'mple.com"},{"phone":"13812345678"}]}'];
const big = JSON.stringify({ rows: Array.from({ length: 400 }, (_, i) => ({ i, phone: `139${String(10_000_000 + i).padStart(8, '0')}`, note: 'x'.repeat(40) })) });

function upstreamHandler(url: string): { type: string; body: string | string[]; encoding?: string } {
  const path = url.split('?')[0] ?? '';
  if (path.endsWith('/users')) return { type: 'application/json; charset=utf-8', body: users };
  if (path.endsWith('/pieces')) return { type: 'application/json', body: pieces };
  if (path.endsWith('/big')) return { type: 'application/json', body: big };
  if (path.endsWith('/problem')) return { type: 'application/problem+json', body: '{"detail":"call 13812345678"}' };
  if (path.endsWith('/text')) return { type: 'text/plain', body: 'call 13812345678' };
  if (path.endsWith('/gzip')) return { type: 'application/json', body: '{"phone":"13812345678"}', encoding: 'x-test' };
  return { type: 'application/json', body: '{"ok":true}' };
}

async function startUpstream(): Promise<Server> {
  const srv = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const a = upstreamHandler(req.url ?? '/');
      const headers: Record<string, string> = { 'content-type': a.type };
      if (a.encoding) headers['content-encoding'] = a.encoding;
      if (typeof a.body === 'string') {
        res.writeHead(200, { ...headers, 'content-length': String(Buffer.byteLength(a.body)) });
        res.end(req.method === 'HEAD' ? undefined : a.body);
        return;
      }
      res.writeHead(200, headers); // chunked: each piece a separate write, 30 ms apart
      const parts = a.body;
      let i = 0;
      const next = () => {
        if (i === parts.length) { res.end(); return; }
        res.write(parts[i++]);
        setTimeout(next, 30);
      };
      next();
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return srv;
}

// ------------------------------------------------------------------ capture proxy

interface Captured { request_id: string; path: string; response?: ResponseSample }

/** Forwards every call to the service unchanged; decodes the OutcomeBatches passing through. */
async function startCapture(service: string): Promise<{ server: Server; addr: string; outcomes: Captured[]; versions: string[]; raw: Buffer[] }> {
  const [host, port] = service.split(':');
  const outcomes: Captured[] = [];
  const versions: string[] = [];
  const raw: Buffer[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      raw.push(body);
      if (req.url?.startsWith('/v1/outcomes')) {
        const batch = OutcomeBatchType.toObject(OutcomeBatchType.decode(body), { longs: Number, defaults: true }) as {
          patterns_version?: string; outcomes?: Array<{ request_id: string; path: string; response?: ResponseSample }>;
        };
        versions.push(batch.patterns_version ?? '');
        for (const o of batch.outcomes ?? []) outcomes.push({ request_id: o.request_id, path: o.path, response: o.response ?? undefined });
      }
      const up = request({ host, port: Number(port), method: req.method, path: req.url, headers: req.headers }, (ur) => {
        const out: Buffer[] = [];
        ur.on('data', (c: Buffer) => out.push(c));
        ur.on('end', () => {
          const answer = Buffer.concat(out);
          const headers = { ...ur.headers };
          delete headers['transfer-encoding'];
          headers['content-length'] = String(answer.length);
          res.writeHead(ur.statusCode ?? 502, headers);
          res.end(answer);
        });
      });
      up.on('error', () => res.destroy());
      up.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, addr: `127.0.0.1:${(server.address() as AddressInfo).port}`, outcomes, versions, raw };
}

// ------------------------------------------------------------------ the stack

// a loaded CI box and a proxy in between: a generous budget, so no call fails open
const guard = 'set $verdict_budget_ms 2000;\n        include verdict-location.conf;\n        proxy_pass http://verdict_app;';
const locations = `
    location /all/ {
        # monitor: the service decides every call (it would refuse these credential-less API
        # calls), the gateway lets them through and inspects what the upstream answers
        set $verdict_mode monitor;
        set $verdict_inspect all;
        proxy_buffering off;
        ${guard}
    }
    location /small/ {
        set $verdict_mode monitor;
        set $verdict_inspect all;
        ${guard}
    }
    location /off/ {
        set $verdict_mode monitor;
        set $verdict_inspect off;
        ${guard}
    }
    location /sampled/ {
        set $verdict_mode async;
        ${guard}
    }
    location /blocked/ {
        set $verdict_inspect all;
        ${guard}
    }
    location /never/ {
        set $verdict_mode monitor;
        set $verdict_inspect 0;
        ${guard}
    }`;

let service: ServiceHandle;
let upstream: Server;
let capture: Awaited<ReturnType<typeof startCapture>>;
let nginx: NginxHandle;
let smallNginx: NginxHandle;

t.before(async () => {
  upstream = await startUpstream();
  service = await startService();
  capture = await startCapture(service.addr);
  const common = {
    upstream: `127.0.0.1:${(upstream.address() as AddressInfo).port}`, service: capture.addr, locations, hmacKey: HMAC_KEY, workers: 1,
  };
  // inspect_sample 1: `auto` requests decided without a call (async here) are all inspected
  nginx = await startNginx({ ...common, init: { outcome_flush_ms: 100, inspect_sample: 1, transport: 'pool' }, logLevel: 'info' });
  smallNginx = await startNginx({ ...common, init: { outcome_flush_ms: 100, inspect_max_bytes: 256, transport: 'pool' } });
  t.teardown(async () => {
    await nginx.stop();
    await smallNginx.stop();
    capture.server.closeAllConnections();
    capture.server.close();
    await service.stop();
    upstream.closeAllConnections();
    upstream.close();
  });
});

const key = Buffer.from(HMAC_KEY, 'utf8');
const hex = (s?: ResponseSample) => s && { ...s, findings: s.findings.map((f) => ({ ...f, value_hashes: f.value_hashes.map((b) => Buffer.from(b).toString('hex')) })) };
// a browser's headers from a fresh loopback address per request: the default policy judges
// header-less bursts from one address as a bot, and this test is about responses, not verdicts
const BROWSER = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36', accept: 'application/json', 'accept-language': 'zh-CN,zh;q=0.9', 'accept-encoding': 'gzip, deflate, br' };
let client = 10;
const get = (url: string, method = 'GET') => ask(url, { method, headers: BROWSER, localAddress: `127.0.${Math.floor(++client / 250)}.${client % 250 + 2}` });
const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

/** The outcome of the request whose answer carried `id` (X-Request-Id is not echoed: match by path + order). */
async function outcomeFor(path: string, count = 1): Promise<Captured[]> {
  for (let i = 0; i < 50; i++) {
    const found = capture.outcomes.filter((o) => o.path === path);
    if (found.length >= count) return found;
    await sleep(50);
  }
  return capture.outcomes.filter((o) => o.path === path);
}

t.test('an inspected JSON response: the sample equals the reference, the client gets the upstream bytes', async (t) => {
  const r = await get(`${nginx.url}/all/users?limit=20&page_size=x`);
  t.equal(r.status, 200);
  t.equal(sha(r.body), sha(users), 'the body reaches the client unchanged');
  const [o] = await outcomeFor('/all/users');
  t.ok(o?.response, 'the outcome carries a ResponseSample');
  t.same(hex(o?.response), hex(inspectResponse(users, { key, requestedLimit: 20 })), 'as the TS reference computes it');
  const kinds = Object.fromEntries((o?.response?.findings ?? []).map((f) => [f.kind, [f.unmasked, f.masked, f.value_hashes.length]]));
  t.same(kinds, { cn_id: [1, 0, 1], cn_mobile: [2, 1, 2], bank_card: [1, 1, 1], email: [1, 1, 1] }, 'counts per kind');
  t.equal(o?.response?.records, 4);
  t.equal(o?.response?.requested_limit, 20, 'limit read, page_size not a number');
});

t.test('a response in pieces that cut values in two: each value found once', async (t) => {
  const r = await get(`${nginx.url}/all/pieces`);
  t.equal(r.body, pieces.join(''), 'the pieces reach the client unchanged');
  const [o] = await outcomeFor('/all/pieces');
  t.same(hex(o?.response), hex(inspectResponse(pieces.join(''), { key })));
  const kinds = Object.fromEntries((o?.response?.findings ?? []).map((f) => [f.kind, f.unmasked]));
  t.same(kinds, { cn_mobile: 2, bank_card: 1, email: 1 });
});

t.test('inspect_max_bytes: a long body is scanned up to the limit and says so; the client still gets all of it', async (t) => {
  const r = await get(`${smallNginx.url}/small/big`);
  t.equal(sha(r.body), sha(big), 'the whole body reaches the client');
  const [o] = await outcomeFor('/small/big');
  t.equal(o?.response?.inspected_bytes, 256);
  t.equal(o?.response?.truncated, true);
  t.same(hex(o?.response), hex(inspectResponse(big, { key, maxBytes: 256 })));
});

t.test('+json content types are inspected; auto with inspect_sample 1 inspects requests decided without a call', async (t) => {
  await get(`${nginx.url}/all/problem`);
  await get(`${nginx.url}/sampled/users`);
  const [p] = await outcomeFor('/all/problem');
  t.equal(p?.response?.findings[0]?.kind, 'cn_mobile', 'application/problem+json');
  const [s] = await outcomeFor('/sampled/users');
  t.same(hex(s?.response), hex(inspectResponse(users, { key })), 'async + auto + inspect_sample 1');
});

t.test('not inspected: non-JSON, a compressed body, HEAD, $verdict_inspect off or 0', async (t) => {
  const text = await get(`${nginx.url}/all/text`);
  t.equal(text.body, 'call 13812345678');
  const gz = await get(`${nginx.url}/all/gzip`);
  t.equal(gz.body, '{"phone":"13812345678"}');
  await get(`${nginx.url}/all/users`, 'HEAD');
  const off = await get(`${nginx.url}/off/users`);
  t.equal(sha(off.body), sha(users));
  await get(`${nginx.url}/never/users`);
  for (const path of ['/all/text', '/all/gzip', '/off/users', '/never/users']) {
    const [o] = await outcomeFor(path);
    t.ok(o, `${path}: an outcome was sent`);
    t.equal(o?.response, undefined, `${path}: without a sample`);
  }
  // the HEAD outcome shares its path with the GET of the first test: both there, one sample
  const heads = await outcomeFor('/all/users', 2);
  t.equal(heads.filter((o) => o.response).length, 1, 'HEAD /all/users: no sample');
  t.ok(capture.versions.every((v) => v === ''), 'batches name no pattern version while the service sends none');
});

t.test('Verdict\'s own answer (a block) is not inspected', async (t) => {
  const r = await get(`${nginx.url}/blocked/users`);
  t.equal(r.status, 403, 'the default policy refuses a credential-less call to an unknown API route');
  t.match(r.body, /"error":"blocked"/);
  const [o] = await outcomeFor('/blocked/users');
  t.ok(o, 'its outcome was sent');
  t.equal(o?.response, undefined, 'without a sample');
});

t.test('no raw value reaches the error log (at info level) or the wire', async (t) => {
  await sleep(200);
  const log = nginx.errorLog() + smallNginx.errorLog();
  for (const v of RAW) t.notOk(log.includes(v), `${v.slice(0, 3)}… not in the error log`);
  const wire = Buffer.concat(capture.raw).toString('latin1');
  t.ok(capture.raw.length > 5, 'calls and batches were captured');
  for (const v of RAW) t.notOk(wire.includes(v), `${v.slice(0, 3)}… not in a call or outcome batch`);
  t.notMatch(log, /\[error\]/, 'no error logged');
});

t.test('policy patterns reach the gateway once and stay: an ack that names no version changes nothing', async (t) => {
  const policy = testPolicy([['  patterns: []', '  patterns: [{ name: employee_id, regex: "EMP[0-9]{6}" }]']]);
  const svc = await startService({ policy });
  const cap = await startCapture(svc.addr);
  const ng = await startNginx({
    upstream: `127.0.0.1:${(upstream.address() as AddressInfo).port}`, service: cap.addr, locations, hmacKey: HMAC_KEY, workers: 1,
    init: { outcome_flush_ms: 100, transport: 'pool' }, logLevel: 'notice',
  });
  t.teardown(async () => {
    await ng.stop();
    cap.server.closeAllConnections();
    cap.server.close();
    await svc.stop();
  });
  // a dozen flush ticks: the first batch names no version, the service answers with its
  // patterns, every later batch names that version and its ack (no change) names none
  await sleep(1500);
  const named = cap.versions.filter((v) => v !== '');
  t.ok(cap.versions.length >= 8 && named.length >= cap.versions.length - 2, `batches: ${cap.versions.join(' ') || '(none)'}`);
  t.equal(cap.versions.indexOf('', cap.versions.indexOf(named[0] ?? '')), -1, 'once installed, no batch goes back to no version');
  t.equal(new Set(named).size, 1, 'one version throughout');
  t.equal(ng.errorLog().match(/sensitive patterns version \S+ installed/g)?.length, 1, 'installed once');
});

// last: it adds outcomes for /all/users, which the tests above count
t.test('the requested limit: argument names in any case (as nginx matches them), 0 without one', async (t) => {
  for (const [query, want] of [['?Per_Page=7&x=1', 7], ['?q=limits', 0], ['', 0]] as const) {
    const before = capture.outcomes.filter((o) => o.path === '/all/users').length;
    t.equal((await get(`${nginx.url}/all/users${query}`)).status, 200);
    const all = await outcomeFor('/all/users', before + 1);
    t.equal(all[before]?.response?.requested_limit, want, `${query || 'no query'}: ${want}`);
  }
});
