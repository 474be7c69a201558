// `npm run simulate -- --scenario NAME --out FILE.jsonl [--seed N] [--no-status]` | `--list`
// `npm run simulate -- --world N --out FILE.jsonl [--no-status]`: a random world (worlds.ts)
// Writes a scenario's labelled traffic as JSON Lines. Each line's `status` is what the demo shop
// answers when nothing is in front of it (an unguarded in-process run); --no-status skips that.

import { createWriteStream } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatTrafficLine, type TrafficLine } from './format.ts';
import { replay, ShopUpstream, type Guard } from './replay.ts';
import { DEFAULT_SEED, generateScenario, SCENARIOS, scenarioByName, type Scenario } from './scenarios.ts';
import { drawWorld } from './worlds.ts';

/** Fills in `status` from an unguarded in-process demo shop. */
export async function withStatuses(s: Scenario, lines: TrafficLine[]): Promise<TrafficLine[]> {
  const open: Guard = { name: 'none', check: () => ({ action: 'ALLOW', source: 'off', reasons: [], routeClass: '', clearance: 'NONE', challenge: undefined }), after: () => {} };
  const shop = new ShopUpstream(s.shop);
  const res = await replay(lines, open, shop);
  await shop.close();
  return lines.map((l, i) => ({ ...l, status: res[i]!.status }));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string' },
      world: { type: 'string' },
      out: { type: 'string' },
      seed: { type: 'string' },
      list: { type: 'boolean' },
      'no-status': { type: 'boolean' },
    },
  });
  if (values.list) {
    for (const s of SCENARIOS) {
      console.log(`${s.name.padEnd(20)} ${s.hours} h  ${s.description}`);
      console.log(`${''.padEnd(20)} campaigns: ${s.campaigns.map((c) => `${c.id} (${c.kind})`).join(', ')}`);
    }
    return;
  }
  if (values.world !== undefined && !Number.isInteger(Number(values.world))) throw new Error(`--world must be an integer (got ${values.world})`);
  const world = values.world !== undefined ? drawWorld(Number(values.world)) : undefined;
  const s = world ?? (values.scenario ? scenarioByName(values.scenario) : undefined);
  if (!s) throw new Error(`--scenario NAME (one of: ${SCENARIOS.map((x) => x.name).join(', ')}; --list describes them) or --world N is required`);
  if (!values.out) throw new Error('--out FILE.jsonl is required');
  const seed = world ? world.seed : values.seed !== undefined ? Number(values.seed) : DEFAULT_SEED;
  if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer (got ${values.seed})`);
  let lines = generateScenario(s, seed);
  if (!values['no-status']) lines = await withStatuses(s, lines);
  const out = createWriteStream(values.out);
  for (const l of lines) out.write(`${formatTrafficLine(l)}\n`);
  await new Promise<void>((res, rej) => out.end((err?: Error | null) => (err ? rej(err) : res())));
  console.log(`${values.out}: ${lines.length} requests, scenario ${s.name}, seed ${seed}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
