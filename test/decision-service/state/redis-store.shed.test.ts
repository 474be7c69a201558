// RedisStore under memory pressure: the local copies of the least recently used keys go; the
// shared state stays in Redis and is read back on the next use.
import t from 'tap';
import { RedisStore } from '../../../decision-service/src/state/redis-store.ts';
import { startRedis } from '../../helpers/redis.ts';

const redis = await startRedis();
t.teardown(() => redis.stop());

t.test('shed drops local entries; counts come back from Redis', async (t) => {
  const store = new RedisStore({ url: redis.url, prefix: 'shed1:', maxKeys: 1000, timers: false });
  t.teardown(() => store.close());
  await store.waitReady();
  const W = 60_000;
  const T0 = 1_763_800_020_000 - (1_763_800_020_000 % W);
  for (let i = 0; i < 100; i++) store.incr(`c:k${i}`, W, T0, i + 1);
  store.mark('m:k', T0, W);
  await store.sync();
  const before = store.size();
  const dropped = store.shed(0.5);
  t.equal(dropped, 50, 'half of the 100 counters; the single mark stays (floor of 0.5)');
  t.equal(store.size(), before - dropped);
  t.equal(store.count('c:k0', W, T0 + 1), 0, 'a dropped key reads local-only until the next pull');
  await store.sync();
  t.equal(store.count('c:k0', W, T0 + 1), 1, 'then from Redis again');
  t.equal(store.count('c:k99', W, T0 + 1), 100, 'a kept key is unchanged');
});
