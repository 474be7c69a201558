// npm run console:screenshot — starts the real stack (demo-shaped nginx + Lua gateway, the
// decision service, an echo upstream), sends a little traffic with a few stops, an operator
// override, and writes a screenshot of the console to bench/results/console.png (headless
// Debian /usr/bin/chromium via playwright-core). Usage: tsx scripts/console-screenshot.ts [out.png]
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { repoRoot } from './lib/nginx.ts';
import { startEchoUpstream } from '../test/helpers/servers.ts';
import { startService } from '../test/helpers/service.ts';
import { luaVariant } from '../test/helpers/variants.ts';
import { ask, sleep } from '../test/helpers/http.ts';

const out = process.argv[2] ?? join(repoRoot, 'bench/results/console.png');
const UA = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36', accept: 'text/html' };

const upstream = await startEchoUpstream();
const service = await startService({ env: { VERDICT_STATE_DIR: mkdtempSync(join(tmpdir(), 'verdict-state-')) } });
const nginx = await luaVariant.start({ upstream: `127.0.0.1:${upstream.port}`, service: service.addr });
const base = `http://127.0.0.1:${nginx.port}`;
try {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1700 } });
  await page.goto(`http://${service.addr}/console`);
  // 20 s of mixed traffic: shoppers, a scanner, credential-less API calls, an internal probe
  const until = Date.now() + 20_000;
  let i = 0;
  let stopped = '';
  while (Date.now() < until) {
    i++;
    await ask(`${base}/`, { headers: UA, localAddress: `127.0.1.${(i % 50) + 1}` });
    await ask(`${base}/api/promo/info`, { headers: UA, localAddress: `127.0.1.${(i % 50) + 1}` });
    if (i % 5 === 0) {
      const r = await ask(`${base}/actuator/env`, { headers: UA, localAddress: '127.0.0.90' });
      stopped = /"request_id":"([^"]+)"/.exec(r.body)?.[1] ?? stopped;
    }
    if (i % 7 === 0) await ask(`${base}/api/orders/${500000 + i}`, { headers: UA, localAddress: '127.0.0.91' });
    if (i % 11 === 0) await ask(`${base}/internal/admin/users`, { headers: UA, localAddress: '127.0.0.92' });
    await sleep(20);
  }
  await ask(`http://${service.addr}/v1/overrides`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: 'ip:127.0.0.91', action: 'allow', ttl_s: 3600, note: 'partner batch job (ticket 4711)', by: 'ana' }) });
  await sleep(2500);
  await page.fill('#rid', stopped);
  await page.click('#lookup button');
  await page.waitForSelector('#explain table');
  await page.screenshot({ path: out, fullPage: true });
  await browser.close();
  process.stdout.write(`console screenshot written to ${out}\n`);
} finally {
  await nginx.stop();
  await service.stop();
  await upstream.close();
}
