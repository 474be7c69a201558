// A stock nginx (no Verdict, no Lua) from a config we render: the benchmark's upstream and the
// ModSecurity case, which needs its own load_module line in the main context.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { configHead, freePort, newPrefix, runNginx } from '../../scripts/lib/nginx.ts';
import { nginxMasterPid, pin, type CpuSet } from './proc.ts';

export const NGINX_MODULES = process.env.VERDICT_NGINX_MODULES ?? '/usr/lib/nginx/modules';

export interface StockNginxOptions {
  /** main-context lines (load_module ...) */
  main?: string;
  /** http-context lines */
  http?: string;
  /** the body of the one server {} (listen is added) */
  server: string;
  cpu: CpuSet;
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
  const prefix = newPrefix('verdict-bench-nginx');
  const conf = `# rendered by bench/lib/stock-nginx.ts
${configHead(prefix, { main: opts.main ?? '', workers: opts.workers })}
${opts.http ?? ''}
    server {
        listen 127.0.0.1:${port};
${opts.server}
    }
}
`;
  const confPath = join(prefix, 'conf/nginx.conf');
  writeFileSync(confPath, conf);
  const nginx = await runNginx(prefix, confPath, port, 10_000);
  const pid = nginxMasterPid(prefix);
  pin(pid, opts.cpu);
  return { port, url: `http://127.0.0.1:${port}`, prefix, pid, errorLog: nginx.errorLog, stop: nginx.stop };
}

/** The upstream: nginx answering `200 ok` from the rewrite phase, so it is never the bottleneck. */
export function startUpstream(cpu: CpuSet): Promise<StockNginx> {
  return startStockNginx({
    cpu,
    http: '    keepalive_requests 100000;',
    // echoes the paced load's due time (wrk.ts pacingScript: latency from the intended send)
    server: `        location / { add_header X-Bench-Due $http_x_bench_due; return 200 "ok"; }`,
  });
}
