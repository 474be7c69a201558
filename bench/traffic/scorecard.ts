// `npm run scorecard [-- --seed N] [--scenario NAME ...] [--policy FILE] [--out DIR] [--fleet]`
// Runs the built-in scenario suite through Verdict (engine + modeled gateway, challenged clients
// modeled by challenge-clients.ts) and through the per-IP rate-limit baseline, each against a
// fresh in-process demo shop, and writes bench/results/detection.md + detection.json.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from '../../scripts/lib/nginx.ts';
import { startRedis } from '../../scripts/lib/redis-server.ts';
import { ChallengeClients } from './challenge-clients.ts';
import { renderMarkdown, ScoreBuilder, type Scorecard } from './report.ts';
import { BaselineGuard, loadPolicy, replay, ShopUpstream, VerdictGuard } from './replay.ts';
import { FleetGuard } from './fleet.ts';
import { DEFAULT_SEED, generateScenario, SCENARIOS, type Scenario } from './scenarios.ts';

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
    },
  });
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

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
