// Runs a bench worker script (tsx) as a pinned child process, bounded in time; returns its
// stdout's JSON lines.
import { spawn } from 'node:child_process';
import { repoRoot } from '../../scripts/lib/nginx.ts';
import type { CpuSet } from './proc.ts';

export async function runWorker(script: string, args: string[], cpu: CpuSet, timeoutMs: number, nodeFlags: string[] = []): Promise<Array<Record<string, number | string>>> {
  const node = [...nodeFlags, '--import', 'tsx', script, ...args];
  const [cmd, argv] = cpu === null ? [process.execPath, node] : ['taskset', ['-c', String(cpu), process.execPath, ...node]];
  const child = spawn(cmd, argv as string[], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${script} exited ${code}: ${err.slice(-2000)}`);
  return out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, number | string>);
}
