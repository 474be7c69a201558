// HTTP driver: sends a traffic file through a running stack (nginx + Verdict Lua script +
// decision service + demo shop, e.g. `npm run demo`) at a bounded rate, each request from a
// loopback source address derived from the line's IP (127.0.0.0/8, bound per request), so nginx
// sees many clients. Only ever talks to 127.0.0.0/8.
//
//   tsx bench/traffic/http-driver.ts FILE.jsonl [--url http://127.0.0.1:8080] [--rate 200] [--max 5000]
//   tsx bench/traffic/http-driver.ts FILE.jsonl --stack      (starts shop + service + nginx itself)
//
// Limits: time is real, not the file's (a file of hours is sent in seconds, so windows and TTLs
// behave differently than in replay); sim.token_user sessions are not opened (those requests
// get the shop's 401); nginx sees the loopback address, not the line's IP.

import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, startNginx, type NginxHandle } from '../../scripts/lib/nginx.ts';
import { startServiceChild } from '../../scripts/lib/service.ts';
import { startShop, type RunningShop } from '../../scripts/demo-shop/app.ts';
import { hash32 } from './rng.ts';
import { parseTrafficText, type TrafficLine } from './format.ts';
import { lineBody } from './to-request.ts';

/** A stable loopback address for a simulated client IP: 127.a.b.c, never 127.0.0.x. */
export function loopbackFor(ip: string): string {
  const h = hash32(ip);
  return `127.${1 + (h % 254)}.${(h >>> 8) & 0xff}.${1 + ((h >>> 16) % 254)}`;
}

export interface DriveOptions {
  /** http://127.x.y.z:port of nginx */
  url: string;
  /** requests per second (bounded) */
  rate: number;
  /** at most this many requests */
  max: number;
}

export interface DriveResult {
  sent: number;
  statuses: Record<string, number>;
  /** per line: the status the client got (0 = transport error) */
  perLine: number[];
}

function assertLoopback(url: URL): void {
  if (!/^127\.\d+\.\d+\.\d+$/.test(url.hostname) && url.hostname !== 'localhost') {
    throw new Error(`the HTTP driver only sends to 127.0.0.0/8 (got ${url.hostname})`);
  }
}

function send(url: URL, line: TrafficLine, tokens: Map<string, string>): Promise<{ status: number; body: string }> {
  const headers: Record<string, string> = {};
  for (const [n, v] of line.headers) {
    if (n === 'content-length' || n === 'connection' || n === 'host') continue;
    headers[n] = headers[n] === undefined ? v : `${headers[n]}, ${v}`;
  }
  headers.host = line.host || url.host;
  if (headers.authorization?.startsWith('Bearer ')) {
    const name = headers.authorization.slice(7).trim();
    headers.authorization = `Bearer ${tokens.get(name) ?? name}`;
  }
  const payload = lineBody(line);
  if (payload !== undefined) {
    headers['content-type'] ??= 'application/json';
    headers['content-length'] = String(Buffer.byteLength(payload));
  }
  const path = line.query ? `${line.path}?${line.query}` : line.path;
  return new Promise((res) => {
    const req = request(
      { host: url.hostname, port: url.port || 80, method: line.method, path, headers, localAddress: loopbackFor(line.ip), agent: false, timeout: 5000 },
      (r) => {
        let body = '';
        r.setEncoding('utf8');
        r.on('data', (d: string) => { if (body.length < 65_536) body += d; });
        r.on('end', () => res({ status: r.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => res({ status: 0, body: '' }));
    req.end(payload);
  });
}

/** Sends lines in order at `rate`/s (at most `max`), one at a time per tick. */
export async function drive(lines: readonly TrafficLine[], opts: DriveOptions): Promise<DriveResult> {
  const url = new URL(opts.url);
  assertLoopback(url);
  const tokens = new Map<string, string>();
  const n = Math.min(lines.length, opts.max);
  const gapMs = 1000 / Math.max(0.1, opts.rate);
  const started = Date.now();
  const perLine: number[] = [];
  const statuses: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const due = started + i * gapMs;
    const wait = due - Date.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const line = lines[i]!;
    const r = await send(url, line, tokens);
    if (line.sim?.issues_token && r.status === 200) {
      try {
        const token = (JSON.parse(r.body) as { token?: unknown }).token;
        if (typeof token === 'string') tokens.set(line.sim.issues_token, token);
      } catch { /* not the shop's login answer */ }
    }
    perLine.push(r.status);
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  }
  return { sent: n, statuses, perLine };
}

export interface Stack {
  url: string;
  nginx: NginxHandle;
  shop: RunningShop;
  stop(): Promise<void>;
}

/** The demo stack on free ports: demo shop, decision service (child process), nginx + Lua. */
export async function startStack(opts: { policy?: string } = {}): Promise<Stack> {
  const shop = await startShop({ port: 0 });
  const port = await freePort();
  let service;
  try {
    service = await startServiceChild({ VERDICT_LISTEN: `127.0.0.1:${port}`, VERDICT_LOG_LEVEL: 'warn', ...(opts.policy ? { VERDICT_POLICY: opts.policy } : {}) }, 20_000);
    const upstream = new URL(shop.url).host;
    const nginx = await startNginx({ upstream, service: `127.0.0.1:${port}` });
    const svc = service;
    return {
      url: nginx.url,
      nginx,
      shop,
      stop: async () => {
        await nginx.stop();
        await svc.stop();
        await shop.close();
      },
    };
  } catch (err) {
    await service?.stop();
    await shop.close();
    throw err;
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { url: { type: 'string' }, rate: { type: 'string' }, max: { type: 'string' }, stack: { type: 'boolean' } },
  });
  const file = positionals[0];
  if (!file) throw new Error('usage: tsx bench/traffic/http-driver.ts FILE.jsonl [--url http://127.0.0.1:8080] [--rate 200] [--max 5000] [--stack]');
  const lines = parseTrafficText(readFileSync(file, 'utf8'));
  const rate = Number(values.rate ?? 200);
  const max = Number(values.max ?? 5000);
  if (!(rate > 0 && rate <= 2000)) throw new Error('--rate must be in (0, 2000] requests/s');
  if (!(max > 0)) throw new Error('--max must be positive');
  const stack = values.stack ? await startStack() : undefined;
  try {
    const url = stack?.url ?? values.url ?? 'http://127.0.0.1:8080';
    console.log(`driving ${Math.min(max, lines.length)} requests at ${rate}/s to ${url}`);
    const r = await drive(lines, { url, rate, max });
    console.log(`sent ${r.sent}; statuses ${JSON.stringify(r.statuses)}`);
  } finally {
    await stack?.stop();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
