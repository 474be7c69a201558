// Late-verdict capture: a gateway whose call missed its budget has failed open and never read
// the answer. Cacheable verdicts are therefore also queued for the gateway that asked and
// returned in its next OutcomeAck, which its verdict cache stores — the client's next requests
// are enforced. (A verdict that did arrive in time is simply cached twice.)

import { BoundedMap } from '../state/bounded-map.ts';
import type { DecideResponse } from '../wire/codec.ts';

/** Most gateways (workers) remembered, and verdicts kept for each. */
const LATE_GATEWAYS = 256; // gateways are nginx workers: a fleet rarely has more
const LATE_PER_GATEWAY = 200;

export class LateVerdicts {
  private readonly queues = new BoundedMap<string, DecideResponse[]>(LATE_GATEWAYS);

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

  /** Memory pressure (memory-guard.ts): forgets the oldest `fraction` of the gateways' queues. */
  shed(fraction: number): number {
    return this.queues.shed(fraction);
  }
}
