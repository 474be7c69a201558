// Process helpers for the benchmark: CPU pinning (taskset), RSS, and the decision service as a
// pinned child process. Everything listens on 127.0.0.1 (or a unix socket) only.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, repoRoot } from '../../scripts/lib/nginx.ts';
import { startServiceChild } from '../../scripts/lib/service.ts';
import type { Cpus } from './case.ts';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The pids of a process's direct children (Linux /proc). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** A CPU for taskset: one core (0), a list or range of them ("0-1"), or null (not pinned). */
export type CpuSet = number | string | null;

/** Pins a process, all its threads and its descendants to `cpu` (taskset's -c syntax). No-op without taskset. */
export function pin(pid: number, cpu: CpuSet): void {
  if (cpu === null) return;
  spawnSync('taskset', ['-a', '-pc', String(cpu), String(pid)], { stdio: 'ignore' });
  for (const c of childPids(pid)) pin(c, cpu);
}

export function hasTaskset(): boolean {
  return spawnSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' }).status === 0;
}

/**
 * The harness's CPU plan (planFor `layout`) on a machine with two cores or more and taskset;
 * unpinned otherwise. Pins this process with the load.
 */
export function pinHarness(layout: Layout = 'shared'): { pinned: boolean; cpu: Cpus; workers: number; plan: string } {
  const n = cpus().length;
  const pinned = n >= 2 && hasTaskset();
  if (!pinned) return { pinned, cpu: { server: null, service: null, load: null }, workers: 1, plan: 'none (fewer than 2 CPUs or no taskset): numbers are noisier' };
  const plan = planFor(layout, n);
  pin(process.pid, plan.cpu.load);
  return { pinned, ...plan };
}

/**
 * Where the server side runs:
 * - shared (the official table): nginx (1 worker: gateway; the upstream) and the decision service
 *   on CPU 0, the load on CPU 1 — Verdict's service takes its CPU from nginx's one core;
 * - spread (issue 15's second configuration): the service on a core of its own. With 4 cores or
 *   more, nginx runs 2 workers on CPUs 0-1, the service on CPU 2, the load on CPU 3; with 2 or 3
 *   there is no spare core, so nginx (1 worker) keeps CPU 0 and the service shares CPU 1 with the
 *   load generator (wrk takes about a third of it), which the results say.
 */
export type Layout = 'shared' | 'spread';

export function planFor(layout: Layout, cores: number): { cpu: Cpus; workers: number; plan: string } {
  if (layout === 'shared') {
    return { cpu: { server: 0, service: 0, load: 1 }, workers: 1, plan: 'CPU 0: nginx (1 worker; gateway and upstream) and the decision service; CPU 1: wrk (1 thread) and the harness. The server side shares one core.' };
  }
  if (cores >= 4) {
    return { cpu: { server: '0-1', service: 2, load: 3 }, workers: 2, plan: 'spread: CPUs 0-1: nginx (2 workers; gateway and upstream); CPU 2: the decision service alone; CPU 3: wrk (1 thread) and the harness.' };
  }
  return { cpu: { server: 0, service: 1, load: 1 }, workers: 1, plan: `spread on ${cores} cores: CPU 0: nginx (1 worker; gateway and upstream); CPU 1: the decision service, sharing it with wrk (1 thread) and the harness (no core is left for 2 workers and a service of its own).` };
}

/** GC pauses of one kind (or all kinds) between two scrapes of the service's metrics. */
export interface GcPauses {
  count: number;
  ms: number;
  /** pauses over 10 ms and over 100 ms (prom-client's buckets) */
  over10: number;
  over100: number;
}

/** The service's GC pauses in a run and their share of its wall time. */
export interface GcShare {
  pauses: number;
  ms: number;
  share: number;
}

/** The service's GC pauses between two scrapes (prom-client's nodejs_gc_duration_seconds), per kind and in all. */
export function gcPauses(before: string, after: string): { kinds: Map<string, GcPauses>; all: GcPauses } {
  const read = (t: string) => {
    const m = new Map<string, number>();
    for (const x of t.matchAll(/^verdict_nodejs_gc_duration_seconds_(bucket|sum|count)\{([^}]*)\} ([0-9.e+-]+)/gm)) {
      const kind = /kind="(\w+)"/.exec(x[2]!)?.[1] ?? '';
      const le = /le="([^"]+)"/.exec(x[2]!)?.[1] ?? '';
      m.set(`${x[1]}|${kind}|${le}`, Number(x[3]));
    }
    return m;
  };
  const a = read(before);
  const b = read(after);
  const d = (k: string) => (b.get(k) ?? 0) - (a.get(k) ?? 0);
  const kinds = new Map<string, GcPauses>();
  const all: GcPauses = { count: 0, ms: 0, over10: 0, over100: 0 };
  for (const kind of new Set([...b.keys()].map((k) => k.split('|')[1] ?? ''))) {
    const count = d(`count|${kind}|`);
    if (!kind || count <= 0) continue;
    const p = { count, ms: d(`sum|${kind}|`) * 1000, over10: count - d(`bucket|${kind}|0.01`), over100: count - d(`bucket|${kind}|0.1`) };
    kinds.set(kind, p);
    all.count += p.count;
    all.ms += p.ms;
    all.over10 += p.over10;
    all.over100 += p.over100;
  }
  return { kinds, all };
}

/** gcPauses in all, as a share of a window of `windowMs`. */
export function gcShare(before: string, after: string, windowMs: number): GcShare {
  const { all } = gcPauses(before, after);
  return { pauses: all.count, ms: all.ms, share: all.ms / Math.max(1, windowMs) };
}

/** Sum of a Prometheus series' samples whose line contains `match` (all samples when empty). */
export function seriesSum(text: string, name: string, match = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    if (match && !line.includes(match)) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) sum += v;
  }
  return sum;
}

/** Resident set size of a process in bytes (0 when gone). */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * CPU time a process has used so far, µs: user + system, and system alone; 0 when gone. The total
 * is the scheduler's own count (/proc/PID/task/TID/schedstat, nanoseconds, summed over the
 * process's threads); /proc/PID/stat's user and system times are in 100 Hz ticks, too coarse for a
 * few seconds of a process that runs in bursts of microseconds, so only the system share comes
 * from there (and the total, where schedstat is not available).
 */
function cpuTimes(pid: number): { cpuUs: number; sysUs: number } {
  let ticks: { cpuUs: number; sysUs: number };
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the fields after the command name (which may hold spaces) in parentheses
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const sys = Number(f[12]) * 10_000;
    ticks = { cpuUs: Number(f[11]) * 10_000 + sys, sysUs: sys };
  } catch {
    return { cpuUs: 0, sysUs: 0 };
  }
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch { /* the thread ended */ }
    }
    return ns > 0 ? { cpuUs: ns / 1000, sysUs: ticks.sysUs } : ticks;
  } catch {
    return ticks;
  }
}

/** CPU time (user + system) a process has used so far, µs; 0 when gone. */
export function cpuMicros(pid: number): number {
  return cpuTimes(pid).cpuUs;
}

/** What a group of processes has used so far: CPU (user + system) and system µs, read- and write-like syscalls. */
export interface Usage { cpuUs: number; sysUs: number; reads: number; writes: number }

/** Usage of each named group of processes (e.g. a gateway's workers, the service, the upstream). */
export function groupUsage<K extends string>(groups: Record<K, readonly number[]>): Record<K, Usage> {
  const out = {} as Record<K, Usage>;
  for (const k of Object.keys(groups) as K[]) {
    const u: Usage = { cpuUs: 0, sysUs: 0, reads: 0, writes: 0 };
    for (const pid of groups[k]) {
      const t = cpuTimes(pid);
      u.cpuUs += t.cpuUs;
      u.sysUs += t.sysUs;
      try {
        const io = readFileSync(`/proc/${pid}/io`, 'utf8');
        u.reads += Number(/syscr: (\d+)/.exec(io)?.[1] ?? 0);
        u.writes += Number(/syscw: (\d+)/.exec(io)?.[1] ?? 0);
      } catch { /* gone */ }
    }
    out[k] = u;
  }
  return out;
}

/** Per-request usage of each group between two groupUsage() readings over `requests`. */
export function perRequest<K extends string>(before: Record<K, Usage>, after: Record<K, Usage>, requests: number): Record<K, Usage> {
  const n = Math.max(1, requests);
  const out = {} as Record<K, Usage>;
  for (const k of Object.keys(after) as K[]) {
    const a = after[k];
    const b = before[k];
    out[k] = { cpuUs: (a.cpuUs - b.cpuUs) / n, sysUs: (a.sysUs - b.sysUs) / n, reads: (a.reads - b.reads) / n, writes: (a.writes - b.writes) / n };
  }
  return out;
}

/** Master pid of an nginx started by scripts/lib/nginx.ts or bench/lib/stock-nginx.ts. */
export function nginxMasterPid(prefix: string): number {
  const f = join(prefix, 'nginx.pid');
  for (let i = 0; i < 100 && !existsSync(f); i++) spawnSync('sleep', ['0.02']);
  return Number(readFileSync(f, 'utf8').trim());
}

export interface ServiceProcess {
  /** "127.0.0.1:port" or "unix:/path.sock" — what the gateway's `service` option takes (HTTP) */
  addr: string;
  /** the framed transport: "frame:127.0.0.1:port" or "frame:unix:/path.sock" */
  frameAddr: string;
  /** base URL for HTTP clients over TCP (empty for a unix socket) */
  url: string;
  pid: number;
  metrics(): Promise<string>;
  /** SIGSTOP / SIGCONT: the black-hole fault */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

/** A fresh directory for a unix socket that nginx's workers (user nobody when run as root) can reach. */
function socketDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

/** Starts decision-service/src/main.ts pinned to `cpu`; resolves when it prints that it listens. */
export async function startServiceProcess(opts: { cpu: CpuSet; unix?: boolean; env?: Record<string, string>; nodeFlags?: string[] }): Promise<ServiceProcess> {
  let addr: string;
  let url = '';
  let metricsPort = 0;
  if (opts.unix) {
    addr = `unix:${join(socketDir('verdict-bench-sock-'), 'verdict.sock')}`;
  } else {
    metricsPort = await freePort();
    addr = `127.0.0.1:${metricsPort}`;
    url = `http://${addr}`;
  }
  const frameListen = opts.unix
    ? `unix:${join(socketDir('verdict-bench-frame-'), 'frames.sock')}`
    : `127.0.0.1:${await freePort()}`;
  const { child, stop } = await startServiceChild({
    VERDICT_LISTEN: addr,
    VERDICT_FRAME_LISTEN: frameListen,
    VERDICT_LOG_LEVEL: 'warn',
    VERDICT_POLICY_WATCH: '0',
    // nginx's workers run as nobody when the bench runs as root
    VERDICT_SOCKET_MODE: '0666',
    VERDICT_IDENTIFIER_KEY: 'verdict-bench-identifier-key-0123',
    ...opts.env,
  }, 30_000, opts.nodeFlags);
  const pid = child.pid ?? 0;
  // threads started after spawn (GC, libuv pool) inherit from their creator; pin again to be sure
  pin(pid, opts.cpu);
  return {
    addr,
    frameAddr: `frame:${frameListen}`,
    url,
    pid,
    metrics: async () => (url ? (await fetch(`${url}/metrics`)).text() : ''),
    pause: () => { child.kill('SIGSTOP'); },
    resume: () => { child.kill('SIGCONT'); },
    stop,
  };
}
