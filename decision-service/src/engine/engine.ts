// The decision engine: features → detectors → score → action, with an injectable clock and a
// store. Scoring combines signal strengths as independent evidence (noisy-or), then maps the
// score to an action with the route class's thresholds.

import { createHash } from 'node:crypto';
import type { CompiledPolicy, CompiledRoute } from '../config/policy.ts';
import { ROUTE_CLASSES, type CacheKeyType, type ChallengeKindName, type GatewayKeyType, type RouteClass } from '../config/policy-schema.ts';
import type { Store, Unsettled } from '../state/store.ts';
import type { Action, ChallengeKind, DecideResponse } from '../wire/codec.ts';
import type { DecideRequest, Outcome } from '../wire/schema.ts';
import type { Clock } from './clock.ts';
import { BoundedMap } from '../state/bounded-map.ts';
import { DETECTORS } from './detectors/index.ts';
import { extractFeatures } from './features.ts';
import { challengeKeys } from './state-keys.ts';
import { SettledUrls } from './settled-urls.ts';
import { Inventory } from './inventory.ts';
import { Collateral, PROOF, Proofs, ROLE, type Role } from './proven.ts';
import { signal, type Detector, type DetectorFactory, type OutcomeContext, type RequestFeatures, type Signal } from './signal.ts';

const KIND: Record<ChallengeKindName, ChallengeKind> = { pow: 'POW', page: 'PAGE', status: 'STATUS' };

/** What a CHALLENGE verdict asks of the client (CONTRACT.md, "Challenges and clearance"). */
interface ChallengeAsk {
  readonly kind: ChallengeKind;
  readonly difficulty: number;
}

export interface Decision extends DecideResponse {
  /** Route class the request matched (for metrics; not on the wire). */
  readonly routeClass: string;
  /** The action monitor-mode rules would have taken, when stronger than `action`. */
  readonly wouldAction: Action;
  /** Clean marks this decision takes back (issue 15): the request's marked keys, each with the
   *  gateways that cached it, when something was found on it. Not on the wire (OutcomeAck). */
  readonly unmark?: readonly Unmark[];
  /** The request's URL, hashed (settled-urls.ts urlHash; for Engine.inspectShare; not on the wire). */
  readonly urlHash?: number;
}

/**
 * A decision that found something on keys this instance had not merged yet (a fleet's store):
 * its writes are undone; once `ready`, Engine.redo decides it again on the fleet's view.
 */
export interface Resettle {
  readonly ready: Promise<void>;
  readonly f: RequestFeatures;
  readonly req: DecideRequest;
  /** clean marks the first decision took back: still owed to the gateways */
  readonly unmark: Decision['unmark'];
}

/** A clean mark to drop at the gateways that cached it (OutcomeAck.unmarked_keys). */
export interface Unmark {
  readonly key: string;
  readonly gateways: readonly string[];
}

/** A clean mark handed out: until when, and to which gateways (at most MARK_GATEWAYS). */
interface Mark {
  until: number;
  gateways: string[];
}
const MARK_GATEWAYS = 4;

export interface EngineOptions {
  readonly policy: CompiledPolicy;
  readonly store: Store;
  readonly clock: Clock;
  readonly identifierKey: Buffer;
  readonly detectors?: readonly DetectorFactory[];
  /**
   * How many recent requests are remembered to attribute outcomes (bounded LRU, ≈ 300 bytes
   * each): at least the decisions of identity and object routes made within the gateways' outcome
   * batching delay.
   */
  readonly recentRequests?: number;
  /** Maximum path templates the inventory keeps. */
  readonly inventoryTemplates?: number;
  /** Maximum templates per route in the inventory; further paths of the route count under one entry. */
  readonly inventoryTemplatesPerRoute?: number;
  /** How many live clean marks are remembered, to take them back (`clean_marks`). */
  readonly marks?: number;
}

/**
 * A request remembered for its outcome: its keys (OutcomeContext) and inventory entry, copied out
 * of the features so that neither the request nor the buffers it slices stay alive. Built in one
 * place, so every one has the same shape.
 */
interface Remembered extends OutcomeContext {
  readonly endpoint: string;
}

function remember(f: RequestFeatures, endpoint: string): Remembered {
  return {
    now: f.now,
    route: f.route,
    routeClass: f.routeClass,
    method: f.method,
    ip: f.ip,
    subnet: f.subnet,
    hasCredentials: f.hasCredentials,
    identifierHash: f.identifierHash,
    fingerprint: f.fingerprint,
    client: f.client,
    headerSet: f.headerSet,
    apiKey: f.apiKey,
    principal: f.principal,
    session: f.session,
    device: f.device,
    passwordHash: f.passwordHash,
    phoneNumber: f.phoneNumber,
    urlHash: f.urlHash,
    endpoint,
  };
}

const NO_SIGNALS: readonly Signal[] = Object.freeze([]);

/** The key types a clean mark may name, strongest first (Engine.mark takes the first the request has). */
const MARK_TYPES = ['principal', 'session', 'device'] as const;

const ACTION_RANK: Readonly<Record<Action, number>> = { ALLOW: 0, TAG: 1, CHALLENGE: 2, BLOCK: 3 };

export class Engine {
  private policy: CompiledPolicy;
  private detectors: readonly Detector[];
  /** Route classes some detector needs outcomes for (Detector.observes). */
  private observed: ReadonlySet<RouteClass>;
  private readonly factories: readonly DetectorFactory[];
  private readonly store: Store;
  private readonly clock: Clock;
  private readonly identifierKey: Buffer;
  private readonly recent: BoundedMap<string, Remembered>;
  /** Clean marks handed out (gateway cache key → until, gateways), to take back on evidence. */
  private readonly marks: BoundedMap<string, Mark>;
  private readonly proofs: Proofs;
  private readonly collateral: Collateral;
  /** Scratch: the role of each signal of the decision in progress (filled and read synchronously). */
  private readonly roles: Role[] = [];
  /** Scratch: the signal groups already counted in the pass in progress. */
  private readonly groups: string[] = [];
  /** Path templates learned from traffic (read-only view at GET /v1/inventory). */
  readonly inventory: Inventory;
  /** URLs whose responses show everyone the same values (issue 17): inspected at a lower share. */
  readonly settled = new SettledUrls();
  /** The last decide()'s features and signals, read synchronously after it by the audit trail
   *  (service/audit.ts); overwritten by the next decide. */
  lastFeatures: RequestFeatures | undefined;
  lastSignals: readonly Signal[] = [];

  constructor(opts: EngineOptions) {
    this.policy = opts.policy;
    this.store = opts.store;
    this.clock = opts.clock;
    this.identifierKey = opts.identifierKey;
    this.factories = opts.detectors ?? DETECTORS;
    this.detectors = this.build(opts.policy);
    this.observed = observedClasses(this.detectors, opts.policy);
    this.proofs = new Proofs(opts.store);
    this.collateral = new Collateral(this.proofs);
    this.recent = new BoundedMap(opts.recentRequests ?? 50_000);
    this.marks = new BoundedMap(opts.marks ?? 100_000);
    this.inventory = new Inventory(opts.inventoryTemplates ?? 5000, opts.inventoryTemplatesPerRoute ?? 200);
    this.lastFeatures = undefined;
  }

  get policyVersion(): string {
    return this.policy.version;
  }

  /** Swaps the policy atomically: decisions in flight finish on the old one. */
  setPolicy(policy: CompiledPolicy): void {
    const detectors = this.build(policy);
    this.policy = policy;
    this.detectors = detectors;
    this.observed = observedClasses(detectors, policy);
  }

  /** Decides a request on this instance's view of the state. */
  decide(req: DecideRequest): Decision {
    return this.judge(this.prepare(req), req);
  }

  /**
   * As decide, but in a fleet whose store can be behind (Store.settling): a decision that found
   * anything (a stop, a tag) on keys this instance had not yet merged (a session another instance
   * issued, a login it saw) is not answered on that view. Its writes are undone and a Resettle
   * returned: the keys are read from the shared store (for at most `waitMs`), then `redo` decides
   * again. Absent evidence of a customer's own history is the one thing a lagging view invents,
   * and it is what stops people.
   */
  decideOrSettle(req: DecideRequest, waitMs: number): Decision | Resettle {
    const st = waitMs > 0 ? this.store.settling : undefined;
    const f = this.prepare(req);
    if (!st?.begin()) return this.judge(f, req);
    let d: Decision;
    let u: Unsettled | undefined;
    try {
      d = this.judge(f, req);
    } finally {
      u = st.end();
    }
    // anything found (a TAG too: its absent evidence can leave a session unmarked as issued,
    // and the customer stopped later on what Redis never got)
    if (u === undefined || (d.action === 'ALLOW' && d.reasons.length === 0)) return d;
    st.undo(u);
    return { ready: st.settle(u, waitMs), f, req, unmark: d.unmark };
  }

  /** Decides a Resettle again, once its keys are read. */
  redo(r: Resettle): Decision {
    this.lastFeatures = r.f;
    const d = this.judge(r.f, r.req);
    return r.unmark && !d.unmark ? { ...d, unmark: r.unmark } : d;
  }

  /** The request's features; records it in the inventory and for its outcome. */
  private prepare(req: DecideRequest): RequestFeatures {
    const policy = this.policy;
    const now = req.mode === 'INLINE' || req.ts_ms === 0 ? this.clock.now() : req.ts_ms;
    const f = extractFeatures(req, policy, now, this.identifierKey);
    this.lastFeatures = f;
    // Privacy by construction: from here on only the keyed hash exists, also in the caller's
    // request object.
    if (req.identifier) (req as { identifier: string }).identifier = '';
    const endpoint = this.inventory.record(f, policy.fallbackRoute.name);
    // Only requests whose answers some detector observes are remembered for their outcome, and
    // only their keys: keeping every request alive until its outcome arrives would make every
    // decision survive the young GC generation.
    // Keyed by the gateway that asked as well: an outcome is attributed only when the same
    // gateway reports it, so nobody can land outcomes on requests of another (issue 11).
    if (req.request_id && this.observed.has(f.routeClass)) this.recent.set(`${req.gateway_id ?? ''}\n${req.request_id}`, remember(f, endpoint));
    return f;
  }

  /** The verdict on a prepared request (writes detector state as it goes). */
  private judge(f: RequestFeatures, req: DecideRequest): Decision {
    const policy = this.policy;
    const now = f.now;
    this.lastSignals = NO_SIGNALS;
    if (policy.allowIps.has(f.ip)) return this.verdict(f, 'ALLOW', 0, ['ip.allowlist'], '', 0, 'ALLOW');
    if (policy.denyIps.has(f.ip)) {
      const ttl = policy.doc.ip_lists.deny_cache_ttl_s;
      return this.verdict(f, 'BLOCK', 100, ['ip.denylist'], ttl > 0 ? `ip:${f.ip}` : '', ttl, 'BLOCK');
    }

    const signals: Signal[] = [];
    this.lastSignals = signals;
    // which rule produced each signal: its own challenge settings apply when it is the strongest
    const owners = new Map<Signal, string>();
    for (const d of this.detectors) {
      const n = signals.length;
      d.inspect(f, signals);
      for (let i = n; i < signals.length; i++) owners.set(signals[i] as Signal, d.name);
    }
    const clearance = policy.doc.clearance;
    if (req.clearance === 'INVALID' && clearance.invalid_score > 0) signals.push(signal('clearance.invalid', clearance.invalid_score, false));
    const abandonWindow = clearance.abandoned_window_s * 1000;
    if (clearance.abandoned_score > 0 && req.clearance !== 'VALID'
      && this.store.count(challengeKeys.issued(f.client), abandonWindow, now) >= clearance.abandoned_after) {
      signals.push(signal('clearance.abandoned', clearance.abandoned_score, false, undefined, 'client'));
    }
    const needLevel = f.route.clearanceLevel ?? clearance.require_level[f.routeClass] ?? 0;
    // level 0 is the no-JS fallback, offered only at the base difficulty: it paid that, by waiting
    const clearedLevel = req.clearance !== 'VALID' ? -1 : req.clearance_level === 0 ? policy.doc.challenge.difficulty : req.clearance_level;
    const shortOfLevel = needLevel > 0 && clearedLevel < needLevel; // the route class asks more than it carries
    if (signals.length === 0 && !shortOfLevel) return this.clean(f, now);
    // Whether the request is proven matters only where there is evidence (or a level to ask): read
    // it there (proven.ts; a proven client is also counted behind the request's keys then).
    const pv = policy.doc.proven;
    const proof = pv.enabled ? this.proofs.of(f, req, pv) : PROOF.none;
    // lacking the required level is an attack-time rule: not for a client proven by its login or
    // its device's history
    const short = shortOfLevel && !(pv.exempt_required_level && (proof === PROOF.login || proof === PROOF.device));
    if (signals.length === 0 && !short) return this.clean(f, now);

    // Collateral (proven.ts): evidence on the request and its own keys acts fully ("own");
    // evidence on keys many people share counts only next to own evidence ("shared"); global
    // alarms and accounts under attack raise scrutiny of unproven requests ("alarm"); neither
    // blocks alone, and a proven client answers for neither ("drop").
    signals.sort((a, b) => b.score - a.score);
    const collateral = this.collateral;
    if (pv.enabled) collateral.begin(f, proof, pv);
    // Of a group of alternatives (signal.ts, Strongest), the strongest that may act counts.
    const roles = this.roles;
    const groups = this.groups;
    roles.length = 0;
    groups.length = 0;
    let keepOwn = 1; // own evidence of enforced rules
    let keepOwnAll = 1; // ...and of monitor-mode rules
    let keepNarrow = 1; // own evidence of enforced rules on the request and its own keys, not its address
    let keepOffRange = 1; // ...and on its address, not its address range
    let keepOffRangeAll = 1; // ...of monitor-mode rules too
    for (const s of signals) {
      const role = pv.enabled ? collateral.role(s) : ROLE.own;
      roles.push(role);
      if (role !== ROLE.own || !firstOfGroup(s, groups)) continue;
      const p = keepOf(s);
      keepOwnAll *= p;
      if (s.subject !== 'subnet') keepOffRangeAll *= p;
      if (!s.monitor) {
        keepOwn *= p;
        if (!isAddress(s)) keepNarrow *= p;
        if (s.subject !== 'subnet') keepOffRange *= p;
      }
    }
    groups.length = 0;
    const ownScore = Math.round(100 * (1 - keepOwn));
    const ownScoreAll = Math.round(100 * (1 - keepOwnAll));
    const gate = pv.shared_needs_own_score;
    let keepEnforced = 1;
    let keepAll = 1;
    let shared = false;
    let sharedAll = false;
    // evidence on an address a crowd of proven clients shares counted: never a block beyond what
    // the request's own evidence reaches alone (a header set may add to one, issue 14)
    let crowd = false;
    let crowdAll = false;
    // evidence on the request's address range counted (range_needs_own)
    let range = false;
    let rangeAll = false;
    const reasons: string[] = [];
    let cache: Signal['cache'];
    let strongest: Signal | undefined;
    for (let i = 0; i < signals.length; i++) {
      const s = signals[i] as Signal;
      const role = roles[i] as Role;
      if (role === ROLE.drop || (role === ROLE.shared && (s.monitor ? ownScoreAll : ownScore) < gate) || !firstOfGroup(s, groups)) continue;
      const p = keepOf(s);
      keepAll *= p;
      if (role !== ROLE.own) sharedAll = true;
      if (role === ROLE.shared && isAddress(s)) crowdAll = true;
      if (s.subject === 'subnet') rangeAll = true;
      if (s.monitor) {
        reasons.push(`dry_run:${s.code}`);
        continue;
      }
      keepEnforced *= p;
      if (role !== ROLE.own) shared = true;
      if (role === ROLE.shared && isAddress(s)) crowd = true;
      if (s.subject === 'subnet') range = true;
      reasons.push(s.code);
      strongest ??= s;
      // the gateway caches only what evidence on keys nobody proven shares decided
      if (!cache && s.cache && (!pv.enabled || collateral.cacheable(s, role))) cache = s.cache;
    }
    const score = Math.round(100 * (1 - keepEnforced));
    const thresholds = policy.thresholds[f.routeClass];
    const needOwn = pv.block_needs_own_score;
    const crowdOwn = pv.crowd_never_blocks ? thresholds.block : needOwn;
    let action = capShared(capShared(actionFor(score, thresholds), shared, ownScore, needOwn), crowd, ownScore, crowdOwn);
    let wouldAction = capShared(capShared(actionFor(Math.round(100 * (1 - keepAll)), thresholds), sharedAll, ownScoreAll, needOwn), crowdAll, ownScoreAll, crowdOwn);
    // an address range is not the request's own: alone, it challenges (range_needs_own)
    if (pv.enabled && pv.range_needs_own) {
      action = capShared(action, range, Math.round(100 * (1 - keepOffRange)), needOwn);
      wouldAction = capShared(wouldAction, rangeAll, Math.round(100 * (1 - keepOffRangeAll)), needOwn);
    }
    // Abuse marks a session, device and login as never to be proven: only for what the request and
    // its own keys did. Evidence on an address (or address + build) that nobody proven shares *yet*
    // acts on the request, but a carrier NAT's first customers, challenged for a crew behind the
    // same address, must still become proven when they log in — or the crowd never forms (issue 14).
    if (pv.enabled && Math.round(100 * (1 - keepNarrow)) >= pv.abuse_score) this.proofs.abused(f, pv);
    let ask: ChallengeAsk | undefined;
    if (action === 'CHALLENGE' || (action !== 'BLOCK' && short)) {
      // challenged for the score: its difficulty (at least the level required); only for lacking
      // the required level: exactly that level
      const wanted = action === 'CHALLENGE'
        ? this.challengeAsk(strongest && owners.get(strongest), score, thresholds, needLevel)
        : { kind: this.challengeAsk(undefined, score, thresholds, needLevel).kind, difficulty: needLevel };
      if (clearedLevel >= wanted.difficulty) {
        // a proven browser that already paid at least this much: let it through, tagged
        action = 'TAG';
        reasons.push('clearance.accepted');
      } else {
        action = 'CHALLENGE';
        ask = wanted;
        if (short) reasons.push('clearance.required');
      }
    }
    let cacheKey = '';
    let ttl = 0;
    if (cache && (action === 'BLOCK' || action === 'CHALLENGE')) {
      // Never a key with more than one proven client behind it: the narrowest the request carries.
      const type = pv.enabled && collateral.sharedKey(cache.key) ? narrowestKey(f) : cache.key;
      cacheKey = type ? cacheKeyFor(type, f) : '';
      ttl = cacheKey ? cache.ttl_s : 0;
    }
    if (ask && clearance.abandoned_score > 0) this.store.incr(challengeKeys.issued(f.client), abandonWindow, now);
    let d = this.verdict(f, action, score, reasons, cacheKey, ttl, wouldAction);
    // found: anything that counted (a reason, monitor-mode ones included); evidence dropped
    // because the client is proven (or shared evidence gated away) does not take a mark back
    if (this.marks.size > 0 && (reasons.length > 0 || action !== 'ALLOW')) {
      const unmark = this.unmarks(f, now);
      if (unmark) d = { ...d, unmark };
    }
    return ask ? { ...d, challenge_kind: ask.kind, challenge_difficulty: ask.difficulty, clearance_ttl_s: clearance.ttl_s } : d;
  }

  /**
   * A request nothing was found on (issue 15, `clean_marks`). Decided inline on an
   * inline_unless_cleared route, it marks its client clean: an ALLOW the gateway caches under the
   * client's principal, else session, else device key, for `clean_marks.ttl_s`.
   */
  private clean(f: RequestFeatures, now: number): Decision {
    const ttl = this.policy.doc.clean_marks.ttl_s;
    const key = ttl > 0 && f.req.mode === 'INLINE' && f.route.inlineUnlessCleared ? this.mark(f, now, now + ttl * 1000) : '';
    return this.verdict(f, 'ALLOW', 0, [], key, key ? ttl : 0, 'ALLOW');
  }

  /** Remembers a clean mark on the request's strongest own key until `until`; returns it ('' if none). */
  private mark(f: RequestFeatures, now: number, until: number): string {
    let key = '';
    for (const type of MARK_TYPES) if ((key = cacheKeyFor(type, f))) break;
    if (!key) return '';
    const gateway = f.req.gateway_id ?? '';
    const m = this.marks.get(key);
    if (!m || m.until <= now) {
      this.marks.set(key, { until, gateways: [gateway] });
    } else {
      m.until = until;
      if (!m.gateways.includes(gateway)) {
        if (m.gateways.length >= MARK_GATEWAYS) m.gateways.shift();
        m.gateways.push(gateway);
      }
    }
    return key;
  }

  /** The live clean marks of a request something was found on, forgotten here (taken back). */
  private unmarks(f: RequestFeatures, now: number): Unmark[] | undefined {
    let out: Unmark[] | undefined;
    for (const type of MARK_TYPES) {
      const key = cacheKeyFor(type, f);
      if (!key) continue;
      const m = this.marks.take(key);
      if (m && m.until > now) (out ??= []).push({ key, gateways: m.gateways });
    }
    return out;
  }

  /**
   * The challenge of a CHALLENGE verdict: the strongest rule's kind and base difficulty (else the
   * policy's), raised with the score from the challenge threshold (base) to the block threshold
   * (max_difficulty), and never below the route class's required clearance level.
   */
  private challengeAsk(rule: string | undefined, score: number, t: { challenge: number; block: number }, needLevel: number): ChallengeAsk {
    const p = this.policy.doc.challenge;
    const own = rule ? (this.policy.doc.detectors as Record<string, { challenge?: { kind?: ChallengeKindName; difficulty?: number } }>)[rule]?.challenge : undefined;
    const base = own?.difficulty ?? p.difficulty;
    const top = Math.max(base, p.max_difficulty);
    const span = Math.max(1, t.block - t.challenge);
    const raised = base + Math.round((Math.min(span, Math.max(0, score - t.challenge)) / span) * (top - base));
    const kind = own?.kind ?? p.kind;
    return { kind: kind ? KIND[kind] : 'DEFAULT', difficulty: Math.max(needLevel, Math.min(top, raised)) };
  }

  /**
   * Feeds an outcome reported by `gatewayId` to the detectors, attributed to its request when
   * this service decided it for that gateway and still remembers it. Returns whether it was.
   */
  observe(outcome: Outcome, gatewayId = ''): boolean {
    // One outcome per request: taken out, so that a request answered within a few young-GC
    // cycles never reaches the old generation.
    const f = outcome.request_id ? this.recent.take(`${gatewayId}\n${outcome.request_id}`) : undefined;
    // issue 17: a response sample reaches the inventory also when the request is not remembered
    if (f || outcome.response) this.inventory.outcome(f?.endpoint, outcome, this.policy.responses);
    if (f && outcome.response) this.settled.observe(f.urlHash, outcome.response, this.policy.responses);
    for (const d of this.detectors) d.observe?.(outcome, f);
    const pv = this.policy.doc.proven;
    if (f && pv.enabled) this.proofs.observe(outcome, f, pv);
    return f !== undefined;
  }

  /**
   * Issue 17: the share of this decision's responses the gateway should inspect — its route
   * class's (the policy's responses.inspect), lower on a URL that has settled (settled-urls.ts).
   */
  inspectShare(d: Decision): number {
    const responses = this.policy.responses;
    const share = responses.inspect[d.routeClass as RouteClass] ?? 0;
    return d.urlHash === undefined ? share : this.settled.share(d.urlHash, share, responses);
  }

  /**
   * Memory pressure: forgets the oldest `fraction` of the requests awaiting outcomes and of the
   * inventory. (Detector state lives in the store, which sheds on its own.) Returns entries dropped.
   */
  shed(fraction: number): number {
    return this.recent.shed(fraction) + this.inventory.shed(fraction);
  }

  private build(policy: CompiledPolicy): readonly Detector[] {
    const ctx = { policy, store: this.store, clock: this.clock };
    return this.factories.map((make) => make(ctx));
  }

  private verdict(f: RequestFeatures, action: Action, score: number, reasons: string[], cacheKey: string, ttl: number, wouldAction: Action): Decision {
    return {
      request_id: f.req.request_id,
      action,
      score,
      reasons,
      cache_key: cacheKey,
      cache_ttl_s: ttl,
      policy_version: this.policy.version,
      dry_run: ACTION_RANK[wouldAction] > ACTION_RANK[action],
      routeClass: f.routeClass,
      wouldAction,
      urlHash: f.urlHash,
    };
  }
}

function observedClasses(detectors: readonly Detector[], policy: CompiledPolicy): ReadonlySet<RouteClass> {
  const classes = new Set(detectors.flatMap((d) => (d.observe ? d.observes ?? ROUTE_CLASSES : [])));
  if (policy.doc.proven.enabled) classes.add('identity'); // successful logins prove their clients
  return classes;
}

/**
 * Shared evidence (proven.ts) adds to a block only together with the request's own evidence
 * scoring at least `needOwn`; alone it challenges at most.
 */
function capShared(action: Action, shared: boolean, ownScore: number, needOwn: number): Action {
  return action === 'BLOCK' && shared && ownScore < needOwn ? 'CHALLENGE' : action;
}

/** Whether a signal is about an address (ip, subnet, ip + fingerprint). */
function isAddress(s: Signal): boolean {
  return s.subject === 'ip' || s.subject === 'subnet' || s.subject === 'client';
}

/** The narrowest key the request carries, for the gateway cache: session, device, principal. */
function narrowestKey(f: RequestFeatures): CacheKeyType | undefined {
  if (f.session) return 'session';
  if (f.device) return 'device';
  if (f.principal) return 'principal';
  return undefined;
}

/** Whether `s` is the first signal of its group seen in this pass (and remembers its group). */
function firstOfGroup(s: Signal, seen: string[]): boolean {
  if (s.group === undefined) return true;
  if (seen.includes(s.group)) return false;
  seen.push(s.group);
  return true;
}

/** The share of certainty a signal leaves (noisy-or): 1 − strength/100, strength clamped to 0..100. */
function keepOf(s: Signal): number {
  return 1 - Math.min(100, Math.max(0, s.score)) / 100;
}

function actionFor(score: number, t: { tag: number; challenge: number; block: number }): Action {
  if (score >= t.block) return 'BLOCK';
  if (score >= t.challenge) return 'CHALLENGE';
  if (score >= t.tag && score > 0) return 'TAG';
  return 'ALLOW';
}

/**
 * The gateway's key for one URL (gateway-plugin/CONTRACT.md): SHA-1 of `path?query` (the query as
 * the DecideRequest carries it, "" when none), base64; hashed so that no audit record or event
 * holds a raw URL.
 */
export function targetKey(path: string, query: string): string {
  return `target:${createHash('sha1').update(`${path}?${query}`).digest('base64')}`;
}

/**
 * The gateway's key for one client (gateway-plugin/CONTRACT.md): SHA-1 of
 * `<client_ip>|<user_agent>|<accept_language>|<accept_encoding>|<sec_ch_ua>` (each as the
 * DecideRequest carries it, "" when absent), base64. The address and the browser's own headers:
 * a tool polling from a VPN exit, and not the people behind the exit with their browsers.
 */
export function clientKey(req: DecideRequest): string {
  const s = `${req.client_ip}|${req.user_agent ?? ''}|${req.accept_language ?? ''}|${req.accept_encoding ?? ''}|${req.sec_ch_ua ?? ''}`;
  return `client:${createHash('sha1').update(s).digest('base64')}`;
}

/** The gateway's cache key for a key type; "" when the request lacks that key. */
export function cacheKeyFor(type: GatewayKeyType, f: RequestFeatures): string {
  switch (type) {
    case 'target':
      return targetKey(f.req.path, f.req.query);
    case 'ip':
      return `ip:${f.ip}`;
    case 'subnet':
      return `subnet:${f.subnet}`;
    case 'client':
      return clientKey(f.req);
    case 'device':
      return f.req.device_hash ? `device:${f.req.device_hash.toString('base64')}` : '';
    case 'session':
      return f.req.session_hash ? `session:${f.req.session_hash.toString('base64')}` : '';
    case 'principal':
      return f.req.token_hash ? `principal:${f.req.token_hash.toString('base64')}` : '';
  }
}
