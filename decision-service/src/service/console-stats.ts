// The console's live numbers, sampled once a second from the service's own Prometheus counters
// (no second count on the decide path): decisions per second by action over the last five
// minutes, the reasons that fired most in that window, and decide latency percentiles estimated
// from the latency histogram's buckets (since start).

import type { ServiceMetrics } from './metrics.ts';

export const ACTIONS = ['ALLOW', 'TAG', 'CHALLENGE', 'BLOCK'] as const;
const WINDOW_S = 300;

interface Sample {
  readonly t: number;
  readonly byAction: Readonly<Record<string, number>>;
  readonly reasons: ReadonlyMap<string, number>;
}

export interface ConsoleSeries {
  /** Seconds (epoch ms) of each point and decisions/s per action at it. */
  readonly t: number[];
  readonly rates: Record<string, number[]>;
}

export class ConsoleStats {
  private samples: Sample[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly metrics: ServiceMetrics | undefined, private readonly now: () => number = Date.now, onTick?: () => void) {
    this.timer = setInterval(() => {
      onTick?.();
      void this.sample();
    }, 1000);
    this.timer.unref();
    void this.sample();
  }

  private async sample(): Promise<void> {
    const m = this.metrics;
    if (!m) return;
    const byAction: Record<string, number> = {};
    for (const v of (await m.decisions.get()).values) {
      const a = String(v.labels.action);
      byAction[a] = (byAction[a] ?? 0) + v.value;
    }
    const reasons = new Map<string, number>();
    for (const v of (await m.reasons.get()).values) reasons.set(String(v.labels.reason), v.value);
    this.samples.push({ t: this.now(), byAction, reasons });
    if (this.samples.length > WINDOW_S + 1) this.samples.shift();
  }

  series(): ConsoleSeries {
    const t: number[] = [];
    const rates: Record<string, number[]> = {};
    for (const a of ACTIONS) rates[a] = [];
    for (let i = 1; i < this.samples.length; i++) {
      const a = this.samples[i - 1] as Sample;
      const b = this.samples[i] as Sample;
      const dt = Math.max(0.001, (b.t - a.t) / 1000);
      t.push(b.t);
      for (const x of ACTIONS) (rates[x] as number[]).push(Math.max(0, ((b.byAction[x] ?? 0) - (a.byAction[x] ?? 0)) / dt));
    }
    return { t, rates };
  }

  /** Reasons fired in the window, most first. */
  topReasons(limit = 10): Array<{ reason: string; count: number }> {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last) return [];
    const out: Array<{ reason: string; count: number }> = [];
    for (const [r, v] of last.reasons) {
      const d = v - (first === last ? 0 : first.reasons.get(r) ?? 0);
      if (d > 0) out.push({ reason: r, count: d });
    }
    return out.sort((a, b) => b.count - a.count).slice(0, limit);
  }

  /** Decide latency percentiles (ms, upper bucket bounds) since start, all encodings together. */
  async latency(): Promise<{ count: number; p50_ms: number; p99_ms: number }> {
    const m = this.metrics;
    if (!m) return { count: 0, p50_ms: 0, p99_ms: 0 };
    const buckets = new Map<number, number>();
    let count = 0;
    for (const v of (await m.decideSeconds.get()).values) {
      const labels = v.labels as Record<string, string | number | undefined>;
      if (v.metricName?.endsWith('_bucket')) {
        const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
        buckets.set(le, (buckets.get(le) ?? 0) + v.value);
      } else if (v.metricName?.endsWith('_count')) count += v.value;
    }
    const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
    const at = (q: number): number => {
      for (const [le, n] of sorted) if (n >= q * count) return le === Infinity ? -1 : le * 1000;
      return 0;
    };
    return { count, p50_ms: count ? at(0.5) : 0, p99_ms: count ? at(0.99) : 0 };
  }

  close(): void {
    clearInterval(this.timer);
  }
}
