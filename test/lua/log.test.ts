// verdict.log inside nginx: at most one line per cause per interval, then the count of what was
// suppressed; and the line a failed side call leaves for the operator: the cause, what the socket
// (or the answer) said, and the instance, never anything of the request or a secret.
import t from 'tap';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DecideResponseType } from '../../decision-service/src/wire/codec.ts';
import { ask, sleep } from '../helpers/http.ts';
import { startEchoUpstream } from '../helpers/servers.ts';
import { startLuaNginx, startStandIn, type LuaNginx } from './harness.ts';

const HMAC_KEY = 'hmac-key-that-must-not-be-logged-0123';

const locations = `
    location = /log {
        content_by_lua_block {
            local cjson = require "cjson.safe"
            local log = require "verdict.log"
            log.set_interval(0.3)
            local out = {}
            for i = 1, 4 do out[#out + 1] = log.log(ngx.WARN, "suite-a", "line ", i) end
            out[#out + 1] = log.log(ngx.WARN, "suite-b", "other cause")
            ngx.sleep(0.35) ngx.update_time()
            out[#out + 1] = log.log(ngx.WARN, "suite-a", "after the interval")
            log.set_interval(5)
            ngx.print(cjson.encode(out))
        }
    }
    location = /interval {
        content_by_lua_block {
            ngx.req.read_body()
            require("verdict.log").set_interval(tonumber(ngx.req.get_body_data()))
            ngx.print("[]")
        }
    }
    location /g/ {
        set $verdict_budget_ms 100;
        set $verdict_identity_fields "username";
        include verdict-location.conf;
        proxy_pass http://verdict_app;
    }
    location /closed/ {
        set $verdict_budget_ms 100;
        set $verdict_fail closed;
        include verdict-location.conf;
        proxy_pass http://verdict_app;
    }`;

// what a request carries that must never reach the error log through our line
const MARKERS = ['PATHMARK', 'QUERYMARK', 'COOKIEMARK', 'TOKENMARK', 'APIKEYMARK', 'USERMARK', 'PASSWORDMARK', 'DEVICEMARK'];
function guarded(base: string, prefix = '/g/') {
  return ask(`${base}${prefix}PATHMARK?q=QUERYMARK`, {
    method: 'POST',
    headers: {
      cookie: 'sid=COOKIEMARK', authorization: 'Bearer TOKENMARK', 'x-api-key': 'APIKEYMARK',
      'x-device-id': 'DEVICEMARK', 'content-type': 'application/json',
    },
    body: JSON.stringify({ username: 'USERMARK', password: 'PASSWORDMARK' }),
  });
}

/** Our part of each error-log line ("verdict: …"), without the context nginx appends to every
 *  line (", client: …, request: …" during a request, ", context: ngx.timer" in a timer). */
function verdictLines(log: string, containing: string | RegExp): string[] {
  return log.split('\n').filter((l) => (typeof containing === 'string' ? l.includes(containing) : containing.test(l)))
    .map((l) => l.slice(l.indexOf('verdict: ')).replace(/, (client|context): .*$/, ''));
}

t.test('one line per cause per interval, then the count of suppressed lines', async (t) => {
  const lua = await startLuaNginx(t, { locations, init: { outcomes_enabled: false } });
  const r = await lua.post<boolean[]>('/log');
  t.same(r, [true, false, false, false, true, true]);
  t.same(verdictLines(lua.nginx.errorLog(), /verdict: (line|other cause|after the interval)/), [
    'verdict: line 1', 'verdict: other cause', 'verdict: after the interval (3 similar messages suppressed)',
  ]);
});

t.test('a failed decide call: cause, what happened and the instance; nothing of the request', async (t) => {
  const upstream = await startEchoUpstream();
  t.teardown(() => upstream.close());
  const service = await startStandIn(t, { status: 503 });
  const missing = join(tmpdir(), `verdict-missing-${process.pid}.sock`);
  const tcp = `127.0.0.1:${service.port}`;
  const lua = await startLuaNginx(t, {
    locations,
    upstream: `127.0.0.1:${upstream.port}`,
    // a refused instance hands the call to the next: every call ends at the stand-in while it listens
    service: `${tcp}, unix:${missing}`,
    init: { hmac_key: HMAC_KEY, breaker_failures: 1000, outcomes_enabled: false },
  });
  await lua.post('/interval', 0);
  const other = Buffer.from(DecideResponseType.encode(DecideResponseType.fromObject({ request_id: 'another-request', action: 3 })).finish());
  const cases: Array<[typeof service.mode, string]> = [
    [{ status: 503 }, `decide call to ${tcp} failed: http error (HTTP 503); failing open`],
    // the service's answer to a call whose deadline it saw pass: a timeout, not an error
    [{ status: 504 }, `decide call to ${tcp} failed: timeout (HTTP 504 DEADLINE); failing open`],
    ['no length', `decide call to ${tcp} failed: bad response (no Content-Length); failing open`],
    [{ status: 200, body: Buffer.from([0xff, 0xff, 0xff]) }, `decide call to ${tcp} failed: bad response (undecodable DecideResponse); failing open`],
    [{ status: 200, body: other }, `decide call to ${tcp} failed: bad response (verdict for another request); failing open`],
    ['hang', `decide call to ${tcp} failed: timeout (receive: timeout); failing open`],
  ];
  for (const [mode, line] of cases) {
    service.mode = mode;
    const r = await guarded(lua.nginx.url);
    t.equal(r.status, 200, 'failed open');
    t.same(verdictLines(lua.nginx.errorLog(), line), [`verdict: ${line}`], line);
  }
  service.mode = { status: 503 };
  t.equal((await guarded(lua.nginx.url, '/closed/')).status, 503, 'fail-closed location');
  t.same(verdictLines(lua.nginx.errorLog(), 'failing closed'), [`verdict: decide call to ${tcp} failed: http error (HTTP 503); failing closed`]);

  // nothing listens now: each call tries both instances and reports the last one it tried (the
  // calls start at each in turn); one line per cause per interval, then the suppressed count
  await lua.post('/interval', 0.5);
  await service.close();
  const refused = new RegExp(`^verdict: decide call to (${tcp.replace(/\./g, '\\.')}|unix:${missing}) failed: refused `
    + '\\(connect: (connection refused|no such file or directory)\\); failing open');
  for (let i = 0; i < 5; i++) t.equal((await guarded(lua.nginx.url)).status, 200);
  await sleep(550);
  t.equal((await guarded(lua.nginx.url)).status, 200);
  const lines = verdictLines(lua.nginx.errorLog(), 'failed: refused');
  t.equal(lines.length, 2, 'one line per interval');
  t.match(lines[0], new RegExp(`${refused.source}$`));
  t.match(lines[1], new RegExp(`${refused.source} \\(4 similar messages suppressed\\)$`));
  t.same(new Set(lines.map((l) => l.includes('unix:'))), new Set([true, false]), 'naming the instance tried last (the sixth call starts at the other one)');

  const ours = verdictLines(lua.nginx.errorLog(), 'verdict: ').join('\n');
  for (const secret of [...MARKERS, HMAC_KEY]) t.notOk(ours.includes(secret), `no ${secret} in the gateway's lines`);
});

t.test('a failed outcome batch: the same, with the number of outcomes dropped', async (t) => {
  const upstream = await startEchoUpstream();
  t.teardown(() => upstream.close());
  const missing = join(tmpdir(), `verdict-missing-${process.pid}.sock`);
  const lua = await startLuaNginx(t, {
    locations,
    upstream: `127.0.0.1:${upstream.port}`,
    service: `unix:${missing}`,
    // the third outcome fills a batch, which goes out at once; the flush timer never runs
    init: { hmac_key: HMAC_KEY, breaker_failures: 1000, outcome_batch_size: 3, outcome_flush_ms: 600000 },
  });
  for (let i = 0; i < 3; i++) t.equal((await guarded(lua.nginx.url)).status, 200);
  await sleep(200);
  const lines = verdictLines(lua.nginx.errorLog(), 'outcome batch to');
  t.same(lines, [`verdict: outcome batch to unix:${missing} failed: refused (connect: no such file or directory); 3 outcomes dropped`]);
  for (const secret of [...MARKERS, HMAC_KEY]) t.notOk(lines.join('\n').includes(secret), `no ${secret}`);
});

t.test('a failed decide call over frames: the ERROR frame\'s code only, or the unexpected type', async (t) => {
  const upstream = await startEchoUpstream();
  t.teardown(() => upstream.close());
  // answers every frame with `reply` (no CHALLENGE: the gateway has no secret)
  let reply = Buffer.alloc(0);
  const sockets = new Set<Socket>();
  const srv = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('data', () => sock.write(reply));
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => { for (const s of sockets) s.destroy(); srv.close(() => r()); }));
  const a = srv.address();
  const port = typeof a === 'object' && a ? a.port : 0;
  const frame = (type: number, payload: string) => {
    const head = Buffer.alloc(5);
    head.writeUInt32BE(Buffer.byteLength(payload) + 1, 0);
    head[4] = type;
    return Buffer.concat([head, Buffer.from(payload)]);
  };
  const lua = await startLuaNginx(t, {
    locations,
    upstream: `127.0.0.1:${upstream.port}`,
    service: `frame:127.0.0.1:${port}`,
    init: { transport: 'pool', breaker_failures: 1000, outcomes_enabled: false },
  });
  reply = frame(15, 'INVALID_FIELD: path: Too big PATHMARK');
  t.equal((await guarded(lua.nginx.url)).status, 200);
  t.same(verdictLines(lua.nginx.errorLog(), 'decide call'),
    [`verdict: decide call to frame:127.0.0.1:${port} failed: bad response (ERROR frame INVALID_FIELD); failing open`]);
  await lua.post('/interval', 0);
  reply = frame(15, 'DEADLINE: the gateway deadline passed before the decision started');
  t.equal((await guarded(lua.nginx.url)).status, 200);
  t.same(verdictLines(lua.nginx.errorLog(), 'ERROR frame DEADLINE'),
    [`verdict: decide call to frame:127.0.0.1:${port} failed: timeout (ERROR frame DEADLINE); failing open`], 'DEADLINE is a timeout');
  await lua.post('/interval', 0);
  reply = frame(9, '');
  t.equal((await guarded(lua.nginx.url)).status, 200);
  t.same(verdictLines(lua.nginx.errorLog(), 'unexpected frame type'),
    [`verdict: decide call to frame:127.0.0.1:${port} failed: bad response (unexpected frame type 9); failing open`]);
});
