// What a proof-of-work challenge costs a person: solve time of gateway-plugin/challenge/solver.js
// inside Debian's Chromium (playwright-core, headless) at each difficulty, and the whole path a
// navigation takes through real nginx + Lua + the decision service (challenged page → solved →
// back on the URL asked for). Writes bench/results/challenge.md + challenge.json.
//
//   npx tsx bench/challenge-browser.ts [--runs 25] [--e2e-runs 8] [--out bench/results]
//
// A bot pays the same hashes per solve (2^d on average) on every network + User-Agent it uses:
// the clearance is bound to both, so rotating exits means solving again.
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium, type Browser } from 'playwright-core';
import { startNginx } from '../scripts/lib/nginx.ts';
import { startEchoUpstream } from '../test/helpers/servers.ts';
import { startService, testPolicy } from '../test/helpers/service.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '25' }, 'e2e-runs': { type: 'string', default: '8' }, out: { type: 'string', default: 'bench/results' } } });
const RUNS = Number(values.runs);
const E2E_RUNS = Number(values['e2e-runs']);
const DIFFICULTIES = [12, 14, 16, 18, 20, 22];
const E2E_DIFFICULTY = 16;
const SOLVER = readFileSync(new URL('../gateway-plugin/challenge/solver.js', import.meta.url), 'utf8');
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
};

interface SolveRow { difficulty: number; runs: number; medianMs: number; p90Ms: number; maxMs: number; hashesPerS: number }

/** In-page solve times: random nonces shaped like the gateway's (same length), one difficulty at a time. */
async function solveTimes(browser: Browser): Promise<SolveRow[]> {
  const page = await browser.newPage();
  await page.setContent('<!doctype html><title>solver</title>');
  await page.addScriptTag({ content: SOLVER });
  const rows: SolveRow[] = [];
  for (const d of DIFFICULTIES) {
    const runs = d >= 22 ? Math.max(5, Math.round(RUNS / 3)) : RUNS;
    const out = await page.evaluate(({ d, runs }) => {
      const solver = (globalThis as unknown as { VerdictSolver: { solve(n: string, d: number): string } }).VerdictSolver;
      const times: number[] = [];
      let tried = 0;
      for (let i = 0; i < runs; i++) {
        const nonce = `c1.h7b7f98a5.1796095443.1796095743.${d}.3600.Hkz6Lwpa.x7cicRZu.${Math.random().toString(36).slice(2, 18).padEnd(16, 'x')}.ScbBgcR-7Imo_WJpmzqFaw`;
        const t0 = performance.now();
        const proof = solver.solve(nonce, d);
        times.push(performance.now() - t0);
        tried += Number(proof.slice(proof.lastIndexOf('.') + 1)) + 1;
      }
      return { times, tried };
    }, { d, runs });
    const total = out.times.reduce((a, b) => a + b, 0);
    rows.push({ difficulty: d, runs, medianMs: quantile(out.times, 0.5), p90Ms: quantile(out.times, 0.9), maxMs: Math.max(...out.times), hashesPerS: out.tried / (total / 1000) });
    process.stderr.write(`difficulty ${d}: median ${quantile(out.times, 0.5).toFixed(0)} ms\n`);
  }
  await page.close();
  return rows;
}

/** Navigation → interstitial → solved → the original URL, through real nginx + Lua + service. */
async function endToEnd(browser: Browser): Promise<number[]> {
  const upstream = await startEchoUpstream();
  const policy = testPolicy([['\nroutes:\n', `\nroutes:\n  - { name: challenged, class: public, path: "/challenged/**", clearance_level: ${E2E_DIFFICULTY} }\n`]]);
  const service = await startService({ policy });
  const nginx = await startNginx({ upstream: `127.0.0.1:${upstream.port}`, service: service.addr, locations: 'location / { set $verdict_budget_ms 250; include verdict-location.conf; proxy_pass http://verdict_app; }' });
  const times: number[] = [];
  try {
    for (let i = 0; i < E2E_RUNS; i++) {
      const page = await browser.newPage(); // a new context: no cookie yet
      const url = `${nginx.url}/challenged/page-${i}`;
      const t0 = Date.now();
      const first = await page.goto(url);
      if (first?.status() !== 429) throw new Error(`expected the interstitial, got ${first?.status()}`);
      await page.waitForFunction(() => document.body.innerText.includes('"method"'), undefined, { timeout: 60_000 });
      times.push(Date.now() - t0);
      await page.context().close();
    }
  } finally {
    await nginx.stop();
    await service.stop();
    await upstream.close();
  }
  return times;
}

async function main(): Promise<void> {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ARGS });
  const version = browser.version();
  const rows = await solveTimes(browser);
  const e2e = await endToEnd(browser);
  await browser.close();

  const date = new Date().toISOString();
  const md = [
    '# What a challenge costs',
    '',
    `${date}, \`npx tsx bench/challenge-browser.ts --runs ${RUNS} --e2e-runs ${E2E_RUNS}\`, headless Chromium ${version} (Debian) on ${cpus()[0]?.model ?? 'cpu'} (${cpus().length} cores, shared and noisy).`,
    '',
    '## Solve time in the browser (gateway-plugin/challenge/solver.js, one thread)',
    '',
    'A proof needs 2^d hashes on average (the count is geometric: the p90 is about 2.3× the mean). A bot pays the same per solve, for every network (/24, /64) and User-Agent it uses.',
    '',
    '| difficulty (bits) | expected hashes | runs | median | p90 | max | hashes/s |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.difficulty} | ${(2 ** r.difficulty).toLocaleString('en-US')} | ${r.runs} | ${r.medianMs.toFixed(0)} ms | ${r.p90Ms.toFixed(0)} ms | ${r.maxMs.toFixed(0)} ms | ${Math.round(r.hashesPerS / 1000).toLocaleString('en-US')} k |`),
    '',
    `## A challenged navigation, end to end (difficulty ${E2E_DIFFICULTY}, the default)`,
    '',
    `From \`page.goto\` of a challenged URL to the upstream's answer on that URL (the interstitial loads, solves, posts the proof to /.verdict/answer, gets the cookie, returns): ${E2E_RUNS} fresh browser contexts, median **${quantile(e2e, 0.5)} ms**, p90 ${quantile(e2e, 0.9)} ms, max ${Math.max(...e2e)} ms.`,
    '',
  ].join('\n');
  mkdirSync(values.out, { recursive: true });
  writeFileSync(join(values.out, 'challenge.md'), md);
  writeFileSync(join(values.out, 'challenge.json'), `${JSON.stringify({ date, chromium: version, runs: RUNS, solve: rows, endToEnd: { difficulty: E2E_DIFFICULTY, ms: e2e } }, null, 2)}\n`);
  process.stdout.write(md);
}

await main();
