// Two decision-service instances sharing Redis behind two gateways, traffic split half-and-half
// (round-robin by request): the fleet view of the scorecard. Each instance answers from local
// state; the stores merge through a real Redis every `syncMs` of simulated time — the staleness
// a real fleet has (flush + refresh + round trips, ≈ 350 ms by default).

import type { CompiledPolicy } from '../../decision-service/src/config/policy.ts';
import { RedisStore } from '../../decision-service/src/state/redis-store.ts';
import type { TrafficLine } from './format.ts';
import { VerdictGuard, type Attempt, type Check, type Guard, type LineResult } from './replay.ts';

export class FleetGuard implements Guard {
  readonly name = 'verdict-fleet';
  private readonly guards: VerdictGuard[];
  private readonly stores: RedisStore[];
  private lastSync = -Infinity;
  private current = 0;

  constructor(opts: { policy: CompiledPolicy; redisUrl: string; prefix: string; startMs: number; instances?: number; syncMs?: number; settleMs?: number }) {
    const n = opts.instances ?? 2;
    this.syncMs = opts.syncMs ?? 350;
    this.stores = Array.from({ length: n }, () => new RedisStore({ url: opts.redisUrl, prefix: opts.prefix, timers: false }));
    // a decision that found something on keys an instance has not merged reads them first, as the
    // service does (VERDICT_REDIS_SETTLE_MS, default 10)
    this.guards = this.stores.map((store) => new VerdictGuard({ policy: opts.policy, startMs: opts.startMs, store, settleMs: opts.settleMs ?? 10 }));
  }

  private readonly syncMs: number;

  async tick(line: TrafficLine): Promise<void> {
    if (line.ts - this.lastSync < this.syncMs) return;
    this.lastSync = line.ts;
    await Promise.all(this.stores.map((s) => s.sync()));
  }

  check(line: TrafficLine, index: number, attempt?: Attempt): Check | Promise<Check> {
    this.current = (index + (attempt?.retry ?? 0)) % this.guards.length;
    return (this.guards[this.current] as VerdictGuard).check(line, index, attempt);
  }

  /** every gateway of the fleet has the same clearance key */
  issue(line: TrafficLine, level: number, ttlS: number, nowMs: number): string {
    return (this.guards[0] as VerdictGuard).issue(line, level, ttlS, nowMs);
  }

  after(line: TrafficLine, index: number, result: LineResult, body?: string): void | Promise<void> {
    return (this.guards[this.current] as VerdictGuard).after(line, index, result, body);
  }

  async close(): Promise<void> {
    await Promise.all(this.stores.map((s) => s.close()));
  }
}
