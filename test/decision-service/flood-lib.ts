// The connection-flood measurement (issue 10), shared by connection-flood.test.ts (bounded, in
// npm test) and connection-flood.measure.ts (20,000 connections, the numbers): a service child,
// flood children holding idle connections to its ports (flood-clients.ts), and a real client
// that decides over a connection opened before the flood (kept busy) and over new ones opened
// during it, while the service's RSS and eviction counters are read.

import { spawn, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DecideRequestType } from '../../decision-service/src/wire/codec.ts';
import { FRAME, frame } from '../../decision-service/src/wire/frame-server.ts';
import type { FloodCounts } from './flood-clients.ts';
import type { Target } from './hardening-lib.ts';

const here = dirname(fileURLToPath(import.meta.url));

export interface Flood {
  readonly first: FloodCounts;
  counts(): Promise<FloodCounts>;
  stop(): Promise<void>;
}

/** Spawns a flood child; resolves once all `count` connections were tried. */
export async function startFlood(port: number, count: number, mode: 'idle' | 'reconnect' = 'idle', timeoutMs = 120_000): Promise<Flood> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(here, 'flood-clients.ts'), '127.0.0.1', String(port), String(count), mode], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const kill = () => { try { child.kill('SIGKILL'); } catch { /* gone */ } };
  process.on('exit', kill);
  const waiting: Array<(c: FloodCounts) => void> = [];
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', (l) => waiting.shift()?.(JSON.parse(l) as FloodCounts));
  const next = () => new Promise<FloodCounts>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the flood child did not answer')), timeoutMs);
    waiting.push((c) => { clearTimeout(timer); resolve(c); });
    child.once('exit', (code) => reject(new Error(`the flood child exited (${code})`)));
  });
  const first = await next();
  return {
    first,
    counts: () => {
      const p = next();
      child.stdin!.write('\n');
      return p;
    },
    stop: async () => {
      process.off('exit', kill);
      if (child.exitCode !== null) return;
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.stdin!.end();
      const timer = setTimeout(kill, 5000);
      await gone;
      clearTimeout(timer);
    },
  };
}

/** A framed connection asking one DECIDE at a time (ms per answer; NaN when none came). */
export class Decider {
  private pending: Buffer = Buffer.alloc(0);
  private waiting: Array<(type: number) => void> = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      this.pending = this.pending.length ? Buffer.concat([this.pending, d]) : d;
      while (this.pending.length >= 4 && this.pending.length >= 4 + this.pending.readUInt32BE(0)) {
        const type = this.pending[4] as number;
        this.pending = this.pending.subarray(4 + this.pending.readUInt32BE(0));
        if (type !== FRAME.CHALLENGE) this.waiting.shift()?.(type);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiting.splice(0)) w(0);
    });
  }

  /** Connects within `timeoutMs` (undefined: refused, reset or timed out). */
  static open(port: number, timeoutMs = 5000): Promise<Decider | undefined> {
    return new Promise((resolve) => {
      const s = connect(port, '127.0.0.1');
      const timer = setTimeout(() => { s.destroy(); resolve(undefined); }, timeoutMs);
      s.once('connect', () => { clearTimeout(timer); resolve(new Decider(s)); });
      s.once('error', () => { clearTimeout(timer); resolve(undefined); });
    });
  }

  /** One decide; its round trip in ms, or NaN when no VERDICT came within `timeoutMs`. */
  async decide(id: string, timeoutMs = 5000): Promise<number> {
    if (this.closed) return Number.NaN;
    const body = DecideRequestType.encode(DecideRequestType.fromObject({ request_id: id, client_ip: '198.51.100.20', method: 'GET', path: '/api/orders/1', mode: 0 })).finish();
    const t0 = performance.now();
    const type = await new Promise<number>((resolve) => {
      const timer = setTimeout(() => resolve(0), timeoutMs);
      this.waiting.push((t) => { clearTimeout(timer); resolve(t); });
      this.socket.write(frame(FRAME.DECIDE, body));
    });
    return type === FRAME.VERDICT ? performance.now() - t0 : Number.NaN;
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface Latency { n: number; failed: number; p50: number; p99: number; max: number }

export function latency(xs: number[]): Latency {
  const ok = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  const q = (p: number) => Math.round((ok[Math.min(ok.length - 1, Math.floor(p * ok.length))] ?? Number.NaN) * 100) / 100;
  return { n: xs.length, failed: xs.length - ok.length, p50: q(0.5), p99: q(0.99), max: q(1) };
}

/** `n` decides on new connections, one after another (each connection asks 5): what a gateway reconnecting meets. */
export async function newConnectionDecides(port: number, n: number): Promise<{ latency: Latency; connectFailures: number }> {
  const xs: number[] = [];
  let connectFailures = 0;
  for (let i = 0; i < n; i += 5) {
    const t0 = performance.now();
    const c = await Decider.open(port);
    if (!c) {
      connectFailures++;
      for (let k = 0; k < 5; k++) xs.push(Number.NaN);
      continue;
    }
    for (let k = 0; k < 5; k++) {
      const ms = await c.decide(`new-${i + k}`);
      // the first includes the connect: what a request on a fresh connection waits
      xs.push(k === 0 && !Number.isNaN(ms) ? performance.now() - t0 : ms);
    }
    c.close();
  }
  return { latency: latency(xs), connectFailures };
}

/** Decides every `everyMs` on one connection until stop(): a gateway busy through the flood. */
export function busyGateway(c: Decider, everyMs = 5): { stop(): Promise<Latency> } {
  const xs: number[] = [];
  let running = true;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      xs.push(await c.decide(`busy-${i}`));
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return { stop: async () => { running = false; await loop; return latency(xs); } };
}

/** Reads a counter from the service's /metrics: the sum of the lines matching `re`. */
export async function counter(t: Target, re: RegExp): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${t.httpPort}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (re.test(line)) sum += Number(line.split(' ').pop());
  return sum;
}

/**
 * A counter read until it reaches `want` or `ms` pass: the service accepts (and evicts) the last
 * connections of a flood a moment after the clients saw them connect.
 */
export async function counterReaching(t: Target, re: RegExp, want: number, ms = 3000): Promise<number> {
  const until = Date.now() + ms;
  let n = await counter(t, re);
  while (n < want && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
    n = await counter(t, re);
  }
  return n;
}

/** Open file descriptors of a process (0 where /proc is missing). */
export async function openFds(pid: number): Promise<number> {
  const { readdir } = await import('node:fs/promises');
  try {
    return (await readdir(`/proc/${pid}/fd`)).length;
  } catch {
    return 0;
  }
}
