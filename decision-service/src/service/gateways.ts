// What the gateways say about themselves: each outcome batch (at least one a second per worker)
// carries the gateway's counters (OutcomeBatch.counters: fail-open causes, breaker state, cache
// hits, calls). The console shows, per gateway host, the latest counters and how long ago the
// gateway last reported. Gateway ids are "<host>/<pid>/<random>" per worker: workers of one nginx
// share their counters (one metrics dict), so the board keeps one row per host prefix. Bounded.

import type { GatewayCounter } from '../wire/codec.ts';

export interface GatewayRow {
  readonly gateway: string;
  readonly last_seen: number;
  readonly counters: Readonly<Record<string, number>>;
}

const MAX_GATEWAYS = 256;

/** "<host>" of a gateway id "<host>/<pid>/<16 hex>" (the id itself when it has no such tail). */
export function gatewayHost(id: string): string {
  const m = /^(.*)[-/]\d+[-/][0-9a-f]{16}$/.exec(id);
  return m ? (m[1] as string) : id;
}

export class GatewayBoard {
  private readonly rows = new Map<string, GatewayRow>();

  report(gatewayId: string, counters: readonly GatewayCounter[], now: number): void {
    const host = gatewayHost(gatewayId || '(unnamed)');
    const prev = this.rows.get(host);
    const c: Record<string, number> = prev && counters.length === 0 ? { ...prev.counters } : {};
    for (const x of counters) c[x.name] = x.value;
    this.rows.delete(host);
    this.rows.set(host, { gateway: host, last_seen: now, counters: c });
    if (this.rows.size > MAX_GATEWAYS) this.rows.delete(this.rows.keys().next().value as string);
  }

  list(): GatewayRow[] {
    return [...this.rows.values()].sort((a, b) => b.last_seen - a.last_seen);
  }
}
