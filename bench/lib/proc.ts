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

/** Pins a process, all its threads and its descendants to one CPU. No-op without taskset. */
export function pin(pid: number, cpu: number | null): void {
  if (cpu === null) return;
  spawnSync('taskset', ['-a', '-pc', String(cpu), String(pid)], { stdio: 'ignore' });
  for (const c of childPids(pid)) pin(c, cpu);
}

export function hasTaskset(): boolean {
  return spawnSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' }).status === 0;
}

/**
 * The harness's CPU plan on a machine with two cores or more and taskset: servers (nginx, the
 * upstream, the decision service) on CPU 0, the load and this process on CPU 1. Pins this process.
 */
export function pinHarness(): { pinned: boolean; cpu: Cpus } {
  const pinned = cpus().length >= 2 && hasTaskset();
  const cpu: Cpus = pinned ? { server: 0, service: 0, load: 1 } : { server: null, service: null, load: null };
  if (pinned) pin(process.pid, cpu.load);
  return { pinned, cpu };
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
export async function startServiceProcess(opts: { cpu: number | null; unix?: boolean; env?: Record<string, string>; nodeFlags?: string[] }): Promise<ServiceProcess> {
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
