// Embedded store: five fixed-capacity tables (counters, distinct sets, marks, arrivals, values),
// each a SlotIndex (state/slot-index.ts) plus typed-array columns. Memory is allocated once from
// maxKeys (BYTES_PER_KEY below, ≈ 420 bytes per maxKeys) and never grows: no per-key objects,
// so millions of distinct keys leave no garbage behind either (a Map of small objects per key
// kept the live set bounded but let the GC heap float at several times it between collections).
// Sliding windows use two fixed buckets (current, previous) — the estimate nginx's limit_req
// family and common rate limiters use; distinct counts are exact up to 24 members, then a
// 128-register HyperLogLog (the same sketch as state/distinct.ts), in one 128-byte cell.

import { addToRegisters, estimate as hllEstimate, M, SMALL } from './distinct.ts';
import { SlotIndex } from './slot-index.ts';
import type { IntervalStats, Store } from './store.ts';

const RING = 8;
/** Exact-member count of a sketch cell that holds registers instead. */
const PROMOTED = 255;
/** 32-bit words per sketch cell: 24 members or 128 one-byte registers. */
const CELL = M / 4;
/** Smallest capacity shedding leaves a table. */
const MIN_CAPACITY = 1024;

function bucketStart(now: number, windowMs: number): number {
  return now - (now % windowMs);
}

/** Bytes each key of maxKeys costs per structure: the 12-byte index slot plus its columns. */
export const BYTES_PER_KEY = { counter: 12 + 24, distinct: 12 + 8 + 1 + 4 + 2 + 2 * CELL * 4, mark: 12 + 8, arrival: 12 + 8 + 2 + 4 * RING, value: 12 + 16 } as const;

/** Memory the store's tables take at most for `maxKeys` (they are allocated once). */
export function storeBytes(maxKeys: number): number {
  const b = BYTES_PER_KEY;
  return maxKeys * (b.counter + b.distinct + b.mark + b.arrival + b.value);
}

class Counters {
  readonly index: SlotIndex;
  readonly start: Float64Array;
  readonly current: Float64Array;
  readonly previous: Float64Array;

  constructor(capacity: number) {
    this.index = new SlotIndex(capacity);
    const n = this.index.capacity;
    this.start = new Float64Array(n);
    this.current = new Float64Array(n);
    this.previous = new Float64Array(n);
  }

  copy(src: Counters, from: number, to: number): void {
    this.start[to] = src.start[from] as number;
    this.current[to] = src.current[from] as number;
    this.previous[to] = src.previous[from] as number;
  }

  roll(s: number, windowMs: number, now: number): void {
    const start = bucketStart(now, windowMs);
    const was = this.start[s] as number;
    if (start === was) return;
    this.previous[s] = start - was === windowMs ? (this.current[s] as number) : 0;
    this.current[s] = 0;
    this.start[s] = start;
  }

  estimate(s: number, windowMs: number, now: number): number {
    const elapsed = (now - (this.start[s] as number)) / windowMs;
    return (this.current[s] as number) + (this.previous[s] as number) * (1 - elapsed);
  }
}

/** Scratch for unions and promotions (filled and read with no await in between). */
const unionRegs = new Uint8Array(M);
const promoting = new Uint32Array(SMALL);

class DistinctSets {
  readonly index: SlotIndex;
  readonly start: Float64Array;
  /** Which of the slot's two cells is the current bucket (0 or 1). */
  readonly half: Uint8Array;
  /** Members held exactly per cell (0..24), or PROMOTED. */
  readonly n: Uint8Array;
  /** Cell c occupies words[c * CELL, (c + 1) * CELL): members, or registers packed 4 a word. */
  readonly words: Uint32Array;
  /**
   * The slot's last union count, or -1 once a member or register changed: most adds to a busy
   * key (an address, a browser build) change nothing once its sketch is full, and the union of
   * two HyperLogLogs costs more than the rest of the add.
   */
  readonly union: Int32Array;

  constructor(capacity: number) {
    this.index = new SlotIndex(capacity);
    const n = this.index.capacity;
    this.start = new Float64Array(n);
    this.half = new Uint8Array(n);
    this.n = new Uint8Array(2 * n);
    this.words = new Uint32Array(2 * n * CELL);
    this.union = new Int32Array(n);
  }

  copy(src: DistinctSets, from: number, to: number): void {
    this.start[to] = src.start[from] as number;
    this.half[to] = src.half[from] as number;
    this.n[2 * to] = src.n[2 * from] as number;
    this.n[2 * to + 1] = src.n[2 * from + 1] as number;
    this.union[to] = src.union[from] as number;
    const w = src.words;
    for (let i = 2 * from * CELL, j = 2 * to * CELL, end = i + 2 * CELL; i < end; i++, j++) this.words[j] = w[i] as number;
  }

  roll(s: number, windowMs: number, now: number): void {
    const start = bucketStart(now, windowMs);
    const was = this.start[s] as number;
    if (start === was) return;
    this.union[s] = -1;
    if (start - was === windowMs) {
      // The current bucket becomes the previous one; the old previous is emptied and reused.
      const h = (this.half[s] as number) ^ 1;
      this.half[s] = h;
      this.n[2 * s + h] = 0;
    } else {
      this.n[2 * s] = 0;
      this.n[2 * s + 1] = 0;
    }
    this.start[s] = start;
  }

  /** Slot s as a new key's: both cells empty, the current window starting at `start`. */
  init(s: number, start: number): void {
    this.start[s] = start;
    this.half[s] = 0;
    this.n[2 * s] = 0;
    this.n[2 * s + 1] = 0;
    this.union[s] = -1;
  }

  /** Adds a member to slot s's current cell; the cached count goes when the cell changed. */
  insert(s: number, member: number): void {
    if (this.add(2 * s + (this.half[s] as number), member)) this.union[s] = -1;
  }

  /** Adds a member to cell c; whether the cell changed. */
  private add(c: number, member: number): boolean {
    const h = member >>> 0;
    const n = this.n[c] as number;
    const base = c * CELL;
    const w = this.words;
    if (n !== PROMOTED) {
      for (let i = base, end = base + n; i < end; i++) if (w[i] === h) return false;
      if (n < SMALL) {
        w[base + n] = h;
        this.n[c] = n + 1;
        return true;
      }
      promoting.set(w.subarray(base, base + SMALL));
      w.fill(0, base, base + CELL);
      this.n[c] = PROMOTED;
      for (let i = 0; i < SMALL; i++) this.addRegister(base, promoting[i] as number);
      this.addRegister(base, h);
      return true;
    }
    return this.addRegister(base, h);
  }

  /** The distinct count of slot s's two cells, from the cache unless something changed. */
  count(s: number): number {
    const cached = this.union[s] as number;
    if (cached >= 0) return cached;
    const n = this.unionCount(2 * s, 2 * s + 1);
    this.union[s] = n;
    return n;
  }

  /** Distinct members of the union of cells a and b. */
  private unionCount(a: number, b: number): number {
    const na = this.n[a] as number;
    const nb = this.n[b] as number;
    const w = this.words;
    if (na !== PROMOTED && nb !== PROMOTED) {
      let n = na;
      const ba = a * CELL;
      for (let j = b * CELL, end = b * CELL + nb; j < end; j++) {
        const x = w[j];
        let seen = false;
        for (let i = ba, e = ba + na; i < e; i++) if (w[i] === x) { seen = true; break; }
        if (!seen) n++;
      }
      return n;
    }
    unionRegs.fill(0);
    this.mergeInto(unionRegs, a, na);
    this.mergeInto(unionRegs, b, nb);
    return hllEstimate(unionRegs);
  }

  private mergeInto(regs: Uint8Array, c: number, n: number): void {
    const base = c * CELL;
    const w = this.words;
    if (n !== PROMOTED) {
      for (let i = base; i < base + n; i++) addToRegisters(regs, w[i] as number);
      return;
    }
    for (let r = 0; r < M; r++) {
      const v = ((w[base + (r >>> 2)] as number) >>> ((r & 3) * 8)) & 0xff;
      if (v > (regs[r] as number)) regs[r] = v;
    }
  }

  /** Register update packed in words, the same ranks as distinct.ts addToRegisters. */
  private addRegister(base: number, h: number): boolean {
    const idx = h >>> 25;
    const x = (h << 7) >>> 0;
    const rank = x === 0 ? 26 : Math.clz32(x) + 1;
    const i = base + (idx >>> 2);
    const shift = (idx & 3) * 8;
    const word = this.words[i] as number;
    if (rank <= ((word >>> shift) & 0xff)) return false;
    this.words[i] = (word & ~(0xff << shift)) | (rank << shift);
    return true;
  }
}

class Marks {
  readonly index: SlotIndex;
  readonly until: Float64Array;

  constructor(capacity: number) {
    this.index = new SlotIndex(capacity);
    this.until = new Float64Array(this.index.capacity);
  }

  copy(src: Marks, from: number, to: number): void {
    this.until[to] = src.until[from] as number;
  }
}

class Arrivals {
  readonly index: SlotIndex;
  readonly last: Float64Array;
  /** Gaps recorded (capped at RING) and the ring's next write position. */
  readonly n: Uint8Array;
  readonly pos: Uint8Array;
  /** RING gaps per slot; float32 holds whole milliseconds exactly up to 4.6 hours. */
  readonly gaps: Float32Array;

  constructor(capacity: number) {
    this.index = new SlotIndex(capacity);
    const n = this.index.capacity;
    this.last = new Float64Array(n);
    this.n = new Uint8Array(n);
    this.pos = new Uint8Array(n);
    this.gaps = new Float32Array(n * RING);
  }

  copy(src: Arrivals, from: number, to: number): void {
    this.last[to] = src.last[from] as number;
    this.n[to] = src.n[from] as number;
    this.pos[to] = src.pos[from] as number;
    for (let i = 0; i < RING; i++) this.gaps[to * RING + i] = src.gaps[from * RING + i] as number;
  }
}

class Values {
  readonly index: SlotIndex;
  readonly value: Float64Array;
  readonly expires: Float64Array;

  constructor(capacity: number) {
    this.index = new SlotIndex(capacity);
    const n = this.index.capacity;
    this.value = new Float64Array(n);
    this.expires = new Float64Array(n);
  }

  copy(src: Values, from: number, to: number): void {
    this.value[to] = src.value[from] as number;
    this.expires[to] = src.expires[from] as number;
  }
}

interface Table<T> {
  readonly index: SlotIndex;
  copy(src: T, from: number, to: number): void;
}

/** A smaller table of the same kind holding the most recently used entries of `t`. */
function shrunk<T extends Table<T>>(t: T, make: (capacity: number) => T, capacity: number): T {
  const next = make(capacity);
  const from = t.index;
  for (let s = 0; s < from.capacity; s++) {
    if (from.stampOf(s) === 0) continue;
    const to = next.index.place(from, s);
    if (to >= 0) next.copy(t, s, to);
  }
  return next;
}

export interface MemoryStoreOptions {
  /** Keys per structure (counters, distinct sets, marks, arrivals, values); fixes the memory (storeBytes). */
  readonly maxKeys: number;
}

export class MemoryStore implements Store {
  private counters: Counters;
  private distinct: DistinctSets;
  private marks: Marks;
  private arrivals: Arrivals;
  private values: Values;

  constructor(opts: MemoryStoreOptions = { maxKeys: 500_000 }) {
    const max = opts.maxKeys;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`MemoryStore maxKeys must be a positive integer, got ${max}`);
    this.counters = new Counters(max);
    this.distinct = new DistinctSets(max);
    this.marks = new Marks(max);
    this.arrivals = new Arrivals(max);
    this.values = new Values(max);
  }

  incr(key: string, windowMs: number, now: number, by = 1): number {
    const t = this.counters;
    const s = t.index.claim(key);
    if (t.index.created) {
      t.start[s] = bucketStart(now, windowMs);
      t.current[s] = 0;
      t.previous[s] = 0;
    } else {
      t.roll(s, windowMs, now);
    }
    t.current[s] = (t.current[s] as number) + by;
    return t.estimate(s, windowMs, now);
  }

  count(key: string, windowMs: number, now: number): number {
    const t = this.counters;
    const s = t.index.lookup(key);
    if (s < 0) return 0;
    t.roll(s, windowMs, now);
    return t.estimate(s, windowMs, now);
  }

  addDistinct(key: string, member: number, windowMs: number, now: number): number {
    const t = this.distinct;
    const s = t.index.claim(key);
    if (t.index.created) t.init(s, bucketStart(now, windowMs));
    else t.roll(s, windowMs, now);
    t.insert(s, member);
    return t.count(s);
  }

  countDistinct(key: string, windowMs: number, now: number): number {
    const t = this.distinct;
    const s = t.index.lookup(key);
    if (s < 0) return 0;
    t.roll(s, windowMs, now);
    return t.count(s);
  }

  mark(key: string, now: number, ttlMs: number): void {
    const t = this.marks;
    const until = now + ttlMs;
    const s = t.index.claim(key);
    if (t.index.created || (t.until[s] as number) < until) t.until[s] = until;
  }

  marked(key: string, now: number): boolean {
    const t = this.marks;
    const s = t.index.lookup(key);
    if (s < 0) return false;
    t.index.touch(s);
    return (t.until[s] as number) > now;
  }

  arrival(key: string, now: number): IntervalStats {
    const t = this.arrivals;
    const s = t.index.claim(key);
    if (t.index.created) {
      t.last[s] = now;
      t.n[s] = 0;
      t.pos[s] = 0;
      return { n: 0, meanMs: 0, cv: 1 };
    }
    const pos = t.pos[s] as number;
    t.gaps[s * RING + pos] = now - (t.last[s] as number);
    t.last[s] = now;
    t.pos[s] = (pos + 1) % RING;
    const n = Math.min(RING, (t.n[s] as number) + 1);
    t.n[s] = n;
    const base = s * RING;
    let sum = 0;
    for (let i = base; i < base + n; i++) sum += t.gaps[i] as number;
    const mean = sum / n;
    let sq = 0;
    for (let i = base; i < base + n; i++) sq += ((t.gaps[i] as number) - mean) ** 2;
    const cv = mean > 0 ? Math.sqrt(sq / n) / mean : 0;
    return { n, meanMs: mean, cv };
  }

  swap(key: string, value: number, now: number, ttlMs: number): number | undefined {
    const t = this.values;
    const s = t.index.claim(key);
    const prev = !t.index.created && (t.expires[s] as number) > now ? (t.value[s] as number) : undefined;
    t.value[s] = value;
    t.expires[s] = now + ttlMs;
    return prev;
  }

  size(): number {
    return this.counters.index.size + this.distinct.index.size + this.marks.index.size + this.arrivals.index.size + this.values.index.size;
  }

  /** Keys each structure can hold now (maxKeys, rounded; lower after shed()). */
  capacity(): number {
    return this.counters.index.capacity;
  }

  /**
   * Memory pressure: every structure moves to a table `fraction` smaller, keeping its most
   * recently used keys; the old tables are freed by the next full GC. The capacity stays reduced
   * (the configured bound did not fit the memory limit). Rebuilding blocks for ≈ 0.7 s per
   * million keys of capacity: a last resort, not a routine. Returns the keys dropped.
   */
  shed(fraction: number): number {
    if (!(fraction > 0)) return 0;
    const capacity = Math.max(MIN_CAPACITY, Math.floor(this.capacity() * (1 - Math.min(1, fraction))));
    if (capacity >= this.capacity()) return 0;
    const before = this.size();
    this.counters = shrunk(this.counters, (c) => new Counters(c), capacity);
    this.distinct = shrunk(this.distinct, (c) => new DistinctSets(c), capacity);
    this.marks = shrunk(this.marks, (c) => new Marks(c), capacity);
    this.arrivals = shrunk(this.arrivals, (c) => new Arrivals(c), capacity);
    this.values = shrunk(this.values, (c) => new Values(c), capacity);
    return before - this.size();
  }
}
