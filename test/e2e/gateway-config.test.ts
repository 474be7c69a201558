// http-level configuration mistakes stop nginx at start-up with a message naming the option
// and the fix (config.lua); they never turn into silent defaults.
import t from 'tap';
import { startNginx } from '../../scripts/lib/nginx.ts';

const base = { upstream: '127.0.0.1:9', service: '127.0.0.1:9', locations: 'location / { return 204; }' };

const cases: Array<[string, Record<string, string | number | boolean>, RegExp, string?]> = [
  ['unknown option', { pool_sise: 3 }, /unknown option "pool_sise"; known options: service, hmac_key/],
  ['out-of-range integer', { pool_size: 0 }, /option "pool_size" must be an integer between 1 and 10000/],
  ['wrong type', { outcomes_enabled: 'yes' }, /option "outcomes_enabled" must be true or false/],
  ['bad service address', { service: 'localhost' }, /option "service" must be "ip:port"/],
  ['a URL for the service', { service: 'http://127.0.0.1:9600' }, /option "service" takes no URL scheme: write "ip:port"/],
  ['a host name no hosts file lists', { service: 'verdict-nowhere.invalid:9600' }, /names host "verdict-nowhere.invalid", which \/etc\/hosts does not list: write its IP address/],
  ['an invalid IPv4 address', { service: '127.0.0.300:9600' }, /has an invalid IPv4 address/],
  ['a non-loopback service without a secret', { service: 'frame:10.0.0.5:9401' }, /option "service" points at frame:10.0.0.5:9401, which is not loopback: set secret_file/],
  ['a short gateway secret', { secret: 'too-short' }, /option "secret" must hold at least 32 characters/],
  ['an unreadable secret file', { secret_file: '/nonexistent/verdict.secret' }, /option "secret_file" cannot be read/],
  ['a bad shed share', { shed_timeout_share: 2 }, /option "shed_timeout_share" must be a number between 0 and 1/],
  ['bad unix path', { service: 'unix:relative.sock' }, /option "service" must be "unix:\/absolute\/path.sock"/],
  ['short HMAC key', {}, /option "hmac_key" must be at least 16 characters/, 'short'],
];

for (const [name, init, message, hmacKey] of cases) {
  t.test(name, async (t) => {
    await t.rejects(startNginx({ ...base, init, hmacKey }), message);
  });
}

t.test('"localhost:port" is resolved once from /etc/hosts and works', async (t) => {
  const { startEchoUpstream } = await import('../helpers/servers.ts');
  const { startService } = await import('../helpers/service.ts');
  const upstream = await startEchoUpstream();
  const service = await startService();
  const n = await startNginx({
    upstream: `127.0.0.1:${upstream.port}`,
    service: `localhost:${service.port}`,
    locations: 'location / { set $verdict_budget_ms 1000; include verdict-location.conf; proxy_pass http://verdict_app; }',
  });
  t.teardown(async () => { await n.stop(); await service.stop(); await upstream.close(); });
  const r = await fetch(`${n.url}/internal/admin`);
  t.equal(r.status, 403, 'decided by the service at localhost');
});

t.test('a valid configuration starts', async (t) => {
  const n = await startNginx({ ...base, init: { service: 'unix:/run/verdict.sock', pool_size: 8, breaker_failures: 2 } });
  t.equal((await fetch(n.url)).status, 204);
  await n.reload();
  t.equal((await fetch(n.url)).status, 204, 'serves after a reload (init_by_lua ran again)');
  await n.stop();
});
