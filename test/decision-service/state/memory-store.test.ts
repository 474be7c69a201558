import t from 'tap';
import { MemoryStore } from '../../../decision-service/src/state/memory-store.ts';

t.test('sliding window counts, decays and forgets', async (t) => {
  const s = new MemoryStore({ maxKeys: 100 });
  const W = 60_000;
  t.equal(s.incr('k', W, 0), 1);
  t.equal(s.incr('k', W, 1000), 2);
  t.equal(s.incr('k', W, 59_000), 3);
  // Half-way through the next window, the previous window weighs half.
  t.equal(s.count('k', W, 90_000), 1.5);
  t.equal(s.incr('k', W, 90_000), 2.5);
  t.equal(s.count('k', W, 200_000), 0, 'two windows later nothing is left');
  t.equal(s.count('missing', W, 0), 0);
});

t.test('the store is bounded by maxKeys (LRU)', async (t) => {
  const s = new MemoryStore({ maxKeys: 50 });
  for (let i = 0; i < 10_000; i++) s.incr(`k${i}`, 1000, 0);
  t.ok(s.size() <= 50 && s.size() >= 25, `size ${s.size()}`);
  t.equal(s.count('k9999', 1000, 0), 1);
  t.equal(s.count('k0', 1000, 0), 0);
});
