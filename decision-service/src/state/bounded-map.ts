// A bounded map with approximate-LRU eviction at native Map speed: two generations. Reads hit
// the young map or promote from the old one; when the young map reaches half the bound, the old
// generation is dropped whole and the young one becomes old. Never more than `max` entries; an
// entry untouched for a full generation is forgotten. Cheaper per operation than a linked-list
// LRU (no node bookkeeping on every get), which matters on the decide path.

import type { LRUCache } from 'lru-cache';

export class BoundedMap<K, V> {
  private young = new Map<K, V>();
  private old = new Map<K, V>();
  private readonly half: number;

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 2) throw new RangeError(`BoundedMap max must be an integer >= 2, got ${max}`);
    this.half = Math.floor(max / 2);
  }

  get(key: K): V | undefined {
    const v = this.young.get(key);
    if (v !== undefined) return v;
    const o = this.old.get(key);
    if (o !== undefined) {
      this.old.delete(key);
      this.insert(key, o);
    }
    return o;
  }

  /** Reads and removes (a value needed once: it can then die young instead of aging in the map). */
  take(key: K): V | undefined {
    const v = this.young.get(key);
    if (v !== undefined) {
      this.young.delete(key);
      return v;
    }
    const o = this.old.get(key);
    if (o !== undefined) this.old.delete(key);
    return o;
  }

  /** Reads without promoting. */
  peek(key: K): V | undefined {
    return this.young.get(key) ?? this.old.get(key);
  }

  set(key: K, value: V): void {
    if (this.young.has(key)) {
      this.young.set(key, value);
      return;
    }
    this.old.delete(key);
    this.insert(key, value);
  }

  get size(): number {
    return this.young.size + this.old.size;
  }

  /** Deletes the oldest `fraction` of the entries (old generation first, each in insertion order). */
  shed(fraction: number): number {
    const target = fraction > 0 ? Math.floor(this.size * Math.min(1, fraction)) : 0;
    let dropped = 0;
    for (const gen of [this.old, this.young]) {
      for (const key of gen.keys()) {
        if (dropped >= target) return dropped;
        gen.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  private insert(key: K, value: V): void {
    if (this.young.size >= this.half) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, value);
  }
}

/** Deletes the least recently used `fraction` of an lru-cache's entries; returns how many. */
export function shedLru<K extends {}, V extends {}>(cache: LRUCache<K, V>, fraction: number): number {
  const n = fraction > 0 ? Math.floor(cache.size * Math.min(1, fraction)) : 0;
  const victims: K[] = [];
  for (const k of cache.rkeys()) {
    if (victims.length >= n) break;
    victims.push(k);
  }
  for (const k of victims) cache.delete(k);
  return victims.length;
}
