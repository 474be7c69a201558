// The decision path counts decisions, reasons and outcomes in a Tally that is handed to the
// prom-client counter when it is read: a scrape sees every increment, across reads, and label
// sets beyond the tally's bound go to the counter directly (nothing lost).
import t from 'tap';
import { createMetrics } from '../../../decision-service/src/service/metrics.ts';

t.test('a scrape sees every tallied increment, and the next scrape the ones after it', async (t) => {
  const m = createMetrics(false);
  for (let i = 0; i < 5; i++) m.reasonTally.inc('bola.object_fanout.principal', () => ({ reason: 'bola.object_fanout.principal' }));
  m.reasonTally.inc('cs.failure_rate.ip', () => ({ reason: 'cs.failure_rate.ip' }), 3);
  let text = await m.registry.metrics();
  t.match(text, /verdict_decision_reasons_total\{reason="bola.object_fanout.principal"\} 5\b/);
  t.match(text, /verdict_decision_reasons_total\{reason="cs.failure_rate.ip"\} 3\b/);
  m.reasonTally.inc('cs.failure_rate.ip', () => ({ reason: 'cs.failure_rate.ip' }));
  text = await m.registry.metrics();
  t.match(text, /verdict_decision_reasons_total\{reason="cs.failure_rate.ip"\} 4\b/, 'added on top, not counted twice');
  const values = (await m.reasons.get()).values;
  t.equal(values.find((v) => v.labels.reason === 'bola.object_fanout.principal')?.value, 5, 'get() drains too (the console reads it)');
});

t.test('label sets beyond the bound are counted straight into the counter', async (t) => {
  const m = createMetrics(false);
  for (let i = 0; i < 1200; i++) m.outcomeTally.inc(`k${i}`, () => ({ status_class: `c${i}` }), 2);
  const values = (await m.outcomes.get()).values;
  t.equal(values.length, 1200, 'every label set is there');
  t.ok(values.every((v) => v.value === 2), 'each with its count');
});
