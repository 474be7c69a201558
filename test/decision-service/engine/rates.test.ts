// The beta-binomial share model (engine/rates.ts): exact tails, and the behaviour it exists for —
// a shared address of customers with a normal typo rate never fires, a crew's 90% does.

import t from 'tap';
import { betaPrior, excessShare, learnBaseline, lnGamma, shareEvidence, upperTail } from '../../../decision-service/src/engine/rates.ts';
import { MemoryStore } from '../../../decision-service/src/state/memory-store.ts';

/** P(X = k) of BetaBinomial(n, a, b) by the defining product, for small n. */
function pmf(k: number, n: number, a: number, b: number): number {
  let c = 1;
  for (let i = 0; i < k; i++) c = (c * (n - i)) / (i + 1);
  let num = 1;
  for (let i = 0; i < k; i++) num *= a + i;
  for (let i = 0; i < n - k; i++) num *= b + i;
  let den = 1;
  for (let i = 0; i < n; i++) den *= a + b + i;
  return (c * num) / den;
}

t.test('lnGamma', async (t) => {
  t.ok(Math.abs(lnGamma(1)) < 1e-12);
  t.ok(Math.abs(lnGamma(5) - Math.log(24)) < 1e-12);
  t.ok(Math.abs(lnGamma(0.5) - Math.log(Math.sqrt(Math.PI))) < 1e-12);
  t.ok(Math.abs(lnGamma(101) - 363.73937555556347) < 1e-9);
});

t.test('upperTail is the beta-binomial tail', async (t) => {
  for (const [mean, w] of [[0.15, 10], [0.02, 20], [0.5, 2], [0.02, 50]] as const) {
    const prior = betaPrior(mean, w);
    for (const n of [1, 5, 12, 30]) {
      let tail = 0;
      for (let k = n; k >= 0; k--) {
        tail += pmf(k, n, prior.alpha, prior.beta);
        const got = upperTail(k, n, prior);
        t.ok(Math.abs(got - Math.min(1, tail)) < 1e-9, `mean ${mean} w ${w} n ${n} k ${k}: ${got} vs ${tail}`);
      }
    }
  }
  const p = betaPrior(0.15, 10);
  t.equal(upperTail(0, 10, p), 1);
  t.equal(upperTail(11, 10, p), 0);
  t.ok(upperTail(3, 4, p) > 0.01, 'three typos before the right password are ordinary');
  t.ok(upperTail(10, 10, p) < 1e-4, 'ten failures out of ten are not');
  // a heavy prior (many requests of evidence) tends to the binomial: narrower tails
  t.ok(upperTail(6, 20, betaPrior(0.15, 10_000)) < upperTail(6, 20, betaPrior(0.15, 10)));
  // large counts stay fast and finite
  const big = upperTail(900, 5000, betaPrior(0.15, 10));
  t.ok(big > 0 && big < 1);
});

t.test('excessShare: the part of a key the baseline does not explain', async (t) => {
  t.equal(excessShare(0, 0, 0.15), 0);
  t.equal(excessShare(15, 100, 0.15), 0);
  t.equal(excessShare(10, 100, 0.15), 0);
  t.ok(Math.abs(excessShare(100, 100, 0.15) - 1) < 1e-12);
  t.ok(Math.abs(excessShare(90, 100, 0.15) - 0.75 / 0.85) < 1e-12);
});

t.test('shareEvidence: a shared address of customers vs a crew', async (t) => {
  // an address's share averages its people's: the prior of a key many share is heavier
  const shared = betaPrior(0.15, 200);
  // the login failure rule of one IP (credential_stuffing: failures_per_key 5 / 15, x8 for an IP)
  const ip = { lo: 40, hi: 120, pValue: 0.001 };
  // 200 customers behind one carrier address, 1.2 logins each, a normal typo rate (17% failures)
  t.equal(shareEvidence(41, 240, shared, ip), 0, 'customers at the usual typo rate: nothing');
  // a somewhat unlucky hour (25%) is still within what people do
  t.ok(shareEvidence(60, 240, shared, ip) < 0.1, 'an unlucky hour: next to nothing');
  // a crew's 90% failure share from the same address
  const crew = shareEvidence(216, 240, shared, ip);
  t.ok(crew > 0.85, `a crew's 90% share fires near full strength: ${crew}`);
  // the crew mixed with as many customers' logins: about the crew's share
  const mixed = shareEvidence(228, 480, shared, ip);
  t.ok(mixed > 0.3 && mixed < 0.5, `half crew, half customers: ${mixed}`);
  // one client (failures_per_key 5 / 15): one person's share strays further
  const prior = betaPrior(0.15, 10);
  const client = { lo: 5, hi: 15, pValue: 0.001 };
  t.equal(shareEvidence(3, 4, prior, client), 0, 'three typos, then success');
  t.equal(shareEvidence(5, 5, prior, client), 0, 'five failures in a row: still plausible for a person');
  t.ok(shareEvidence(7, 7, prior, client) > 0.65, 'seven of seven: not');
  t.ok(shareEvidence(15, 15, prior, client) > 0.95);
  // failures counted before attempts aged out: never more than certain
  t.ok(shareEvidence(8, 6, prior, client) <= 1);
});

t.test('learnBaseline: learns the route share slowly, never during a spike', async (t) => {
  const store = new MemoryStore({ maxKeys: 100 });
  const keys = { requests: 'r', events: 'e', baseline: 'b' };
  const rule = { windowMs: 300_000, minRequests: 20, initial: 0.15, floor: 0.05, learningRate: 0.05, learnBelowRatio: 2, spikeRatio: 3, rememberMs: 86_400_000 };
  let now = 1_000_000;
  // three hours of quiet traffic at a 10% failure share: the baseline moves from 0.15 towards 0.10
  for (let i = 0; i < 5400; i++) {
    store.incr('r', rule.windowMs, now);
    if (i % 10 === 0) store.incr('e', rule.windowMs, now);
    learnBaseline(store, keys, now, rule);
    now += 2000;
  }
  const quiet = learnBaseline(store, keys, now, rule);
  t.ok(quiet.baseline < 0.13 && quiet.baseline > 0.07, `learned ${quiet.baseline}`);
  t.notOk(quiet.spike);
  // an attack ramping up to 90% failures over ten minutes: a spike, and the baseline does not follow it
  let last = quiet;
  for (let i = 0; i < 3000; i++) {
    store.incr('r', rule.windowMs, now);
    if (i % 10 !== 0) store.incr('e', rule.windowMs, now);
    last = learnBaseline(store, keys, now, rule);
    now += 200;
  }
  t.ok(last.spike, `spike at share ${last.share}`);
  t.ok(last.baseline < 0.2, `the attack did not teach the baseline: ${last.baseline}`);
  // below min_requests: no spike, no learning
  const fresh = new MemoryStore({ maxKeys: 100 });
  fresh.incr('r', rule.windowMs, now);
  fresh.incr('e', rule.windowMs, now);
  const r = learnBaseline(fresh, keys, now, rule);
  t.notOk(r.spike);
  t.equal(r.baseline, 0.15);
  // the floor
  t.equal(learnBaseline(fresh, keys, now, { ...rule, initial: 0.01 }).baseline, 0.15, 'the stored value wins over initial');
  t.equal(learnBaseline(new MemoryStore({ maxKeys: 10 }), keys, now, { ...rule, initial: 0.01 }).baseline, 0.05);
});
