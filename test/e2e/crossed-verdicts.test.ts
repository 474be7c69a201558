// Each request gets its own verdict, under concurrency, through one nginx worker.
//
// A stand-in decision service (the real wire codec, over HTTP and over frames) answers with a
// verdict that is a function of the request: BLOCK for paths under /b/, ALLOW elsewhere, and it
// echoes the request id. Two concurrent loads go through ONE nginx worker with a pool of 2, so
// most calls open fresh connections (the connect yields): /a/<n> must reach the upstream, /b/<n>
// must answer 403, and the service must never see a body it cannot decode. Any scratch state
// shared across a yield in the gateway breaks this (issue 10: one request's verdict applied to
// another, truncated bodies failing open). The mux transport (issue 15) runs the same loads over
// the worker's one long-lived connection: every call of the worker pipelined on it, answers
// matched in order; a stand-in that answers in its own order must never cross verdicts either.
import t from 'tap';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { request, Agent } from 'node:http';
import { DecideRequestType, DecideResponseType } from '../../decision-service/src/wire/codec.ts';
import { luaVariant } from '../helpers/variants.ts';
import { startEchoUpstream } from '../helpers/servers.ts';

interface Tally { good: number; malformed: number }

/** The verdict a request must get: a function of its path. */
function verdictFor(body: Buffer, tally: Tally): Buffer | null {
  let req: { request_id?: string; path?: string };
  try {
    req = DecideRequestType.decode(body) as unknown as { request_id?: string; path?: string };
  } catch {
    tally.malformed++;
    return null;
  }
  if (!req.path || !req.request_id) {
    tally.malformed++;
    return null;
  }
  tally.good++;
  const block = req.path.startsWith('/b/');
  return Buffer.from(DecideResponseType.encode(DecideResponseType.fromObject({
    request_id: req.request_id, action: block ? 3 : 0, score: block ? 90 : 0, reasons: block ? ['test.block'] : [],
  })).finish());
}

async function listen(srv: Server | ReturnType<typeof createHttpServer>): Promise<number> {
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const a = srv.address();
  return typeof a === 'object' && a ? a.port : 0;
}

function httpStandIn(tally: Tally) {
  const srv = createHttpServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      const out = verdictFor(Buffer.concat(parts), tally);
      if (!out) { res.writeHead(400, { 'content-length': 0 }); res.end(); return; }
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': out.length });
      res.end(out);
    });
  });
  srv.keepAliveTimeout = 60_000;
  return srv;
}

function frameStandIn(tally: Tally) {
  const sockets = new Set<Socket>();
  const srv = createTcpServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let pending = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4) {
        const len = pending.readUInt32BE(0);
        if (pending.length < 4 + len) break;
        const type = pending[4];
        const payload = pending.subarray(5, 4 + len);
        pending = pending.subarray(4 + len);
        const out = type === 1 ? verdictFor(payload, tally) : null;
        const body = out ?? Buffer.from('BAD_BODY: undecodable');
        const head = Buffer.alloc(5);
        head.writeUInt32BE(body.length + 1, 0);
        head[4] = out ? 2 : 15;
        sock.write(Buffer.concat([head, body]));
      }
    });
  });
  return { srv, destroyAll: () => { for (const s of sockets) s.destroy(); } };
}

interface LoadResult { sent: number; wrong: number; failedOpen: number; errors: number; examples: string[] }

/** `connections` concurrent loops of GETs to `${prefix}<n>` for `ms`; checks every answer. */
async function load(base: string, prefix: '/a/' | '/b/', connections: number, ms: number): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const r: LoadResult = { sent: 0, wrong: 0, failedOpen: 0, errors: 0, examples: [] };
  const until = Date.now() + ms;
  let n = 0;
  const one = () => new Promise<void>((resolve) => {
    const path = `${prefix}${n++}`;
    r.sent++;
    const req = request(`${base}${path}`, { agent, headers: { 'user-agent': 'crossed-verdict-test' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => {
        const reachedUpstream = res.statusCode === 200;
        const failOpen = reachedUpstream && body.includes('x-verdict-fail-open');
        if (failOpen) r.failedOpen++;
        const ok = prefix === '/a/' ? reachedUpstream && !failOpen : res.statusCode === 403;
        if (!ok) {
          r.wrong++;
          if (r.examples.length < 3) r.examples.push(`${path} -> ${res.statusCode} ${body.slice(0, 160)}`);
        }
        resolve();
      });
    });
    req.on('error', () => { r.errors++; resolve(); });
    req.end();
  });
  await Promise.all(Array.from({ length: connections }, async () => {
    while (Date.now() < until) await one();
  }));
  agent.destroy();
  return r;
}

for (const transport of ['http', 'frame', 'mux', 'mux-3'] as const) {
  t.test(`each request gets its own verdict under concurrency (${transport}, 1 worker, pool 2)`, async (t) => {
    const tally: Tally = { good: 0, malformed: 0 };
    const upstream = await startEchoUpstream();
    const stand = transport === 'http' ? { srv: httpStandIn(tally), destroyAll: () => {} } : frameStandIn(tally);
    const port = await listen(stand.srv);
    const mux = transport.startsWith('mux');
    const nginx = await luaVariant.start({
      upstream: `127.0.0.1:${upstream.port}`,
      service: `${transport === 'http' ? '' : 'frame:'}127.0.0.1:${port}`,
      workers: 1,
      // a small pool: most calls open a fresh connection (sock:connect yields); mux: every call
      // of the worker on one (or three) long-lived connections
      init: {
        pool_size: 2, outcomes_enabled: false, breaker_failures: 100000,
        ...(mux ? { transport: 'mux', mux_connections: transport === 'mux-3' ? 3 : 1 } : { transport: 'pool' }),
      },
      locations: `
    set $verdict_budget_ms 2000;
    location /a/ { {{guard}} }
    location /b/ { {{guard}} }`,
    });
    t.teardown(async () => {
      await nginx.stop();
      stand.destroyAll();
      await new Promise<void>((r) => stand.srv.close(() => r()));
      await upstream.close();
    });

    const [a, b] = await Promise.all([load(nginx.url, '/a/', 48, 2500), load(nginx.url, '/b/', 48, 2500)]);
    t.ok(a.sent > 200 && b.sent > 200, `enough traffic to interleave (${a.sent} allowed-path, ${b.sent} blocked-path requests)`);
    t.equal(tally.malformed, 0, `the service decoded every body (${tally.good} good, ${tally.malformed} malformed)`);
    t.equal(a.wrong, 0, `every /a/ request reached the upstream, decided ALLOW (${a.wrong} wrong: ${a.examples.join(' | ')})`);
    t.equal(b.wrong, 0, `every /b/ request was blocked (${b.wrong} wrong: ${b.examples.join(' | ')})`);
    t.equal(a.failedOpen + b.failedOpen, 0, 'nothing failed open');
    t.equal(a.errors + b.errors, 0, 'no client socket errors');
  });
}
