// Issue 10's numbers, for this checkout or another one (the code before the change):
//   npx tsx test/decision-service/hardening.measure.ts [checkout root] [--runs N]
// e.g. `git archive <old> | tar -x -C /tmp/old && ln -s $PWD/node_modules /tmp/old/` then pass
// /tmp/old. Prints one JSON object. Not a test: the timings depend on the machine.

import { repoRoot } from '../../scripts/lib/nginx.ts';
import { firstDecisions, hostileLoad, neverReader, startTarget, stopCont, warmClient } from './hardening-lib.ts';

// tap runs every file of a directory it is given (TAP=1 in its children): not a test, skip.
if (process.env.TAP === '1') process.exit(0);

const args = process.argv.slice(2);
const runsAt = args.indexOf('--runs');
const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 5;
const root = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--runs') ?? repoRoot;
// The new service must accept the 5,000-outcome batches (the old one ignores the variable).
const LOAD_ENV = { VERDICT_OUTCOMES_MAX_BATCH: '5000' };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const round = (x: number) => Math.round(x * 100) / 100;

async function main(): Promise<void> {
  const out: Record<string, unknown> = { root };
  await warmClient();
  const only = args.find((a) => a.startsWith('--only='))?.slice(7);

  for (const [label, env] of [['first decisions, default start', {}], ['first decisions, VERDICT_WARMUP=0', { VERDICT_WARMUP: '0' }]] as const) {
    if (only && only !== 'first') continue;
    const samples: Array<Awaited<ReturnType<typeof firstDecisions>>> = [];
    for (let i = 0; i < runs; i++) {
      const t = await startTarget(root, env);
      samples.push(await firstDecisions(t));
      await t.stop();
    }
    out[label] = Object.fromEntries((['startMs', 'httpFirst', 'httpSecond', 'frameFirst', 'frameSecond'] as const).map((k) => [`${k.replace(/Ms$/, '')}Ms (median of ${runs})`, round(median(samples.map((s) => s[k])))]));
  }

  if (only === 'first') {
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }
  let t = await startTarget(root, LOAD_ENV);
  const load = await hostileLoad(t, 5);
  out['decide latency under hostile bodies (ms)'] = load;
  out['service RSS after (MiB)'] = round(t.rssMiB());
  await t.stop();

  t = await startTarget(root);
  out['client that never reads, 10 s'] = await neverReader(t, 10);
  await t.stop();

  t = await startTarget(root);
  out['SIGSTOP 5 s / SIGCONT'] = await stopCont(t, 5000, 100);
  await t.stop();

  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

main().then(() => process.exit(0), (err: unknown) => {
  process.stderr.write(`${String(err instanceof Error ? err.stack : err)}\n`);
  process.exit(1);
});
