// Shares, not raw counts: how much of a key's traffic ends in a login failure, a "no such account"
// or a not-found object, judged against a model of the key's legitimate users.
//
// People differ (some mistype often, most rarely), so a key's legitimate share p is itself drawn
// from a Beta prior centred on the route's own baseline share, worth `weight` requests of
// evidence; its count of such outcomes among n requests is then beta-binomial. Javed & Paxson
// model legitimate SSH login failures this way to find distributed brute force ("Detecting
// Stealthy, Distributed SSH Brute-Forcing", CCS 2013). A key is judged only
//   - past a minimum volume (the caller's count ramp),
//   - when its count is improbable for its legitimate users (the beta-binomial upper tail is at
//     most `p_value`), and then
//   - for the share of its traffic the baseline cannot explain (`excessShare`): a shared address
//     whose 200 customers mistype at the usual rate never fires; one where a crew's failures
//     make 90% of the traffic fires at about the crew's share, so its customers are at most
//     challenged unless narrower evidence adds up.
//
// The route's baseline is learned from its own traffic, slowly and only outside spikes, so an
// attack cannot teach it (`learnBaseline`).

import type { Store } from '../state/store.ts';
import { ramp } from './signal.ts';

/** Beta(alpha, beta): the spread of legitimate shares around `mean`. */
export interface BetaPrior {
  readonly mean: number;
  readonly alpha: number;
  readonly beta: number;
}

/** The prior of a route whose legitimate share is `mean`, worth `weight` (≥ 2) requests of evidence. */
export function betaPrior(mean: number, weight: number): BetaPrior {
  const m = Math.min(1 - 1e-6, Math.max(1e-6, mean));
  const w = Math.max(2, weight);
  return { mean: m, alpha: m * w, beta: (1 - m) * w };
}

// Lanczos approximation (g = 7, 9 terms): |error| < 1e-13 for x > 0.
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0. */
export function lnGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  const z = x - 1;
  let a = LANCZOS[0] as number;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += (LANCZOS[i] as number) / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

function lnBeta(a: number, b: number): number {
  return lnGamma(a) + lnGamma(b) - lnGamma(a + b);
}

/**
 * P(X ≥ events) for X ~ BetaBinomial(trials, α, β): how likely legitimate users of the key would
 * produce at least this many. Sliding-window counts are fractional: both are rounded. O(trials −
 * events) at worst; the sum stops once the terms are negligible (the distribution is unimodal
 * or monotone for α + β ≥ 2, which betaPrior guarantees).
 */
export function upperTail(events: number, trials: number, prior: BetaPrior): number {
  const n = Math.max(0, Math.round(trials));
  const k = Math.round(events);
  if (k <= 0) return 1;
  if (k > n) return 0;
  const { alpha: a, beta: b } = prior;
  let term = Math.exp(lnGamma(n + 1) - lnGamma(k + 1) - lnGamma(n - k + 1) + lnBeta(k + a, n - k + b) - lnBeta(a, b));
  let sum = term;
  for (let j = k; j < n; j++) {
    const next = term * ((n - j) / (j + 1)) * ((j + a) / (n - j - 1 + b));
    sum += next;
    if (next < term && next < sum * 1e-12) break;
    term = next;
  }
  return Math.min(1, sum);
}

/**
 * The share of a key's requests that its legitimate users do not explain: (share − mean) /
 * (1 − mean), 0..1 — an estimate of the part of the key's traffic that is the attack, assuming
 * the attack's requests all end that way. 0 without trials.
 */
export function excessShare(events: number, trials: number, mean: number): number {
  if (trials <= 0) return 0;
  const share = Math.min(1, events / trials);
  return mean >= 1 ? 0 : Math.max(0, (share - mean) / (1 - mean));
}

/** How a detector judges one key's share (thresholds already scaled for the key's kind). */
export interface ShareRule {
  /** Count ramp: `lo` events reach challenge strength, `hi` full strength (signal.ts ramp). */
  readonly lo: number;
  readonly hi: number;
  /** The beta-binomial upper tail at most this to count as evidence at all. */
  readonly pValue: number;
}

/**
 * Strength 0..1 of a key's share as evidence: 0 below `lo` events or while legitimate users could
 * plausibly have produced them; else the count ramp scaled by the excess share.
 */
export function shareEvidence(events: number, trials: number, prior: BetaPrior, rule: ShareRule): number {
  const r = ramp(events, rule.lo, rule.hi);
  if (r === 0) return 0;
  // the window holds outcomes of requests whose attempts aged out first: never more events than trials
  const n = Math.max(trials, events);
  if (upperTail(events, n, prior) > rule.pValue) return 0;
  return r * excessShare(events, n, prior.mean);
}

/** A route's store keys for learnBaseline: answered requests, counted events, learned share. */
export interface RouteKeys { readonly requests: string; readonly events: string; readonly baseline: string }

/** `make(route)` built once per route name (a handful), not per request. */
export function perRoute<T>(make: (route: string) => T): (route: string) => T {
  const memo = new Map<string, T>();
  return (route) => {
    let k = memo.get(route);
    if (k === undefined) memo.set(route, (k = make(route)));
    return k;
  };
}

/** routeKeys(route) for one detector's key family, built once per route name. */
export function routeKeyMemo(keys: {
  routeRequests(route: string): string;
  routeNotFound(route: string): string;
  routeBaseline(route: string): string;
}): (route: string) => RouteKeys {
  return perRoute((route) => ({ requests: keys.routeRequests(route), events: keys.routeNotFound(route), baseline: keys.routeBaseline(route) }));
}

/** A route's learned share (login failures, not-found answers) and what counts as a spike of it. */
export interface BaselineRule {
  /** The recent window the route's share is measured over (ms). */
  readonly windowMs: number;
  /** Below this many requests in the window nothing is learned and nothing is a spike. */
  readonly minRequests: number;
  /** The baseline before anything was learned. */
  readonly initial: number;
  /** The baseline is never taken below this (a quiet hour must not make every failure a spike). */
  readonly floor: number;
  /** How far the baseline moves towards the recent share per window's worth of requests (0..1). */
  readonly learningRate: number;
  /** Only shares below this multiple of the baseline are learned (an attack ramping up is not). */
  readonly learnBelowRatio: number;
  /** The recent share above this multiple of the baseline is a spike (0: never). */
  readonly spikeRatio: number;
  /** How long the learned baseline is kept without traffic (ms). */
  readonly rememberMs: number;
}

export interface BaselineReading {
  readonly requests: number;
  readonly share: number;
  /** The learned baseline (at least the floor). */
  readonly baseline: number;
  readonly spike: boolean;
}

/**
 * Reads a route's recent share (`events` of `requests`, both window counters the caller keeps)
 * against its learned baseline (a value under `baselineKey`), and learns: slowly, and only
 * outside spikes, so an attack cannot teach it.
 */
export function learnBaseline(store: Store, keys: { requests: string; events: string; baseline: string }, now: number, rule: BaselineRule): BaselineReading {
  const requests = store.count(keys.requests, rule.windowMs, now);
  const share = store.count(keys.events, rule.windowMs, now) / Math.max(1, requests);
  const base = store.swap(keys.baseline, 0, now, rule.rememberMs) ?? rule.initial;
  const baseline = Math.max(rule.floor, base);
  const enough = requests >= rule.minRequests;
  const spike = enough && rule.spikeRatio > 0 && share > rule.spikeRatio * baseline;
  // Each request moves it by learningRate / requests, so a window's worth of traffic moves it by
  // about learningRate, however busy the route: heavy traffic (an attack ramping up below the
  // spike) must not drag it along faster.
  const learn = enough && !spike && share < rule.learnBelowRatio * baseline;
  const w = rule.learningRate / requests;
  store.swap(keys.baseline, learn ? (1 - w) * base + w * share : base, now, rule.rememberMs);
  return { requests, share, baseline, spike };
}
