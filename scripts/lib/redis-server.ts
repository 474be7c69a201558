// A local redis-server for tests, the demo and benchmarks: a free port on 127.0.0.1, a temporary
// directory, no persistence. kill() is SIGKILL (a crash); start() brings it back on the same
// port, empty.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, waitForPort } from './nginx.ts';

const REDIS = process.env.VERDICT_REDIS_BIN ?? '/usr/bin/redis-server';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** SIGKILL: the server dies with its data. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty). */
  start(): Promise<void>;
  /** A plain client for assertions (closed by stop()). */
  client(): Redis;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'verdict-redis-'));
  let child: ChildProcess | undefined;
  const clients: Redis[] = [];
  const killOnExit = () => { try { child?.kill('SIGKILL'); } catch { /* gone */ } };
  process.on('exit', killOnExit);

  const start = async () => {
    const c = spawn(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    c.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
    let exited: string | null = null;
    c.on('exit', (code, sig) => { exited = `redis-server exited (${code ?? sig}): ${stderr.trim()}`; });
    child = c;
    await waitForPort(port, 5000, () => exited);
  };
  const kill = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGKILL');
    await gone;
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    kill,
    start,
    client() {
      const r = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
      clients.push(r);
      return r;
    },
    async stop() {
      for (const r of clients) r.disconnect();
      await kill();
      process.off('exit', killOnExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
