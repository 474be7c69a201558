// A local Redis Cluster for tests and benchmarks: three masters and three replicas of real
// redis-server processes on free 127.0.0.1 ports, joined with `redis-cli --cluster create`.
// A short cluster-node-timeout (1 s) makes a killed master fail over in a few seconds.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
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
  /** SIGKILL the node on this port (a crash). */
  kill(port: number): Promise<void>;
  /** Resolves once every slot is served by a live master again (after a failover). */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** A cluster client for assertions (closed by stop()). */
  client(): Cluster;
  stop(): Promise<void>;
}

function cli(port: number, ...args: string[]): string {
  const r = spawnSync(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 10_000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`;
}

export async function startRedisCluster(): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'verdict-redis-cluster-'));
  const nodes: ClusterNode[] = [];
  const clients: Cluster[] = [];
  const killAll = () => { for (const n of nodes) { try { n.child?.kill('SIGKILL'); } catch { /* gone */ } } };
  process.on('exit', killAll);

  for (let i = 0; i < 6; i++) {
    const port = await freePort();
    const ndir = join(dir, String(port));
    mkdirSync(ndir);
    const child = spawn(REDIS, [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', ndir, '--save', '', '--appendonly', 'no',
      '--cluster-enabled', 'yes', '--cluster-config-file', join(ndir, 'nodes.conf'),
      '--cluster-node-timeout', '1000', '--cluster-replica-validity-factor', '0',
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
    if (!live) return [];
    // "<id> <ip:port@cport> <flags> ...", flags e.g. "myself,master" or "master,fail"
    return cli(live.port, 'cluster', 'nodes').split('\n')
      .map((l) => l.split(' '))
      .filter((f) => (f[2] ?? '').split(',').includes('master') && !(f[2] ?? '').includes('fail'))
      .map((f) => Number(/:(\d+)@/.exec(f[1] ?? '')?.[1] ?? 0))
      .filter((p) => p > 0);
  };
  const waitHealthy = async (timeoutMs = 20_000) => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const live = alive();
      const livePorts = new Set(live.map((n) => n.port));
      const ms = masters();
      // every live node says ok, and the masters it knows are all alive (a killed one has been
      // replaced by its replica)
      const ok = live.length > 0 && ms.length === 3 && ms.every((p) => livePorts.has(p))
        && live.every((n) => /cluster_state:ok/.test(cli(n.port, 'cluster', 'info')));
      if (ok) return;
      if (Date.now() > until) throw new Error(`redis cluster not healthy after ${timeoutMs} ms: ${cli(live[0]?.port ?? 0, 'cluster', 'nodes')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await waitHealthy();

  return {
    nodes,
    seeds: seeds.join(','),
    masters,
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
