// The modeled gateway's side of challenges (gateway-plugin/CONTRACT.md, "Challenges and
// clearance"): the verdict_clearance cookie it checks on every request, the token its answer
// endpoint issues, and what a CHALLENGE verdict turns into at a location. Tokens are real: issued
// and checked with the TypeScript reference (decision-service/src/gateway/clearance.ts, held to
// the Lua and njs gateways by shared vectors) under the key the gateway derives from its hmac_key.
//
// Not modeled: the proof itself. A client that solves is issued the token its proof would earn
// (level = the difficulty asked); the work is counted (challenge-clients.ts), not done.

import { checkToken, deriveKey, issueToken, type ClearanceKey, type TokenState } from '../../decision-service/src/gateway/clearance.ts';
import { subnetOf } from '../../decision-service/src/net/ip.ts';
import type { ChallengeKind } from '../../decision-service/src/wire/codec.ts';
import type { Clearance } from '../../decision-service/src/wire/schema.ts';
import { loadSpec } from '../../gateway-plugin/spec/render.ts';
import { headerValue, type TrafficLine } from './format.ts';

/** A location's challenge settings ($verdict_challenge_*, $verdict_clearance_ttl_s, $verdict_cleared). */
export interface ChallengeSettings {
  /** difficulty asked when the verdict names none; the no-JS fallback is offered up to it */
  readonly difficulty: number;
  readonly nojsWaitS: number;
  /** clearance lifetime when the verdict names none */
  readonly clearanceTtlS: number;
  /** async: a request with a valid clearance is not waited on; inline: still decided inline */
  readonly cleared: 'async' | 'inline';
  /** set: a challenge of the default kind is a 302 to this page (the operator's own) */
  readonly challengeUrl: string;
}

function specDefaults(): ChallengeSettings {
  const loc = new Map(loadSpec().location.map((o) => [o.name, o.default]));
  const num = (name: string): number => {
    const v = loc.get(name);
    if (typeof v !== 'number') throw new Error(`gateway-plugin/spec/options.json: location option ${name} has no numeric default`);
    return v;
  };
  const cleared = loc.get('cleared');
  if (cleared !== 'async' && cleared !== 'inline') throw new Error('gateway-plugin/spec/options.json: cleared is async or inline');
  return Object.freeze({
    difficulty: num('challenge_difficulty'),
    nojsWaitS: num('challenge_nojs_wait_s'),
    clearanceTtlS: num('clearance_ttl_s'),
    cleared,
    challengeUrl: String(loc.get('challenge_url') ?? ''),
  });
}

/** The gateway's defaults, from the one declaration of its options. */
export const CHALLENGE_DEFAULTS: ChallengeSettings = specDefaults();

/** What the client is asked for: a CHALLENGE verdict resolved against its location. */
export interface ChallengeAsk {
  /** POW: the interstitial page (navigations) or the 429 descriptor; PAGE, STATUS: nothing to solve here */
  readonly kind: Exclude<ChallengeKind, 'DEFAULT'>;
  /** leading zero bits asked */
  readonly difficulty: number;
  /** lifetime of the clearance a solve earns, s */
  readonly ttlS: number;
  /** the request was a page navigation: it got the interstitial, not the JSON descriptor */
  readonly navigation: boolean;
  /** an interstitial at this difficulty offers the no-JS fallback (a wait, level 0); a navigation gets the interstitial */
  readonly nojs: boolean;
  /** the fallback's wait, s */
  readonly nojsWaitS: number;
}

/** A page navigation as the gateway tells one: Sec-Fetch-Mode navigate, or none and Accept naming text/html. */
export function isNavigation(line: TrafficLine): boolean {
  const mode = headerValue(line, 'sec-fetch-mode');
  if (mode !== undefined) return mode.toLowerCase() === 'navigate';
  return (headerValue(line, 'accept') ?? '').toLowerCase().includes('text/html');
}

/** The challenge a CHALLENGE verdict asks at a location (CONTRACT.md: "What a challenge looks like"). */
export function challengeAsk(
  resp: { challenge_kind?: ChallengeKind; challenge_difficulty?: number; clearance_ttl_s?: number },
  s: ChallengeSettings,
  line: TrafficLine,
): ChallengeAsk {
  const named = resp.challenge_kind ?? 'DEFAULT';
  const kind = named === 'DEFAULT' ? (s.challengeUrl ? 'PAGE' : 'POW') : named;
  const difficulty = resp.challenge_difficulty || s.difficulty;
  const navigation = isNavigation(line);
  return {
    kind,
    difficulty,
    ttlS: resp.clearance_ttl_s || s.clearanceTtlS,
    navigation,
    nojs: kind === 'POW' && difficulty <= s.difficulty,
    nojsWaitS: s.nojsWaitS,
  };
}

/**
 * handler.lua satisfied(): a cached CHALLENGE (difficulty 0: the location's) is already answered
 * by a valid clearance of at least its difficulty. Level 0, the no-JS fallback, counts as the
 * location's base difficulty: it paid that, by waiting.
 */
export function satisfies(c: ClearanceCheck, cachedDifficulty: number, s: ChallengeSettings): boolean {
  if (c.state !== 'VALID') return false;
  return (c.level === 0 ? s.difficulty : c.level) >= (cachedDifficulty || s.difficulty);
}

/** What the gateway found in a request's verdict_clearance cookie, as the DecideRequest carries it. */
export interface ClearanceCheck {
  readonly state: Clearance;
  readonly level: number;
  readonly ageS: number;
}

const NONE: ClearanceCheck = Object.freeze({ state: 'NONE', level: 0, ageS: 0 });

function fromTokenState(t: TokenState): ClearanceCheck {
  switch (t.state) {
    case 'none': return NONE;
    case 'valid': return { state: 'VALID', level: t.level, ageS: t.ageS };
    case 'invalid': return { state: 'INVALID', level: 0, ageS: 0 };
    case 'expired': return { state: 'EXPIRED', level: 0, ageS: 0 };
  }
}

/** The binding of a token: the client's /24 or /64 and its User-Agent as received. */
function binding(line: TrafficLine): { subnet: string; ua: string } {
  return { subnet: subnetOf(line.ip), ua: headerValue(line, 'user-agent') ?? '' };
}

/** The gateway's clearance keys: checks the cookie a request carries, issues the token a proof earns. */
export class ClearanceGate {
  private readonly keys: readonly ClearanceKey[];

  /** `hmacKey`: the gateway's hmac_key (without clearance_keys, the gateway derives its one key from it). */
  constructor(hmacKey: string) {
    this.keys = [deriveKey(hmacKey)];
  }

  /** clearance.lua's check of the cookie for this request at virtual time `nowMs`. */
  check(token: string | undefined, line: TrafficLine, nowMs: number): ClearanceCheck {
    if (token === undefined) return NONE;
    return fromTokenState(checkToken(token, { keys: this.keys, now: Math.floor(nowMs / 1000), ...binding(line) }));
  }

  /** The token /.verdict/answer sets for a valid proof of `level` bits sent with this request's client. */
  issue(line: TrafficLine, level: number, ttlS: number, nowMs: number): string {
    return issueToken({ key: this.keys[0]!, now: Math.floor(nowMs / 1000), level, ttl: ttlS, ...binding(line) });
  }
}
