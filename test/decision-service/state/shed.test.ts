// Shedding under memory pressure (memory-guard.ts): each state holder gives up its least recently
// used share and keeps working.
import t from 'tap';
import { LRUCache } from 'lru-cache';
import { BoundedMap, shedLru } from '../../../decision-service/src/state/bounded-map.ts';
import { MemoryStore } from '../../../decision-service/src/state/memory-store.ts';

t.test('MemoryStore.shed moves to 75% tables, keeping the most recently used keys', async (t) => {
  const s = new MemoryStore({ maxKeys: 8000 });
  for (let i = 0; i < 8000; i++) {
    s.incr(`c${i}`, 60_000, 0);
    s.addDistinct(`d${i}`, i, 60_000, 0);
    s.mark(`m${i}`, 0, 60_000);
    s.arrival(`a${i}`, 0);
    s.swap(`v${i}`, i, 0, 60_000);
  }
  const before = s.size();
  const dropped = s.shed(0.25);
  t.equal(s.capacity(), 6000);
  t.equal(before - dropped, s.size());
  t.ok(s.size() <= 5 * 6000 && s.size() > 5 * 5500, `size ${s.size()}`);
  let newest = 0;
  let oldest = 0;
  for (let i = 0; i < 1000; i++) {
    if (s.count(`c${7999 - i}`, 60_000, 1) === 1) newest++;
    if (s.count(`c${i}`, 60_000, 1) === 1) oldest++;
  }
  t.ok(newest > 990, `newest 1000 counters kept: ${newest}`);
  t.ok(oldest < 500, `oldest 1000 counters mostly gone: ${oldest}`);
  t.equal(s.countDistinct('d7999', 60_000, 1), 1, 'distinct sets moved with their members');
  t.ok(s.marked('m7999', 1));
  t.equal(s.swap('v7999', 0, 1, 1000), 7999);
  t.equal(s.arrival('a7999', 500).n, 1);
  t.equal(s.incr('c7999', 60_000, 2), 2, 'keeps counting');
});

t.test('MemoryStore.shed stops at a floor and ignores nonsense fractions', async (t) => {
  const s = new MemoryStore({ maxKeys: 2000 });
  t.equal(s.shed(0), 0);
  t.equal(s.shed(Number.NaN), 0);
  s.shed(0.9);
  t.equal(s.capacity(), 1024, 'floor');
  t.equal(s.shed(0.5), 0, 'no further at the floor');
  t.equal(s.incr('k', 1000, 0), 1);
});

t.test('BoundedMap.shed drops the oldest entries first', async (t) => {
  const m = new BoundedMap<string, number>(100);
  for (let i = 0; i < 80; i++) m.set(`k${i}`, i);
  const n = m.size;
  t.equal(m.shed(0.25), Math.floor(n * 0.25));
  t.equal(m.peek('k0'), undefined);
  t.equal(m.peek('k79'), 79);
  const rest = m.size;
  t.equal(m.shed(1), rest, 'everything');
  t.equal(m.size, 0);
});

t.test('shedLru drops the least recently used entries', async (t) => {
  const c = new LRUCache<string, number>({ max: 100 });
  for (let i = 0; i < 100; i++) c.set(`k${i}`, i);
  c.get('k0');
  t.equal(shedLru(c, 0.5), 50);
  t.equal(c.get('k0'), 0, 'recently read: kept');
  t.equal(c.get('k1'), undefined);
  t.equal(c.get('k99'), 99);
});
