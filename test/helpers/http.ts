// One-shot HTTP client for the e2e tests: no connection reuse, optional source address
// (any 127.0.0.0/8 address works on Linux loopback), timing.
import { request } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';

export interface Reply { status: number; headers: IncomingHttpHeaders; body: string; ms: number }

export interface Ask {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  localAddress?: string;
  timeoutMs?: number;
}

export function ask(url: string, opts: Ask = {}): Promise<Reply> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: opts.method ?? 'GET',
      headers: opts.body !== undefined ? { 'content-length': String(Buffer.byteLength(opts.body)), ...opts.headers } : opts.headers,
      localAddress: opts.localAddress,
      agent: false,
      timeout: opts.timeoutMs ?? 5000,
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        body,
        ms: Number(process.hrtime.bigint() - started) / 1e6,
      }));
    });
    req.on('timeout', () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/** The upstream's echo of what it received (throws when the reply is not an echo). */
export function echoed(r: Reply): { method: string; url: string; headers: Record<string, string>; body: string } {
  try {
    return JSON.parse(r.body);
  } catch {
    throw new Error(`not an upstream echo (status ${r.status}): ${r.body.slice(0, 200)}`);
  }
}

/** Value of one Prometheus series in a text exposition (0 when absent). */
export function series(text: string, name: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `)) return Number(line.slice(name.length + 1));
  }
  return 0;
}

/** Sum of every series of a metric name whose labels contain `match`. */
export function sumSeries(text: string, name: string, match = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if ((line.startsWith(`${name}{`) || line.startsWith(`${name} `)) && line.includes(match)) {
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return sum;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** GETs `url` from `client` every 50 ms, for up to 3 s, until one passes: its status and the wait. */
export async function untilPasses(url: string, client: string, headers: Record<string, string>): Promise<{ status: number; ms: number }> {
  const at = Date.now();
  let status = 0;
  while (Date.now() - at < 3000) {
    status = (await ask(url, { localAddress: client, headers })).status;
    if (status === 200) break;
    await sleep(50);
  }
  return { status, ms: Date.now() - at };
}

/**
 * What a loaded shared CI core may add to a request's wall time through nginx on top of the time
 * under test (measured: up to ~230 ms with four test suites beside it). Tests that check a budget
 * or "no wait" allow this much; each failure they guard against costs far more (a black hole
 * hangs until the socket timeout, a wait for a 500 ms budget is 500 ms). Latency itself is
 * measured in `npm run bench`, not here.
 */
export const SCHED_MARGIN_MS = 200;
