// Late-verdict capture: a gateway whose call missed its budget has failed open and never read
// the answer. Cacheable verdicts are therefore also queued for the gateway that asked and
// returned in its next OutcomeAck, which its verdict cache stores — the client's next requests
// are enforced. (A verdict that did arrive in time is simply cached twice.)
//
// The same way, clean marks a decision took back (issue 15, engine.ts Engine.clean) go to the
// gateways that cached them, in their next OutcomeAck (unmarked_keys).

import { BoundedMap } from '../state/bounded-map.ts';
import type { DecideResponse } from '../wire/codec.ts';

/** Most gateways (workers) remembered, and verdicts kept for each. */
const LATE_GATEWAYS = 256; // gateways are nginx workers: a fleet rarely has more
const LATE_PER_GATEWAY = 200;
const UNMARKS_PER_GATEWAY = 1000;

export class LateVerdicts {
  private readonly queues = new BoundedMap<string, DecideResponse[]>(LATE_GATEWAYS);
  private readonly unmarks = new BoundedMap<string, Set<string>>(LATE_GATEWAYS);

  /** Queues a verdict for `gatewayId` (dropped when its queue is full). */
  offer(gatewayId: string, verdict: DecideResponse): void {
    let q = this.queues.get(gatewayId);
    if (!q) {
      q = [];
      this.queues.set(gatewayId, q);
    }
    if (q.length < LATE_PER_GATEWAY) q.push(verdict);
  }

  /** Everything queued for `gatewayId`, oldest first; the queue is left empty. */
  take(gatewayId: string): DecideResponse[] {
    const q = this.queues.peek(gatewayId);
    return q && q.length > 0 ? q.splice(0, q.length) : [];
  }

  /** Queues a clean mark for `gatewayId` to drop (dropped when its queue is full). */
  unmark(gatewayId: string, key: string): void {
    let q = this.unmarks.get(gatewayId);
    if (!q) {
      q = new Set();
      this.unmarks.set(gatewayId, q);
    }
    if (q.size < UNMARKS_PER_GATEWAY) q.add(key);
  }

  /** The clean marks queued for `gatewayId` to drop; the queue is left empty. */
  takeUnmarks(gatewayId: string): string[] {
    const q = this.unmarks.peek(gatewayId);
    if (!q || q.size === 0) return [];
    const out = [...q];
    q.clear();
    return out;
  }

  /** Memory pressure (memory-guard.ts): forgets the oldest `fraction` of the gateways' queues. */
  shed(fraction: number): number {
    return this.queues.shed(fraction) + this.unmarks.shed(fraction);
  }
}
