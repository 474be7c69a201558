// A local Redis Cluster for tests and benchmarks: three masters and three replicas of real
// redis-server processes on free 127.0.0.1 ports, joined with `redis-cli --cluster create`.
// A short cluster-node-timeout (1 s) makes a killed master fail over in a few seconds.
// Each node's cluster bus gets its own free port (cluster-port): the default, port + 10000,
// does not exist for ports above 55535, which the ephemeral range hands out.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import { freePort, waitForPort } from './nginx.ts';

const REDIS = process.env.VERDICT_REDIS_BIN ?? '/usr/bin/redis-server';
const REDIS_CLI = process.env.VERDICT_REDIS_CLI ?? '/usr/bin/redis-cli';

export interface ClusterNode {
  readonly port: number;
  child: ChildProcess | undefined;
}

export interface RedisCluster {
  readonly nodes: readonly ClusterNode[];
  /** "127.0.0.1:p1,127.0.0.1:p2,..." for VERDICT_REDIS_CLUSTER_NODES */
  readonly seeds: string;
  /** Ports of the nodes that are masters right now (asked of a live node). */
  masters(): number[];
  /** Slot ranges and the port of the master serving each, right now (asked of a live node). */
  slots(): Promise<Array<{ readonly from: number; readonly to: number; readonly port: number }>>;
  /** SIGKILL the node on this port (a crash). */
  kill(port: number): Promise<void>;
  /**
   * Resolves once every slot is served by a live master (again, after a failover) and every
   * live replica holds what its master had written when the call began (what was acknowledged
   * before survives a kill of that master).
   */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** A cluster client for assertions (closed by stop()). */
  client(): Cluster;
  stop(): Promise<void>;
}

function cli(port: number, ...args: string[]): string {
  const r = spawnSync(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 10_000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`;
}

/** cli() without blocking the event loop (for polls that run beside a measurement). */
function cliAsync(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 10_000 }, (_err, stdout, stderr) => {
      resolve(`${stdout ?? ''}${stderr ?? ''}`);
    });
  });
}

/** Live, non-failed masters in `cluster nodes` output ("<id> <ip:port@cport> <flags> ..."). */
function parseMasters(nodes: string): number[] {
  return nodes.split('\n')
    .map((l) => l.split(' '))
    .filter((f) => (f[2] ?? '').split(',').includes('master') && !(f[2] ?? '').includes('fail'))
    .map((f) => Number(/:(\d+)@/.exec(f[1] ?? '')?.[1] ?? 0))
    .filter((p) => p > 0);
}

export async function startRedisCluster(): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'verdict-redis-cluster-'));
  const nodes: ClusterNode[] = [];
  const clients: Cluster[] = [];
  const killAll = () => { for (const n of nodes) { try { n.child?.kill('SIGKILL'); } catch { /* gone */ } } };
  process.on('exit', killAll);

  for (let i = 0; i < 6; i++) {
    const port = await freePort();
    const busPort = await freePort();
    const ndir = join(dir, String(port));
    mkdirSync(ndir);
    const child = spawn(REDIS, [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', ndir, '--save', '', '--appendonly', 'no',
      '--cluster-enabled', 'yes', '--cluster-config-file', join(ndir, 'nodes.conf'), '--cluster-port', String(busPort),
      '--cluster-node-timeout', '1000', '--cluster-replica-validity-factor', '0',
      // replicas copy their master at once (the default waits 5 s for more replicas): a master
      // killed right after start would otherwise fail over to an empty replica
      '--repl-diskless-sync-delay', '0',
      '--protected-mode', 'yes',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
    let exited: string | null = null;
    child.on('exit', (code, sig) => { exited = `redis-server exited (${code ?? sig}): ${stderr.trim()}`; });
    nodes.push({ port, child });
    await waitForPort(port, 5000, () => exited);
  }
  const seeds = nodes.map((n) => `127.0.0.1:${n.port}`);
  const created = spawnSync(REDIS_CLI, ['--cluster', 'create', ...seeds, '--cluster-replicas', '1', '--cluster-yes'], { encoding: 'utf8', timeout: 30_000 });
  if (created.status !== 0) {
    killAll();
    throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
  }

  const alive = () => nodes.filter((n) => n.child && n.child.exitCode === null && n.child.signalCode === null);
  const masters = (): number[] => {
    const live = alive()[0];
    return live ? parseMasters(cli(live.port, 'cluster', 'nodes')) : [];
  };
  const slots = async () => {
    const live = alive()[0];
    if (!live) return [];
    // "<id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> <slot or range>..."
    const out: Array<{ from: number; to: number; port: number }> = [];
    for (const f of (await cliAsync(live.port, 'cluster', 'nodes')).split('\n').map((l) => l.split(' '))) {
      const port = Number(/:(\d+)@/.exec(f[1] ?? '')?.[1] ?? 0);
      if (!(f[2] ?? '').split(',').includes('master') || (f[2] ?? '').includes('fail')) continue;
      for (const r of f.slice(8)) {
        const m = /^(\d+)(?:-(\d+))?$/.exec(r);
        if (m) out.push({ from: Number(m[1]), to: Number(m[2] ?? m[1]), port });
      }
    }
    return out.sort((x, y) => x.from - y.from);
  };
  const offset = (info: string, field: string) => Number(new RegExp(`${field}:(\\d+)`).exec(info)?.[1] ?? -1);
  // Every replica has applied what its master had written when this was called (a master's own
  // view of its replicas' offsets lags up to a second, so the replicas are asked).
  const caughtUp = async (masterPorts: number[], replicaPorts: number[]): Promise<boolean> => {
    const want = new Map<number, number>();
    for (const m of masterPorts) want.set(m, offset(await cliAsync(m, 'info', 'replication'), 'master_repl_offset'));
    for (const r of replicaPorts) {
      const info = await cliAsync(r, 'info', 'replication');
      const of = want.get(offset(info, 'master_port'));
      if (of !== undefined && offset(info, 'slave_repl_offset') < of) return false;
    }
    return true;
  };
  const waitHealthy = async (timeoutMs = 20_000) => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const live = alive();
      const livePorts = new Set(live.map((n) => n.port));
      const ms = live[0] ? parseMasters(await cliAsync(live[0].port, 'cluster', 'nodes')) : [];
      // every live node says ok, the masters it knows are all alive (a killed one has been
      // replaced by its replica), and every replica is in sync with its master
      const infos = await Promise.all(live.map((n) => cliAsync(n.port, 'cluster', 'info')));
      const replicas = live.filter((n) => !ms.includes(n.port));
      const repl = await Promise.all(replicas.map((n) => cliAsync(n.port, 'info', 'replication')));
      const ok = live.length > 0 && ms.length === 3 && ms.every((p) => livePorts.has(p))
        && infos.every((i) => /cluster_state:ok/.test(i))
        && repl.every((i) => /master_link_status:up/.test(i) && !/master_sync_in_progress:1/.test(i));
      if (ok && (await caughtUp(ms, replicas.map((n) => n.port)))) return;
      if (Date.now() > until) throw new Error(`redis cluster not healthy after ${timeoutMs} ms: ${cli(live[0]?.port ?? 0, 'cluster', 'nodes')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await waitHealthy();

  return {
    nodes,
    seeds: seeds.join(','),
    masters,
    slots,
    async kill(port: number) {
      const n = nodes.find((x) => x.port === port);
      const c = n?.child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const gone = new Promise<void>((r) => c.once('exit', () => r()));
      c.kill('SIGKILL');
      await gone;
    },
    waitHealthy,
    client() {
      const c = new Cluster(nodes.map((n) => ({ host: '127.0.0.1', port: n.port })), { redisOptions: { maxRetriesPerRequest: 1 } });
      clients.push(c);
      return c;
    },
    async stop() {
      for (const c of clients) c.disconnect();
      killAll();
      await Promise.all(nodes.map((n) => new Promise<void>((r) => {
        const c = n.child;
        if (!c || c.exitCode !== null || c.signalCode !== null) r();
        else c.once('exit', () => r());
      })));
      process.off('exit', killAll);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
