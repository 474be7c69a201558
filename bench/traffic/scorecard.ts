// `npm run scorecard [-- --seed N] [--scenario NAME ...] [--policy FILE] [--out DIR] [--fleet]`
// Runs the built-in scenario suite through Verdict (engine + modeled gateway, challenged clients
// modeled by challenge-clients.ts) and through the per-IP rate-limit baseline, each against a
// fresh in-process demo shop, and writes bench/results/detection.md + detection.json.
//
// `npm run scorecard -- --worlds N [--world-seed-from K] [--jobs J] [--policy FILE] [--out DIR] [--fleet]`
// instead replays random worlds K … K+N-1 (worlds.ts; default K = 1001, the unseen ones; tune on
// 1–10) in J processes (default: the CPU count) and writes detection-worlds.md + .json (with
// --fleet: through two instances sharing a local Redis, detection-worlds-fleet.md + .json).

import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from '../../scripts/lib/nginx.ts';
import { startRedis } from '../../scripts/lib/redis-server.ts';
import { ChallengeClients } from './challenge-clients.ts';
import { renderMarkdown, ScoreBuilder, type Scorecard } from './report.ts';
import { BaselineGuard, loadPolicy, replay, ShopUpstream, VerdictGuard } from './replay.ts';
import { FleetGuard } from './fleet.ts';
import { DEFAULT_SEED, generateScenario, SCENARIOS, type Scenario } from './scenarios.ts';
import { runWorlds } from './worlds-run.ts';
import { aggregate, renderWorldsMarkdown } from './worlds-report.ts';

/** The worlds nobody tunes to: the README's table comes from 1001–1020. */
export const UNSEEN_WORLDS_FROM = 1001;

export interface ScorecardOptions {
  /** Run Verdict as two instances sharing this Redis (round-robin split) instead of one. */
  fleetRedisUrl?: string;
  seed?: number;
  scenarios?: readonly Scenario[];
  policyFile?: string;
  log?: (msg: string) => void;
}

export async function runScorecard(opts: ScorecardOptions = {}): Promise<{ card: Scorecard; markdown: string }> {
  const seed = opts.seed ?? DEFAULT_SEED;
  const scenarios = opts.scenarios ?? SCENARIOS;
  const policyFile = opts.policyFile ?? join(repoRoot, 'policies/default.yaml');
  const policy = loadPolicy(policyFile);
  const log = opts.log ?? (() => {});
  const verdict = new ScoreBuilder();
  const baseline = new ScoreBuilder();
  const started = Date.now();
  let total = 0;
  for (const s of scenarios) {
    const t0 = Date.now();
    const lines = generateScenario(s, seed);
    total += lines.length;
    const promo = s.campaigns.some((c) => c.kind === 'promo-bots') ? s.shop.promoInventory : undefined;

    const vShop = new ShopUpstream(s.shop);
    if (opts.fleetRedisUrl) {
      const fleet = new FleetGuard({ policy, redisUrl: opts.fleetRedisUrl, prefix: `sc:${s.name}:${Date.now()}:`, startMs: lines[0]?.ts ?? 0 });
      verdict.add(s.name, lines, await replay(lines, fleet, vShop, { clients: new ChallengeClients({ seed }) }), promo);
      await fleet.close();
    } else {
      const guard = new VerdictGuard({ policy, startMs: lines[0]?.ts ?? 0 });
      verdict.add(s.name, lines, await replay(lines, guard, vShop, { clients: new ChallengeClients({ seed }) }), promo);
    }
    await vShop.close();

    const bShop = new ShopUpstream(s.shop);
    baseline.add(s.name, lines, await replay(lines, new BaselineGuard(), bShop), promo);
    await bShop.close();
    log(`  ${s.name}: ${lines.length} requests over ${s.hours} h simulated, replayed twice in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  const card: Scorecard = { policy: policy.version, ...verdict.result(), baseline: baseline.result() };
  const markdown = renderMarkdown(card, { seed, scenarios: scenarios.map((s) => s.name), wallS: (Date.now() - started) / 1000, lines: total });
  return { card, markdown };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' },
      scenario: { type: 'string', multiple: true },
      policy: { type: 'string' },
      out: { type: 'string' },
      fleet: { type: 'boolean' },
      worlds: { type: 'string' },
      'world-seed-from': { type: 'string' },
      jobs: { type: 'string' },
    },
  });
  if (values.worlds !== undefined) return worldsMain(values);
  const seed = values.seed !== undefined ? Number(values.seed) : DEFAULT_SEED;
  if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer (got ${values.seed})`);
  let scenarios: readonly Scenario[] = SCENARIOS;
  if (values.scenario) {
    scenarios = values.scenario.map((n) => {
      const s = SCENARIOS.find((x) => x.name === n);
      if (!s) throw new Error(`unknown scenario "${n}"; known: ${SCENARIOS.map((x) => x.name).join(', ')}`);
      return s;
    });
  }
  console.log(`scorecard: ${scenarios.length} scenarios, seed ${seed}`);
  // --fleet: Verdict as two instances sharing a local Redis (started here), results in
  // detection-fleet.{md,json} beside the single-instance ones.
  const redis = values.fleet ? await startRedis() : undefined;
  try {
    const { card, markdown } = await runScorecard({ seed, scenarios, policyFile: values.policy ? resolve(values.policy) : undefined, fleetRedisUrl: redis?.url, log: (m) => console.log(m) });
    const dir = resolve(values.out ?? join(repoRoot, 'bench/results'));
    const name = values.fleet ? 'detection-fleet' : 'detection';
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${name}.json`), `${JSON.stringify(card, null, 2)}\n`);
    writeFileSync(join(dir, `${name}.md`), values.fleet ? markdown.replace('# Detection scorecard', '# Detection scorecard — two instances sharing Redis (traffic split round-robin)') : markdown);
    console.log('');
    console.log(markdown);
    console.log(`written: ${join(dir, `${name}.md`)}, ${join(dir, `${name}.json`)}`);
  } finally {
    await redis?.stop();
  }
}

async function worldsMain(values: { worlds?: string; 'world-seed-from'?: string; jobs?: string; policy?: string; out?: string; fleet?: boolean }): Promise<void> {
  const n = Number(values.worlds);
  const from = values['world-seed-from'] !== undefined ? Number(values['world-seed-from']) : UNSEEN_WORLDS_FROM;
  const jobs = values.jobs !== undefined ? Number(values.jobs) : Math.max(1, availableParallelism());
  if (!Number.isInteger(n) || n < 1) throw new Error(`--worlds must be a positive integer (got ${values.worlds})`);
  if (!Number.isInteger(from) || from < 0) throw new Error(`--world-seed-from must be a non-negative integer (got ${values['world-seed-from']})`);
  if (!Number.isInteger(jobs) || jobs < 1) throw new Error(`--jobs must be a positive integer (got ${values.jobs})`);
  const policyFile = values.policy ? resolve(values.policy) : join(repoRoot, 'policies/default.yaml');
  const policy = loadPolicy(policyFile);
  console.log(`scorecard: worlds ${from}–${from + n - 1}, ${jobs} process${jobs > 1 ? 'es' : ''}`);
  const t0 = Date.now();
  const seeds = Array.from({ length: n }, (_, i) => from + i);
  // --fleet: each world through two instances sharing a local Redis (started here)
  const redis = values.fleet ? await startRedis() : undefined;
  const results = await runWorlds(seeds, { policyFile, jobs, redisUrl: redis?.url, log: (m) => console.log(m) }).finally(() => redis?.stop());
  const wallS = (Date.now() - t0) / 1000;
  const name = values.fleet ? 'detection-worlds-fleet' : 'detection-worlds';
  const report = aggregate(policy.version, results);
  const markdown = renderWorldsMarkdown(report, results, { from, wallS, jobs, fleet: values.fleet });
  const dir = resolve(values.out ?? join(repoRoot, 'bench/results'));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.json`), `${JSON.stringify({ report, worlds: results }, null, 2)}\n`);
  writeFileSync(join(dir, `${name}.md`), markdown);
  console.log('');
  console.log(markdown);
  console.log(`written: ${join(dir, `${name}.md`)}, ${join(dir, `${name}.json`)}`);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
