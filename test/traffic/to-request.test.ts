import t from 'tap';
import { decideRequestSchema } from '../../decision-service/src/wire/schema.ts';
import { gatewayKeys, gatewaySubnet, GatewayCache } from '../../bench/traffic/gateway-cache.ts';
import { keyedHash as hmacSha1 } from '../../decision-service/src/gateway/keyed-hash.ts';
import { gatewayOptions, locationFor, DEMO_LOCATIONS, toDecideRequest } from '../../bench/traffic/to-request.ts';
import type { TrafficLine } from '../../bench/traffic/format.ts';

const opts = gatewayOptions({ hmacKey: 'k'.repeat(20) });
const base: TrafficLine = { ts: 1763800000000, ip: '198.51.100.7', method: 'GET', host: 'shop.example', path: '/', query: '', headers: [] };

t.test('a browser login: selected headers, ordered names, cookies, hashes, identifier', async (t) => {
  const line: TrafficLine = {
    ...base,
    method: 'POST',
    path: '/api/auth/login',
    headers: [
      ['host', 'shop.example'],
      ['user-agent', 'UA-1'],
      ['user-agent', 'UA-2'],
      ['content-type', 'application/json'],
      ['accept-language', 'zh-CN'],
      ['sec-fetch-site', 'same-origin'],
      ['cookie', 'a=1; sid=SESSION ; b'],
      ['authorization', 'Bearer TOKEN123'],
      ['x-api-key', 'APIKEY'],
      ['x-device-id', 'DEV-1'],
    ],
    body: { username: 'alice', phone: '13800000001', password: 'pw' },
  };
  const { mode, req } = toDecideRequest(line, 'r1', opts);
  t.equal(mode, 'inline');
  t.equal(req.route_tag, 'auth');
  t.equal(req.user_agent, 'UA-1', 'first occurrence wins');
  t.same(req.header_names, ['host', 'user-agent', 'user-agent', 'content-type', 'accept-language', 'sec-fetch-site', 'cookie', 'authorization', 'x-api-key', 'x-device-id']);
  t.same(req.cookie_names, ['a', 'sid', 'b']);
  t.same(req.session_hash, hmacSha1('k'.repeat(20), 'SESSION'));
  t.equal(req.has_authorization, true);
  t.equal(req.auth_scheme, 'bearer');
  t.same(req.token_hash, hmacSha1('k'.repeat(20), 'TOKEN123'), 'the bearer token wins over x-api-key');
  t.same(req.device_hash, hmacSha1('k'.repeat(20), 'DEV-1'));
  t.equal(req.identifier, 'alice', 'identity fields in order: username first');
  t.same(req.password_hash, hmacSha1('k'.repeat(20), 'pw'));
  t.equal(req.mode, 'INLINE');
  t.equal(req.http_version, '1.1');
  // the service accepts it as is (JSON form: hashes as base64)
  const json = JSON.parse(JSON.stringify(req, (_k, v: unknown) => (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' ? Buffer.from((v as { data: number[] }).data).toString('base64') : v)));
  const parsed = decideRequestSchema.parse(json);
  t.same(parsed, req);
});

t.test('x-api-key becomes the principal without Authorization; numbers and forms; non-identity routes', async (t) => {
  const api = toDecideRequest({ ...base, path: '/api/orders/5', headers: [['x-api-key', 'K']] }, 'r', opts).req;
  t.same(api.token_hash, hmacSha1('k'.repeat(20), 'K'));
  t.equal(api.has_authorization, false);
  const sms = toDecideRequest({ ...base, method: 'POST', path: '/api/sms/send', headers: [['content-type', 'application/x-www-form-urlencoded']], body: { username: 'x', phone: 13800000001 } }, 'r', opts).req;
  t.equal(sms.identifier, '13800000001', 'sms reads phone only; numbers as integers');
  t.equal(sms.route_tag, 'sms');
  const noCt = toDecideRequest({ ...base, method: 'POST', path: '/api/auth/login', body: { username: 'x', password: 'y' } }, 'r', opts).req;
  t.equal(noCt.identifier, '', 'no JSON/form content type: the body is not parsed');
  t.equal(noCt.password_hash, undefined);
  const promo = toDecideRequest({ ...base, method: 'POST', path: '/api/promo/claim', headers: [['content-type', 'application/json']], body: { username: 'x' } }, 'r', opts).req;
  t.equal(promo.identifier, '', 'not an identity location');
  const long = toDecideRequest({ ...base, query: 'q'.repeat(5000), headers: [['referer', 'r'.repeat(600)]] }, 'r', opts).req;
  t.equal(long.query.length, 1024);
  t.equal(long.referer.length, 512);
});

t.test('nginx location choice and modes of the demo layout', async (t) => {
  const mode = (p: string) => locationFor(p, DEMO_LOCATIONS)?.mode;
  t.equal(mode('/static/app.js'), 'off');
  t.equal(mode('/'), 'async');
  t.equal(mode('/promo'), 'async');
  t.equal(mode('/api/orders/1'), 'inline', 'regex beats the / prefix');
  t.equal(mode('/actuator/env'), 'inline');
  t.equal(mode('/api/v1/login'), 'inline');
  t.equal(locationFor('/api/v1/login', DEMO_LOCATIONS)?.routeTag, 'legacy-login');
  t.equal(mode('/api/v2/users'), 'inline', 'unknown API routes fall into location /api/ (inline)');
  t.equal(mode('/about'), 'async', 'pages fall into location / (async)');
});

t.test('gateway cache: keys as in CONTRACT.md, most severe wins, TTL on virtual time', async (t) => {
  t.equal(gatewaySubnet('198.51.100.7'), '198.51.100.0/24');
  t.equal(gatewaySubnet('2001:DB8:0:1:2::5'), '2001:db8:0:1::/64');
  t.equal(gatewaySubnet('2001:db8::1'), '2001:db8:0:0::/64');
  const { req } = toDecideRequest({ ...base, headers: [['cookie', 'sid=S'], ['x-device-id', 'D']] }, 'r', opts);
  t.same(gatewayKeys(req).map((k) => k.split(':')[0]), ['session', 'device', 'ip', 'subnet', 'client', 'target']);
  const c = new GatewayCache();
  t.equal(c.store({ action: 'BLOCK', score: 90, reasons: ['x'], cache_key: '', cache_ttl_s: 60 }, 0), false, 'no key: not cacheable');
  t.equal(c.store({ action: 'CHALLENGE', score: 70, reasons: ['c'], cache_key: 'subnet:198.51.100.0/24', cache_ttl_s: 60 }, 0), true);
  t.equal(c.store({ action: 'BLOCK', score: 90, reasons: ['b'], cache_key: 'ip:198.51.100.7', cache_ttl_s: 10 }, 0), true);
  t.equal(c.lookup(req, 5_000)?.action, 'BLOCK');
  t.equal(c.lookup(req, 10_000)?.action, 'CHALLENGE', 'the ip block expired, the subnet challenge lives');
  t.equal(c.lookup(req, 60_000), undefined);
});

t.test('the mapping is the reference builder\'s: the body as a client sends it, Lua\'s rules for repeats', async (t) => {
  const form = toDecideRequest({ ...base, method: 'POST', path: '/api/auth/login', headers: [['content-type', 'application/x-www-form-urlencoded']], body: { username: 'a b+c', password: 'p&q' } }, 'r', opts).req;
  t.equal(form.identifier, 'a b+c', 'urlencoded and decoded back as ngx.decode_args does');
  t.same(form.password_hash, hmacSha1('k'.repeat(20), 'p&q'));
  const devices = toDecideRequest({ ...base, headers: [['x-device-id', 'D1'], ['x-device-id', 'D2'], ['user-agent', ' UA ']] }, 'r', opts).req;
  t.same(devices.device_hash, hmacSha1('k'.repeat(20), 'D1'), 'the first device id counts');
  t.equal(devices.user_agent, 'UA', 'values trimmed as nginx hands them to Lua');
  const async = toDecideRequest({ ...base, path: '/about' }, 'r', opts);
  t.equal(async.req.mode, 'ASYNC');
  t.equal(async.req.budget_ms, 0);
});
