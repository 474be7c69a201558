// What detectors produce: namespaced reason codes with a strength, optionally asking the gateway
// to enforce the resulting verdict locally for a key and TTL.

import type { CompiledPolicy, CompiledRoute } from '../config/policy.ts';
import type { GatewayKeyType, RouteClass } from '../config/policy-schema.ts';
import type { DecideRequest, Outcome } from '../wire/schema.ts';
import type { Clock } from './clock.ts';
import type { Store } from '../state/store.ts';

/**
 * Which of the request's keys a signal's evidence is about (DESIGN §4, "Punish evidence, not
 * shared keys"); the engine reads the key's value from the features and decides, from the proven
 * clients seen behind it (proven.ts), whether the evidence may block, only challenge, or not act.
 * - `request`: this request itself (its path, query, headers, route); the default.
 * - narrow keys: `session`, `device`, `principal`: one client.
 * - keys many people may share: `client` (IP + fingerprint), `ip`, `subnet`: narrow while at most
 *   `proven.shared_after` proven clients are seen behind them, shared beyond.
 * - always shared: `tool` (the header-name set), `fingerprint` (User-Agent + language + encodings +
 *   client hints: a browser build), `password` (one password hash across accounts).
 * - `identifier`: the account a login targets; it protects the account (unproven logins to it are
 *   challenged), it never blocks.
 * - `global`: all traffic of a route class (failure spikes, number-block walks, surges).
 */
export type SignalSubject =
  | 'request'
  | 'session'
  | 'device'
  | 'principal'
  | 'client'
  | 'ip'
  | 'subnet'
  | 'tool'
  | 'fingerprint'
  | 'password'
  | 'identifier'
  | 'global';

export interface Signal {
  /** Namespaced reason code, e.g. "authz.missing_credentials". */
  readonly code: string;
  /** 0..100; signals combine as independent evidence (noisy-or). */
  readonly score: number;
  /** The policy rule is in monitor (dry-run) mode: counted and reported, never enforced. */
  readonly monitor: boolean;
  readonly cache: { readonly key: GatewayKeyType; readonly ttl_s: number } | undefined;
  /** The key the evidence is about; absent = `request`. */
  readonly subject?: SignalSubject;
  /** Alternatives of one piece of evidence on different keys (Strongest): of the signals of one
   *  group only the strongest that may act on the request counts. Absent: a group of its own. */
  readonly group?: string;
  /** The counts behind a counting rule (audit trail, console): what was counted on the key, out
   *  of how many where it is a share, and the policy's threshold where the rule starts to act. */
  readonly evidence?: Evidence;
}

export interface Evidence {
  /** e.g. login failures, distinct identifiers, not-found answers, claims */
  readonly count: number;
  /** the attempts the count is a share of (shares only) */
  readonly of?: number;
  /** the policy's threshold for this key (the count, or the share's count, where it starts to act) */
  readonly threshold: number;
}

/**
 * What the engine remembers of a request until its outcome arrives, and what Detector.observe
 * reads: the keys, not the request (whose buffers may slice a whole socket read).
 */
export interface OutcomeContext {
  readonly now: number;
  /** The request's method, path and query, hashed (settled-urls.ts urlHash). */
  readonly urlHash: number;
  readonly route: CompiledRoute;
  readonly routeClass: RouteClass;
  readonly method: string;
  readonly ip: string;
  readonly subnet: string;
  readonly hasCredentials: boolean;
  /** Keyed hash of the submitted identifier (never the raw value); "" when none. */
  readonly identifierHash: string;
  /** Hash of User-Agent, language, encodings, client hints: stable across one client's requests. */
  readonly fingerprint: string;
  /** "<ip>|<fingerprint>": one client, even behind a shared address. */
  readonly client: string;
  /** Hash of the sorted header names (identity routes only, else ""): the tool behind rotating
   *  User-Agents and shuffled header orders. */
  readonly headerSet: string;
  /** The principal came from an API-key header, not Authorization: a server-to-server client. */
  readonly apiKey: boolean;
  /** base64 of the token / session / device hashes; "" when absent. */
  readonly principal: string;
  readonly session: string;
  readonly device: string;
  /** base64 of the gateway's keyed password hash; "" when absent. */
  readonly passwordHash: string;
  /** Numeric value of a phone-like identifier, for locality; -1 when not phone-like. */
  readonly phoneNumber: number;
}

/** Everything detectors read about one request, computed once. */
export interface RequestFeatures extends OutcomeContext {
  readonly req: DecideRequest;
  readonly isInternalIp: boolean;
  /** Object id of an object route ("" when none) and its numeric value (-1 when not numeric). */
  readonly objectId: string;
  readonly objectNumber: number;
  /** User-Agent of an HTTP library, headless browser or none at all. */
  readonly automationClient: boolean;
  /** Headers inconsistent with the browser the User-Agent claims. */
  readonly browserMismatch: boolean;
}

export interface DetectorContext {
  readonly policy: CompiledPolicy;
  readonly store: Store;
  readonly clock: Clock;
}

export interface Detector {
  readonly name: string;
  /** Appends zero or more signals for this request. Must not throw on any valid request. */
  inspect(f: RequestFeatures, out: Signal[]): void;
  /** Learns from what the upstream answered (optional). */
  observe?(outcome: Outcome, f: OutcomeContext | undefined): void;
  /**
   * Route classes whose outcomes observe() needs: only those requests are kept until the outcome
   * comes. Omitted with observe() present: every class.
   */
  readonly observes?: readonly RouteClass[];
}

export type DetectorFactory = (ctx: DetectorContext) => Detector;

export function signal(code: string, score: number, monitor: boolean, cache?: Signal['cache'], subject: SignalSubject = 'request', group?: string, evidence?: Evidence): Signal {
  return evidence ? { code, score, monitor, cache, subject, group, evidence } : { code, score, monitor, cache, subject, group };
}

/** A rule's `target_ttl_s` as a signal's cache: the URL itself refused at the gateway (0: none). */
export function targetCache(ttlS: number): Signal['cache'] {
  return ttlS > 0 ? { key: 'target', ttl_s: ttlS } : undefined;
}

const SUBJECTS: readonly SignalSubject[] = ['request', 'session', 'device', 'principal', 'client', 'ip', 'subnet', 'tool', 'fingerprint', 'password', 'identifier', 'global'];

/**
 * The strongest evidence per key kind of one detector rule (e.g. failures per client, address,
 * /24, device, session and header set), offered to the engine as alternatives of one group: it
 * keeps the strongest that may act on the request, so a weaker count on the request's own session
 * still acts when a stronger one on an address its proven customers share may not (proven.ts).
 * One per detector instance, reset for each request (detectors are synchronous).
 */
export class Strongest {
  private readonly strength = new Float64Array(SUBJECTS.length);
  private readonly codes: string[] = SUBJECTS.map(() => '');
  private readonly evidence: Array<Evidence | undefined> = SUBJECTS.map(() => undefined);

  reset(): void {
    this.strength.fill(0);
  }

  /** Evidence of strength 0..1 on a key of kind `subject`, reported as `code` if it is that kind's strongest. */
  offer(strength: number, code: string, subject: SignalSubject, evidence?: Evidence): void {
    const i = SUBJECTS.indexOf(subject);
    if (strength > (this.strength[i] as number)) {
      this.strength[i] = strength;
      this.codes[i] = code;
      this.evidence[i] = evidence;
    }
  }

  /** The strongest strength offered (0 when none). */
  max(): number {
    let m = 0;
    for (const x of this.strength) if (x > m) m = x;
    return m;
  }

  /** The strongest strength offered on any of `subjects` (0 when none). */
  maxOf(subjects: readonly SignalSubject[]): number {
    let m = 0;
    for (const sub of subjects) m = Math.max(m, this.strength[SUBJECTS.indexOf(sub)] as number);
    return m;
  }

  /** Appends each kind's strongest as a signal of `score × strength` in group `group`. */
  emit(out: Signal[], score: number, monitor: boolean, cache: Signal['cache'], group: string): void {
    for (let i = 0; i < SUBJECTS.length; i++) {
      const x = this.strength[i] as number;
      if (x > 0) out.push(signal(this.codes[i] as string, score * x, monitor, cache, SUBJECTS[i], group, this.evidence[i]));
    }
  }
}

/** 0 below `lo`; from `lo` to `hi` rises from 0.65 to 1 (challenge-level, then block-level). */
export function ramp(x: number, lo: number, hi: number): number {
  if (lo <= 0 || x < lo) return 0;
  if (x >= hi || hi <= lo) return 1;
  return 0.65 + (0.35 * (x - lo)) / (hi - lo);
}

/**
 * Whether a rule's signal is only observed for this client: the rule is in monitor mode, or in
 * canary mode and this client (by ip + fingerprint, stable) falls outside the enforced share.
 */
export function observeOnly(cfg: { monitor: boolean; canary_percent: number }, f: RequestFeatures): boolean {
  if (cfg.monitor) return true;
  if (cfg.canary_percent >= 100) return false;
  let h = 0x811c9dc5;
  const s = f.client;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0) % 100 >= cfg.canary_percent;
}

/** Outcome helpers: what the upstream's answer says about the account or object. */
export function isNotFound(o: Outcome): boolean {
  return o.status === 404 || /unknown|not[-_ ]?found|no[-_ ]?such/i.test(o.auth_result);
}

/** A registration refused because the account exists (409, or an auth result saying so): on a sign-up route, the answer that tells who has an account. */
export function isTaken(o: Outcome): boolean {
  return o.status === 409 || /exists|taken|already|duplicate/i.test(o.auth_result);
}

export function isLoginFailure(o: Outcome): boolean {
  if (o.auth_result) return !/^(success|ok)$/i.test(o.auth_result);
  return o.status === 401 || o.status === 403 || o.status === 404;
}
