#!/usr/bin/env node
// First-run set-up for `npm start|demo|test|bench`: installs npm packages when missing and the
// Debian packages the gateway needs (nginx + Lua/njs modules, Redis, wrk, Chromium for tests) when running as root,
// or prints the exact command to run when not. Plain .mjs so it runs before `tsx` exists.
import { existsSync } from 'node:fs';
import { execSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const want = new Set(process.argv.slice(2));

const DEBIAN = {
  nginx: {
    files: ['/usr/sbin/nginx', '/usr/lib/nginx/modules/ndk_http_module.so',
      '/usr/lib/nginx/modules/ngx_http_lua_module.so', '/usr/lib/nginx/modules/ngx_http_js_module.so',
      '/usr/lib/x86_64-linux-gnu/lua/5.1/cjson.so'],
    packages: ['nginx', 'libnginx-mod-http-ndk', 'libnginx-mod-http-lua', 'libnginx-mod-http-js', 'lua-cjson'],
  },
  redis: { files: ['/usr/bin/redis-server', '/usr/bin/redis-cli'], packages: ['redis-server', 'redis-tools'] },
  wrk: { files: ['/usr/bin/wrk'], packages: ['wrk'] },
  // Pages are tested in a real browser: Debian's Chromium driven by playwright-core (never a
  // downloaded browser build).
  chromium: { files: ['/usr/bin/chromium'], packages: ['chromium'] },
  // The benchmark's inline-WAF peer (case 5); optional: the case reports "not available" without it.
  modsecurity: { files: ['/usr/lib/nginx/modules/ngx_http_modsecurity_module.so', '/usr/share/modsecurity-crs'], packages: ['libnginx-mod-http-modsecurity', 'modsecurity-crs'], optional: true },
};

function log(msg) { process.stderr.write(`[verdict setup] ${msg}\n`); }

if (want.has('--node')) {
  const marker = path.join(root, 'node_modules', '.package-lock.json');
  if (!existsSync(marker) || !existsSync(path.join(root, 'node_modules', 'tsx'))) {
    log('installing npm dependencies (npm ci)…');
    const cmd = existsSync(path.join(root, 'package-lock.json')) ? 'npm ci --no-audit --no-fund' : 'npm install --no-audit --no-fund';
    execSync(cmd, { cwd: root, stdio: 'inherit' });
  }
}

const missing = [];
const optional = [];
for (const [name, spec] of Object.entries(DEBIAN)) {
  if (!want.has(`--${name}`)) continue;
  if (spec.files.some((f) => !existsSync(f))) (spec.optional ? optional : missing).push(...spec.packages);
}
if (optional.length > 0 && typeof process.getuid === 'function' && process.getuid() === 0) {
  log(`installing optional packages: ${optional.join(' ')}`);
  const r = spawnSync('sh', ['-c', `DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${optional.join(' ')} || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${optional.join(' ')})`], { stdio: 'inherit' });
  if (r.status !== 0) log(`optional packages not installed (${optional.join(', ')}); the benchmark reports that case as not available`);
}
if (missing.length > 0) {
  const cmd = `apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) {
    log(`missing system packages: ${missing.join(', ')}. Run as root:\n  sudo sh -c '${cmd}'`);
    process.exit(1);
  }
  log(`installing system packages: ${missing.join(' ')}`);
  const r = spawnSync('sh', ['-c', cmd], { stdio: 'inherit' });
  if (r.status !== 0) {
    log(`apt-get failed (exit ${r.status}); run by hand:\n  ${cmd}`);
    process.exit(1);
  }
}
