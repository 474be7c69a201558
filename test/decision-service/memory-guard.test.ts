// The process memory bound: no timers here; the guard is driven sample by sample with a fake RSS.
import t from 'tap';
import { defaultMemoryLimitBytes, MemoryGuard, memoryLimitBytes, type ShedEvent } from '../../decision-service/src/memory-guard.ts';
import { MemoryStore } from '../../decision-service/src/state/memory-store.ts';

const MiB = 1024 * 1024;

function setup(opts: { settleSamples?: number } = {}) {
  let rss = 100 * MiB;
  const calls: number[] = [];
  const events: ShedEvent[] = [];
  const guard = new MemoryGuard({
    limitBytes: 200 * MiB,
    heapLimitBytes: 1000 * MiB,
    targets: { store: { shed: (f) => { calls.push(f); return 10; } }, engine: { shed: () => 3 } },
    rss: () => rss,
    onShed: (e) => events.push(e),
    ...opts,
  });
  return { guard, calls, events, setRss: (mb: number) => { rss = mb * MiB; } };
}

t.test('below the limit nothing is shed', async (t) => {
  const { guard, calls } = setup();
  for (let i = 0; i < 5; i++) t.notOk(guard.check());
  t.same(calls, []);
});

t.test('above the limit every target sheds a quarter, and the shed is reported', async (t) => {
  const { guard, calls, events, setRss } = setup();
  setRss(250);
  t.ok(guard.check());
  t.same(calls, [0.25]);
  t.equal(guard.sheds, 1);
  t.match(events[0], { reason: 'rss', rssBytes: 250 * MiB, limitBytes: 200 * MiB, fraction: 0.25, dropped: { store: 10, engine: 3 } });
});

t.test('after a shed the guard waits for a full GC (or settleSamples) before judging again', async (t) => {
  const { guard, calls, setRss } = setup({ settleSamples: 3 });
  setRss(250);
  t.ok(guard.check());
  t.notOk(guard.check());
  t.notOk(guard.check());
  t.notOk(guard.check());
  t.ok(guard.check(), 'still above after settling: sheds again');
  t.equal(calls.length, 2);
  guard.fullGc(10 * MiB);
  setRss(150);
  t.notOk(guard.check(), 'the GC freed it: below the limit');
  setRss(250);
  t.ok(guard.check(), 'a full GC ends the wait at once');
});

t.test('a live heap near V8\'s limit sheds even under the RSS limit', async (t) => {
  const { guard, events } = setup();
  guard.fullGc(950 * MiB);
  t.ok(guard.check());
  t.equal(events[0]?.reason, 'heap');
  t.equal(events[0]?.heapBytes, 950 * MiB);
  t.notOk(guard.check(), 'settling');
});

t.test('with a real store: RSS over the limit shrinks the tables', async (t) => {
  const store = new MemoryStore({ maxKeys: 40_000 });
  for (let i = 0; i < 40_000; i++) store.incr(`k${i}`, 60_000, 0);
  const guard = new MemoryGuard({ limitBytes: 1, targets: { store }, rss: () => 2 });
  t.ok(guard.check());
  t.equal(store.capacity(), 30_000);
  t.ok(store.size() <= 30_000);
});

t.test('limits: explicit MB, or 85% of the container or machine memory', async (t) => {
  t.equal(memoryLimitBytes(512), 512 * MiB);
  t.equal(memoryLimitBytes(undefined), defaultMemoryLimitBytes());
  t.equal(memoryLimitBytes(0), defaultMemoryLimitBytes());
  t.ok(defaultMemoryLimitBytes() > 0);
  t.throws(() => new MemoryGuard({ limitBytes: 0, targets: {} }), RangeError);
});

t.test('start and stop: the sampling timer never keeps the process alive', async (t) => {
  const guard = new MemoryGuard({ limitBytes: 1e15, targets: {}, intervalMs: 5 }).start();
  t.equal(guard.start(), guard, 'idempotent');
  await new Promise((r) => setTimeout(r, 20));
  guard.stop();
  t.equal(guard.sheds, 0);
});
