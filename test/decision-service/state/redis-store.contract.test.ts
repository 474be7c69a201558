import t from 'tap';
import { RedisStore } from '../../../decision-service/src/state/redis-store.ts';
import { startRedis } from '../../helpers/redis.ts';
import { storeContract } from './store-contract.ts';

const redis = await startRedis();
t.teardown(() => redis.stop());
let n = 0;

storeContract(t, async ({ maxKeys }) => {
  // A fresh prefix per test: every test starts from an empty shared state.
  const store = new RedisStore({ url: redis.url, prefix: `contract${++n}:`, maxKeys, timers: false });
  await store.waitReady();
  return { store, sync: () => store.sync(), close: () => store.close() };
});
