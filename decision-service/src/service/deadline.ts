// Deadline propagation: an INLINE decide carries the gateway's clock (ts_ms) and its total wait
// (budget_ms). One that arrives after ts_ms + budget_ms is not computed — the gateway has failed
// open already, and computing a backlog of such requests (after a GC pause, a SIGSTOP, a burst)
// only makes the fresh requests behind it late too.
//
// The two hosts' clocks differ by an unknown offset. For each gateway the service keeps the
// smallest (service_now - ts_ms) seen recently: that is offset + the fastest transit, so
// `service_now - min` is the gateway's clock minus at most that transit. A request is expired when
// service_now - min > ts_ms + budget_ms, i.e. when it waited longer than its budget beyond the
// fastest request of the window. Errors lean towards computing: the estimate can only make a
// request look younger than it is, except after the gateway's clock steps backwards by more than
// the budget — then its decides look expired (fail open, counted) until the window forgets the
// old minimum (at most two windows).
//
// Window: two buckets, rotated lazily on the next request of that gateway. After a pause of any
// length the first rotation keeps the pre-pause minimum as the previous bucket, so the backlog
// that queued during the pause is judged against it — not against itself.

import type { Clock } from '../engine/clock.ts';
import { BoundedMap } from '../state/bounded-map.ts';

/** Per-gateway minimum delay: the current and the previous window. */
class SkewWindow {
  curMin: number;
  curStart: number;
  prevMin: number;

  constructor(delay: number, now: number) {
    this.curMin = delay;
    this.curStart = now;
    this.prevMin = delay;
  }
}

export interface DeadlineOptions {
  readonly clock: Clock;
  /** Length of one window bucket (ms); the estimate covers the last one to two of them. */
  readonly windowMs?: number;
  /** Gateways (or peers) remembered; the least recently seen are forgotten first. */
  readonly maxGateways?: number;
}

export class DeadlineCheck {
  private readonly clock: Clock;
  private readonly windowMs: number;
  private readonly gateways: BoundedMap<string, SkewWindow>;

  constructor(opts: DeadlineOptions) {
    this.clock = opts.clock;
    this.windowMs = opts.windowMs ?? 5000;
    this.gateways = new BoundedMap(opts.maxGateways ?? 4096);
  }

  /**
   * Records the request's delay in its gateway's window and says whether its deadline has
   * passed. `gateway` identifies the clock: the request's gateway_id, else its peer address.
   * Requests without a timestamp or a budget never expire.
   */
  expired(gateway: string, tsMs: number, budgetMs: number): boolean {
    if (tsMs <= 0) return false;
    const now = this.clock.now();
    const delay = now - tsMs;
    let w = this.gateways.get(gateway);
    if (w === undefined) {
      this.gateways.set(gateway, new SkewWindow(delay, now));
      return false;
    }
    if (now - w.curStart >= this.windowMs) {
      w.prevMin = w.curMin;
      w.curMin = delay;
      w.curStart = now;
    } else if (delay < w.curMin) {
      w.curMin = delay;
    }
    if (budgetMs <= 0) return false;
    const offset = w.curMin < w.prevMin ? w.curMin : w.prevMin;
    return delay - offset > budgetMs;
  }

  /** The current offset estimate for a gateway (service clock minus gateway clock, ms). */
  offset(gateway: string): number | undefined {
    const w = this.gateways.peek(gateway);
    return w === undefined ? undefined : Math.min(w.curMin, w.prevMin);
  }
}
