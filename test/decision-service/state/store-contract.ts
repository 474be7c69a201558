// The Store contract: what every implementation (embedded, Redis) must answer, whatever it does
// in the background. `sync` runs between steps (a no-op for the embedded store; flush + pull for
// Redis), so a store that double counts its own flushed writes fails here.

import type { Test } from 'tap';
import { hash32 } from '../../../decision-service/src/state/distinct.ts';
import type { Store } from '../../../decision-service/src/state/store.ts';

export interface StoreHarness {
  readonly store: Store;
  sync(): Promise<void>;
  close(): Promise<void>;
}

export type MakeStore = (opts: { maxKeys: number }) => Promise<StoreHarness>;

export function storeContract(t: Test, make: MakeStore): void {
  const W = 60_000;
  const T0 = 1_763_800_020_000 - (1_763_800_020_000 % W); // a bucket boundary

  const each = (name: string, fn: (t: Test, h: StoreHarness) => Promise<void>) =>
    t.test(name, async (t) => {
      const h = await make({ maxKeys: 1000 });
      t.teardown(() => h.close());
      await fn(t, h);
    });

  each('sliding window counts, decays and forgets', async (t, { store: s, sync }) => {
    t.equal(s.incr('c:k', W, T0), 1);
    await sync();
    t.equal(s.incr('c:k', W, T0 + 1000), 2);
    await sync();
    t.equal(s.incr('c:k', W, T0 + 59_000), 3);
    await sync();
    t.equal(s.count('c:k', W, T0 + 59_500), 3, 'no double counting after a sync');
    t.equal(s.count('c:k', W, T0 + 90_000), 1.5, 'half-way through the next window the previous weighs half');
    t.equal(s.incr('c:k', W, T0 + 90_000), 2.5);
    await sync();
    t.equal(s.count('c:k', W, T0 + 90_000), 2.5);
    t.equal(s.count('c:k', W, T0 + 200_000), 0, 'two windows later nothing is left');
    t.equal(s.count('c:missing', W, T0), 0);
    t.equal(s.incr('c:by', W, T0, 5), 5, 'incr by n');
    await sync();
    t.equal(s.incr('c:by', W, T0, 2), 7);
  });

  each('counters of different keys are independent', async (t, { store: s, sync }) => {
    for (let i = 0; i < 10; i++) s.incr('c:a', W, T0 + i);
    s.incr('c:b', W, T0);
    await sync();
    t.equal(s.count('c:a', W, T0 + 10), 10);
    t.equal(s.count('c:b', W, T0 + 10), 1);
  });

  each('distinct counts are exact while small and union both buckets', async (t, { store: s, sync }) => {
    for (let i = 0; i < 10; i++) s.addDistinct('d:k', hash32(`id${i}`), W, T0 + i);
    t.equal(s.addDistinct('d:k', hash32('id3'), W, T0 + 20), 10, 'a repeat is not counted');
    await sync();
    t.equal(s.countDistinct('d:k', W, T0 + 30), 10, 'no double counting after a sync');
    t.equal(s.addDistinct('d:k', hash32('id10'), W, T0 + W + 1), 11, 'next bucket: union with the previous');
    await sync();
    t.equal(s.addDistinct('d:k', hash32('id0'), W, T0 + W + 2), 11, 'member of the previous bucket');
    t.equal(s.countDistinct('d:k', W, T0 + 3 * W), 0, 'forgotten two windows later');
    t.equal(s.countDistinct('d:missing', W, T0), 0);
  });

  each('distinct counts stay within sketch error when large', async (t, { store: s, sync }) => {
    let last = 0;
    for (let i = 0; i < 2000; i++) {
      last = s.addDistinct('d:big', hash32(`member-${i}`), W, T0 + i);
      if (i % 500 === 0) await sync();
    }
    await sync();
    const n = s.countDistinct('d:big', W, T0 + 2001);
    t.ok(Math.abs(n - 2000) / 2000 < 0.3, `estimate ${n} (last add ${last}) within 30% of 2000`);
    for (let i = 0; i < 2000; i++) s.addDistinct('d:big', hash32(`member-${i}`), W, T0 + 3000);
    await sync();
    t.equal(s.countDistinct('d:big', W, T0 + 3001), n, 'repeats do not move the estimate');
  });

  each('marks hold until their expiry and only grow', async (t, { store: s, sync }) => {
    t.notOk(s.marked('m:k', T0));
    s.mark('m:k', T0, 10_000);
    t.ok(s.marked('m:k', T0 + 1));
    await sync();
    t.ok(s.marked('m:k', T0 + 9_999));
    t.notOk(s.marked('m:k', T0 + 10_000));
    s.mark('m:k', T0, 1000);
    await sync();
    t.ok(s.marked('m:k', T0 + 5000), 'a shorter mark does not shorten a longer one');
  });

  each('arrivals report inter-arrival statistics over the last 8 gaps', async (t, { store: s, sync }) => {
    t.same(s.arrival('a:k', T0), { n: 0, meanMs: 0, cv: 1 });
    await sync();
    let st = s.arrival('a:k', T0 + 1000);
    t.equal(st.n, 1);
    t.equal(st.meanMs, 1000);
    for (let i = 2; i <= 12; i++) {
      st = s.arrival('a:k', T0 + i * 1000);
      if (i % 4 === 0) await sync();
    }
    t.equal(st.n, 8, 'capped at 8 gaps');
    t.equal(st.meanMs, 1000);
    t.equal(st.cv, 0, 'machine-regular');
    const irregular = [0, 100, 2000, 2300, 6000, 6100, 9000];
    let r = s.arrival('a:h', T0);
    for (const g of irregular.slice(1)) r = s.arrival('a:h', T0 + g);
    t.ok(r.cv > 0.5, `irregular cv ${r.cv}`);
  });

  each('swap remembers a number until its ttl', async (t, { store: s, sync }) => {
    t.equal(s.swap('v:k', 5, T0, 10_000), undefined);
    await sync();
    t.equal(s.swap('v:k', 7, T0 + 1000, 10_000), 5);
    await sync();
    t.equal(s.swap('v:k', 9, T0 + 2000, 10_000), 7);
    t.equal(s.swap('v:k', 1, T0 + 50_000, 10_000), undefined, 'expired');
  });

  each('size counts the keys held', async (t, { store: s }) => {
    t.equal(s.size(), 0);
    s.incr('c:x', W, T0);
    s.addDistinct('d:x', 1, W, T0);
    s.mark('m:x', T0, 1000);
    s.arrival('a:x', T0);
    s.swap('v:x', 1, T0, 1000);
    t.equal(s.size(), 5);
  });

  t.test('the store is bounded by maxKeys (LRU)', async (t) => {
    const h = await make({ maxKeys: 50 });
    t.teardown(() => h.close());
    const s = h.store;
    for (let i = 0; i < 5000; i++) s.incr(`c:k${i}`, 1000, T0);
    t.ok(s.size() <= 50 && s.size() >= 25, `size ${s.size()}`);
    t.equal(s.count('c:k4999', 1000, T0), 1);
  });
}
