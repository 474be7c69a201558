// http-level configuration mistakes stop nginx at start-up with a message naming the option
// and the fix (config.lua); they never turn into silent defaults.
import t from 'tap';
import { startNginx } from '../../scripts/lib/nginx.ts';

const base = { upstream: '127.0.0.1:9', service: '127.0.0.1:9', locations: 'location / { return 204; }' };

const cases: Array<[string, Record<string, string | number | boolean>, RegExp, string?]> = [
  ['unknown option', { pool_sise: 3 }, /unknown option "pool_sise"; known options: service, hmac_key/],
  ['out-of-range integer', { pool_size: 0 }, /option "pool_size" must be an integer between 1 and 10000/],
  ['wrong type', { outcomes_enabled: 'yes' }, /option "outcomes_enabled" must be true or false/],
  ['bad service address', { service: 'localhost' }, /option "service" must be "host:port"/],
  ['bad unix path', { service: 'unix:relative.sock' }, /option "service" must be "unix:\/absolute\/path.sock"/],
  ['short HMAC key', {}, /option "hmac_key" must be at least 16 characters/, 'short'],
];

for (const [name, init, message, hmacKey] of cases) {
  t.test(name, async (t) => {
    await t.rejects(startNginx({ ...base, init, hmacKey }), message);
  });
}

t.test('a valid configuration starts', async (t) => {
  const n = await startNginx({ ...base, init: { service: 'unix:/run/verdict.sock', pool_size: 8, breaker_failures: 2 } });
  t.equal((await fetch(n.url)).status, 204);
  await n.reload();
  t.equal((await fetch(n.url)).status, 204, 'serves after a reload (init_by_lua ran again)');
  await n.stop();
});
