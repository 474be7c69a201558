// A bounded map with approximate-LRU eviction at native Map speed: two generations. Reads hit
// the young map or promote from the old one; when the young map reaches half the bound, the old
// generation is dropped whole and the young one becomes old. Never more than `max` entries; an
// entry untouched for a full generation is forgotten. Cheaper per operation than a linked-list
// LRU (no node bookkeeping on every get), which matters on the decide path.

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

  private insert(key: K, value: V): void {
    if (this.young.size >= this.half) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, value);
  }
}
