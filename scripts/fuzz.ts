// npm run fuzz — a long fuzz run against the real decision service (child process), HTTP and
// frames, with the generators and invariants of `npm test`'s bounded run (test/fuzz/).
//
//   npm run fuzz                                  60 s, a random seed (printed)
//   npm run fuzz -- --seconds 600 --seed 42       ten minutes of seed 42
//   npm run fuzz -- --count 100000                100,000 HTTP inputs (and frame sessions alongside)
//   npm run fuzz -- --seed 42 --http 1234         replay one HTTP input against a fresh service
//   npm run fuzz -- --seed 42 --frames 17 --dump /tmp/in.bin   replay a frame session, save its bytes
//
// Exits 1 when an invariant broke; every failure names its seed and index to replay it alone.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { describeHttpCase, describeSession, formatOutcomes, formatReport, runFuzz, startFuzzTarget } from '../test/helpers/fuzz-run.ts';
import { frameSession, httpCase } from '../test/helpers/fuzz-inputs.ts';

const USAGE = `usage: npm run fuzz -- [--seconds N] [--count N] [--seed N] [--http I | --frames I] [--dump FILE]
                    [--concurrency N] [--huge BYTES] [--env NAME=VALUE ...] [--verbose]
  --seconds N      run this long (default 60; ignored with --count alone)
  --count N        stop after N HTTP inputs (frame sessions: N/15)
  --seed N         the generator seed (default: random, printed); FUZZ_SEED works too
  --http I         run only HTTP input I of the seed; --frames I: only frame session I
  --dump FILE      with --http/--frames: write the input's bytes to FILE (curl --data-binary @FILE)
  --concurrency N  parallel HTTP connections (default 8)
  --huge BYTES     size of the largest inputs (default 6 MiB: past the 4 MiB body limit)
  --env NAME=VALUE an environment variable for the service under test (repeatable),
                   e.g. --env VERDICT_DECIDE_BODY_LIMIT=16384
  --verbose        print the answer statistics (input kind → status/code)`;

function int(name: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`--${name} wants a non-negative integer, got ${JSON.stringify(v)}\n${USAGE}\n`);
    process.exit(2);
  }
  return n;
}

let args;
try {
  args = parseArgs({
    options: {
      seconds: { type: 'string' }, count: { type: 'string' }, seed: { type: 'string' }, http: { type: 'string' }, frames: { type: 'string' },
      dump: { type: 'string' }, concurrency: { type: 'string' }, huge: { type: 'string' }, env: { type: 'string', multiple: true },
      verbose: { type: 'boolean' }, help: { type: 'boolean' },
    },
  }).values;
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
  process.exit(2);
}
if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const seed = int('seed', args.seed ?? process.env.FUZZ_SEED, Math.floor(Math.random() * 2 ** 31));
const count = args.count !== undefined ? int('count', args.count, 0) : undefined;
const seconds = int('seconds', args.seconds, count !== undefined ? 0 : 60);
const gen = { hugeBytes: int('huge', args.huge, 6 * 1024 * 1024) };
const concurrency = Math.max(1, int('concurrency', args.concurrency, 8));
const env: Record<string, string> = {};
for (const kv of args.env ?? []) {
  const at = kv.indexOf('=');
  if (at <= 0) {
    process.stderr.write(`--env wants NAME=VALUE, got ${JSON.stringify(kv)}\n${USAGE}\n`);
    process.exit(2);
  }
  env[kv.slice(0, at)] = kv.slice(at + 1);
}
const only = args.http !== undefined ? { transport: 'http' as const, index: int('http', args.http, 0) }
  : args.frames !== undefined ? { transport: 'frames' as const, index: int('frames', args.frames, 0) } : undefined;

if (only) {
  // show (and save) the input before running it
  if (only.transport === 'http') {
    const c = httpCase(seed, only.index, gen);
    process.stdout.write(`input http#${only.index} [${c.kind}], expect ${c.expect}${c.field ? ` (field ${c.field})` : ''}: ${describeHttpCase(seed, c)}\n`);
    if (args.dump) writeFileSync(args.dump, c.raw ?? c.body ?? Buffer.alloc(0));
  } else {
    const s = frameSession(seed, only.index, gen);
    process.stdout.write(`input frames#${only.index}: ${describeSession(seed, s)}\n`);
    for (const [i, a] of (s.phases[0]?.answers ?? []).entries()) process.stdout.write(`  frame ${i}: ${a.label} → ${a.types.join('|')}\n`);
    if (args.dump) writeFileSync(args.dump, Buffer.concat([...s.phases.flatMap((p) => p.writes), s.tail?.bytes ?? Buffer.alloc(0)]));
  }
  if (args.dump) process.stdout.write(`bytes written to ${args.dump}\n`);
}

process.stdout.write(`fuzz seed ${seed} (replay with --seed ${seed}); starting the decision service…\n`);
const target = await startFuzzTarget(env);
let report;
try {
  report = await runFuzz(target, {
    seed,
    httpCases: only ? 0 : count ?? Number.POSITIVE_INFINITY,
    frameSessions: only ? 0 : count !== undefined ? Math.ceil(count / 15) : Number.POSITIVE_INFINITY,
    deadline: seconds > 0 ? Date.now() + seconds * 1000 : undefined,
    bigPipeline: only ? 0 : 5000,
    concurrency,
    gen,
    only,
    progress: (line) => process.stdout.write(`${line}\n`),
  });
} finally {
  await target.stop();
}
if (args.verbose) process.stdout.write(`${formatOutcomes(report)}\n`);
process.stdout.write(`${formatReport(report)}\n`);
process.exit(report.failures.length + report.suppressed > 0 ? 1 : 0);
