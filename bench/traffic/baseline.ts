// The baseline the scorecard compares Verdict with: what most operators run today, per-IP rate
// limiting with nginx `limit_req` semantics, one zone per route class:
//
//   limit_req_zone $binary_remote_addr zone=identity:10m rate=20r/m;
//   limit_req_zone $binary_remote_addr zone=api:10m      rate=10r/s;
//   limit_req_zone $binary_remote_addr zone=pages:10m    rate=5r/s;
//   location /api/auth/   { limit_req zone=identity burst=10 nodelay; limit_req_status 429; ... }
//   location /api/v1/login, /api/sms/  (same as /api/auth/)
//   location /api/        { limit_req zone=api burst=40 nodelay; ... }   (promo, orders, users)
//   location /internal/, /actuator/   (same as /api/)
//   location /static/     { no limit }
//   location /            { limit_req zone=pages burst=20 nodelay; }
//
// Tuning (why these numbers): a person logs in, resets a password or asks for an SMS a few times
// a minute at most, so 20/min with a burst of 10 leaves room for typos and retries; API calls
// from one page view come in bursts of a few, and a partner or an app polls steadily, so
// 10/s with burst 40; pages 5/s with burst 20 covers a browser's page + asset loads. Tighter
// limits catch more bots but lock out offices and carrier NATs sooner; looser ones the reverse.
//
// Leaky bucket exactly as ngx_http_limit_req_module computes it (per key, milli-requests):
//   excess = max(0, excess_prev - rate * elapsed_ms / 1000 + 1000)
//   excess > burst*1000 → reject (state unchanged), else accept and store excess + now.
// With `nodelay`, accepted requests within the burst are served at once (no queueing delay).

import type { TrafficLine } from './format.ts';

export interface LimitZone {
  readonly name: string;
  /** requests per second (20r/m = 1/3) */
  readonly rate: number;
  readonly burst: number;
}

export interface LimitRule {
  readonly prefix: string;
  /** undefined = no limit for this location */
  readonly zone: LimitZone | undefined;
}

export const ZONES = Object.freeze({
  identity: { name: 'identity', rate: 20 / 60, burst: 10 },
  api: { name: 'api', rate: 10, burst: 40 },
  pages: { name: 'pages', rate: 5, burst: 20 },
} satisfies Record<string, LimitZone>);

/** Longest prefix wins, as nginx locations do. */
export const BASELINE_RULES: readonly LimitRule[] = Object.freeze([
  { prefix: '/api/auth/', zone: ZONES.identity },
  { prefix: '/api/v1/login', zone: ZONES.identity },
  { prefix: '/api/sms/', zone: ZONES.identity },
  { prefix: '/api/', zone: ZONES.api },
  { prefix: '/internal/', zone: ZONES.api },
  { prefix: '/actuator/', zone: ZONES.api },
  { prefix: '/static/', zone: undefined },
  { prefix: '/', zone: ZONES.pages },
]);

interface BucketState {
  excess: number; // milli-requests
  last: number; // ms
}

/** One limit_req zone: a leaky bucket per key. */
export class LeakyBucket {
  private readonly state = new Map<string, BucketState>();
  private readonly rateMilli: number;
  private readonly burstMilli: number;

  constructor(zone: { rate: number; burst: number }) {
    // nginx stores the rate in milli-requests per second, rounded down
    this.rateMilli = Math.floor(zone.rate * 1000);
    this.burstMilli = zone.burst * 1000;
  }

  /** true = accepted (and counted); false = rejected (state unchanged, as nginx does). */
  take(key: string, nowMs: number): boolean {
    const s = this.state.get(key);
    if (!s) {
      this.state.set(key, { excess: 0, last: nowMs });
      return true;
    }
    let ms = nowMs - s.last;
    if (ms < -60_000) ms = 1;
    else if (ms < 0) ms = 0;
    let excess = s.excess - Math.floor((this.rateMilli * ms) / 1000) + 1000;
    if (excess < 0) excess = 0;
    if (excess > this.burstMilli) return false;
    s.excess = excess;
    s.last = nowMs;
    return true;
  }

  get keys(): number {
    return this.state.size;
  }
}

export function ruleFor(path: string, rules: readonly LimitRule[] = BASELINE_RULES): LimitRule | undefined {
  let best: LimitRule | undefined;
  for (const r of rules) if (path.startsWith(r.prefix) && (!best || r.prefix.length > best.prefix.length)) best = r;
  return best;
}

/** Per-IP rate limiting over all zones; `check` answers the action for one request. */
export class BaselineLimiter {
  private readonly buckets = new Map<string, LeakyBucket>();

  constructor(private readonly rules: readonly LimitRule[] = BASELINE_RULES) {}

  check(line: TrafficLine): { action: 'ALLOW' | 'BLOCK'; zone: string } {
    const rule = ruleFor(line.path, this.rules);
    if (!rule?.zone) return { action: 'ALLOW', zone: '' };
    let b = this.buckets.get(rule.zone.name);
    if (!b) {
      b = new LeakyBucket(rule.zone);
      this.buckets.set(rule.zone.name, b);
    }
    return { action: b.take(line.ip, line.ts) ? 'ALLOW' : 'BLOCK', zone: rule.zone.name };
  }
}
