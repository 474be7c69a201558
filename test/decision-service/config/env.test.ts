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
  t.equal(c.socketMode, 0o660, 'sockets are for the owner and its group by default');
  t.equal(parseEnv({ VERDICT_SOCKET_MODE: '666' }).socketMode, 0o666);
  t.throws(() => parseEnv({ VERDICT_SOCKET_MODE: '0x1b6' }), /VERDICT_SOCKET_MODE="0x1b6": write an octal file mode such as 0660/);
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

t.test('unknown VERDICT_* variables are errors naming the closest valid one', async (t) => {
  t.throws(() => parseEnv({ VERDICT_LISTN: '127.0.0.1:9400' }), /VERDICT_LISTN: unknown variable; did you mean VERDICT_LISTEN\?/);
  t.throws(() => parseEnv({ VERDICT_POLICY_WACH: '0' }), /did you mean VERDICT_POLICY_WATCH\?/);
  t.throws(() => parseEnv({ VERDICT_DECIDE_BODY_LIMT: '1' }), /did you mean VERDICT_DECIDE_BODY_LIMIT\?/);
  t.throws(() => parseEnv({ VERDICT_SOMETHING_ELSE_ENTIRELY: '1' }), /unknown variable; see the table of variables in README.md/);
  t.throws(() => parseEnv({ VERDICT_BODY_LIMIT: '4194304' }), /VERDICT_BODY_LIMIT: removed; .*VERDICT_DECIDE_BODY_LIMIT and VERDICT_OUTCOMES_BODY_LIMIT/);
  try {
    parseEnv({ VERDICT_LISTN: 'x', VERDICT_LOG_LEVEL: 'loud' });
    t.fail('should throw');
  } catch (err) {
    const m = (err as Error).message;
    t.match(m, /VERDICT_LISTN: unknown variable/);
    t.match(m, /VERDICT_LOG_LEVEL="loud"/, 'with the other issues, all at once');
  }
  // The repository's tools read these; they reach the service through its inherited environment.
  t.doesNotThrow(() => parseEnv({ VERDICT_NGINX_BIN: '/usr/sbin/nginx', VERDICT_GATEWAY_VARIANTS: 'lua', VERDICT_DEMO_PORT: '8080', OTHER: 'x' }));
});

t.test('every VERDICT_* variable the repository passes to the service is known', async (t) => {
  const { readdirSync, readFileSync, statSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { envSchema, TOOL_VARIABLES } = await import('../../../decision-service/src/config/env.ts');
  const passed = new Map<string, string>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir)) {
      const p = join(dir, e);
      if (e === 'node_modules' || e === 'results' || e.startsWith('.') || p.endsWith('config/env.test.ts')) continue;
      if (statSync(p).isDirectory()) walk(p);
      // Set, not read: an object key (`VERDICT_LISTEN: addr`) or a shell assignment (`VERDICT_X=1`).
      else if (/\.(ts|mjs|js|sh)$/.test(e)) for (const m of readFileSync(p, 'utf8').matchAll(/\b(VERDICT_[A-Z0-9_]+)['"]?\s*[:=][^=]/g)) passed.set(m[1] as string, p);
    }
  };
  for (const d of ['scripts', 'bench', 'test']) walk(d);
  const unknown = [...passed].filter(([n]) => !(n in envSchema.shape) && !TOOL_VARIABLES.has(n)).map(([n, p]) => `${n} (${p})`);
  t.same(unknown, [], 'unknown to the service (add them to the schema or TOOL_VARIABLES)');
});

t.test('the overload limits have safe defaults and are validated', async (t) => {
  const c = parseEnv({});
  t.equal(c.decideBodyLimit, 65_536);
  t.equal(c.outcomesBodyLimit, 1_048_576);
  t.equal(c.maxOutcomesPerBatch, 2000);
  t.equal(c.maxConnections, 4096);
  t.equal(c.requestTimeoutMs, 10_000);
  t.equal(c.frameMaxInFlight, 256);
  t.equal(c.warmup, 5000);
  t.throws(() => parseEnv({ VERDICT_OUTCOMES_MAX_BATCH: '20000' }), /VERDICT_OUTCOMES_MAX_BATCH="20000".*outcome_batch_size/);
  t.throws(() => parseEnv({ VERDICT_MAX_CONNECTIONS: '0' }), /VERDICT_MAX_CONNECTIONS="0"/);
});
