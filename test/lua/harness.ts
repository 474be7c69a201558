// Runs Lua module code inside a real nginx (the modules need ngx.*, cosockets, timers and the
// shared dicts), for the test/lua suites: one nginx per suite, one worker (so a test location
// and the timers it watches share the per-worker state), and a switchable stand-in decision
// service for the suites whose code makes side calls.
import type { Test } from 'tap';
import { createServer, type Server, type Socket } from 'node:net';
import { startNginx, type NginxHandle, type InitValue } from '../../scripts/lib/nginx.ts';

export interface LuaNginx {
  nginx: NginxHandle;
  /** POSTs `body` as JSON to a test location and returns its JSON answer (throws on non-200). */
  post<T = unknown>(path: string, body?: unknown): Promise<T>;
}

/** Starts nginx with `locations` (they may include verdict-location.conf); stopped at teardown. */
export async function startLuaNginx(t: Test, o: { locations: string; service?: string; upstream?: string; init?: Record<string, InitValue> }): Promise<LuaNginx> {
  const nginx = await startNginx({
    upstream: o.upstream ?? '127.0.0.1:9',
    service: o.service ?? '127.0.0.1:9',
    locations: o.locations,
    init: o.init,
    workers: 1,
  });
  t.teardown(() => nginx.stop());
  const post = async <T,>(path: string, body: unknown = {}): Promise<T> => {
    const r = await fetch(`${nginx.url}${path}`, { method: 'POST', body: JSON.stringify(body) });
    if (r.status !== 200) throw new Error(`${path}: ${r.status} ${await r.text()}\n${nginx.errorLog().slice(-2000)}`);
    return (await r.json()) as T;
  };
  return { nginx, post };
}

/** What the stand-in does with each HTTP request: answer 200 with this body, answer another
 *  status, answer without Content-Length, or never answer. */
export type StandInMode = { status: number; body?: Buffer } | 'no length' | 'hang';

export interface StandIn {
  port: number;
  mode: StandInMode;
  /** every request received: path, body, ms since the stand-in started */
  requests: Array<{ path: string; body: Buffer; at: number }>;
  close(): Promise<void>;
}

/**
 * A stand-in decision service speaking just enough HTTP/1.1 (keep-alive, Content-Length bodies)
 * for the gateway's client; `mode` may be changed between requests.
 */
export async function startStandIn(t: Test, mode: StandInMode): Promise<StandIn> {
  const started = Date.now();
  const sockets = new Set<Socket>();
  const state: StandIn = { port: 0, mode, requests: [], close: async () => {} };
  const srv: Server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const len = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        const body = buf.subarray(end + 4, end + 4 + len);
        buf = buf.subarray(end + 4 + len);
        state.requests.push({ path: head.split(' ')[1] ?? '', body, at: Date.now() - started });
        const m = state.mode;
        if (m === 'hang') continue;
        if (m === 'no length') { sock.write('HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n\r\n'); continue; }
        const out = m.body ?? Buffer.alloc(0);
        sock.write(`HTTP/1.1 ${m.status} X\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${out.length}\r\n\r\n`);
        sock.write(out);
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const a = srv.address();
  state.port = typeof a === 'object' && a ? a.port : 0;
  let closed = false;
  state.close = async () => {
    if (closed) return;
    closed = true;
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  };
  t.teardown(() => state.close());
  return state;
}
