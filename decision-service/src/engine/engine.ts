// The decision engine: features → detectors → score → action, with an injectable clock and a
// store. Scoring combines signal strengths as independent evidence (noisy-or), then maps the
// score to an action with the route class's thresholds.

import type { CompiledPolicy, CompiledRoute } from '../config/policy.ts';
import { ROUTE_CLASSES, type CacheKeyType, type ChallengeKindName, type RouteClass } from '../config/policy-schema.ts';
import type { Store } from '../state/store.ts';
import type { Action, ChallengeKind, DecideResponse } from '../wire/codec.ts';
import type { DecideRequest, Outcome } from '../wire/schema.ts';
import type { Clock } from './clock.ts';
import { BoundedMap } from '../state/bounded-map.ts';
import { DETECTORS } from './detectors/index.ts';
import { extractFeatures } from './features.ts';
import { challengeKeys } from './state-keys.ts';
import { Inventory } from './inventory.ts';
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
}

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
    endpoint,
  };
}

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
  /** Path templates learned from traffic (read-only view at GET /v1/inventory). */
  readonly inventory: Inventory;

  constructor(opts: EngineOptions) {
    this.policy = opts.policy;
    this.store = opts.store;
    this.clock = opts.clock;
    this.identifierKey = opts.identifierKey;
    this.factories = opts.detectors ?? DETECTORS;
    this.detectors = this.build(opts.policy);
    this.observed = observedClasses(this.detectors);
    this.recent = new BoundedMap(opts.recentRequests ?? 50_000);
    this.inventory = new Inventory(opts.inventoryTemplates ?? 5000, opts.inventoryTemplatesPerRoute ?? 200);
  }

  get policyVersion(): string {
    return this.policy.version;
  }

  /** Swaps the policy atomically: decisions in flight finish on the old one. */
  setPolicy(policy: CompiledPolicy): void {
    const detectors = this.build(policy);
    this.policy = policy;
    this.detectors = detectors;
    this.observed = observedClasses(detectors);
  }

  decide(req: DecideRequest): Decision {
    const policy = this.policy;
    const now = req.mode === 'INLINE' || req.ts_ms === 0 ? this.clock.now() : req.ts_ms;
    const f = extractFeatures(req, policy, now, this.identifierKey);
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

    if (policy.allowIps.has(f.ip)) return this.verdict(f, 'ALLOW', 0, ['ip.allowlist'], '', 0, 'ALLOW');
    if (policy.denyIps.has(f.ip)) {
      const ttl = policy.doc.ip_lists.deny_cache_ttl_s;
      return this.verdict(f, 'BLOCK', 100, ['ip.denylist'], ttl > 0 ? `ip:${f.ip}` : '', ttl, 'BLOCK');
    }

    const signals: Signal[] = [];
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
      signals.push(signal('clearance.abandoned', clearance.abandoned_score, false));
    }
    const needLevel = f.route.clearanceLevel ?? clearance.require_level[f.routeClass] ?? 0;
    // level 0 is the no-JS fallback, offered only at the base difficulty: it paid that, by waiting
    const clearedLevel = req.clearance !== 'VALID' ? -1 : req.clearance_level === 0 ? policy.doc.challenge.difficulty : req.clearance_level;
    const short = needLevel > 0 && clearedLevel < needLevel; // the route class asks more than it carries
    if (signals.length === 0 && !short) return this.verdict(f, 'ALLOW', 0, [], '', 0, 'ALLOW');

    signals.sort((a, b) => b.score - a.score);
    let keepEnforced = 1;
    let keepAll = 1;
    const reasons: string[] = [];
    let cache: Signal['cache'];
    let strongest: Signal | undefined;
    for (const s of signals) {
      const p = 1 - Math.min(100, Math.max(0, s.score)) / 100;
      keepAll *= p;
      if (s.monitor) {
        reasons.push(`dry_run:${s.code}`);
      } else {
        keepEnforced *= p;
        reasons.push(s.code);
        strongest ??= s;
        if (!cache && s.cache) cache = s.cache;
      }
    }
    const score = Math.round(100 * (1 - keepEnforced));
    const thresholds = policy.thresholds[f.routeClass];
    let action = actionFor(score, thresholds);
    const wouldAction = actionFor(Math.round(100 * (1 - keepAll)), thresholds);
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
      cacheKey = cacheKeyFor(cache.key, f);
      ttl = cacheKey ? cache.ttl_s : 0;
    }
    if (ask && clearance.abandoned_score > 0) this.store.incr(challengeKeys.issued(f.client), abandonWindow, now);
    const d = this.verdict(f, action, score, reasons, cacheKey, ttl, wouldAction);
    return ask ? { ...d, challenge_kind: ask.kind, challenge_difficulty: ask.difficulty, clearance_ttl_s: clearance.ttl_s } : d;
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
    if (f) this.inventory.outcome(f.endpoint, outcome);
    for (const d of this.detectors) d.observe?.(outcome, f);
    return f !== undefined;
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
    };
  }
}

function observedClasses(detectors: readonly Detector[]): ReadonlySet<RouteClass> {
  return new Set(detectors.flatMap((d) => (d.observe ? d.observes ?? ROUTE_CLASSES : [])));
}

function actionFor(score: number, t: { tag: number; challenge: number; block: number }): Action {
  if (score >= t.block) return 'BLOCK';
  if (score >= t.challenge) return 'CHALLENGE';
  if (score >= t.tag && score > 0) return 'TAG';
  return 'ALLOW';
}

/** The gateway's cache key for a key type; "" when the request lacks that key. */
export function cacheKeyFor(type: CacheKeyType, f: RequestFeatures): string {
  switch (type) {
    case 'ip':
      return `ip:${f.ip}`;
    case 'subnet':
      return `subnet:${f.subnet}`;
    case 'device':
      return f.req.device_hash ? `device:${f.req.device_hash.toString('base64')}` : '';
    case 'session':
      return f.req.session_hash ? `session:${f.req.session_hash.toString('base64')}` : '';
    case 'principal':
      return f.req.token_hash ? `principal:${f.req.token_hash.toString('base64')}` : '';
  }
}
