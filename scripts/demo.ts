// `npm run demo`: the whole stack on this machine — the demo shop (upstream), the decision
// service, and nginx with the Lua script in front on http://127.0.0.1:8080. Ctrl-C stops all.
// Press "s" (then Enter) to stop or restart the decision service and watch the shop keep working.
//
// `npm run demo -- --redis`: a fleet instead — a local redis-server (temporary, no persistence),
// two decision-service instances sharing it, and two nginx gateways, each with both instances
// (its calls rotate over them; a refused instance hands the call to the other), like two nginx
// nodes behind a load balancer. An attack spread over the gateways and instances is seen as one.

import type { ChildProcess, StdioOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { startShop } from './demo-shop/app.ts';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultLocations, startNginx, waitForPort } from './lib/nginx.ts';
import { spawnService } from './lib/service.ts';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
// The demo layout (nginx.conf.example's shape) plus the inline location of the challenge demo.
const DEMO_LOCATIONS = `
    location = /challenge-demo {
        set $verdict_budget_ms 50;
        include verdict-location.conf;
        proxy_pass http://verdict_app;
    }${defaultLocations()}`;

const INHERIT: StdioOptions = ['ignore', 'inherit', 'inherit'];
import { startRedis } from './lib/redis-server.ts';

const PORT = Number(process.env.VERDICT_DEMO_PORT ?? 8080);
const SHOP_PORT = Number(process.env.DEMO_SHOP_PORT ?? 8081);
const SERVICE_PORT = Number(process.env.VERDICT_DEMO_SERVICE_PORT ?? 9400);
const FRAME_PORT = Number(process.env.VERDICT_DEMO_FRAME_PORT ?? SERVICE_PORT + 1);
const METRICS_PORT = Number(process.env.VERDICT_DEMO_METRICS_PORT ?? 9145);

// One key for the demo's lifetime, so identifier hashes stay stable across service restarts.
const IDENTIFIER_KEY = process.env.VERDICT_IDENTIFIER_KEY ?? randomBytes(24).toString('base64');

// The gateway secret (gateway-plugin/CONTRACT.md, authentication): the demo runs as a real site
// would, every gateway proving it to every service instance. A fresh one per demo, in a private
// temporary file that both the service (VERDICT_GATEWAY_SECRET_FILE) and nginx (secret_file) read.
const SECRET_FILE = (() => {
  const file = join(mkdtempSync(join(tmpdir(), 'verdict-demo-')), 'gateway.secret');
  writeFileSync(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  return file;
})();

// The demo's policy: the shipped default plus one route that always asks for a clearance, so a
// newcomer can watch a challenge from a browser (/challenge-demo, inline in the demo's nginx).
const POLICY_FILE = (() => {
  const text = readFileSync(join(REPO, 'policies/default.yaml'), 'utf8');
  const marker = '\nroutes:\n';
  if (!text.includes(marker)) throw new Error('policies/default.yaml: "routes:" not found');
  const file = join(dirname(SECRET_FILE), 'demo-policy.yaml');
  writeFileSync(file, text.replace(marker, `${marker}  - { name: challenge-demo, class: public, path: "/challenge-demo", clearance_level: 16 }\n`));
  return file;
})();

function startService(): ChildProcess {
  return spawnService({
    VERDICT_POLICY: POLICY_FILE,
    VERDICT_IDENTIFIER_KEY: IDENTIFIER_KEY,
    VERDICT_GATEWAY_SECRET_FILE: SECRET_FILE,
    VERDICT_LISTEN: `127.0.0.1:${SERVICE_PORT}`,
    // the gateway's decide calls: the framed transport, multiplexed (transport "auto" = mux)
    VERDICT_FRAME_LISTEN: `127.0.0.1:${FRAME_PORT}`,
    VERDICT_LOG_LEVEL: process.env.VERDICT_LOG_LEVEL ?? 'warn',
  }, INHERIT).child;
}

async function main(): Promise<void> {
  const shop = await startShop({ port: SHOP_PORT, host: '127.0.0.1' });
  let service: ChildProcess | undefined = startService();
  await Promise.all([waitForPort(SERVICE_PORT, 15_000), waitForPort(FRAME_PORT, 15_000)]);
  const nginx = await startNginx({ listenPort: PORT, upstream: `127.0.0.1:${SHOP_PORT}`, service: `frame:127.0.0.1:${FRAME_PORT}`, metricsPort: METRICS_PORT, workers: 2, init: { secret_file: SECRET_FILE }, locations: DEMO_LOCATIONS });

  const url = `http://127.0.0.1:${PORT}`;
  process.stdout.write(`
Verdict demo is up.
  shop behind nginx + Verdict : ${url}
  demo shop (unguarded)       : ${shop.url}
  decision service            : http://127.0.0.1:${SERVICE_PORT}  (metrics: /metrics; the gateway decides over frame:127.0.0.1:${FRAME_PORT})
  gateway secret              : ${SECRET_FILE}  (service and gateway prove it on every call)
  gateway counters            : ${nginx.metricsUrl}

Try:
  open ${url}/challenge-demo in a browser            # proof-of-work page, about a second, then the page
  curl -i ${url}/challenge-demo -H 'accept: text/html'  # curl stays out (429: no JavaScript)
  curl -i ${url}/                                   # allowed
  curl -i ${url}/internal/admin/users               # blocked: internal route from outside
  curl -i ${url}/actuator/env                       # blocked: sensitive probe
  curl -i ${url}/api/orders/500001                  # blocked: no credentials
  curl -i -XPOST ${url}/api/auth/login -H 'content-type: application/json' \\
       -d '{"username":"13800000000","password":"wrong"}'
  curl -s ${url}/api/promo/winners                  # the shop's leak: unmasked phone numbers; a few calls later
  curl -s http://127.0.0.1:${SERVICE_PORT}/v1/inventory    #   the endpoint is flagged "unmasked:cn_mobile" (also /console)

Press "s" + Enter to stop/start the decision service (the shop keeps working: fail-open).
Ctrl-C stops everything.
`);

  let stopping = false;
  const stopAll = async () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nstopping…\n');
    service?.kill('SIGTERM');
    await Promise.allSettled([nginx.stop(), shop.close()]);
    process.exit(0);
  };
  process.on('SIGINT', () => void stopAll());
  process.on('SIGTERM', () => void stopAll());

  if (process.stdin.isTTY || process.env.VERDICT_DEMO_STDIN === '1') {
    const rl = createInterface({ input: process.stdin });
    rl.on('line', (line) => {
      if (line.trim() !== 's') return;
      if (service) {
        service.kill('SIGTERM');
        service = undefined;
        process.stdout.write('decision service stopped: nginx now fails open (X-Verdict-Fail-Open reaches the shop)\n');
      } else {
        service = startService();
        process.stdout.write('decision service starting again…\n');
      }
    });
  }
}

function startFleetService(port: number, redisUrl: string): ChildProcess {
  return spawnService({
    // The fleet must share the identifier key, or the instances hash identifiers differently.
    VERDICT_IDENTIFIER_KEY: IDENTIFIER_KEY,
    VERDICT_GATEWAY_SECRET_FILE: SECRET_FILE,
    VERDICT_LISTEN: `127.0.0.1:${port}`,
    VERDICT_REDIS_URL: redisUrl,
    VERDICT_FRAME_LISTEN: 'off',
    VERDICT_LOG_LEVEL: process.env.VERDICT_LOG_LEVEL ?? 'warn',
  }, INHERIT).child;
}

async function mainRedis(): Promise<void> {
  if (!existsSync(process.env.VERDICT_REDIS_BIN ?? '/usr/bin/redis-server')) {
    throw new Error('redis-server not found: sudo apt-get install -y redis-server (or set VERDICT_REDIS_BIN)');
  }
  const PORT_B = Number(process.env.VERDICT_DEMO_PORT_B ?? PORT + 2);
  const SERVICE_B = SERVICE_PORT + 1;
  const redis = await startRedis();
  const shop = await startShop({ port: SHOP_PORT, host: '127.0.0.1' });
  const services = [startFleetService(SERVICE_PORT, redis.url), startFleetService(SERVICE_B, redis.url)];
  await Promise.all([waitForPort(SERVICE_PORT, 15_000), waitForPort(SERVICE_B, 15_000)]);
  const gateways = await Promise.all([
    startNginx({ listenPort: PORT, upstream: `127.0.0.1:${SHOP_PORT}`, service: `127.0.0.1:${SERVICE_PORT},127.0.0.1:${SERVICE_B}`, metricsPort: METRICS_PORT, workers: 2, init: { secret_file: SECRET_FILE } }),
    startNginx({ listenPort: PORT_B, upstream: `127.0.0.1:${SHOP_PORT}`, service: `127.0.0.1:${SERVICE_B},127.0.0.1:${SERVICE_PORT}`, metricsPort: METRICS_PORT + 1, workers: 2, init: { secret_file: SECRET_FILE } }),
  ]);
  const [a, b] = gateways.map((g) => g.url);
  process.stdout.write(`
Verdict fleet demo is up (shared state on Redis).
  gateway A (both instances)  : ${a}
  gateway B (both instances)  : ${b}
  instance A, instance B      : http://127.0.0.1:${SERVICE_PORT}/metrics, http://127.0.0.1:${SERVICE_B}/metrics
  redis                       : ${redis.url}  (temporary, no persistence)
  demo shop (unguarded)       : ${shop.url}

Try an enumeration walk spread over both gateways — each instance sees part of it, the fleet
sees all of it (watch the 404s turn into 429/403 within a few requests of the single-node case):
  for i in $(seq 10 40); do
    gw=$([ $((i % 2)) = 0 ] && echo ${a} || echo ${b})
    curl -s -o /dev/null -w "%{http_code} " -XPOST $gw/api/auth/password-reset \\
         -H 'content-type: application/json' -d "{\\"phone\\":\\"138000200$i\\"}"
  done; echo

Ctrl-C stops everything.
`);
  let stopping = false;
  const stopAll = async () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nstopping…\n');
    for (const s of services) s.kill('SIGTERM');
    await Promise.allSettled([...gateways.map((g) => g.stop()), shop.close()]);
    await redis.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stopAll());
  process.on('SIGTERM', () => void stopAll());
}

(process.argv.includes('--redis') ? mainRedis() : main()).catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
