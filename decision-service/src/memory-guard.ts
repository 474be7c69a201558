// The process-level memory bound: samples the resident set size (what the OOM killer judges)
// every second and, above the limit, asks every state holder (store, engine) to shed the least
// recently used quarter of what it holds, before the kernel or V8 ends the process. It also sheds
// when the live JS heap after a full GC nears V8's own heap limit (a RedisStore keeps its local
// state on the heap). After a shed it waits for a full GC — which is what frees the dropped
// state — before judging again, so one sample above the limit costs one shed, not several.
//
// Shedding loses detector memory (a walk in progress is forgotten), never a request — though the
// embedded store's rebuild holds the event loop for ≈ 0.7 s per million keys, so decisions meanwhile
// fail open at the gateway. It is the last resort before a crash, logged and counted so that ops
// size VERDICT_STORE_MAX_KEYS to the memory.

import { totalmem } from 'node:os';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';

export interface Sheddable {
  /** Gives up the least recently used `fraction` of its state; returns the entries dropped. */
  shed(fraction: number): number;
}

export interface ShedEvent {
  readonly reason: 'rss' | 'heap';
  readonly rssBytes: number;
  readonly limitBytes: number;
  /** Live JS heap after the last full GC (0 before the first one). */
  readonly heapBytes: number;
  readonly heapLimitBytes: number;
  readonly fraction: number;
  /** Entries dropped, by target name. */
  readonly dropped: Readonly<Record<string, number>>;
}

export interface MemoryGuardOptions {
  /** Resident set size above which state is shed (bytes). */
  readonly limitBytes: number;
  /** What sheds, by name (e.g. { store, engine }). */
  readonly targets: Readonly<Record<string, Sheddable>>;
  /** Share of each target's state one shed drops (default 0.25). */
  readonly fraction?: number;
  /** Sampling interval (default 1000 ms). */
  readonly intervalMs?: number;
  /** Samples after a shed with no full GC seen before judging again anyway (default 10). */
  readonly settleSamples?: number;
  /** Live heap share of V8's heap limit that also triggers a shed (default 0.9). */
  readonly heapShare?: number;
  /** Reads the resident set size (default process.memoryUsage.rss); injectable for tests. */
  readonly rss?: () => number;
  /** V8's heap limit (default v8.getHeapStatistics().heap_size_limit). */
  readonly heapLimitBytes?: number;
  /** Called after every shed: count it in a metric, log it. */
  readonly onShed?: (e: ShedEvent) => void;
}

const MiB = 1024 * 1024;

/**
 * The default limit: 85% of the container's memory limit (cgroup, what its OOM killer enforces)
 * or, without one, of the machine's memory.
 */
export function defaultMemoryLimitBytes(): number {
  const total = totalmem();
  const constrained = typeof process.constrainedMemory === 'function' ? process.constrainedMemory() ?? 0 : 0;
  const box = constrained > 0 && constrained < total ? constrained : total;
  return Math.floor(0.85 * box);
}

/** VERDICT_MEMORY_LIMIT_MB (0 or unset = the default) → bytes. */
export function memoryLimitBytes(limitMb: number | undefined): number {
  return limitMb && limitMb > 0 ? Math.floor(limitMb * MiB) : defaultMemoryLimitBytes();
}

export class MemoryGuard {
  /** Sheds since start. */
  sheds = 0;
  private readonly limit: number;
  private readonly targets: ReadonlyArray<[string, Sheddable]>;
  private readonly fraction: number;
  private readonly intervalMs: number;
  private readonly settleSamples: number;
  private readonly heapLimit: number;
  private readonly heapShare: number;
  private readonly readRss: () => number;
  private readonly onShed: ((e: ShedEvent) => void) | undefined;
  /** Live heap after the last full GC (0 until one is seen). */
  private liveHeap = 0;
  /** Samples left before judging again after a shed; 0 = judging. */
  private settling = 0;
  private timer: NodeJS.Timeout | undefined = undefined;
  private observer: PerformanceObserver | undefined = undefined;

  constructor(opts: MemoryGuardOptions) {
    if (!(opts.limitBytes > 0)) throw new RangeError(`memory limit must be positive, got ${opts.limitBytes}`);
    this.limit = opts.limitBytes;
    this.targets = Object.entries(opts.targets);
    this.fraction = opts.fraction ?? 0.25;
    this.intervalMs = opts.intervalMs ?? 1000;
    this.settleSamples = opts.settleSamples ?? 10;
    this.heapLimit = opts.heapLimitBytes ?? getHeapStatistics().heap_size_limit;
    this.heapShare = opts.heapShare ?? 0.9;
    this.readRss = opts.rss ?? (() => process.memoryUsage.rss());
    this.onShed = opts.onShed;
  }

  get limitBytes(): number {
    return this.limit;
  }

  /** Starts sampling (timer unref'd: it never keeps the process alive). */
  start(): this {
    if (this.timer) return this;
    this.observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if ((e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) this.fullGc(getHeapStatistics().used_heap_size);
      }
    });
    this.observer.observe({ entryTypes: ['gc'] });
    this.timer = setInterval(() => this.check(), this.intervalMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.observer?.disconnect();
    this.observer = undefined;
  }

  /** A full GC finished with `heapUsedBytes` live (the observer reports it; tests call it). */
  fullGc(heapUsedBytes: number): void {
    this.liveHeap = heapUsedBytes;
    this.settling = 0;
  }

  /** One sample: sheds when over a limit and not settling after the previous shed. Returns whether it shed. */
  check(): boolean {
    if (this.settling > 0) {
      this.settling--;
      return false;
    }
    const rss = this.readRss();
    let reason: ShedEvent['reason'] | undefined;
    if (rss > this.limit) reason = 'rss';
    else if (this.liveHeap > this.heapShare * this.heapLimit) reason = 'heap';
    if (!reason) return false;
    const heap = this.liveHeap;
    const dropped: Record<string, number> = {};
    for (const [name, t] of this.targets) dropped[name] = t.shed(this.fraction);
    this.sheds++;
    this.settling = this.settleSamples;
    // What was live before the shed no longer is; the next full GC reports the new live heap.
    this.liveHeap = 0;
    this.onShed?.({ reason, rssBytes: rss, limitBytes: this.limit, heapBytes: heap, heapLimitBytes: this.heapLimit, fraction: this.fraction, dropped });
    return true;
  }
}
