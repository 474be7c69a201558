// The decision service every transport calls (HTTP routes, the framed transport, GET /v1/auth):
// decide one request (unless its gateway stopped waiting), take a batch of outcomes (scoring
// async-mode requests late) in slices that leave the event loop to other clients' decisions,
// queue late verdicts, observe the metrics, and turn any failure into the error catalogue's.
// Transports only decode, encode and frame.

import type { Logger } from 'pino';
import { systemClock, type Clock } from '../engine/clock.ts';
import type { Decision, Engine } from '../engine/engine.ts';
import { VerdictError } from '../errors.ts';
import type { DecideResponse, OutcomeAck, PendingOutcomeBatch } from '../wire/codec.ts';
import type { DecideRequest, Outcome } from '../wire/schema.ts';
import type { CompiledResponses, Thresholds } from '../config/policy.ts';
import type { AuditLog } from './audit.ts';
import { DeadlineCheck } from './deadline.ts';
import type { GatewayBoard } from './gateways.ts';
import type { Override, OverrideBook } from './overrides.ts';
import { LateVerdicts } from './late-verdicts.ts';
import type { ServiceMetrics } from './metrics.ts';
import type { RiskEvents } from './risk-events.ts';

interface Incrementable {
  inc(): void;
}

/**
 * prom-client hashes label objects on every inc(); the label sets here are few and fixed, so
 * each child is looked up once and kept (at most 1000 per metric: a guard on cardinality).
 */
function child<T>(cache: Map<string, T>, key: string, make: () => T): T {
  let c = cache.get(key);
  if (c === undefined) {
    c = make();
    if (cache.size < 1000) cache.set(key, c);
  }
  return c;
}

/** Longest stretch (ms) an outcome batch holds the event loop before letting other work run. */
export const OUTCOME_SLICE_MS = 1;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The exposure sink's counter when there are no metrics. */
const NO_BUMP = (): void => {};

/** Endpoints named in verdict_endpoint_sensitive_responses_total; the rest count as route="other". */
export const MAX_EXPOSURE_ROUTES = 100;

/** How a decision came in: the latency histogram's `encoding` label. */
export type DecideVia = 'json' | 'protobuf' | 'frame' | 'auth_request';

export interface DecisionServiceOptions {
  /** The engine in force (a policy reload may replace it). */
  readonly engine: () => Engine;
  readonly metrics: ServiceMetrics | undefined;
  /** Where unexpected failures are logged. */
  readonly logger: Logger;
  /** The clock deadlines are judged by (epoch ms, compared with the gateways' ts_ms). */
  readonly clock?: Clock;
  /** See DeadlineCheck.windowMs. */
  readonly skewWindowMs?: number;
  /**
   * Largest accepted difference between a request's ts_ms and this clock: beyond it ts_ms is
   * clamped, so a request stamped years ahead cannot make marks that live until then.
   */
  readonly clockSkewMs?: number;
  /** The audit trail (non-ALLOW verdicts, a sample of allows, cache-enforced stops). */
  readonly audit?: AuditLog;
  /** Operator overrides, applied around the engine; their revocations ride on outcome acks. */
  readonly overrides?: OverrideBook;
  /** The route class's thresholds in force (recorded with audited decisions). */
  readonly thresholds?: (routeClass: string) => Thresholds | undefined;
  /** What gateways report about themselves (counters in outcome batches), for the console. */
  readonly gateways?: GatewayBoard;
  /**
   * Issue 17: the policy's `responses` section in force (inspect shares, patterns, exposure
   * thresholds). Absent: no response is asked for and no patterns are sent.
   */
  readonly responses?: () => CompiledResponses;
  /** Issue 17: where endpoint.exposure events go (the app's bus; the webhook subscribes to it). */
  readonly riskEvents?: RiskEvents;
  /**
   * Fleets (a shared Redis store): longest wait, in ms, to read from Redis the keys a decision that
   * found something was made on before this instance had merged them (Engine.decideOrSettle);
   * never more than half an INLINE request's budget. 0: decide on the local view.
   */
  readonly settleMs?: number;
}

/** Gateway cache key types an override may ask the gateway to cache a BLOCK under. */
const CACHEABLE = /^(ip|subnet|device|session|principal):/;
/** Longest a BLOCK override is cached at a gateway (deleting it revokes sooner). */
const OVERRIDE_CACHE_S = 300;

function overridden(d: Decision, o: Override, now: number): Decision {
  const block = o.action === 'BLOCK';
  const ttl = block && CACHEABLE.test(o.key) ? Math.max(1, Math.min(OVERRIDE_CACHE_S, Math.floor((o.expires - now) / 1000))) : 0;
  return {
    request_id: d.request_id,
    action: o.action,
    score: block ? 100 : 0,
    reasons: [block ? 'override.block' : 'override.allow'],
    cache_key: ttl > 0 ? o.key : '',
    cache_ttl_s: ttl,
    policy_version: d.policy_version,
    dry_run: false,
    routeClass: d.routeClass,
    wouldAction: d.action,
  };
}

export class DecisionService {
  // metric children by label values (see child())
  private readonly expiredChildren = new Map<string, Incrementable>();
  private readonly failureChildren = new Map<string, Incrementable>();
  private readonly timers = new Map<string, { observe(v: number): void }>();
  private readonly late = new LateVerdicts();
  private readonly deadlines: DeadlineCheck;
  private readonly engine: () => Engine;
  private readonly metrics: ServiceMetrics | undefined;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly skewMs: number;
  private readonly settleMs: number;
  private readonly audit: AuditLog | undefined;
  private readonly overrides: OverrideBook | undefined;
  private readonly thresholds: ((routeClass: string) => Thresholds | undefined) | undefined;
  private readonly gateways: GatewayBoard | undefined;
  private readonly responses: (() => CompiledResponses) | undefined;
  private readonly riskEvents: RiskEvents | undefined;
  /** Endpoints with a series of their own in verdict_endpoint_sensitive_responses_total. */
  private readonly exposureRoutes = new Set<string>();

  constructor(opts: DecisionServiceOptions) {
    this.responses = opts.responses;
    this.riskEvents = opts.riskEvents;
    this.audit = opts.audit;
    this.overrides = opts.overrides;
    this.thresholds = opts.thresholds;
    this.gateways = opts.gateways;
    this.engine = opts.engine;
    this.metrics = opts.metrics;
    this.logger = opts.logger;
    this.clock = opts.clock ?? systemClock;
    this.skewMs = opts.clockSkewMs ?? 30_000;
    this.settleMs = opts.settleMs ?? 0;
    this.deadlines = new DeadlineCheck({ clock: this.clock, windowMs: opts.skewWindowMs });
    const m = this.metrics;
    this.engine().inventory.setSink({
      sensitive: (endpoint, kind, masked) => {
        if (!m) return NO_BUMP;
        const routes = this.exposureRoutes;
        if (!routes.has(endpoint) && routes.size < MAX_EXPOSURE_ROUTES) routes.add(endpoint);
        const route = routes.has(endpoint) ? endpoint : 'other';
        const label = masked ? 'true' : 'false';
        return m.sensitiveTally.bumper(`${route}|${kind}|${label}`, () => ({ route, kind, masked: label }));
      },
      exposed: (event) => {
        m?.endpointExposures.inc({ kind: event.kind });
        this.riskEvents?.publish(event);
      },
    });
  }

  /**
   * True when an INLINE request's gateway has stopped waiting (ts_ms + budget_ms passed on its
   * clock): the transport answers DEADLINE instead of deciding. Counted by transport. `peer`
   * names the clock when the request has no gateway_id (the remote address; '' for unix sockets,
   * whose peers share this host's clock).
   */
  expired(input: DecideRequest, peer: string, transport: 'http' | 'frame'): boolean {
    if (input.mode !== 'INLINE') return false;
    if (!this.deadlines.expired(input.gateway_id || peer, input.ts_ms, input.budget_ms)) return false;
    const m = this.metrics;
    if (m) child(this.expiredChildren, transport, () => m.expired.labels({ transport })).inc();
    return true;
  }

  /** Memory pressure (memory-guard.ts): forgets the oldest `fraction` of the queued late verdicts. */
  shed(fraction: number): number {
    return this.late.shed(fraction);
  }

  /**
   * Decides one request and counts it (decisions by action, route class and `modeLabel`:
   * the request's mode, or how a transport without modes asks, e.g. AUTH_REQUEST). A cacheable
   * verdict for an INLINE request of a known gateway is also queued as a late verdict.
   */
  decide(input: DecideRequest, modeLabel: string = input.mode): Decision {
    const engine = this.engine();
    return this.finish(engine, input, engine.decide(this.stamped(input)), modeLabel);
  }

  /**
   * As decide, but a decision that found something on keys this instance of a fleet had not merged
   * yet is made again once they are read from Redis (a promise then; at most settleMs, and half an
   * INLINE request's budget). Alone or without Redis it is decide.
   */
  decideSettled(input: DecideRequest, modeLabel: string = input.mode): Decision | Promise<Decision> {
    const engine = this.engine();
    const budget = input.mode === 'INLINE' && input.budget_ms > 0 ? input.budget_ms / 2 : Infinity;
    const r = engine.decideOrSettle(this.stamped(input), Math.min(this.settleMs, budget));
    if (!('ready' in r)) return this.finish(engine, input, r, modeLabel);
    const m = this.metrics;
    if (m) m.settled.inc();
    return r.ready.then(() => this.finish(engine, input, engine.redo(r), modeLabel));
  }

  /** ts_ms within the accepted skew of this clock. */
  private stamped(input: DecideRequest): DecideRequest {
    const now = this.clock.now();
    if (!(Math.abs(input.ts_ms - now) <= this.skewMs)) {
      // 0 = not sent: now; otherwise the nearest time within the skew
      input.ts_ms = input.ts_ms === 0 ? now : input.ts_ms > now ? now + this.skewMs : now - this.skewMs;
    }
    return input;
  }

  /** Overrides, audit, metrics, late verdicts and response inspection of a decision just made. */
  private finish(engine: Engine, input: DecideRequest, decided: Decision, modeLabel: string): Decision {
    const now = this.clock.now();
    let d = decided;
    // on the keys the engine computed (its features: the identifier only as its keyed hash)
    const ov = engine.lastFeatures ? this.overrides?.match(engine.lastFeatures) : undefined;
    if (ov) d = overridden(d, ov, now);
    const audit = this.audit;
    if (audit && engine.lastFeatures && (ov || audit.wants(d.action))) {
      audit.decision(d, engine.lastFeatures, engine.lastSignals, this.thresholds?.(d.routeClass),
        input.mode === 'ASYNC' ? 'async' : 'service', input.gateway_id, ov?.id);
    }
    const m = this.metrics;
    if (m) {
      m.decisionTally.inc(`${d.action}|${d.routeClass}|${modeLabel}`, () => ({ action: d.action, route_class: d.routeClass, mode: modeLabel }));
      for (const r of d.reasons) m.reasonTally.inc(r, () => ({ reason: r }));
      if (d.dry_run) m.dryRun.inc({ would_action: d.wouldAction });
    }
    // (a clean mark is no late verdict: a gateway that missed it just calls again)
    if (d.cache_key && d.cache_ttl_s > 0 && d.action !== 'ALLOW' && input.gateway_id && input.mode === 'INLINE') this.late.offer(input.gateway_id, toWire(d));
    if (m && d.action === 'ALLOW' && d.cache_key) m.marksGiven.inc();
    if (d.unmark) {
      for (const u of d.unmark) for (const g of u.gateways) this.late.unmark(g, u.key);
      if (m) m.marksTakenBack.inc(d.unmark.length);
    }
    // issue 17: the gateway inspects the response of a request it lets through (or only monitors)
    // when asked; ASYNC answers come after the response
    if (this.responses && input.mode !== 'ASYNC' && (d.action === 'ALLOW' || d.action === 'TAG' || input.mode === 'MONITOR')) {
      // the route class's share, lower on a URL that has settled (an override's answer names no
      // URL: its class's share)
      const share = engine.inspectShare(d);
      // d is this call's own (the engine's or an override's fresh answer): marked, not copied
      if (share >= 1 || (share > 0 && Math.random() < share)) d.inspect = true;
    }
    return d;
  }

  /** Records one decode + decide + encode span (started at `startedMs`, performance.now()). */
  observeDecide(via: DecideVia, startedMs: number): void {
    const m = this.metrics;
    if (!m) return;
    child(this.timers, via, () => m.decideSeconds.labels({ encoding: via })).observe((performance.now() - startedMs) / 1000);
  }

  /**
   * Validates the whole batch, then applies it — each in slices of about OUTCOME_SLICE_MS with
   * a turn of the event loop between them, so decides from other connections wait at most a
   * slice. All-or-nothing: an invalid outcome rejects the batch before any is applied.
   */
  async outcomes(batch: PendingOutcomeBatch): Promise<OutcomeAck> {
    const count = batch.count;
    const items: Outcome[] = new Array<Outcome>(count);
    let sliceStart = performance.now();
    for (let i = 0; i < count; i++) {
      items[i] = batch.outcome(i);
      if (performance.now() - sliceStart > OUTCOME_SLICE_MS) {
        await nextTurn();
        sliceStart = performance.now();
      }
    }
    const scored: DecideResponse[] = [];
    let accepted = 0;
    const m = this.metrics;
    for (let i = 0; i < count; i++) {
      const o = items[i] as Outcome;
      // Async-mode requests are scored late, so their blocks can reach the gateway's cache.
      if (o.request) {
        o.request.mode = 'ASYNC';
        o.request.gateway_id = batch.gateway_id; // attributed to the gateway that reports it
        const r = this.decideSettled(o.request);
        if (r instanceof Promise) {
          // settling (a fleet): not waited on here, or one Redis round trip per outcome would pace
          // the whole batch; its verdict rides on this gateway's next ack
          const gw = batch.gateway_id;
          r.then((d) => { if (gw && d.cache_key && d.cache_ttl_s > 0) this.late.offer(gw, toWire(d)); },
            (err: unknown) => this.logger.error({ err }, 'async decision after settling failed'));
        } else if (r.cache_key && r.cache_ttl_s > 0) {
          scored.push(toWire(r));
        }
      }
      // Looked up per outcome: a policy reload between slices applies from the next one on.
      // accepted: scored here (async metadata) or attributed to a request this service decided
      // for the same gateway; any other outcome is ignored (a forged one lands nowhere)
      if (this.engine().observe(o, batch.gateway_id) || o.request) accepted++;
      // a verdict the gateway enforced from its cache: audited as such
      if (o.from_cache && this.audit && !o.request) this.audit.cached(o, batch.gateway_id, this.clock.now());
      if (m) {
        if (o.response) m.responseSamples.inc();
        const statusClass = `${Math.floor(o.status / 100)}xx`;
        m.outcomeTally.inc(statusClass, () => ({ status_class: statusClass }));
      }
      if (performance.now() - sliceStart > OUTCOME_SLICE_MS) {
        await nextTurn();
        sliceStart = performance.now();
      }
    }
    // Taken last, so verdicts decided while this batch was being applied go out too.
    let verdicts = batch.gateway_id ? this.late.take(batch.gateway_id) : [];
    const unmarked = batch.gateway_id ? this.late.takeUnmarks(batch.gateway_id) : [];
    for (const v of scored) verdicts.push(v);
    this.gateways?.report(batch.gateway_id, batch.counters, this.clock.now());
    const ov = this.overrides;
    let ack: OutcomeAck;
    if (!ov) {
      ack = { accepted, verdicts };
    } else {
      // a late verdict for a key an operator just allowed must not re-enter the gateway's cache
      if (ov.size > 0) verdicts = verdicts.filter((v) => !ov.allows(v.cache_key));
      const revoked = ov.revocationsFor(batch.gateway_id);
      if (m && revoked.length > 0) m.revocationsSent.inc(revoked.length);
      ack = { accepted, verdicts, revoked_keys: revoked };
    }
    if (unmarked.length > 0) ack.unmarked_keys = unmarked;
    // issue 17: the policy's patterns, to a gateway running another set; a gateway with none ("")
    // needs nothing while the policy has none either
    const rp = this.responses?.();
    if (rp && batch.patterns_version !== rp.patternsVersion && !(batch.patterns_version === '' && rp.patterns.length === 0)) {
      ack.patterns_version = rp.patternsVersion;
      ack.patterns = rp.patterns;
    }
    return ack;
  }

  /**
   * The one error path of every transport: the catalogue's error for `err` (an unexpected one
   * is logged and becomes INTERNAL), counted by endpoint and code. The transport renders it.
   */
  failure(err: unknown, endpoint: string): VerdictError {
    let e: VerdictError;
    if (err instanceof VerdictError) {
      e = err;
    } else {
      this.logger.error({ err, endpoint }, 'unhandled error');
      e = new VerdictError('INTERNAL');
    }
    const m = this.metrics;
    if (m) {
      const code = e.code;
      child(this.failureChildren, `${endpoint}|${code}`, () => m.badRequests.labels({ endpoint, code })).inc();
    }
    return e;
  }
}

/** The wire fields of a decision (drops engine-only fields). */
export function toWire(r: DecideResponse): DecideResponse {
  return {
    request_id: r.request_id,
    action: r.action,
    score: r.score,
    reasons: r.reasons,
    cache_key: r.cache_key,
    cache_ttl_s: r.cache_ttl_s,
    policy_version: r.policy_version,
    dry_run: r.dry_run,
    ...(r.challenge_kind === undefined ? {} : { challenge_kind: r.challenge_kind, challenge_difficulty: r.challenge_difficulty, clearance_ttl_s: r.clearance_ttl_s }),
    ...(r.inspect ? { inspect: true } : {}),
  };
}
