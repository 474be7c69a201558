// Runs a real nginx with the Verdict Lua script (or, with `variant: 'njs'`, the njs script) in
// front of an upstream, for tests, the demo and benchmarks. The config is rendered from the real
// includes (gateway-plugin/nginx/*.conf) into a temporary prefix; nginx runs in the foreground
// (daemon off) as our child process so it dies with us. Works as root (workers run as nobody; the prefix is world-writable) and not.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, chmodSync, rmSync, existsSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '../..');
const pluginDir = join(repoRoot, 'gateway-plugin');
const NGINX = process.env.VERDICT_NGINX_BIN ?? '/usr/sbin/nginx';
const MODULES = process.env.VERDICT_NGINX_MODULES ?? '/usr/lib/nginx/modules';

export type InitValue = string | number | boolean;

/** A temporary nginx prefix (conf/, logs/, tmp/); workers run as nobody when we are root. */
export function newPrefix(tag: string): string {
  const prefix = mkdtempSync(join(tmpdir(), `${tag}-`));
  for (const d of ['conf', 'logs', 'tmp']) mkdirSync(join(prefix, d));
  chmodSync(prefix, 0o755);
  chmodSync(join(prefix, 'tmp'), 0o777);
  chmodSync(join(prefix, 'logs'), 0o777);
  return prefix;
}

export function runningAsRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * The main context and the top of http {} every config rendered here shares: load_module lines,
 * foreground, pid/error log/temp paths inside the prefix. The caller appends the rest of http {}.
 */
export function configHead(prefix: string, o: { main: string; workers?: number; logLevel?: string }): string {
  return `${o.main}
${runningAsRoot() ? 'user nobody nogroup;' : ''}
worker_processes ${o.workers ?? 1};
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log ${o.logLevel ?? 'warn'};
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path ${prefix}/tmp/client_body;
    proxy_temp_path ${prefix}/tmp/proxy;
    fastcgi_temp_path ${prefix}/tmp/fastcgi;
    uwsgi_temp_path ${prefix}/tmp/uwsgi;
    scgi_temp_path ${prefix}/tmp/scgi;
`;
}

export interface RunningNginx {
  readonly child: ChildProcess;
  errorLog(): string;
  /** SIGQUIT (workers finish requests), SIGKILL after 3 s; removes the prefix unless kept. */
  stop(): Promise<void>;
}

/**
 * Starts `nginx -p prefix -c confPath` in the foreground as our child (killed if we exit) and
 * resolves once `port` answers; rejects with nginx's stderr and error log if it dies first.
 */
export async function runNginx(prefix: string, confPath: string, port: number, timeoutMs: number): Promise<RunningNginx> {
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
    await waitForPort(port, timeoutMs, () => (exited ? `${exited}\n${errorLog()}` : null));
  } catch (err) {
    kill();
    process.off('exit', kill);
    throw err;
  }
  const stop = async () => {
    process.off('exit', kill);
    if (exited) return;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGQUIT');
    const timer = setTimeout(kill, 3000);
    await gone;
    clearTimeout(timer);
    if (!process.env.VERDICT_KEEP_PREFIX) rmSync(prefix, { recursive: true, force: true });
  };
  return { child, errorLog, stop };
}

/** The guarded app upstream and proxy settings both gateway variants render. */
function proxyHttp(opts: NginxOptions): string {
  return `
    upstream verdict_app {
        server ${opts.upstream};
        keepalive 32;
    }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
${opts.extraHttp ?? ''}`;
}

export type GatewayVariantName = 'lua' | 'njs';

export interface NginxOptions {
  /** which gateway script: 'lua' (default) or 'njs' (stock nginx + ngx_http_js_module) */
  variant?: GatewayVariantName;
  /** port of the guarded server (127.0.0.1); 0 or absent = a free port */
  listenPort?: number;
  /** upstream application, "host:port" */
  upstream: string;
  /** decision service, "host:port" or "unix:/path" */
  service: string;
  /** location blocks replacing the default layout (they may use `proxy_pass http://verdict_app;`) */
  locations?: string;
  hmacKey?: string;
  /** extra options for require("verdict.config").init{} (breaker_failures, ...); Lua only: the
   *  njs variant has none of these settings (only service and hmacKey apply) */
  init?: Record<string, InitValue>;
  /** extra http-level config */
  extraHttp?: string;
  workers?: number;
  /** error_log level (default warn) */
  logLevel?: string;
  /** port of the loopback metrics server; 0 or absent = a free port */
  metricsPort?: number;
}

export interface NginxHandle {
  port: number;
  metricsPort: number;
  prefix: string;
  url: string;
  metricsUrl: string;
  stop(): Promise<void>;
  reload(): Promise<void>;
  errorLog(): string;
}

/** A port nobody listens on right now (127.0.0.1). */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

/**
 * An address nobody listens on, for "service down (refused)" cases: a port free right now, on
 * 127.0.0.2. Not on 127.0.0.1, where nginx's own ports and the tests' servers are bound to ports
 * freePort() hands out too: a port released here and handed out again a moment later made a
 * gateway call its own HTTP port and read "bad response" instead of "refused" (CI, mux.test.ts).
 */
export async function deadAddress(): Promise<string> {
  return `127.0.0.2:${await freePort()}`;
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port: number, timeoutMs = 5000, isDead?: () => string | null): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const dead = isDead?.();
    if (dead) throw new Error(dead);
    const ok = await new Promise<boolean>((res) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); res(true); });
      s.once('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing answers on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const luaString = (s: string) => JSON.stringify(s); // JSON string escapes are valid Lua escapes for ASCII
const luaValue = (v: InitValue) => (typeof v === 'string' ? luaString(v) : String(v));

/**
 * The default location layout, the shape of nginx.conf.example for the demo shop routes (the
 * README's quick start): identity and promo inline with a tight budget (decided inline even for
 * clients with a clearance: a crew that solved once must not get its logins or claims through
 * undecided), object APIs and internal routes inline, static files off, everything else async.
 */
export function defaultLocations(variant: GatewayVariantName = 'lua'): string {
  const guard = `include ${variant === 'njs' ? 'verdict-njs-location.conf' : 'verdict-location.conf'};
        proxy_pass http://verdict_app;`;
  return `
    location /api/auth/ {
        set $verdict_budget_ms 25;
        set $verdict_route_tag auth;
        set $verdict_cleared inline;
        set $verdict_identity_fields "username,phone,email";
        ${guard}
    }
    location /api/v1/login {
        set $verdict_budget_ms 25;
        set $verdict_route_tag legacy-login;
        set $verdict_cleared inline;
        set $verdict_identity_fields "username,phone,email";
        ${guard}
    }
    location /api/sms/ {
        set $verdict_budget_ms 25;
        set $verdict_route_tag sms;
        set $verdict_cleared inline;
        set $verdict_identity_fields "phone";
        ${guard}
    }
    location /api/promo/ {
        set $verdict_budget_ms 25;
        set $verdict_route_tag promo;
        set $verdict_cleared inline;
        ${guard}
    }
    location ~ ^/api/(orders|users)/ {
        set $verdict_budget_ms 30;
        ${guard}
    }
    location ~ ^/(internal|actuator)/ {
        set $verdict_budget_ms 30;
        ${guard}
    }
    location /api/ {
        set $verdict_budget_ms 30;
        ${guard}
    }
    location /static/ {
        set $verdict_mode off;
        ${guard}
    }
    location / {
        set $verdict_mode async;
        ${guard}
    }`;
}

/** Renders nginx.conf text for a prefix. */
export function renderConfig(prefix: string, opts: NginxOptions & { listenPort: number; metricsPort: number }): string {
  if (opts.variant === 'njs') return renderNjsConfig(prefix, opts);
  const init: Record<string, InitValue> = {
    service: opts.service,
    hmac_key: opts.hmacKey ?? 'verdict-test-hmac-key-0123456789',
    ...opts.init,
  };
  const initTable = Object.entries(init).map(([k, v]) => `${k} = ${luaValue(v)}`).join(', ');
  return `# rendered by scripts/lib/nginx.ts
${configHead(prefix, { main: `load_module ${MODULES}/ndk_http_module.so;\nload_module ${MODULES}/ngx_http_lua_module.so;`, workers: opts.workers, logLevel: opts.logLevel })}
    include ${prefix}/conf/verdict-http.conf;
    init_by_lua_block { require("verdict.config").init({ ${initTable} }) }
${proxyHttp(opts)}
    server {
        listen 127.0.0.1:${opts.listenPort};
        include ${prefix}/conf/verdict-server.conf;
${opts.locations ?? defaultLocations()}
    }
    server {
        listen 127.0.0.1:${opts.metricsPort};
        include ${prefix}/conf/verdict-metrics.conf;
    }
}
`;
}

/**
 * The njs variant's nginx.conf: the same shape, with the njs includes (http, server, location).
 * No metrics location exists for njs (no shared memory in njs 0.7.9); the metrics server answers
 * an empty exposition so callers need no special case.
 */
function renderNjsConfig(prefix: string, opts: NginxOptions & { listenPort: number; metricsPort: number }): string {
  if (opts.service.startsWith('unix:')) throw new Error('the njs variant reaches the service over TCP only (njs 0.7.9 ngx.fetch has no unix sockets)');
  return `# rendered by scripts/lib/nginx.ts (njs variant)
${configHead(prefix, { main: `load_module ${MODULES}/ngx_http_js_module.so;`, workers: opts.workers, logLevel: opts.logLevel })}
    include ${prefix}/conf/verdict-njs-http.conf;
    js_var $verdict_service ${JSON.stringify(opts.service)};
    js_var $verdict_hmac_key ${JSON.stringify(opts.hmacKey ?? 'verdict-test-hmac-key-0123456789')};
${proxyHttp(opts)}
    server {
        listen 127.0.0.1:${opts.listenPort};
        include ${prefix}/conf/verdict-njs-server.conf;
${opts.locations ?? defaultLocations('njs')}
    }
    server {
        listen 127.0.0.1:${opts.metricsPort};
        location = /verdict-metrics { default_type text/plain; return 200 "# njs variant: no gateway counters\n"; }
    }
}
`;
}

export async function startNginx(opts: NginxOptions): Promise<NginxHandle> {
  const listenPort = opts.listenPort || (await freePort());
  const metricsPort = opts.metricsPort || (await freePort());
  const prefix = newPrefix('verdict-nginx');

  if (opts.variant === 'njs') {
    const script = join(pluginDir, 'njs/verdict.js');
    const httpConf = readFileSync(join(pluginDir, 'nginx/verdict-njs-http.conf'), 'utf8')
      .replace('/usr/local/share/verdict/njs/verdict.js', script)
      .replace('/usr/local/share/verdict/challenge', join(pluginDir, 'challenge'));
    if (!httpConf.includes(script)) throw new Error('verdict-njs-http.conf: js_import line not found');
    writeFileSync(join(prefix, 'conf/verdict-njs-http.conf'), httpConf);
    for (const f of ['verdict-njs-server.conf', 'verdict-njs-location.conf']) {
      writeFileSync(join(prefix, 'conf', f), readFileSync(join(pluginDir, 'nginx', f)));
    }
  } else {
    const luaDir = join(pluginDir, 'lua');
    const httpConf = readFileSync(join(pluginDir, 'nginx/verdict-http.conf'), 'utf8')
      .replace('/usr/local/share/verdict/lua/?.lua', `${luaDir}/?.lua`);
    if (!httpConf.includes(`${luaDir}/?.lua`)) throw new Error('verdict-http.conf: lua_package_path line not found');
    writeFileSync(join(prefix, 'conf/verdict-http.conf'), httpConf);
    for (const f of ['verdict-location.conf', 'verdict-metrics.conf', 'verdict-server.conf']) {
      writeFileSync(join(prefix, 'conf', f), readFileSync(join(pluginDir, 'nginx', f)));
    }
  }
  const confPath = join(prefix, 'conf/nginx.conf');
  writeFileSync(confPath, renderConfig(prefix, { ...opts, listenPort, metricsPort }));

  const { child, errorLog, stop } = await runNginx(prefix, confPath, listenPort, 5000);

  // worker pids of the master (Linux /proc); a reload is done when they have all changed
  const workers = (): string => {
    try {
      return readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim();
    } catch {
      return '';
    }
  };
  const reload = async () => {
    const before = workers().split(' ');
    child.kill('SIGHUP');
    const until = Date.now() + 5000;
    for (;;) {
      await new Promise((r) => setTimeout(r, 25));
      const now = workers();
      if (now === '' && Date.now() > until - 4500) break; // no /proc children file: waited 0.5 s
      if (now !== '' && now.split(' ').every((p) => !before.includes(p))) break;
      if (Date.now() > until) break;
    }
    await waitForPort(listenPort);
  };

  return {
    port: listenPort,
    metricsPort,
    prefix,
    url: `http://127.0.0.1:${listenPort}`,
    metricsUrl: `http://127.0.0.1:${metricsPort}/verdict-metrics`,
    stop,
    reload,
    errorLog,
  };
}
