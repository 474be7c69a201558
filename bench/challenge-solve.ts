// Benchmark: how long the reference proof-of-work solver (gateway-plugin/challenge/solver.js)
// takes in Node to answer a challenge, per difficulty: fresh nonces shaped like the gateway's
// (decision-service/src/gateway/clearance.ts issueNonce), solved from counter 0 as a page does.
// Prints a Markdown table. Browsers run the same script; Chromium is measured separately.
//
// Usage: npx tsx bench/challenge-solve.ts [--runs 20] [--difficulties 12,14,16,18,20]

import { createRequire } from 'node:module';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { checkProof, issueNonce, type ClearanceKey } from '../decision-service/src/gateway/clearance.ts';

interface Solver {
  solve(nonce: string, difficulty: number): string;
  solveRange(nonce: string, difficulty: number, from: number, to: number): number;
}

interface Row {
  readonly difficulty: number;
  readonly ms: number[];
  readonly hashes: number;
}

const solver = createRequire(import.meta.url)('../gateway-plugin/challenge/solver.js') as Solver;
const KEY: ClearanceKey = { id: 'bench', secret: 'bench-secret-0123456789abcdef0123456789' };
const CLIENT = { subnet: '198.51.100.0/24', ua: 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0' };

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return (i >= 0 ? process.argv[i + 1] : undefined) ?? fallback;
}

const percentile = (sorted: readonly number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;

function freshNonce(difficulty: number): string {
  return issueNonce({ key: KEY, now: Math.floor(Date.now() / 1000), difficulty, ttl: 3600, ...CLIENT });
}

/** Solves `runs` fresh nonces; every proof is checked so a broken solver cannot post a number. */
function measure(difficulty: number, runs: number): Row {
  const ms: number[] = [];
  let hashes = 0;
  for (let i = 0; i < runs; i++) {
    const nonce = freshNonce(difficulty);
    const t0 = performance.now();
    const proof = solver.solve(nonce, difficulty);
    ms.push(performance.now() - t0);
    hashes += Number(proof.slice(nonce.length + 1)) + 1;
    const verdict = checkProof(proof, { keys: [KEY], now: Math.floor(Date.now() / 1000), ...CLIENT });
    if (!verdict.ok) throw new Error(`difficulty ${difficulty}: the solver's proof was rejected (${verdict.why})`);
  }
  return { difficulty, ms, hashes };
}

/** Hashes per second with no solution in reach (asking all 256 bits): the steady rate. */
function steadyRate(): number {
  const nonce = freshNonce(32);
  const n = 2_000_000;
  const t0 = performance.now();
  solver.solveRange(nonce, 256, 0, n);
  return n / ((performance.now() - t0) / 1000);
}

const fmtMs = (v: number): string => (v < 10 ? v.toFixed(1) : Math.round(v).toString());
const fmtRate = (v: number): string => `${(v / 1e6).toFixed(2)} M`;

function table(rows: readonly Row[]): string {
  const lines = rows.map((r) => {
    const sorted = [...r.ms].sort((a, b) => a - b);
    const total = r.ms.reduce((a, b) => a + b, 0);
    return `| ${r.difficulty} | ${2 ** r.difficulty} | ${Math.round(r.hashes / r.ms.length)} | ${fmtMs(percentile(sorted, 0.5))} | ${fmtMs(percentile(sorted, 0.9))} | ${fmtMs(sorted[sorted.length - 1] ?? Number.NaN)} | ${fmtRate(r.hashes / (total / 1000))} |`;
  });
  return ['| difficulty | expected hashes | mean hashes | median ms | p90 ms | max ms | hashes/s |', '|---|---|---|---|---|---|---|', ...lines].join('\n');
}

function main(): void {
  const runs = Number(option('--runs', '20'));
  const difficulties = option('--difficulties', '12,14,16,18,20').split(',').map(Number);
  if (!Number.isInteger(runs) || runs < 1 || difficulties.some((d) => !Number.isInteger(d) || d < 1 || d > 32)) {
    console.error('usage: npx tsx bench/challenge-solve.ts [--runs N] [--difficulties 12,14,...] (difficulties 1..32; 0 is a wait, not work)');
    process.exit(2);
  }
  steadyRate(); // warm-up: let the JIT optimise the compression function
  const rate = steadyRate();
  const rows = difficulties.map((d) => measure(d, runs));
  console.log(`# Proof-of-work solve time (solver.js in Node)

${new Date().toISOString()} · \`npx tsx bench/challenge-solve.ts ${process.argv.slice(2).join(' ')}\` · ${os.cpus()[0]?.model ?? 'cpu'} · Node ${process.version} · ${runs} fresh nonces per difficulty, one thread

Steady rate: ${fmtRate(rate)} hashes/s. A solve takes a geometric number of hashes (mean 2^difficulty), so p90 is ~2.3x the mean and max grows with runs.

${table(rows)}`);
}

main();
