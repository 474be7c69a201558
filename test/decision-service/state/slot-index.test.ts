import t from 'tap';
import { SlotIndex, WAYS } from '../../../decision-service/src/state/slot-index.ts';

t.test('capacity is maxKeys rounded down to whole buckets', async (t) => {
  t.equal(new SlotIndex(100).capacity, 96);
  t.equal(new SlotIndex(5).capacity, 5, 'fewer keys than ways: one bucket of that many');
  t.throws(() => new SlotIndex(0), RangeError);
});

t.test('claim finds or creates; lookup never creates', async (t) => {
  const ix = new SlotIndex(64);
  t.equal(ix.lookup('a'), -1);
  const s = ix.claim('a');
  t.ok(ix.created);
  t.equal(ix.claim('a'), s);
  t.notOk(ix.created);
  t.equal(ix.lookup('a'), s);
  t.equal(ix.size, 1);
});

t.test('a full bucket evicts its least recently used key', async (t) => {
  const ix = new SlotIndex(WAYS); // one bucket
  for (let i = 0; i < WAYS; i++) ix.claim(`k${i}`);
  ix.claim('k0'); // k0 is now the most recent; k1 the least
  ix.claim('new');
  t.equal(ix.size, WAYS);
  t.not(ix.lookup('k0'), -1, 'recently used key kept');
  t.equal(ix.lookup('k1'), -1, 'least recently used key evicted');
  t.not(ix.lookup('new'), -1);
  const s = ix.lookup('k2');
  ix.touch(s);
  ix.claim('newer');
  t.not(ix.lookup('k2'), -1, 'touch counts as use');
  t.equal(ix.lookup('k3'), -1);
});

t.test('place moves entries into a smaller index keeping the most recent of each bucket', async (t) => {
  const big = new SlotIndex(4096);
  for (let i = 0; i < 4096; i++) big.claim(`k${i}`);
  const small = new SlotIndex(1024);
  let placed = 0;
  for (let s = 0; s < big.capacity; s++) if (big.stampOf(s) !== 0 && small.place(big, s) >= 0) placed++;
  t.equal(small.size, Math.min(placed, 1024));
  t.ok(small.size > 1000, `nearly full: ${small.size}`);
  let recent = 0;
  for (let i = 4096 - 256; i < 4096; i++) if (small.lookup(`k${i}`) >= 0) recent++;
  let old = 0;
  for (let i = 0; i < 256; i++) if (small.lookup(`k${i}`) >= 0) old++;
  t.ok(recent > 240 && old < 20, `newest 256 kept: ${recent}, oldest 256 kept: ${old}`);
});
