// Starts the real decision service (decision-service/src/main.ts) as a child process.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, repoRoot } from '../../scripts/lib/nginx.ts';
import { startServiceChild } from '../../scripts/lib/service.ts';

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

/**
 * The default policy with a probing address cached at the gateway (sensitive_path `cache`, off by
 * default: a VPN exit carries customers next to a scanner), for tests of what the address cache does.
 */
export function addressCachePolicy(): string {
  return testPolicy([['    # cache: { key: ip, ttl_s: 300 }', '    cache: { key: ip, ttl_s: 300 }']]);
}

/** The default policy with clean marks on (issue 15: `clean_marks: { ttl_s: 120 }`, off by default). */
export function marksPolicy(): string {
  return testPolicy([['clean_marks: { ttl_s: 0 }', 'clean_marks: { ttl_s: 120 }']]);
}

/** `unix`: listen on a unix socket at that path instead of a TCP port (addr is then "unix:/path"). */
export async function startService(opts: { port?: number; unix?: string; policy?: string; env?: Record<string, string> } = {}): Promise<ServiceHandle> {
  const port = opts.unix ? 0 : opts.port ?? (await freePort());
  const addr = opts.unix ? `unix:${opts.unix}` : `127.0.0.1:${port}`;
  const { stop } = await startServiceChild({
    VERDICT_LISTEN: addr,
    VERDICT_LOG_LEVEL: 'warn',
    // tests measure behaviour, not sustained speed: a short warm-up keeps a service start ≈ 1 s
    VERDICT_WARMUP: '200',
    // a free port, not a fixed one: another service (a bench, a parallel test) may hold it
    VERDICT_FRAME_LISTEN: `127.0.0.1:${await freePort()}`,
    ...(opts.policy ? { VERDICT_POLICY: opts.policy } : {}),
    ...opts.env,
  }, 15_000);
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
    stop,
  };
}
