// Starts the real decision service (decision-service/src/main.ts) as a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, repoRoot } from '../../scripts/lib/nginx.ts';

export interface ServiceHandle {
  port: number;
  addr: string;
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

/** A copy of policies/default.yaml with edits (plain string replacements), for tests. */
export function testPolicy(edits: Array<[string | RegExp, string]>): string {
  let text = readFileSync(join(repoRoot, 'policies/default.yaml'), 'utf8');
  for (const [from, to] of edits) {
    const next = text.replace(from, to);
    if (next === text) throw new Error(`test policy edit did not apply: ${String(from)}`);
    text = next;
  }
  const dir = mkdtempSync(join(tmpdir(), 'verdict-policy-'));
  const file = join(dir, 'policy.yaml');
  writeFileSync(file, text);
  return file;
}

/** `unix`: listen on a unix socket at that path instead of a TCP port (addr is then "unix:/path"). */
export async function startService(opts: { port?: number; unix?: string; policy?: string; env?: Record<string, string> } = {}): Promise<ServiceHandle> {
  const port = opts.unix ? 0 : opts.port ?? (await freePort());
  const addr = opts.unix ? `unix:${opts.unix}` : `127.0.0.1:${port}`;
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'decision-service/src/main.ts'], {
    cwd: repoRoot,
    env: {
      ...process.env,
      VERDICT_LISTEN: addr,
      VERDICT_LOG_LEVEL: 'warn',
      // a free port, not the default 9401: another service (a bench, a parallel test) may hold it
      VERDICT_FRAME_LISTEN: `127.0.0.1:${await freePort()}`,
      ...(opts.policy ? { VERDICT_POLICY: opts.policy } : {}),
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const killOnExit = () => { try { child.kill('SIGKILL'); } catch { /* gone */ } };
  process.on('exit', killOnExit);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`decision service did not start in 15 s:\n${out}`)), 15000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('verdict decision service listening on')) { clearTimeout(timer); resolve(); }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`decision service exited (${code}):\n${out}`)); });
  });
  return {
    port,
    addr,
    metrics: async () => {
      if (!opts.unix) return (await fetch(`http://${addr}/metrics`)).text();
      const { request } = await import('node:http');
      return new Promise<string>((resolve, reject) => {
        request({ socketPath: opts.unix, path: '/metrics' }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => { body += d.toString(); });
          res.on('end', () => resolve(body));
        }).on('error', reject).end();
      });
    },
    stop: async () => {
      process.off('exit', killOnExit);
      if (child.exitCode !== null) return;
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(killOnExit, 3000);
      await gone;
      clearTimeout(timer);
    },
  };
}
