// Bounded, seeded fuzzing of the REAL decision service (child process) over HTTP (protobuf, JSON,
// malformed HTTP, /v1/auth) and the framed transport: a few thousand generated inputs, the
// invariants of test/helpers/fuzz-run.ts (no crash, no 5xx but 503/504, JSON errors naming the
// broken field, ordered frame answers, a working service with a sane RSS afterwards).
//
// Deterministic: the seed is fixed and printed; FUZZ_SEED=<n> picks another. A failure prints
// the input and the command that replays it alone (npm run fuzz -- --seed S --http I).
// `npm run fuzz` runs the same generators for as long as you like.
import t from 'tap';
import { formatOutcomes, formatReport, runFuzz, startFuzzTarget } from '../helpers/fuzz-run.ts';

const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : 20_251_122;
if (!Number.isInteger(seed) || seed < 0) throw new Error(`FUZZ_SEED must be a non-negative integer, got ${process.env.FUZZ_SEED}`);

// Every bug this fuzzer has found is fixed and guarded by the invariants; the reproducers live
// in test/decision-service/fuzz-findings.test.ts and http/chunked-body.test.ts.

t.comment(`fuzz seed ${seed} (FUZZ_SEED=<n> for another; npm run fuzz -- --seed ${seed} --seconds 600 for a long run)`);

const target = await startFuzzTarget();
t.teardown(() => target.stop());

const report = await runFuzz(target, {
  seed,
  httpCases: 1800,
  frameSessions: 100,
  bigPipeline: 1500,
  concurrency: 8,
  gen: { hugeBytes: 256 * 1024 },
});
t.comment(formatReport(report));
if (process.env.FUZZ_VERBOSE) t.comment(formatOutcomes(report));

t.test('the fuzz run covered both transports', async (t) => {
  t.equal(report.httpInputs, 1800, 'HTTP inputs');
  t.ok(report.frames >= 2500, `${report.frames} frames in ${report.frameSessions} sessions`);
  t.ok(target.alive(), `the service is running (${target.exitInfo()})`);
});

t.test('every invariant held', async (t) => {
  for (const f of report.failures) t.fail(`${f.input} [${f.kind}] ${f.problem.slice(0, 600)}`, { diagnostic: true, repro: f.repro });
  if (report.suppressed > 0) t.fail(`${report.suppressed} more failures like the ones above`);
  t.pass(`${report.httpInputs} HTTP inputs and ${report.frames} frames checked`);
});

t.test('after the run the service decides as before, quickly', async (t) => {
  t.equal(report.probe.after, report.probe.before, `probe verdict ${report.probe.before} before and after`);
  t.ok(report.probe.medianMs <= 50, `median decide ${report.probe.medianMs} ms`);
  t.ok(report.rssKb.before === 0 || report.rssKb.after <= Math.max(3 * report.rssKb.before, report.rssKb.before + 400 * 1024),
    `RSS ${Math.round(report.rssKb.before / 1024)} MB before, ${Math.round(report.rssKb.after / 1024)} MB after`);
});
