// A sequential keep-alive HTTP client: per-request latency, one request at a time, for watching
// what individual requests pay (e.g. the first ones after the decision service stops).
import { Agent, request } from 'node:http';
import type { WrkRequest } from './wrk.ts';

/** Sends `count` requests one after another on one keep-alive connection; latencies in µs. */
export async function sequentialLatencies(baseUrl: string, req: WrkRequest, count: number, timeoutMs = 5000): Promise<number[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const url = new URL(req.path, baseUrl);
  const out: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const t0 = process.hrtime.bigint();
      await new Promise<void>((resolve, reject) => {
        const r = request(url, { method: req.method, headers: req.headers, agent, timeout: timeoutMs }, (res) => {
          res.resume();
          res.once('end', () => resolve());
        });
        r.once('timeout', () => r.destroy(new Error('probe timed out')));
        r.once('error', reject);
        r.end(req.body);
      });
      out.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
  } finally {
    agent.destroy();
  }
  return out;
}

/** Sends every request once (8 at a time) and counts the answers by status ("error" for failures). */
export async function statusCensus(baseUrl: string, reqs: readonly WrkRequest[]): Promise<Record<string, number>> {
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  const counts: Record<string, number> = {};
  let next = 0;
  const worker = async () => {
    while (next < reqs.length) {
      const req = reqs[next++]!;
      const status = await new Promise<string>((resolve) => {
        const r = request(new URL(req.path, baseUrl), { method: req.method, headers: req.headers, agent, timeout: 5000 }, (res) => {
          res.resume();
          res.once('end', () => resolve(String(res.statusCode ?? 0)));
        });
        r.once('timeout', () => r.destroy(new Error('timeout')));
        r.once('error', () => resolve('error'));
        r.end(req.body);
      });
      counts[status] = (counts[status] ?? 0) + 1;
    }
  };
  try {
    await Promise.all(Array.from({ length: 8 }, worker));
  } finally {
    agent.destroy();
  }
  return counts;
}
