import t from 'tap';
import { parseEnv } from '../../../decision-service/src/config/env.ts';

t.test('defaults give a working loopback service', async (t) => {
  const c = parseEnv({});
  t.same(c.listen, { kind: 'tcp', host: '127.0.0.1', port: 9400 });
  t.equal(c.policyFile, 'policies/default.yaml');
  t.equal(c.keepAliveTimeoutMs, 75_000);
  t.equal(c.identifierKeyEphemeral, true);
  t.equal(c.identifierKey.length, 32);
  t.ok(Object.isFrozen(c));
});

t.test('unix sockets and explicit values', async (t) => {
  const c = parseEnv({ VERDICT_LISTEN: 'unix:/run/verdict.sock', VERDICT_IDENTIFIER_KEY: 'k'.repeat(32), VERDICT_METRICS: '0' });
  t.same(c.listen, { kind: 'unix', path: '/run/verdict.sock' });
  t.equal(c.identifierKeyEphemeral, false);
  t.equal(c.metrics, false);
});

t.test('every bad variable is named with the fix', async (t) => {
  try {
    parseEnv({ VERDICT_LISTEN: '9400', VERDICT_LOG_LEVEL: 'loud', VERDICT_ADMIN_TOKEN: 'short', VERDICT_KEEPALIVE_TIMEOUT_MS: '5' });
    t.fail('should throw');
  } catch (err) {
    const m = (err as Error).message;
    t.match(m, /VERDICT_LISTEN="9400": write host:port/);
    t.match(m, /VERDICT_LOG_LEVEL="loud"/);
    t.match(m, /VERDICT_ADMIN_TOKEN=.*at least 16/);
    t.match(m, /VERDICT_KEEPALIVE_TIMEOUT_MS="5"/);
  }
  t.throws(() => parseEnv({ VERDICT_LISTEN: '127.0.0.1:70000' }), /port must be 1-65535/);
});

t.test('the store memory bound is configurable and validated', async (t) => {
  t.equal(parseEnv({}).storeMaxKeys, 500_000);
  t.equal(parseEnv({ VERDICT_STORE_MAX_KEYS: '100000' }).storeMaxKeys, 100_000);
  t.throws(() => parseEnv({ VERDICT_STORE_MAX_KEYS: '10' }), /VERDICT_STORE_MAX_KEYS="10".*memory bound/);
});
