// `npx tsx bench/traffic/explain.ts [--scenario NAME] [--policy FILE]`: why did Verdict stop
// humans? Replays the built-in scenarios and lists, for blocked and challenged human requests,
// the reasons (and whether a challenge was passed) by route class and human population — the
// tuning loop's view of false positives.

import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from '../../scripts/lib/nginx.ts';
import { ChallengeClients } from './challenge-clients.ts';
import { loadPolicy, replay, ShopUpstream, VerdictGuard } from './replay.ts';
import { DEFAULT_SEED, generateScenario, SCENARIOS } from './scenarios.ts';

const { values } = parseArgs({ options: { scenario: { type: 'string', multiple: true }, policy: { type: 'string' }, seed: { type: 'string' } } });
const policy = loadPolicy(values.policy ?? join(repoRoot, 'policies/default.yaml'));
const seed = values.seed ? Number(values.seed) : DEFAULT_SEED;
const chosen = values.scenario ? SCENARIOS.filter((s) => values.scenario?.includes(s.name)) : SCENARIOS;

for (const s of chosen) {
  const lines = generateScenario(s, seed);
  const shop = new ShopUpstream(s.shop);
  const results = await replay(lines, new VerdictGuard({ policy, startMs: lines[0]?.ts ?? 0 }), shop, { clients: new ChallengeClients({ seed }) });
  await shop.close();
  const byReason = new Map<string, number>();
  const byPop = new Map<string, number>();
  let stopped = 0;
  let humans = 0;
  results.forEach((r, i) => {
    const line = lines[i];
    if (!line?.label?.startsWith('human:')) return;
    humans++;
    if (r.action !== 'BLOCK' && r.action !== 'CHALLENGE') return;
    stopped++;
    const pop = line.label.split(':')[1]?.replace(/[-_]?\d+$/, '') ?? '?';
    const fate = r.action === 'CHALLENGE' ? (r.passed ? ' passed' : ` ${r.client}: ${r.why ?? r.finalAction}`) : '';
    const key = `${r.action}${fate} ${line.method} ${line.path.replace(/\d+/g, '#')} [${r.source}] ${r.reasons.join(',')}`;
    byReason.set(key, (byReason.get(key) ?? 0) + 1);
    byPop.set(pop, (byPop.get(pop) ?? 0) + 1);
  });
  console.log(`\n== ${s.name}: ${stopped} of ${humans} human requests stopped`);
  for (const [k, v] of [...byPop].sort((a, b) => b[1] - a[1]).slice(0, 10)) console.log(`  population ${k}: ${v}`);
  for (const [k, v] of [...byReason].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`  ${v}\t${k}`);
}
