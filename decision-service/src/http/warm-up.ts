// Warm-up before listening: a fresh process compiles each function on its first call and runs it
// in V8's interpreter for a while, so the first real decisions after a start or restart took
// 10-20 ms — most of a gateway budget, and enough to open its breaker under a burst. Synthetic
// requests for every route of the policy (every route class), in both encodings over HTTP and
// over a framed connection, with outcome batches, run through a *throwaway* app (its own
// engine, memory store, handlers and metrics registry) that the caller closes afterwards. The
// compiled and optimised code is shared with the real app; its state and counters are not
// touched.

import { Agent, request } from 'node:http';
import { connect, type Server } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { CompiledPolicy } from '../config/policy.ts';
import { DecideRequestType, OutcomeBatchType } from '../wire/codec.ts';
import { FRAME, frame } from '../wire/frame-server.ts';

type Fields = Record<string, unknown>;

const BROWSER_HEADERS = ['host', 'user-agent', 'accept', 'accept-language', 'accept-encoding', 'referer', 'cookie', 'sec-fetch-site', 'sec-fetch-mode'];
const CLIENT_HEADERS = ['host', 'user-agent', 'accept', 'content-type', 'authorization'];
const AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
  'okhttp/4.12.0',
  'curl/8.5.0',
  'python-requests/2.32.3',
];

/** A concrete path for a policy pattern ("/api/orders/{id}" → "/api/orders/1042"). */
function samplePath(pattern: string, i: number): string {
  return pattern.replace(/\{[^}]+\}/g, String(1000 + (i % 97))).replace(/\*\*/g, `w/${i % 5}`).replace(/\*/g, 'w');
}

function hash(i: number, salt: number): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt32BE(i, 0);
  b.writeUInt32BE(salt, 4);
  return b;
}

/** The i-th synthetic DecideRequest: cycles through routes, probes, clients, modes and credentials. */
export function syntheticRequest(policy: CompiledPolicy, i: number, nowMs: number): Fields {
  const routes = policy.doc.routes;
  const extra = ['/', '/.env', '/api/search', '/nope/123', '/api/orders/7'];
  const k = i % (routes.length + extra.length);
  const route = routes[k];
  const path = route ? samplePath(route.path, i) : (extra[k - routes.length] as string);
  const method = route?.methods?.[i % route.methods.length] ?? (i % 3 === 0 ? 'POST' : 'GET');
  const browser = i % 2 === 0;
  const authed = i % 3 !== 0;
  const identity = route?.class === 'identity';
  return {
    request_id: `warm-${i}`,
    ts_ms: nowMs,
    // A few addresses (some v6) so per-key state gets both new and repeat keys.
    client_ip: i % 7 === 0 ? `2001:db8::${(i % 13).toString(16)}` : `198.51.100.${i % 29}`,
    method,
    host: 'warm-up.invalid',
    path,
    query: i % 11 === 0 ? "id=1' OR '1'='1" : i % 2 ? `page=${i % 9}` : '',
    route_tag: route?.route_tag ?? '',
    http_version: '1.1',
    user_agent: AGENTS[i % AGENTS.length],
    accept: browser ? 'text/html,application/xhtml+xml' : 'application/json',
    accept_language: browser ? 'en-US,en;q=0.9' : '',
    header_names: browser ? BROWSER_HEADERS : CLIENT_HEADERS,
    cookie_names: browser ? ['sid', 'theme'] : [],
    has_authorization: authed,
    auth_scheme: authed ? 'bearer' : '',
    session_hash: browser ? hash(i % 17, 1) : undefined,
    token_hash: authed ? hash(i % 23, 2) : undefined,
    device_hash: i % 4 === 0 ? hash(i % 5, 3) : undefined,
    identifier: identity ? `1380000${String(i % 1000).padStart(4, '0')}` : '',
    password_hash: identity ? hash(i % 3, 4) : undefined,
    mode: i % 10 === 9 ? 2 : i % 5 === 4 ? 1 : 0,
    gateway_id: 'warm-up/1',
    budget_ms: i % 5 === 4 ? 0 : 25,
  };
}

function jsonRequest(f: Fields): Fields {
  const out: Fields = { ...f, mode: ['INLINE', 'ASYNC', 'MONITOR'][f.mode as number] };
  for (const k of ['session_hash', 'token_hash', 'device_hash', 'password_hash']) {
    const v = out[k];
    if (Buffer.isBuffer(v)) out[k] = v.toString('base64');
    else delete out[k];
  }
  return out;
}

function outcomesFor(policy: CompiledPolicy, from: number, n: number, nowMs: number): Fields[] {
  const statuses = [200, 401, 404, 409, 200, 429, 201, 403];
  const out: Fields[] = [];
  for (let i = from; i < from + n; i++) {
    const r = syntheticRequest(policy, i, nowMs);
    out.push({
      request_id: r.request_id, ts_ms: nowMs, client_ip: r.client_ip, method: r.method, path: r.path,
      route_tag: r.route_tag, status: statuses[i % statuses.length], upstream_ms: 3, bytes_sent: 512,
      auth_result: i % 4 === 1 ? 'fail' : '', request: i % 3 === 0 ? { ...r, mode: 1, budget_ms: 0 } : undefined,
    });
  }
  return out;
}

const encode = (f: Fields): Buffer => Buffer.from(DecideRequestType.encode(DecideRequestType.fromObject(f)).finish());

type Post = (url: string, contentType: string, body: Buffer | string, accept?: string) => Promise<void>;

/**
 * POSTs over a real loopback keep-alive connection, so node's HTTP server code warms up too;
 * app.inject (no socket) when listening is impossible.
 */
async function poster(app: FastifyInstance): Promise<{ post: Post; close(): void }> {
  try {
    await app.listen({ host: '127.0.0.1', port: 0 });
  } catch {
    return {
      post: async (url, contentType, body, accept) => {
        await app.inject({ method: 'POST', url, payload: body, headers: { 'content-type': contentType, ...(accept ? { accept } : {}) } });
      },
      close: () => {},
    };
  }
  const { port } = app.server.address() as { port: number };
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const post: Post = (url, contentType, body, accept) =>
    new Promise<void>((resolve, reject) => {
      const headers: Record<string, string | number> = { 'content-type': contentType, 'content-length': Buffer.byteLength(body) };
      if (accept) headers.accept = accept;
      const req = request({ host: '127.0.0.1', port, path: url, method: 'POST', agent, headers }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end(body);
    });
  return { post, close: () => agent.destroy() };
}

/** Sends `frames` on one loopback connection to `server` (listening on an ephemeral port). */
async function overFrames(server: Server, frames: Buffer[]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  try {
    const { port } = server.address() as { port: number };
    await new Promise<void>((resolve, reject) => {
      const s = connect(port, '127.0.0.1');
      let answered = 0;
      let pending: Buffer = Buffer.alloc(0);
      s.on('connect', () => s.write(Buffer.concat(frames)));
      s.on('data', (d: Buffer) => {
        pending = pending.length ? Buffer.concat([pending, d]) : d;
        let off = 0;
        while (pending.length - off >= 5 && pending.length - off >= 4 + pending.readUInt32BE(off)) {
          if (pending[off + 4] !== FRAME.CHALLENGE) answered++; // the greeting is no answer
          off += 4 + pending.readUInt32BE(off);
        }
        pending = pending.subarray(off);
        if (answered >= frames.length) s.end(resolve);
      });
      s.on('error', reject);
    });
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/**
 * Runs about `count` synthetic decisions (and outcome batches) through `target`: a third each as
 * JSON and protobuf over HTTP and as frames, over loopback connections. Use a throwaway app: its
 * state and metrics get the synthetic traffic. The caller closes it.
 */
export async function warmUp(target: { app: FastifyInstance; frameServer: Server }, policy: CompiledPolicy, count: number): Promise<void> {
  if (count <= 0) return;
  const { post, close } = await poster(target.app);
  const now = Date.now();
  const third = Math.ceil(count / 3);
  try {
    for (let i = 0; i < third; i++) {
      await post('/v1/decide', 'application/json', JSON.stringify(jsonRequest(syntheticRequest(policy, i, now))));
      await post('/v1/decide', 'application/x-protobuf', encode(syntheticRequest(policy, i + third, now)), i % 2 ? 'application/x-protobuf' : 'application/json');
      if (i % 25 === 24) {
        const outcomes = outcomesFor(policy, i, 25, now);
        const json = { gateway_id: 'warm-up/1', outcomes: outcomes.map((o) => (o.request ? { ...o, request: jsonRequest(o.request as Fields) } : o)) };
        await post('/v1/outcomes', 'application/json', JSON.stringify(json));
        await post('/v1/outcomes', 'application/x-protobuf', Buffer.from(OutcomeBatchType.encode(OutcomeBatchType.fromObject({ gateway_id: 'warm-up/1', outcomes })).finish()));
      }
    }
  } finally {
    close();
  }
  const frames: Buffer[] = [];
  for (let i = 0; i < third; i++) {
    frames.push(frame(FRAME.DECIDE, encode(syntheticRequest(policy, i + 2 * third, now))));
    if (i % 50 === 49) {
      const batch = { gateway_id: 'warm-up/1', outcomes: outcomesFor(policy, i, 50, now) };
      frames.push(frame(FRAME.OUTCOMES, OutcomeBatchType.encode(OutcomeBatchType.fromObject(batch)).finish()));
    }
  }
  frames.push(frame(FRAME.PING, new Uint8Array(0)));
  await overFrames(target.frameServer, frames);
}
