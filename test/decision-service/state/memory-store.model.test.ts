// The fixed-table MemoryStore against a plain model of the Store semantics (Maps of objects, the
// sketches of state/distinct.ts): while no key is evicted, every answer must be the same.
import t from 'tap';
import { DistinctSketch, hash32 } from '../../../decision-service/src/state/distinct.ts';
import { MemoryStore } from '../../../decision-service/src/state/memory-store.ts';
import type { IntervalStats } from '../../../decision-service/src/state/store.ts';

function bucketStart(now: number, w: number) {
  return now - (now % w);
}

class Model {
  counters = new Map<string, { start: number; cur: number; prev: number }>();
  sets = new Map<string, { start: number; cur: DistinctSketch; prev: DistinctSketch }>();
  marks = new Map<string, number>();
  arrivals = new Map<string, { last: number; gaps: number[] }>();
  values = new Map<string, { value: number; expires: number }>();

  private roll(c: { start: number; cur: number; prev: number }, w: number, now: number) {
    const s = bucketStart(now, w);
    if (s === c.start) return;
    c.prev = s - c.start === w ? c.cur : 0;
    c.cur = 0;
    c.start = s;
  }

  incr(k: string, w: number, now: number, by = 1) {
    let c = this.counters.get(k);
    if (!c) this.counters.set(k, (c = { start: bucketStart(now, w), cur: 0, prev: 0 }));
    else this.roll(c, w, now);
    c.cur += by;
    return c.cur + c.prev * (1 - (now - c.start) / w);
  }

  count(k: string, w: number, now: number) {
    const c = this.counters.get(k);
    if (!c) return 0;
    this.roll(c, w, now);
    return c.cur + c.prev * (1 - (now - c.start) / w);
  }

  private rollSet(d: { start: number; cur: DistinctSketch; prev: DistinctSketch }, w: number, now: number) {
    const s = bucketStart(now, w);
    if (s === d.start) return;
    if (s - d.start === w) {
      const old = d.prev;
      d.prev = d.cur;
      old.reset();
      d.cur = old;
    } else {
      d.prev.reset();
      d.cur.reset();
    }
    d.start = s;
  }

  addDistinct(k: string, m: number, w: number, now: number) {
    let d = this.sets.get(k);
    if (!d) this.sets.set(k, (d = { start: bucketStart(now, w), cur: new DistinctSketch(), prev: new DistinctSketch() }));
    else this.rollSet(d, w, now);
    d.cur.add(m);
    return d.cur.unionCount(d.prev);
  }

  countDistinct(k: string, w: number, now: number) {
    const d = this.sets.get(k);
    if (!d) return 0;
    this.rollSet(d, w, now);
    return d.cur.unionCount(d.prev);
  }

  mark(k: string, now: number, ttl: number) {
    const prev = this.marks.get(k);
    if (prev === undefined || prev < now + ttl) this.marks.set(k, now + ttl);
  }

  marked(k: string, now: number) {
    const u = this.marks.get(k);
    return u !== undefined && u > now;
  }

  arrival(k: string, now: number): IntervalStats {
    const a = this.arrivals.get(k);
    if (!a) {
      this.arrivals.set(k, { last: now, gaps: [] });
      return { n: 0, meanMs: 0, cv: 1 };
    }
    a.gaps.push(now - a.last);
    a.last = now;
    const g = a.gaps.slice(-8);
    const mean = g.reduce((x, y) => x + y, 0) / g.length;
    const sd = Math.sqrt(g.reduce((x, y) => x + (y - mean) ** 2, 0) / g.length);
    return { n: g.length, meanMs: mean, cv: mean > 0 ? sd / mean : 0 };
  }

  swap(k: string, v: number, now: number, ttl: number) {
    const s = this.values.get(k);
    const prev = s && s.expires > now ? s.value : undefined;
    this.values.set(k, { value: v, expires: now + ttl });
    return prev;
  }
}

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return s / 4_294_967_296;
  };
}

t.test('same answers as the model over random operations (no eviction)', async (t) => {
  const store = new MemoryStore({ maxKeys: 4096 });
  const model = new Model();
  const r = rng(42);
  const W = [1000, 60_000];
  let now = 1_763_800_000_000;
  let mismatches = 0;
  const check = (what: string, a: unknown, b: unknown) => {
    if (JSON.stringify(a) !== JSON.stringify(b) && mismatches++ < 5) t.fail(`${what}: store ${JSON.stringify(a)} model ${JSON.stringify(b)}`);
  };
  for (let i = 0; i < 60_000; i++) {
    now += Math.floor(r() * 200);
    const k = `k${Math.floor(r() * 300)}`;
    const w = W[Math.floor(r() * 2)] as number;
    switch (Math.floor(r() * 9)) {
      case 0: check('incr', store.incr(`c:${k}`, w, now), model.incr(`c:${k}`, w, now)); break;
      case 1: check('count', store.count(`c:${k}`, w, now), model.count(`c:${k}`, w, now)); break;
      case 2:
      case 3: {
        // few members for most keys, up to a few hundred for some: both sides of the 24-member switch
        const m = hash32(`m${Math.floor(r() * (k.endsWith('7') ? 400 : 30))}`);
        check('addDistinct', store.addDistinct(`d:${k}`, m, 60_000, now), model.addDistinct(`d:${k}`, m, 60_000, now));
        break;
      }
      case 4: check('countDistinct', store.countDistinct(`d:${k}`, 60_000, now), model.countDistinct(`d:${k}`, 60_000, now)); break;
      case 5: { const ttl = Math.floor(r() * 5000); store.mark(`m:${k}`, now, ttl); model.mark(`m:${k}`, now, ttl); break; }
      case 6: check('marked', store.marked(`m:${k}`, now), model.marked(`m:${k}`, now)); break;
      case 7: check('arrival', store.arrival(`a:${k}`, now), model.arrival(`a:${k}`, now)); break;
      case 8: { const v = Math.floor(r() * 1000); check('swap', store.swap(`v:${k}`, v, now, 3000), model.swap(`v:${k}`, v, now, 3000)); break; }
    }
  }
  t.equal(mismatches, 0, 'no mismatches');
});

t.test('size and capacity: every structure holds at most maxKeys (rounded down to 8 ways)', async (t) => {
  const s = new MemoryStore({ maxKeys: 1003 });
  t.equal(s.capacity(), 1000);
  for (let i = 0; i < 20_000; i++) {
    s.incr(`c${i}`, 1000, 0);
    s.addDistinct(`d${i}`, i, 1000, 0);
    s.mark(`m${i}`, 0, 1000);
    s.arrival(`a${i}`, i);
    s.swap(`v${i}`, i, 0, 1000);
  }
  t.equal(s.size(), 5000, 'full, never more');
  t.equal(s.count('c19999', 1000, 0), 1, 'the newest key is held');
});
