// A fixed-capacity index of keys for the embedded store: each key is reduced to a 64-bit
// fingerprint and lives in one of 8 slots (ways) of the bucket its hash picks; a new key takes an
// empty way or evicts the bucket's least recently used one (set-associative LRU, the layout of a
// CPU cache). Everything is three typed arrays allocated once (12 bytes a slot): no per-key
// objects, so memory is fixed by the capacity whatever the number of keys, and evictions leave
// no garbage for the GC to find later. The store keeps each structure's values in parallel
// typed arrays indexed by the same slot.
//
// Limits: two keys with the same 64-bit fingerprint share a slot (at a million keys, about one
// chance in 10^7 that any pair collides); a key may be evicted while others of its age survive
// in less crowded buckets (8 ways keep this close to a global LRU).

import { mix32 } from './distinct.ts';

export const WAYS = 8;
const MAX_STAMP = 0xffff_fff0;

export class SlotIndex {
  readonly capacity: number;
  private readonly buckets: number;
  private readonly ways: number;
  private readonly fa: Uint32Array;
  private readonly fb: Uint32Array;
  /** Recency of each slot (a counter, larger = more recent); 0 = empty. */
  private readonly stamps: Uint32Array;
  private clock = 0;
  private count = 0;
  /** Fingerprint of the key last hashed. */
  private a = 0;
  private b = 0;
  /** Whether the last claim() created its entry (false: found it). */
  created = false;

  /** syntax: new SlotIndex(maxKeys) — capacity is maxKeys rounded down to a multiple of the ways. */
  constructor(maxKeys: number) {
    if (!Number.isInteger(maxKeys) || maxKeys < 1) throw new RangeError(`SlotIndex capacity must be a positive integer, got ${maxKeys}`);
    this.ways = Math.min(WAYS, maxKeys);
    this.buckets = Math.floor(maxKeys / this.ways);
    this.capacity = this.buckets * this.ways;
    this.fa = new Uint32Array(this.capacity);
    this.fb = new Uint32Array(this.capacity);
    this.stamps = new Uint32Array(this.capacity);
  }

  get size(): number {
    return this.count;
  }

  /** The slot holding `key`, or -1. Does not change its recency. */
  lookup(key: string): number {
    const base = this.hash(key);
    const { a, b, fa, fb, stamps } = this;
    for (let s = base, end = base + this.ways; s < end; s++) {
      if (fa[s] === a && fb[s] === b && stamps[s] !== 0) return s;
    }
    return -1;
  }

  /**
   * The slot of `key`, made most recent. A new key takes an empty way or the bucket's least
   * recently used one (`created` is then true and the caller initialises the slot's values).
   */
  claim(key: string): number {
    const base = this.hash(key);
    const { a, b, fa, fb, stamps } = this;
    let victim = base;
    let oldest = 0xffff_ffff;
    for (let s = base, end = base + this.ways; s < end; s++) {
      const st = stamps[s] as number;
      if (st === 0) {
        if (oldest !== 0) { victim = s; oldest = 0; }
        continue;
      }
      if (fa[s] === a && fb[s] === b) {
        stamps[s] = this.tick();
        this.created = false;
        return s;
      }
      if (st < oldest) { victim = s; oldest = st; }
    }
    if (oldest === 0) this.count++;
    fa[victim] = a;
    fb[victim] = b;
    stamps[victim] = this.tick();
    this.created = true;
    return victim;
  }

  /** Marks a slot most recently used. */
  touch(slot: number): void {
    this.stamps[slot] = this.tick();
  }

  /** Recency of a slot (0 = empty): for moving entries into a resized index. */
  stampOf(slot: number): number {
    return this.stamps[slot] as number;
  }

  /**
   * Moves slot `from` of `src` into this index, keeping its recency: the slot it landed in, or
   * -1 when its bucket here is full of more recent keys (it is dropped).
   */
  place(src: SlotIndex, from: number): number {
    const a = src.fa[from] as number;
    const b = src.fb[from] as number;
    const stamp = src.stamps[from] as number;
    const base = this.bucketOf(a);
    let victim = -1;
    let oldest = stamp;
    for (let s = base, end = base + this.ways; s < end; s++) {
      const st = this.stamps[s] as number;
      if (st === 0) { victim = s; break; }
      if (st < oldest) { victim = s; oldest = st; }
    }
    if (victim < 0) return -1;
    if (this.stamps[victim] === 0) this.count++;
    this.fa[victim] = a;
    this.fb[victim] = b;
    this.stamps[victim] = stamp;
    if (stamp > this.clock) this.clock = stamp;
    return victim;
  }

  private tick(): number {
    if (this.clock >= MAX_STAMP) this.rebase();
    return ++this.clock;
  }

  /** Halves every stamp when the counter nears 2^32 (order kept, ties possible): rare, O(capacity). */
  private rebase(): void {
    const st = this.stamps;
    for (let s = 0; s < st.length; s++) if (st[s] !== 0) st[s] = Math.max(1, (st[s] as number) >>> 1);
    this.clock >>>= 1;
  }

  private bucketOf(a: number): number {
    // The fingerprint's high bits pick the bucket (multiply-shift: no modulo bias).
    return Math.floor((a * this.buckets) / 4_294_967_296) * this.ways;
  }

  /** Sets the fingerprint of `key` (two 32-bit FNV-style hashes, well mixed); returns its bucket's first slot. */
  private hash(key: string): number {
    let a = 0x811c9dc5;
    let b = 0x2545f491;
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
    }
    this.a = mix32(a);
    this.b = mix32(b ^ key.length);
    return this.bucketOf(this.a);
  }
}

