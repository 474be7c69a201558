// With VERDICT_REDIS_URL the service runs on the Redis store and shows its health in /metrics;
// a Redis outage shows as degraded while decisions keep coming.

import t from 'tap';
import { buildApp } from '../../../decision-service/src/app.ts';
import { parseEnv } from '../../../decision-service/src/config/env.ts';
import { createLogger } from '../../../decision-service/src/logger.ts';
import { startRedis } from '../../helpers/redis.ts';

t.test('VERDICT_REDIS_* are validated with the fix named', async (t) => {
  t.throws(() => parseEnv({ VERDICT_REDIS_URL: 'localhost:6379' }), /VERDICT_REDIS_URL=.*redis:\/\/host:port/);
  t.throws(() => parseEnv({ VERDICT_REDIS_CLUSTER_NODES: 'a,b' }), /VERDICT_REDIS_CLUSTER_NODES/);
  t.throws(() => parseEnv({ VERDICT_REDIS_FLUSH_MS: '1' }), /VERDICT_REDIS_FLUSH_MS/);
  t.equal(parseEnv({}).redis, undefined, 'no URL: the embedded store');
  t.ok(parseEnv({ VERDICT_REDIS_URL: 'redis://127.0.0.1:6379/0' }).redis);
});

t.test('Redis health in /metrics, decisions through an outage', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const built = buildApp(parseEnv({ VERDICT_POLICY_WATCH: '0', VERDICT_REDIS_URL: redis.url, VERDICT_REDIS_FLUSH_MS: '20', VERDICT_REDIS_REFRESH_MS: '20' }), { logger: createLogger('silent') });
  t.teardown(() => built.app.close());
  const decide = () => built.app.inject({ method: 'POST', url: '/v1/decide', payload: { client_ip: '198.51.100.9', method: 'GET', path: '/' } });
  const metric = async (name: string) => {
    const body = (await built.app.inject({ url: '/metrics' })).body;
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(body);
    return m ? Number(m[1]) : NaN;
  };
  const until = async (name: string, want: (v: number) => boolean) => {
    for (let i = 0; i < 200; i++) {
      if (want(await metric(name))) return true;
      await decide();
      await new Promise((r) => setTimeout(r, 25));
    }
    return false;
  };
  t.ok(await until('verdict_redis_connected', (v) => v === 1), 'connected');
  t.ok(await until('verdict_redis_flushes', (v) => v > 0), 'flushing');
  await redis.kill();
  t.ok(await until('verdict_redis_connected', (v) => v === 0), 'outage shows as degraded');
  for (let i = 0; i < 20; i++) t.equal((await decide()).statusCode, 200);
  t.ok((await metric('verdict_redis_flush_errors')) >= 0);
});
