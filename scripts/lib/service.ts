// Runs the decision service (decision-service/src/main.ts under tsx) as our child process, for
// tests, the demo and benchmarks: killed if we exit; started() resolves on its "listening" line.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { repoRoot } from './nginx.ts';

/** node arguments that start the service from the repository. */
// --max-semi-space-size=16 (V8's default, said explicitly): each scavenge stays short. 64 MB
// semi-spaces made 3x fewer scavenges but of ~10 ms each (plus more major GCs), and a 25 ms
// budget on a core shared with nginx does not survive those: at the bench's load (3,600 req/s,
// `npm run bench:profile -- --rate 3600 --node-flag --max-semi-space-size=N`, two runs each)
// 0.23-0.30% of calls timed out with 64 against 0.00-0.01% with 16, at the same CPU per request.
export const SERVICE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=16'];
export const SERVICE_ARGS: readonly string[] = [...SERVICE_NODE_FLAGS, '--import', 'tsx', 'decision-service/src/main.ts'];

export interface ServiceChild {
  readonly child: ChildProcess;
  /** SIGTERM (after SIGCONT, in case it was paused), SIGKILL after 3 s. */
  stop(): Promise<void>;
}

/** Makes `child` ours: SIGKILLed if we exit first; stop() as ServiceChild says. */
export function ownChild(child: ChildProcess): ServiceChild {
  const kill = () => { try { child.kill('SIGKILL'); } catch { /* gone */ } };
  process.on('exit', kill);
  return {
    child,
    stop: async () => {
      process.off('exit', kill);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGCONT');
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(kill, 3000);
      await gone;
      clearTimeout(timer);
    },
  };
}

/** Spawns the service with `env` on top of ours; output inherited (the demo) or piped. */
export function spawnService(env: Record<string, string>, stdio: StdioOptions = ['ignore', 'pipe', 'pipe'], nodeFlags: readonly string[] = []): ServiceChild {
  // tap's process-info hook (inherited through NODE_OPTIONS) makes the service ~3x slower and
  // is not ours to measure
  const nodeOptions = (process.env.NODE_OPTIONS ?? '').replace(/"?--import=\S*@tapjs\/processinfo\S*"?/g, '').trim();
  // flags given here come after ours, so they win (node takes the last of a repeated flag)
  return ownChild(spawn(process.execPath, [...SERVICE_NODE_FLAGS, ...nodeFlags, ...SERVICE_ARGS.slice(SERVICE_NODE_FLAGS.length)], { cwd: repoRoot, env: { ...process.env, NODE_OPTIONS: nodeOptions, ...env }, stdio }));
}

/** Spawns the service and resolves once it prints that it listens; rejects with its output otherwise. */
export async function startServiceChild(env: Record<string, string>, timeoutMs: number, nodeFlags: readonly string[] = []): Promise<ServiceChild> {
  const svc = spawnService(env, undefined, nodeFlags);
  const { child } = svc;
  let out = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`decision service did not start in ${timeoutMs / 1000} s:\n${out}`)), timeoutMs);
      const onData = (d: Buffer) => {
        out += d.toString();
        if (out.includes('verdict decision service listening on')) { clearTimeout(timer); resolve(); }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`decision service exited (${code}):\n${out}`)); });
    });
  } catch (err) {
    await svc.stop();
    throw err;
  }
  return svc;
}
