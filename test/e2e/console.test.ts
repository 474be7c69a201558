// Issue 16, the console in a real browser (headless Debian /usr/bin/chromium via playwright-core)
// against real nginx + the Lua gateway + the service: a request stopped through nginx shows up in
// the console's recent stops within a few seconds; looking up its request id shows its reasons;
// an allow override from the console's form lets that client's next request through nginx.
import t from 'tap';
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import type { NginxHandle } from '../../scripts/lib/nginx.ts';
import { ask, sleep, untilPasses } from '../helpers/http.ts';
import { startEchoUpstream } from '../helpers/servers.ts';
import { addressCachePolicy, startService, type ServiceHandle } from '../helpers/service.ts';
import { luaVariant } from '../helpers/variants.ts';

const browserPath = '/usr/bin/chromium';
const UA = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36', accept: 'text/html' };

let service: ServiceHandle;
let nginx: NginxHandle;
let base: string;

t.before(async () => {
  const upstream = await startEchoUpstream();
  // the address cache on (off by default): the case follows a scanner whose address is refused
  service = await startService({ policy: addressCachePolicy(), env: { VERDICT_STATE_DIR: mkdtempSync(join(tmpdir(), 'verdict-state-')) } });
  nginx = await luaVariant.start({ upstream: `127.0.0.1:${upstream.port}`, service: service.addr });
  base = `http://127.0.0.1:${nginx.port}`;
  t.teardown(async () => { await nginx.stop(); await service.stop(); await upstream.close(); });
});

t.test('stop → console → explain → allow from the form → the client passes', { skip: existsSync(browserPath) ? false : `${browserPath} is missing (the test command installs it: scripts/ensure-deps.mjs --chromium)` }, async (t) => {
  const browser: Browser = await chromium.launch({
    executablePath: browserPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1300, height: 1400 } });
  const external: string[] = [];
  page.on('request', (r) => { if (!r.url().startsWith(`http://${service.addr}/`)) external.push(r.url()); });
  await page.goto(`http://${service.addr}/console`);
  t.equal(await page.title(), 'Verdict console');

  // a scanner: probes until the gateway caches its address as blocked
  const client = '127.0.0.81';
  let requestId = '';
  for (let i = 0; i < 8; i++) {
    // distinct URLs, as a scanner sends (a URL once probed is refused to everyone at the gateway)
    const r = await ask(`${base}/actuator/env${i}`, { localAddress: client, headers: UA });
    if (r.status === 403) requestId = /"request_id":"([^"]+)"/.exec(r.body)?.[1] ?? requestId;
  }
  t.ok(requestId, 'stopped through nginx, with a request id');
  await sleep(300);
  t.equal((await ask(`${base}/`, { localAddress: client, headers: UA })).status, 403, 'and refused at the gateway from now on');

  const shownAt = Date.now();
  await page.locator('#stops').getByText(requestId).waitFor({ timeout: 5000 });
  t.ok(Date.now() - shownAt < 5000, `the stop shows in the console within a few seconds (${Date.now() - shownAt} ms)`);

  await page.fill('#rid', requestId);
  await page.click('#lookup button');
  const explain = page.locator('#explain');
  await explain.locator('table').waitFor({ timeout: 5000 });
  const text = await explain.innerText();
  t.match(text, /probe\.sensitive_path/, 'the lookup shows the reasons');
  t.match(text, /BLOCK/);
  t.match(text, /ip:127\.0\.0\.81/, 'and the keys the operator can act on');

  // allow from the form, prefilled by the key's "allow" button
  await explain.getByRole('button', { name: 'allow' }).first().click();
  t.equal(await page.inputValue('#okey'), `ip:${client}`, 'the key is prefilled');
  await page.fill('#onote', 'customer called, ticket 4711');
  await page.fill('#oby', 'browser-test');
  await page.click('#osubmit');
  await page.locator('#ostatus').getByText('applied').waitFor({ timeout: 5000 });
  const passed = await untilPasses(`${base}/`, client, UA);
  t.equal(passed.status, 200, `the client's next request passes through nginx (${passed.ms} ms after the override)`);
  await page.locator('#olog').getByText('customer called, ticket 4711').waitFor({ timeout: 5000 });
  t.pass('the override log shows who and why');

  const shot = join(mkdtempSync(join(tmpdir(), 'verdict-console-')), 'console.png');
  await page.screenshot({ path: shot, fullPage: true });
  t.ok(statSync(shot).size > 10_000, 'a screenshot of the console');
  t.same(external, [], 'the page loads nothing from anywhere but the service (no CDN, no font)');
});
