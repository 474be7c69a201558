// What a chunked body in tiny chunks costs the service (fuzzer finding 5, /tmp/s3-bugs.md), for
// this checkout or another one:
//   npx tsx test/decision-service/http/chunked-body.measure.ts [checkout root] [runs]
// Each case writes the pre-built wire bytes on a fresh connection (no client cost) while another
// client sends decides one after another; prints the service's CPU time and RSS growth for the
// body, its answer, and that client's decide latency meanwhile. Not a test: timings depend on
// the machine (http/chunked-body.test.ts holds the bounds).

import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../../../scripts/lib/nginx.ts';
import { startTarget, type Target } from '../hardening-lib.ts';

/** The request line and headers, then `body` as chunks of `chunk` bytes. */
export function chunkedWire(path: string, body: Buffer, chunk: number): Buffer {
  const parts: Buffer[] = [Buffer.from(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`)];
  for (let i = 0; i < body.length; i += chunk) {
    const piece = body.subarray(i, i + chunk);
    parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

/**
 * Writes `wire` on a new connection; resolves with the status line once the server closes (the
 * request says Connection: close). Not half-closed after writing: Node's HTTP server drops a
 * request still being answered when its client half-closes.
 */
export function sendWire(port: number, wire: Buffer): Promise<string> {
  return new Promise((resolve) => {
    let answer = '';
    const s = connect(port, '127.0.0.1', () => s.write(wire));
    s.on('data', (d: Buffer) => { answer += d.toString('latin1'); });
    s.on('error', () => {});
    s.on('close', () => resolve(answer.split('\r\n')[0] || '(closed without an answer)'));
  });
}

function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(f[11]) + Number(f[12])) * 10; // utime + stime, in 100 Hz ticks
}

export function decideJson(padBytes: number): Buffer {
  return Buffer.from(JSON.stringify({ client_ip: '192.0.2.1', method: 'GET', path: '/', pad: 'x'.repeat(padBytes) }));
}

/** About `bytes` of OutcomeBatch JSON, under the default 2,000 outcomes a batch. */
export function outcomesJson(bytes: number): Buffer {
  const one = JSON.stringify({ request_id: 'r', status: 404, path: `/api/orders/1?${'q'.repeat(400)}` });
  const n = Math.floor(bytes / (one.length + 1));
  return Buffer.from(`{"gateway_id":"gw","outcomes":[${Array.from({ length: n }, () => one).join(',')}]}`);
}

/** Sequential JSON decides until `stop()`: their round trips (ms). */
function decideLoop(port: number): { stop(): Promise<number[]> } {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const body = JSON.stringify({ client_ip: '198.51.100.9', method: 'GET', path: '/api/orders/1' });
  const times: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        const req = request({ host: '127.0.0.1', port, path: '/v1/decide', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
          res.resume();
          res.on('end', () => resolve());
        });
        req.on('error', () => resolve());
        req.end(body);
      });
      times.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  return { stop: async () => { running = false; await loop; agent.destroy(); return times; } };
}

async function once(t: Target, wire: Buffer): Promise<{ status: string; wallMs: number; cpuMs: number; rss: [number, number]; times: number[] }> {
  const pid = t.child.pid ?? 0;
  await new Promise((r) => setTimeout(r, 300));
  const rss0 = t.rssMiB();
  const loop = decideLoop(t.httpPort);
  await new Promise((r) => setTimeout(r, 100));
  const cpu0 = cpuMs(pid);
  const t0 = performance.now();
  const status = wire.length ? await sendWire(t.httpPort, wire) : (await new Promise((r) => setTimeout(r, 50)), '(no body sent)');
  const wallMs = Math.round(performance.now() - t0);
  const cpu = cpuMs(pid) - cpu0;
  await new Promise((r) => setTimeout(r, 100));
  const times = await loop.stop();
  await new Promise((r) => setTimeout(r, 300));
  return { status, wallMs, cpuMs: cpu, rss: [rss0, t.rssMiB()], times };
}

/** `runs` times: median wall and CPU (10 ms ticks, the decide loop's share included), the other client's p99 over all. */
async function measure(t: Target, label: string, wire: Buffer, runs: number): Promise<Record<string, unknown>> {
  const rs = [];
  for (let i = 0; i < runs; i++) rs.push(await once(t, wire));
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  const times = rs.flatMap((r) => r.times).sort((a, b) => a - b);
  const q = (p: number) => Math.round((times[Math.min(times.length - 1, Math.floor(p * times.length))] ?? 0) * 10) / 10;
  const first = rs[0]!;
  const last = rs[rs.length - 1]!;
  return {
    case: label, wireMB: Math.round(wire.length / 1e4) / 100, status: first.status, runs,
    wallMs: med(rs.map((r) => r.wallMs)), serviceCpuMs: med(rs.map((r) => r.cpuMs)),
    rssMiB: `${Math.round(first.rss[0])} -> ${Math.round(last.rss[1])}`,
    otherDecidesMs: { n: times.length, p50: q(0.5), p99: q(0.99), max: q(1) },
  };
}

async function main(): Promise<void> {
  const root = process.argv[2] ?? repoRoot;
  const runs = Number(process.argv[3] ?? 3);
  const t = await startTarget(root);
  try {
    // the first bodies run code the start-up warm-up did not: not measured
    await once(t, chunkedWire('/v1/decide', decideJson(60_000), 1));
    await once(t, chunkedWire('/v1/outcomes', outcomesJson(100_000), 1));
    const cases: Array<[string, Buffer]> = [
      ['no body (the decide loop alone)', Buffer.alloc(0)],
      ['decide 60 KB JSON, 1-byte chunks', chunkedWire('/v1/decide', decideJson(60_000), 1)],
      ['decide 60 KB JSON, 64 KiB chunks', chunkedWire('/v1/decide', decideJson(60_000), 65536)],
      ['decide 700 KB JSON, 1-byte chunks (over the limit)', chunkedWire('/v1/decide', decideJson(700_000), 1)],
      ['outcomes 900 KB JSON, 1-byte chunks', chunkedWire('/v1/outcomes', outcomesJson(900_000), 1)],
      ['outcomes 900 KB JSON, 64 KiB chunks', chunkedWire('/v1/outcomes', outcomesJson(900_000), 65536)],
    ];
    for (const [label, wire] of cases) console.log(JSON.stringify(await measure(t, label, wire, runs)));
  } finally {
    await t.stop();
  }
}

// Run, not imported (http/chunked-body.test.ts uses the helpers above), and not by tap (which
// runs every file of a directory it is given, with TAP=1): not a test.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href && process.env.TAP !== '1') await main();
