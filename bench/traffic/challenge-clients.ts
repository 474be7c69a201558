// What clients do when the gateway challenges them (issue 13): who can pass a proof-of-work
// challenge, how long it takes, what it costs, and the verdict_clearance cookie each client
// holds. The gateway's side (checking and issuing tokens) is gateway-clearance.ts.
//
// Client kinds (format.ts CLIENT_KINDS): a line's `sim.client` when the traffic has it, else
// judged from its label and User-Agent:
//   human (or unlabelled) with a browser UA -> browser, or browser-nojs when the browser is too
//     old to run the solver script (it uses ES2017 async functions: IE11, Chrome < 55,
//     Firefox < 52, Safari < 10.1 and old Android browsers cannot parse it);
//   human with any other UA (apps, integrations) -> app-solver for the world's appSolverShare of
//     them (by actor, deterministically), else app;
//   attack with a browser-like UA -> headless (assume it can solve: the conservative assumption
//     for detection), else script.
//
// The cookie jar is keyed like a browser holds cookies: per actor and host. An actor is a line's
// `sim.actor` within its label; else a human's label (one person); else, for attack lines, the
// label, subnet and User-Agent together (an attacker that keeps one token per binding loses
// nothing it could reuse); else, unlabelled, the address and User-Agent.

import { subnetOf } from '../../decision-service/src/net/ip.ts';
import type { ChallengeAsk } from './gateway-clearance.ts';
import { headerValue, labelKind, type ClientKind, type TrafficLine } from './format.ts';
import { hash32, Rng } from './rng.ts';

/**
 * Median seconds desktop Chromium needs to solve a challenge of d leading zero bits (the work
 * only; page round trips are PAGE_ROUND_TRIPS_S). Between listed difficulties the time doubles
 * with each bit; beyond them, too.
 * SOURCE: bench/results/challenge.md (`npx tsx bench/challenge-browser.ts --runs 25`, headless
 * Chromium 156 on a shared 2-core Xeon, 2026-12-01): medians of 25 solves (8 at 22 bits), so
 * noisy (a solve's hash count is geometric). Re-measure there and copy the medians here.
 */
export const CHROMIUM_SOLVE_MEDIAN_S: Readonly<Record<number, number>> = Object.freeze({
  12: 0.0015, 14: 0.0066, 16: 0.072, 18: 0.136, 20: 0.468, 22: 2.401,
});
/**
 * Spread of solve times around the median (lognormal sigma): the geometric hash count and device
 * speed. The measurement's p90/median runs 2.3-4x (sigma 0.65-1.1).
 */
export const SOLVE_SPREAD_SIGMA = 0.9;
/** Phones hash this many times slower than desktop Chromium. Placeholder: not measured here. */
export const MOBILE_SLOWDOWN = 3;
/**
 * The interstitial or descriptor, the answer and the redirect back, s: bench/results/challenge.md
 * measured a challenged navigation end to end at 364 ms (median) with 72 ms of solving.
 */
export const PAGE_ROUND_TRIPS_S = 0.3;
/** A person leaves a challenge page that has not finished after this long. */
export const HUMAN_PATIENCE_S = 30;
/** A person who lands back on a form after the challenge submits again after this long (s). */
export const RESUBMIT_S: readonly [number, number] = [3, 10];
/** A bot re-sends a challenged request this long after its clearance (s). */
export const BOT_RETRY_S: readonly [number, number] = [0.1, 1];
/** Solves one request is worth to any client: a second challenge of the same request is solved once more, then given up. */
export const MAX_SOLVES_PER_REQUEST = 2;

/** Median seconds of work at difficulty d (desktop Chromium). */
export function medianSolveS(d: number): number {
  const listed = Object.keys(CHROMIUM_SOLVE_MEDIAN_S).map(Number).sort((a, b) => a - b);
  let base = listed[0]!;
  for (const k of listed) if (k <= d) base = k;
  return CHROMIUM_SOLVE_MEDIAN_S[base]! * 2 ** (d - base);
}

/** The parameters of a world that are about its clients, not its traffic. */
export interface ChallengeWorld {
  /** share of non-browser human clients (apps, integrations) that ship the reference solver, for lines without `sim.client` */
  readonly appSolverShare: number;
  /** the site's front-end sends its API calls through the reference solver (fetchWithClearance) */
  readonly frontendSolver: boolean;
  /** seeds the solve-time draws */
  readonly seed: number;
}

export const DEFAULT_WORLD: ChallengeWorld = Object.freeze({ appSolverShare: 0, frontendSolver: true, seed: 1 });

/** A Mozilla-style browser User-Agent (a real browser, or a bot claiming to be one). */
export function browserLike(ua: string): boolean {
  // "compatible;" marks crawlers (Googlebot, bingbot), except old Internet Explorers
  return /^Mozilla\/5\.0 \(/.test(ua) && /AppleWebKit\/|Gecko\/|Trident\//.test(ua) && !(/\bcompatible;/.test(ua) && !/MSIE /.test(ua));
}

/** Whether this browser can run the solver script (ES2017: async functions). */
export function runsSolver(ua: string): boolean {
  if (/Trident\/|MSIE /.test(ua)) return false;
  const chrome = /(?:Headless)?Chrom(?:e|ium)\/(\d+)/.exec(ua);
  if (chrome) return Number(chrome[1]) >= 55;
  const firefox = /Firefox\/(\d+)/.exec(ua);
  if (firefox) return Number(firefox[1]) >= 52;
  const safari = /Version\/(\d+)(?:\.(\d+))?.*Safari\//.exec(ua);
  if (safari) return Number(safari[1]) > 10 || (Number(safari[1]) === 10 && Number(safari[2] ?? 0) >= 1);
  return true;
}

export function mobileUa(ua: string): boolean {
  return /Mobile|Android|iPhone|iPad/.test(ua);
}

/** How a challenge ended for the client. */
export type Meet =
  | {
      readonly pass: true;
      /** the clearance level the answer earns */
      readonly level: number;
      /** SHA-256 evaluations paid: 2^d expected for d bits, 0 for the no-JS wait */
      readonly hashes: number;
      /** seconds of solving (a person's wait, a bot's CPU) */
      readonly solveS: number;
      /** whole ms from the challenge to the answer (the token is issued then) */
      readonly answerMs: number;
      /** whole ms from the challenge to the retried request */
      readonly retryMs: number;
    }
  | { readonly pass: false; readonly why: StopWhy };

/**
 * Why a challenged client did not pass: its kind cannot solve (app, script), the challenge has
 * nothing to solve (PAGE, STATUS), a client that can only wait met a challenge without the no-JS
 * fallback (above the base difficulty; for an old browser also any API call),
 * the person gave up waiting, or it already solved MAX_SOLVES_PER_REQUEST times.
 */
export type StopWhy = 'cannot solve' | 'nothing to solve' | 'no fallback' | 'gave up' | 'solved enough';

export class ChallengeClients {
  /** actor + host → the cookie and when its Max-Age runs out (virtual ms) */
  private readonly jar = new Map<string, { readonly token: string; readonly expiresMs: number }>();
  readonly world: ChallengeWorld;

  constructor(world: Partial<ChallengeWorld> = {}) {
    this.world = { ...DEFAULT_WORLD, ...world };
  }

  /** The cookie jar this line's client uses (see the file comment). */
  actorOf(line: TrafficLine): string {
    const label = line.label ?? '';
    if (line.sim?.actor) return `${label}|${line.sim.actor}`;
    const kind = labelKind(line.label);
    if (kind === 'human') return label;
    const ua = headerValue(line, 'user-agent') ?? '';
    return kind === 'attack' ? `${label}|${subnetOf(line.ip)}|${ua}` : `${line.ip}|${ua}`;
  }

  kindOf(line: TrafficLine): ClientKind {
    if (line.sim?.client) return line.sim.client;
    const ua = headerValue(line, 'user-agent') ?? '';
    if (labelKind(line.label) === 'attack') return browserLike(ua) ? 'headless' : 'script';
    if (browserLike(ua)) return runsSolver(ua) ? 'browser' : 'browser-nojs';
    return hash32(this.actorOf(line), this.world.seed) / 2 ** 32 < this.world.appSolverShare ? 'app-solver' : 'app';
  }

  /** The verdict_clearance cookie this line's client sends at line.ts, if it holds one (a cookie jar drops it at its Max-Age). */
  cookie(line: TrafficLine): string | undefined {
    const c = this.jar.get(`${this.actorOf(line)}\n${line.host}`);
    return c !== undefined && line.ts < c.expiresMs ? c.token : undefined;
  }

  /** The answer endpoint's Set-Cookie (Max-Age: the clearance's lifetime, from `expiresMs`). */
  store(line: TrafficLine, token: string, expiresMs: number): void {
    this.jar.set(`${this.actorOf(line)}\n${line.host}`, { token, expiresMs });
  }

  /** What this line's client does with the challenge `ask`, having solved `solved` times for this request already. */
  meet(line: TrafficLine, ask: ChallengeAsk, solved: number): Meet {
    const kind = this.kindOf(line);
    if (kind === 'app' || kind === 'script') return { pass: false, why: 'cannot solve' };
    if (ask.kind !== 'POW') return { pass: false, why: 'nothing to solve' };
    if (solved >= MAX_SOLVES_PER_REQUEST) return { pass: false, why: 'solved enough' };
    const rng = new Rng(this.world.seed, `${this.actorOf(line)}|${line.ts}|${solved}`);
    const human = kind === 'browser' || kind === 'browser-nojs' || kind === 'app-solver';
    // a form POST through the interstitial is not replayed: the person lands on the form and submits again
    const resubmitS = ask.navigation && line.method === 'POST' && human ? rng.between(RESUBMIT_S[0], RESUBMIT_S[1]) : 0;
    const retryS = human ? resubmitS : rng.between(BOT_RETRY_S[0], BOT_RETRY_S[1]);
    if (kind === 'browser-nojs' || kind === 'script-nojs') {
      // a script gets the interstitial by asking like a navigation (not modeled as a request of its own)
      if (!ask.nojs || (kind === 'browser-nojs' && !ask.navigation)) return { pass: false, why: 'no fallback' };
      const answerS = ask.nojsWaitS + PAGE_ROUND_TRIPS_S;
      return { pass: true, level: 0, hashes: 0, solveS: ask.nojsWaitS, answerMs: Math.round(answerS * 1000), retryMs: Math.round((answerS + retryS) * 1000) };
    }
    if (kind === 'browser' && !ask.navigation && !this.world.frontendSolver) return { pass: false, why: 'cannot solve' };
    const ua = headerValue(line, 'user-agent') ?? '';
    const slow = kind === 'app-solver' || (kind === 'browser' && mobileUa(ua)) ? MOBILE_SLOWDOWN : 1;
    const solveS = medianSolveS(ask.difficulty) * slow * Math.exp(SOLVE_SPREAD_SIGMA * normal(rng));
    if (human && solveS > HUMAN_PATIENCE_S) return { pass: false, why: 'gave up' };
    const answerS = solveS + PAGE_ROUND_TRIPS_S;
    return { pass: true, level: ask.difficulty, hashes: 2 ** ask.difficulty, solveS, answerMs: Math.round(answerS * 1000), retryMs: Math.round((answerS + retryS) * 1000) };
  }
}

/** A standard normal draw (Box-Muller). */
function normal(rng: Rng): number {
  const u = 1 - rng.float();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.float());
}
