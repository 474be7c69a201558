// `npm run demo`: the whole stack on this machine — the demo shop (upstream), the decision
// service, and nginx with the Lua script in front on http://127.0.0.1:8080. Ctrl-C stops all.
// Press "s" (then Enter) to stop or restart the decision service and watch the shop keep working.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { startShop } from './demo-shop/app.ts';
import { repoRoot, startNginx, waitForPort } from './lib/nginx.ts';

const PORT = Number(process.env.VERDICT_DEMO_PORT ?? 8080);
const SHOP_PORT = Number(process.env.DEMO_SHOP_PORT ?? 8081);
const SERVICE_PORT = Number(process.env.VERDICT_DEMO_SERVICE_PORT ?? 9400);
const METRICS_PORT = Number(process.env.VERDICT_DEMO_METRICS_PORT ?? 9145);

// One key for the demo's lifetime, so identifier hashes stay stable across service restarts.
const IDENTIFIER_KEY = process.env.VERDICT_IDENTIFIER_KEY ?? randomBytes(24).toString('base64');

function startService(): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'decision-service/src/main.ts')], {
    cwd: repoRoot,
    env: { ...process.env, VERDICT_IDENTIFIER_KEY: IDENTIFIER_KEY, VERDICT_LISTEN: `127.0.0.1:${SERVICE_PORT}`, VERDICT_LOG_LEVEL: process.env.VERDICT_LOG_LEVEL ?? 'warn' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return child;
}

async function main(): Promise<void> {
  const shop = await startShop({ port: SHOP_PORT, host: '127.0.0.1' });
  let service: ChildProcess | undefined = startService();
  await waitForPort(SERVICE_PORT, 15_000);
  const nginx = await startNginx({ listenPort: PORT, upstream: `127.0.0.1:${SHOP_PORT}`, service: `127.0.0.1:${SERVICE_PORT}`, metricsPort: METRICS_PORT, workers: 2 });

  const url = `http://127.0.0.1:${PORT}`;
  process.stdout.write(`
Verdict demo is up.
  shop behind nginx + Verdict : ${url}
  demo shop (unguarded)       : ${shop.url}
  decision service            : http://127.0.0.1:${SERVICE_PORT}  (metrics: /metrics)
  gateway counters            : ${nginx.metricsUrl}

Try:
  curl -i ${url}/                                   # allowed
  curl -i ${url}/internal/admin/users               # blocked: internal route from outside
  curl -i ${url}/actuator/env                       # blocked: sensitive probe
  curl -i ${url}/api/orders/500001                  # blocked: no credentials
  curl -i -XPOST ${url}/api/auth/login -H 'content-type: application/json' \\
       -d '{"username":"13800000000","password":"wrong"}'

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

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
