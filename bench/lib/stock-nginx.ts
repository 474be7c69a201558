// A stock nginx (no Verdict, no Lua) from a config we render: the benchmark's upstream and the
// ModSecurity case, which needs its own load_module line in the main context.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForPort } from '../../scripts/lib/nginx.ts';
import { nginxMasterPid, pin } from './proc.ts';

const NGINX = process.env.VERDICT_NGINX_BIN ?? '/usr/sbin/nginx';
export const NGINX_MODULES = process.env.VERDICT_NGINX_MODULES ?? '/usr/lib/nginx/modules';

export interface StockNginxOptions {
  /** main-context lines (load_module ...) */
  main?: string;
  /** http-context lines */
  http?: string;
  /** the body of the one server {} (listen is added) */
  server: string;
  cpu: number | null;
  workers?: number;
}

export interface StockNginx {
  port: number;
  url: string;
  prefix: string;
  pid: number;
  errorLog(): string;
  stop(): Promise<void>;
}

export async function startStockNginx(opts: StockNginxOptions): Promise<StockNginx> {
  const port = await freePort();
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const prefix = mkdtempSync(join(tmpdir(), 'verdict-bench-nginx-'));
  for (const d of ['conf', 'logs', 'tmp']) mkdirSync(join(prefix, d));
  chmodSync(prefix, 0o755);
  chmodSync(join(prefix, 'tmp'), 0o777);
  chmodSync(join(prefix, 'logs'), 0o777);
  const conf = `# rendered by bench/lib/stock-nginx.ts
${opts.main ?? ''}
${asRoot ? 'user nobody nogroup;' : ''}
worker_processes ${opts.workers ?? 1};
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path ${prefix}/tmp/client_body;
    proxy_temp_path ${prefix}/tmp/proxy;
    fastcgi_temp_path ${prefix}/tmp/fastcgi;
    uwsgi_temp_path ${prefix}/tmp/uwsgi;
    scgi_temp_path ${prefix}/tmp/scgi;
${opts.http ?? ''}
    server {
        listen 127.0.0.1:${port};
${opts.server}
    }
}
`;
  const confPath = join(prefix, 'conf/nginx.conf');
  writeFileSync(confPath, conf);
  const child: ChildProcess = spawn(NGINX, ['-p', prefix, '-c', confPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
  let exited: string | null = null;
  child.on('exit', (code, signal) => { exited = `nginx exited (${code ?? signal}): ${stderr.trim()}`; });
  const kill = () => { try { child.kill('SIGKILL'); } catch { /* gone */ } };
  process.on('exit', kill);
  const errorLogPath = join(prefix, 'logs/error.log');
  const errorLog = () => (existsSync(errorLogPath) ? readFileSync(errorLogPath, 'utf8') : '');
  try {
    await waitForPort(port, 10_000, () => (exited ? `${exited}\n${errorLog()}` : null));
  } catch (err) {
    kill();
    process.off('exit', kill);
    throw err;
  }
  const pid = nginxMasterPid(prefix);
  pin(pid, opts.cpu);
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    prefix,
    pid,
    errorLog,
    stop: async () => {
      process.off('exit', kill);
      if (exited) return;
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGQUIT');
      const timer = setTimeout(kill, 3000);
      await gone;
      clearTimeout(timer);
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}

/** The upstream: nginx answering `200 ok` from the rewrite phase, so it is never the bottleneck. */
export function startUpstream(cpu: number | null): Promise<StockNginx> {
  return startStockNginx({
    cpu,
    http: '    keepalive_requests 100000;',
    server: `        location / { return 200 "ok"; }`,
  });
}
