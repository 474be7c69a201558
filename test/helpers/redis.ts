// Tests start a real redis-server (free port, temp dir, no persistence): scripts/lib/redis-server.ts.
export { startRedis, type RedisServer } from '../../scripts/lib/redis-server.ts';
