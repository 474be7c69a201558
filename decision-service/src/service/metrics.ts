// Prometheus metrics: decisions by action and reason, decide latency, outcomes, policy version,
// the overload guards (expired decides, refused and closed connections), and what endpoints'
// responses give away (issue 17).

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RedisStoreStats } from '../state/redis-store.ts';

export interface ServiceMetrics {
  readonly registry: Registry;
  readonly decisions: Counter<'action' | 'route_class' | 'mode'>;
  readonly reasons: Counter<'reason'>;
  /** The decision path's increments of decisions, reasons and outcomes (see Tally). */
  readonly decisionTally: Tally<'action' | 'route_class' | 'mode'>;
  readonly reasonTally: Tally<'reason'>;
  readonly outcomeTally: Tally<'status_class'>;
  readonly dryRun: Counter<'would_action'>;
  readonly decideSeconds: Histogram<'encoding'>;
  readonly outcomes: Counter<'status_class'>;
  readonly badRequests: Counter<'endpoint' | 'code'>;
  readonly policyVersion: Gauge<'version'>;
  readonly policyReloads: Counter<'result'>;
  readonly storeKeys: Gauge;
  readonly expired: Counter<'transport'>;
  readonly connectionsEvicted: Counter<'transport' | 'reason'>;
  readonly framesClosed: Counter<'reason'>;
  readonly authFailures: Counter<'transport' | 'reason'>;
  readonly memorySheds: Counter<'reason'>;
  readonly memoryLimit: Gauge;
  readonly auditRecords: Counter<'kind' | 'action'>;
  readonly auditDropped: Counter<'sink'>;
  readonly overrideChanges: Counter<'change' | 'action'>;
  readonly overridesActive: Gauge;
  readonly revocationsSent: Counter;
  /** Issue 15: clean marks handed to gateways (a cached ALLOW) and taken back on evidence. */
  readonly marksGiven: Counter;
  readonly settled: Counter;
  readonly marksTakenBack: Counter;
  readonly responseSamples: Counter;
  readonly endpointSensitive: Counter<'route' | 'kind' | 'masked'>;
  readonly sensitiveTally: Tally<'route' | 'kind' | 'masked'>;
  readonly endpointExposures: Counter<'kind'>;
}

/** Most distinct label sets a tally keeps; any beyond go straight to the counter. */
const TALLY_MAX_SERIES = 1000;

/**
 * A labelled counter's increments on the decision path, kept as plain numbers per label set and
 * added to the counter whenever it is read (a scrape, the console: prom-client calls its collect
 * first). prom-client hashes and validates the label set on every inc(), which cost more than
 * some detectors do; reads see the same totals.
 */
export class Tally<L extends string> {
  private readonly series = new Map<string, { labels: Partial<Record<L, string>>; n: number }>();
  counter: Counter<L> | undefined;

  /** Adds `by` to the series `key` names (labels() builds its labels the first time). */
  inc(key: string, labels: () => Partial<Record<L, string>>, by = 1): void {
    const s = this.seriesOf(key, labels);
    if (s) s.n += by;
    else this.counter?.inc(labels(), by);
  }

  /** A function adding 1 to the series `key` names, for a caller that counts it again and again. */
  bumper(key: string, labels: () => Partial<Record<L, string>>): () => void {
    const s = this.seriesOf(key, labels);
    if (s) return () => { s.n++; };
    const l = labels();
    return () => this.counter?.inc(l, 1);
  }

  /** The series `key` names, made on first use; undefined past TALLY_MAX_SERIES (count on the counter). */
  private seriesOf(key: string, labels: () => Partial<Record<L, string>>): { labels: Partial<Record<L, string>>; n: number } | undefined {
    let s = this.series.get(key);
    if (s === undefined) {
      if (this.series.size >= TALLY_MAX_SERIES) return undefined;
      s = { labels: labels(), n: 0 };
      this.series.set(key, s);
    }
    return s;
  }

  /** Hands what was counted to the counter. */
  drain(): void {
    const c = this.counter;
    if (!c) return;
    for (const s of this.series.values()) {
      if (s.n > 0) {
        c.inc(s.labels, s.n);
        s.n = 0;
      }
    }
  }
}

/** A counter whose hot-path increments go through `tally` (see Tally). */
function tallied<L extends string>(tally: Tally<L>, config: ConstructorParameters<typeof Counter<L>>[0]): Counter<L> {
  const c = new Counter<L>({ ...config, collect: () => tally.drain() });
  tally.counter = c;
  return c;
}

export function createMetrics(defaults: boolean): ServiceMetrics {
  const registry = new Registry();
  const decisionTally = new Tally<'action' | 'route_class' | 'mode'>();
  const reasonTally = new Tally<'reason'>();
  const outcomeTally = new Tally<'status_class'>();
  const sensitiveTally = new Tally<'route' | 'kind' | 'masked'>();
  if (defaults) collectDefaultMetrics({ register: registry, prefix: 'verdict_' });
  const registers = [registry];
  return {
    registry,
    decisions: tallied(decisionTally, { name: 'verdict_decisions_total', help: 'Decisions by action, route class and mode', labelNames: ['action', 'route_class', 'mode'], registers }),
    decisionTally,
    reasons: tallied(reasonTally, { name: 'verdict_decision_reasons_total', help: 'Reason codes fired (dry_run: prefix for monitor-mode rules)', labelNames: ['reason'], registers }),
    reasonTally,
    dryRun: new Counter({ name: 'verdict_dry_run_total', help: 'Decisions where monitor-mode rules would have acted more strongly', labelNames: ['would_action'], registers }),
    decideSeconds: new Histogram({
      name: 'verdict_decide_duration_seconds',
      help: 'Time to decode, decide and encode one decision',
      labelNames: ['encoding'],
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05],
      registers,
    }),
    outcomes: tallied(outcomeTally, { name: 'verdict_outcomes_total', help: 'Outcomes reported by gateways, by status class', labelNames: ['status_class'], registers }),
    outcomeTally,
    badRequests: new Counter({ name: 'verdict_bad_requests_total', help: 'Rejected requests by endpoint and error code', labelNames: ['endpoint', 'code'], registers }),
    policyVersion: new Gauge({ name: 'verdict_policy_info', help: 'The policy version in force (value 1)', labelNames: ['version'], registers }),
    policyReloads: new Counter({ name: 'verdict_policy_reloads_total', help: 'Policy reloads by result', labelNames: ['result'], registers }),
    storeKeys: new Gauge({ name: 'verdict_store_keys', help: 'Keys held by the state store', registers }),
    expired: new Counter({
      name: 'verdict_decide_expired_total',
      help: 'INLINE decides dropped uncomputed because the gateway deadline (ts_ms + budget_ms) had passed',
      labelNames: ['transport'],
      registers,
    }),
    memorySheds: new Counter({ name: 'verdict_memory_sheds_total', help: 'Times the memory guard shed the least recently used quarter of detector state (reason: rss over VERDICT_MEMORY_LIMIT_MB, or heap near V8\'s limit)', labelNames: ['reason'], registers }),
    memoryLimit: new Gauge({ name: 'verdict_memory_limit_bytes', help: 'RSS limit of the memory guard', registers }),
    authFailures: new Counter({
      name: 'verdict_auth_failures_total',
      help: 'Calls refused for lack of proof: gateway secret (http, frame, auth_request) or admin token (admin), by reason',
      labelNames: ['transport', 'reason'],
      registers,
    }),
    connectionsEvicted: new Counter({
      name: 'verdict_connections_evicted_total',
      help: 'Connections closed to admit a new one at VERDICT_MAX_CONNECTIONS, by transport and reason (unauthenticated: frames without HELLO yet; least_recent: idle longest)',
      labelNames: ['transport', 'reason'],
      registers,
    }),
    auditRecords: new Counter({ name: 'verdict_audit_records_total', help: 'Audit trail records by kind (service, async, cache: decisions by where they were enforced; override: changes) and action', labelNames: ['kind', 'action'], registers }),
    auditDropped: new Counter({ name: 'verdict_audit_dropped_total', help: 'Audit records not written to a sink (queue full, redis unavailable); the in-memory ring still has them', labelNames: ['sink'], registers }),
    overrideChanges: new Counter({ name: 'verdict_override_changes_total', help: 'Operator overrides created or deleted, by action', labelNames: ['change', 'action'], registers }),
    overridesActive: new Gauge({ name: 'verdict_overrides_active', help: 'Operator overrides in force', registers }),
    settled: new Counter({ name: 'verdict_settled_total', help: 'Decisions that found something (a tag, a challenge, a block) made again after reading from Redis the keys this instance of a fleet had not merged yet', registers }),
    marksGiven: new Counter({ name: 'verdict_clean_marks_given_total', help: 'Clean marks handed to gateways: an ALLOW cached under a clean client\'s key, whose requests are then not waited on (clean_marks)', registers }),
    marksTakenBack: new Counter({ name: 'verdict_clean_marks_taken_back_total', help: 'Clean marks taken back because something was found on their client (sent in OutcomeAck.unmarked_keys)', registers }),
    revocationsSent: new Counter({ name: 'verdict_revocations_sent_total', help: 'Gateway cache keys revoked in outcome acknowledgements (one per key per gateway worker)', registers }),
    responseSamples: new Counter({ name: 'verdict_response_samples_total', help: 'Outcomes that carried a response sample (the gateway inspected the response body)', registers }),
    endpointSensitive: tallied(sensitiveTally, {
      name: 'verdict_endpoint_sensitive_responses_total',
      help: 'Inspected responses holding a sensitive kind, by endpoint (method + path template; the first 100, then "other"), kind and whether the values were masked',
      labelNames: ['route', 'kind', 'masked'],
      registers,
    }),
    sensitiveTally,
    endpointExposures: new Counter({ name: 'verdict_endpoint_exposures_total', help: 'Endpoints newly flagged as returning a sensitive kind unmasked (one per endpoint and kind: the endpoint.exposure risk event)', labelNames: ['kind'], registers }),
    framesClosed: new Counter({
      name: 'verdict_frame_connections_closed_total',
      help: 'Framed connections the service closed, by reason (idle, request_timeout, frame_too_large, bad_length, handshake_timeout)',
      labelNames: ['reason'],
      registers,
    }),
  };
}

/** The Redis store's health, read at scrape time (degradation shows here, not only in logs). */
export function addStoreStats(m: ServiceMetrics, stats: () => RedisStoreStats): void {
  const registers = [m.registry];
  const gauge = (name: string, help: string, read: (s: RedisStoreStats) => number) =>
    new Gauge({ name, help, registers, collect() { this.set(read(stats())); } });
  gauge('verdict_redis_connected', 'Redis store connected (1) or degraded to local state (0)', (s) => (s.connected ? 1 : 0));
  gauge('verdict_redis_lag_ms', 'Milliseconds since the last successful flush to Redis', (s) => s.lagMs);
  gauge('verdict_redis_pending_keys', 'Keys with deltas not yet merged into Redis', (s) => s.pendingKeys);
  gauge('verdict_redis_flushes', 'Flushes to Redis since start (monotonic)', (s) => s.flushes);
  gauge('verdict_redis_flush_errors', 'Failed flushes since start (monotonic)', (s) => s.flushErrors);
  gauge('verdict_redis_pulls', 'Background refreshes since start (monotonic)', (s) => s.pulls);
  gauge('verdict_redis_pull_errors', 'Failed refreshes since start (monotonic)', (s) => s.pullErrors);
  gauge('verdict_redis_commands', 'Redis commands sent since start (monotonic)', (s) => s.commands);
  gauge('verdict_redis_dropped', 'Deltas dropped because the pending bound was reached (monotonic)', (s) => s.dropped);
  gauge('verdict_redis_instances', 'Live store instances sharing this Redis as of the last flush (1: this one alone, background reads skipped)', (s) => s.instances);
  gauge('verdict_redis_pulls_skipped_alone', 'Background refreshes skipped because this instance was the only one alive (monotonic)', (s) => s.pullsSkippedAlone);
  gauge('verdict_redis_reseeds', 'Times this instance re-sent its state after Redis lost it (monotonic)', (s) => s.reseeds);
  gauge('verdict_redis_settle_timeouts', 'Decisions whose unmerged keys Redis did not return within VERDICT_REDIS_SETTLE_MS (decided on the local view; monotonic)', (s) => s.settleTimeouts);
}
