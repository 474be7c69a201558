// Embedded store: every structure bounded in memory (approximate LRU over its keys, BoundedMap). Sliding windows use
// two fixed buckets (current, previous) — the estimate nginx's limit_req family and common rate
// limiters use; distinct counts use fixed-size sketches (state/distinct.ts).

import { BoundedMap } from './bounded-map.ts';
import { DistinctSketch } from './distinct.ts';
import type { IntervalStats, Store } from './store.ts';

class Window {
  start = 0;
  current = 0;
  previous = 0;
}

class DistinctWindow {
  start = 0;
  current = new DistinctSketch();
  previous = new DistinctSketch();
}

const RING = 8;

class Arrivals {
  last = 0;
  gaps = new Float64Array(RING);
  n = 0;
}

class Slot {
  value = 0;
  expires = 0;
}

function bucketStart(now: number, windowMs: number): number {
  return now - (now % windowMs);
}

function roll(w: Window, windowMs: number, now: number): void {
  const start = bucketStart(now, windowMs);
  if (start === w.start) return;
  w.previous = start - w.start === windowMs ? w.current : 0;
  w.current = 0;
  w.start = start;
}

function estimate(w: Window, windowMs: number, now: number): number {
  const elapsed = (now - w.start) / windowMs;
  return w.current + w.previous * (1 - elapsed);
}

function rollDistinct(w: DistinctWindow, windowMs: number, now: number): void {
  const start = bucketStart(now, windowMs);
  if (start === w.start) return;
  const old = w.previous;
  if (start - w.start === windowMs) {
    w.previous = w.current;
    old.reset();
    w.current = old;
  } else {
    w.previous.reset();
    w.current.reset();
  }
  w.start = start;
}

export interface MemoryStoreOptions {
  /** Maximum keys per structure (counters, distinct sets, marks, arrivals, values). */
  readonly maxKeys: number;
}

/** Upper bound of bytes one key may hold in each structure (measured, see bench). */
export const BYTES_PER_KEY = { counter: 200, distinct: 700, mark: 150, arrival: 260, value: 160 } as const;

export class MemoryStore implements Store {
  private readonly windows: BoundedMap<string, Window>;
  private readonly distinct: BoundedMap<string, DistinctWindow>;
  private readonly marks: BoundedMap<string, number>;
  private readonly arrivals: BoundedMap<string, Arrivals>;
  private readonly values: BoundedMap<string, Slot>;

  constructor(opts: MemoryStoreOptions = { maxKeys: 500_000 }) {
    const max = opts.maxKeys;
    this.windows = new BoundedMap(max);
    this.distinct = new BoundedMap(max);
    this.marks = new BoundedMap(max);
    this.arrivals = new BoundedMap(max);
    this.values = new BoundedMap(max);
  }

  incr(key: string, windowMs: number, now: number, by = 1): number {
    let w = this.windows.get(key);
    if (!w) {
      w = new Window();
      w.start = bucketStart(now, windowMs);
      this.windows.set(key, w);
    } else {
      roll(w, windowMs, now);
    }
    w.current += by;
    return estimate(w, windowMs, now);
  }

  count(key: string, windowMs: number, now: number): number {
    const w = this.windows.peek(key);
    if (!w) return 0;
    roll(w, windowMs, now);
    return estimate(w, windowMs, now);
  }

  addDistinct(key: string, member: number, windowMs: number, now: number): number {
    let w = this.distinct.get(key);
    if (!w) {
      w = new DistinctWindow();
      w.start = bucketStart(now, windowMs);
      this.distinct.set(key, w);
    } else {
      rollDistinct(w, windowMs, now);
    }
    w.current.add(member);
    return w.current.unionCount(w.previous);
  }

  countDistinct(key: string, windowMs: number, now: number): number {
    const w = this.distinct.peek(key);
    if (!w) return 0;
    rollDistinct(w, windowMs, now);
    return w.current.unionCount(w.previous);
  }

  mark(key: string, now: number, ttlMs: number): void {
    const until = now + ttlMs;
    const prev = this.marks.get(key);
    if (prev === undefined || prev < until) this.marks.set(key, until);
  }

  marked(key: string, now: number): boolean {
    const until = this.marks.get(key);
    return until !== undefined && until > now;
  }

  arrival(key: string, now: number): IntervalStats {
    let a = this.arrivals.get(key);
    if (!a) {
      a = new Arrivals();
      a.last = now;
      this.arrivals.set(key, a);
      return { n: 0, meanMs: 0, cv: 1 };
    }
    a.gaps[a.n % RING] = now - a.last;
    a.last = now;
    a.n++;
    const n = Math.min(a.n, RING);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += a.gaps[i] ?? 0;
    const mean = sum / n;
    let sq = 0;
    for (let i = 0; i < n; i++) sq += ((a.gaps[i] ?? 0) - mean) ** 2;
    const cv = mean > 0 ? Math.sqrt(sq / n) / mean : 0;
    return { n, meanMs: mean, cv };
  }

  swap(key: string, value: number, now: number, ttlMs: number): number | undefined {
    let s = this.values.get(key);
    let prev: number | undefined;
    if (!s) {
      s = new Slot();
      this.values.set(key, s);
    } else if (s.expires > now) {
      prev = s.value;
    }
    s.value = value;
    s.expires = now + ttlMs;
    return prev;
  }

  size(): number {
    return this.windows.size + this.distinct.size + this.marks.size + this.arrivals.size + this.values.size;
  }
}
