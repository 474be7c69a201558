// Prometheus metrics: decisions by action and reason, decide latency, outcomes, policy version.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ServiceMetrics {
  readonly registry: Registry;
  readonly decisions: Counter<'action' | 'route_class' | 'mode'>;
  readonly reasons: Counter<'reason'>;
  readonly dryRun: Counter<'would_action'>;
  readonly decideSeconds: Histogram<'encoding'>;
  readonly outcomes: Counter<'status_class'>;
  readonly badRequests: Counter<'endpoint' | 'code'>;
  readonly policyVersion: Gauge<'version'>;
  readonly policyReloads: Counter<'result'>;
  readonly storeKeys: Gauge;
}

export function createMetrics(defaults: boolean): ServiceMetrics {
  const registry = new Registry();
  if (defaults) collectDefaultMetrics({ register: registry, prefix: 'verdict_' });
  const registers = [registry];
  return {
    registry,
    decisions: new Counter({ name: 'verdict_decisions_total', help: 'Decisions by action, route class and mode', labelNames: ['action', 'route_class', 'mode'], registers }),
    reasons: new Counter({ name: 'verdict_decision_reasons_total', help: 'Reason codes fired (dry_run: prefix for monitor-mode rules)', labelNames: ['reason'], registers }),
    dryRun: new Counter({ name: 'verdict_dry_run_total', help: 'Decisions where monitor-mode rules would have acted more strongly', labelNames: ['would_action'], registers }),
    decideSeconds: new Histogram({
      name: 'verdict_decide_duration_seconds',
      help: 'Time to decode, decide and encode one decision',
      labelNames: ['encoding'],
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05],
      registers,
    }),
    outcomes: new Counter({ name: 'verdict_outcomes_total', help: 'Outcomes reported by gateways, by status class', labelNames: ['status_class'], registers }),
    badRequests: new Counter({ name: 'verdict_bad_requests_total', help: 'Rejected requests by endpoint and error code', labelNames: ['endpoint', 'code'], registers }),
    policyVersion: new Gauge({ name: 'verdict_policy_info', help: 'The policy version in force (value 1)', labelNames: ['version'], registers }),
    policyReloads: new Counter({ name: 'verdict_policy_reloads_total', help: 'Policy reloads by result', labelNames: ['result'], registers }),
    storeKeys: new Gauge({ name: 'verdict_store_keys', help: 'Keys held by the state store', registers }),
  };
}
