// Another client's body must not hold a decide past its budget: while hostile clients send
// 5,000-outcome batches (frames and HTTP) and 4 MB / 1 MB bodies of nested JSON, decides from a
// well-behaved client keep answering. Before outcome slicing and the pre-parse limits, one such
// body held the event loop for seconds (p99 2.6-3.5 s with this harness). Measured since: p99
// 16-70 ms on a busy shared 2-core machine, where the rest is CPU contention (and 222 ms with four
// other test suites running beside it); the bound (1 s, still well under the 2.6 s it guards
// against) is generous so the test does not flake, and the slicing itself is asserted without
// timing in http/outcome-slices.test.ts. hardening.measure.ts reports the numbers.

import t from 'tap';
import { hostileLoad, startTarget } from './hardening-lib.ts';

t.test('decide latency under hostile bodies', async (t) => {
  const target = await startTarget(undefined, { VERDICT_OUTCOMES_MAX_BATCH: '5000' });
  t.teardown(() => target.stop());
  const r = await hostileLoad(target, 3);
  t.comment(JSON.stringify(r));
  t.ok(r.frameBatches >= 1 && r.httpBatches >= 1, `5,000-outcome batches were applied (frames ${r.frameBatches}, HTTP ${r.httpBatches})`);
  t.ok(r.nestedStatuses.includes(413) && r.nestedStatuses.includes(400), `nested bodies refused (${r.nestedStatuses.join(', ')})`);
  t.ok(r.frameDecideMs.n > 50 && r.httpDecideMs.n > 50, 'decides kept flowing');
  t.ok(r.frameDecideMs.p99 < 1000, `frames: decide p99 ${r.frameDecideMs.p99.toFixed(1)} ms`);
  t.ok(r.httpDecideMs.p99 < 1000, `HTTP: decide p99 ${r.httpDecideMs.p99.toFixed(1)} ms`);
  t.ok(target.child.exitCode === null, 'the service is still up');
});
