// The stack one fault row runs on: a stock nginx upstream that logs what it received, the
// decision service as a restartable pinned child on fixed ports, the Lua gateway (reloadable),
// and Redis when the row needs it. Everything on 127.0.0.1, servers pinned to the server CPU.
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { SHARED_HTTP } from '../lib/gateway.ts';
import { childPids, nginxMasterPid, pin, type CpuSet } from '../lib/proc.ts';
import { startStockNginx, type StockNginx } from '../lib/stock-nginx.ts';
import { freePort, startNginx, type NginxHandle } from '../../scripts/lib/nginx.ts';
import { startRedis, type RedisServer } from '../../scripts/lib/redis-server.ts';
import { spawnService, type ServiceChild } from '../../scripts/lib/service.ts';

/**
 * The upstream: stock nginx answering `200 ok` from the rewrite phase, logging per request the
 * load generator's id and the `X-Verdict-Fail-Open` header as it arrived (`-` when absent). The
 * log is opened by the master, so it may live outside the prefix; unbuffered (a few thousand
 * small writes a second cost nothing next to the proxying).
 */
export function startLoggingUpstream(cpu: CpuSet, logPath: string): Promise<StockNginx> {
  return startStockNginx({
    cpu,
    http: `    keepalive_requests 100000;
    log_format chaos '$http_x_chaos_id|$http_x_verdict_fail_open|$http_x_chaos_try';`,
    server: `        access_log ${logPath} chaos;
        location / { return 200 "ok"; }`,
  });
}

/** What the upstream saw (readUpstreamLog). */
export interface UpstreamSeen {
  /** request id → fail-open cause of its last attempt ("" = no header: decided and allowed); absent = never got there */
  cause: Map<number, string>;
  /** ids whose first attempt reached the upstream (with `resent`: the application saw it twice) */
  firstTry: Set<number>;
}

export function readUpstreamLog(logPath: string): UpstreamSeen {
  const seen: UpstreamSeen = { cause: new Map(), firstTry: new Set() };
  if (!existsSync(logPath)) return seen;
  for (const line of readFileSync(logPath, 'utf8').split('\n')) {
    const [idText, cause, attempt] = line.split('|');
    if (!idText || cause === undefined) continue;
    const id = Number(idText);
    if (!Number.isInteger(id)) continue;
    if (attempt !== '2') seen.firstTry.add(id);
    seen.cause.set(id, cause === '-' ? '' : cause);
  }
  return seen;
}

export const SERVICE_LISTENING = 'verdict decision service listening on';

/**
 * The decision service on fixed ports, so a restarted process is found by the gateway where
 * the old one was. Pinned right after spawn (its cold start competes with nginx on the server
 * CPU, as on a real host) and again once it listens (threads started meanwhile).
 */
export class RestartableService {
  readonly addr: string;
  readonly frameAddr: string;
  private current: ServiceChild | null = null;
  private tail = '';

  private constructor(private readonly env: Record<string, string>, private readonly cpu: CpuSet, httpPort: number, framePort: number) {
    this.addr = `127.0.0.1:${httpPort}`;
    this.frameAddr = `frame:127.0.0.1:${framePort}`;
  }

  static async create(cpu: CpuSet, extraEnv: Record<string, string> = {}): Promise<RestartableService> {
    const httpPort = await freePort();
    const framePort = await freePort();
    return new RestartableService({
      VERDICT_LISTEN: `127.0.0.1:${httpPort}`,
      VERDICT_FRAME_LISTEN: `127.0.0.1:${framePort}`,
      VERDICT_LOG_LEVEL: 'warn',
      VERDICT_POLICY_WATCH: '0',
      // fixed, so identifier hashes stay the same across restarts (as a deployment would set it)
      VERDICT_IDENTIFIER_KEY: 'verdict-bench-identifier-key-0123',
      ...extraEnv,
    }, cpu, httpPort, framePort);
  }

  get child(): ChildProcess | null {
    return this.current?.child ?? null;
  }

  /** Spawns the service; resolves (performance.now() of the listening line) once it listens. */
  async start(timeoutMs = 30_000): Promise<number> {
    // a previous process (exited by now) drops its exit hook
    if (this.current) await this.current.stop();
    const svc = spawnService(this.env);
    this.current = svc;
    const { child } = svc;
    pin(child.pid ?? 0, this.cpu);
    let out = '';
    const listening = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`decision service did not start in ${timeoutMs / 1000} s:\n${out}`)), timeoutMs);
      const onData = (d: Buffer) => {
        // keep draining for the process's whole life (a full pipe would block it); keep a tail
        this.tail = (this.tail + d.toString()).slice(-4000);
        if (!out.includes(SERVICE_LISTENING)) {
          out += d.toString();
          if (out.includes(SERVICE_LISTENING)) { clearTimeout(timer); resolve(performance.now()); }
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', (code, sig) => { clearTimeout(timer); reject(new Error(`decision service exited (${code ?? sig}):\n${out}`)); });
    });
    pin(child.pid ?? 0, this.cpu);
    return listening;
  }

  /** Sends a signal to the running process. */
  signal(sig: NodeJS.Signals): void {
    this.current?.child.kill(sig);
  }

  /** Resolves (performance.now()) when the running process has exited; at once when none runs. */
  async exited(): Promise<number> {
    const c = this.current?.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return performance.now();
    return new Promise<number>((r) => c.once('exit', () => r(performance.now())));
  }

  /** The last few KB of the service's output (for a failure message). */
  outputTail(): string {
    return this.tail;
  }

  async stop(): Promise<void> {
    const svc = this.current;
    this.current = null;
    if (svc) await svc.stop();
  }
}

/** The Verdict Lua gateway as bench/lib/gateway.ts starts it, keeping the handle (reload). */
export async function startGateway(o: { upstream: string; service: string; locations: string; cpu: CpuSet; init?: Record<string, string | number | boolean> }): Promise<NginxHandle> {
  const ng = await startNginx({
    upstream: o.upstream,
    service: o.service,
    locations: o.locations,
    extraHttp: SHARED_HTTP,
    init: { pool_size: 64, ...o.init },
    workers: 1,
  });
  // new workers after a reload are forked by the master and inherit its CPU
  pin(nginxMasterPid(ng.prefix), o.cpu);
  return ng;
}

/** Redis pinned to the server CPU (found among our children by name; again after each start). */
export async function startPinnedRedis(cpu: CpuSet): Promise<RedisServer & { pinAgain(): void }> {
  const redis = await startRedis();
  const pinAgain = () => {
    for (const pid of childPids(process.pid)) {
      let comm = '';
      try { comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { /* gone */ }
      if (comm.startsWith('redis-server')) pin(pid, cpu);
    }
  };
  pinAgain();
  return Object.assign(redis, { pinAgain });
}

/** Samples of a labelled series by one label's value: {"timeout": 12, ...}. */
export function seriesByLabel(text: string, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  const re = new RegExp(`${label}="([^"]*)"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const m = re.exec(line);
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (m?.[1] !== undefined && Number.isFinite(v)) out[m[1]] = (out[m[1]] ?? 0) + v;
  }
  return out;
}
