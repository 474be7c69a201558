// verdict.cache inside nginx: the keys it looks up must be the strings the service's cacheKeyFor
// and net/ip.ts subnetOf produce (or a verdict the service marks cacheable never hits), entries
// live for the TTL the service chose, the most severe verdict among a request's keys wins, and
// the "anything cached?" flags let a request skip the cache when nothing is live.
import t from 'tap';
import { createHash } from 'node:crypto';
import { subnetOf } from '../../decision-service/src/net/ip.ts';
import { cacheKeyFor } from '../../decision-service/src/engine/engine.ts';
import type { RequestFeatures } from '../../decision-service/src/engine/signal.ts';
import { startLuaNginx, type LuaNginx } from './harness.ts';

// A tiny interpreter, so each test is a list of steps and their answers: store a DecideResponse,
// look up a request's keys (hashes as hex, raw bytes in Lua), read cache.live(), sleep, and
// cache.subnet(ip).
const locations = `
    location = /steps {
        content_by_lua_block {
            local cjson = require "cjson.safe"
            local cache = require "verdict.cache"
            local function bytes(hex)
                return hex and (hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)) or nil
            end
            ngx.req.read_body()
            local out = {}
            for i, s in ipairs(cjson.decode(ngx.req.get_body_data())) do
                if s.op == "store" then
                    local ok, err = cache.store(s.resp)
                    out[i] = ok and "stored" or err
                elseif s.op == "lookup" then
                    local v = cache.lookup(s.ip, bytes(s.session), bytes(s.token), bytes(s.device), s.path, s.query)
                    out[i] = v or cjson.null
                elseif s.op == "live" then
                    local any, by_header = cache.live()
                    out[i] = { any, by_header }
                elseif s.op == "subnet" then
                    out[i] = cache.subnet(s.ip) or cjson.null
                elseif s.op == "sleep" then
                    ngx.sleep(s.s)
                    ngx.update_time()
                    out[i] = "slept"
                end
            end
            ngx.print(cjson.encode(out))
        }
    }`;

let lua: LuaNginx;
t.before(async () => {
  lua = await startLuaNginx(t, { locations, init: { outcomes_enabled: false } });
});

const hash = (s: string) => createHash('sha1').update(s).digest(); // 20 bytes, like the gateway's HMAC-SHA1
const session = hash('session'), token = hash('token'), device = hash('device');

/** The service's key for a client: the same function that sets DecideResponse.cache_key. */
function serviceKey(type: 'ip' | 'subnet' | 'device' | 'session' | 'principal', ip: string): string {
  const f = { ip, subnet: subnetOf(ip), req: { session_hash: session, token_hash: token, device_hash: device } };
  return cacheKeyFor(type, f as unknown as RequestFeatures);
}

const store = (cache_key: string, action: string, ttl = 60, score = 0, reasons: string[] = []) =>
  ({ op: 'store', resp: { cache_key, cache_ttl_s: ttl, action, score, reasons } });
const lookup = (ip: string | undefined, h: { session?: Buffer; token?: Buffer; device?: Buffer; path?: string; query?: string } = {}) =>
  ({ op: 'lookup', ip, session: h.session?.toString('hex'), token: h.token?.toString('hex'), device: h.device?.toString('hex'), path: h.path, query: h.query });

interface Hit { action: string; score: number; reasons: string[]; cache_key: string }

// first: it needs a cache in which nothing has been stored yet
t.test('an entry lives for its TTL; the live flags follow it, by key type', async (t) => {
  const r = await lua.post<unknown[]>('/steps', [
    { op: 'live' },
    store(serviceKey('device', '1.2.3.4'), 'BLOCK', 1),
    { op: 'live' },
    lookup(undefined, { device }),
    { op: 'sleep', s: 1.1 },
    lookup(undefined, { device }),
    { op: 'live' },
    store(serviceKey('ip', '1.2.3.4'), 'BLOCK', 1),
    { op: 'live' },
  ]);
  t.same(r[0], [false, false], 'empty cache: nothing to look up');
  t.equal(r[1], 'stored');
  t.same(r[2], [true, true], 'a device entry: live, and it needs the request headers hashed');
  t.match(r[3], { action: 'BLOCK', cache_key: serviceKey('device', '1.2.3.4') }, 'hit within the TTL');
  t.equal(r[5], null, 'gone after the TTL');
  t.same(r[6], [false, false], 'expired: the request skips the cache again');
  t.same(r[8], [true, false], 'an ip entry: live, no header hashing needed');
});

t.test('cache.subnet equals net/ip.ts subnetOf for IPv4 and IPv6 forms', async (t) => {
  const ips = [
    '1.2.3.4', '10.0.0.255', '192.168.1.1', '255.255.255.255', '0.0.0.0',
    '2001:db8::1', '2001:0db8:0000:0001:0000:0000:0000:0001', '2001:DB8:0:1::5', 'fe80::1', '::1', '::',
    '2001:db8:85a3:8d3:1319:8a2e:370:7348', '2001:db8:0:0:1::', '::ffff:1.2.3.4', '2001:db8::',
    '2400:cb00:2048:1::c629:d7a2', 'fe80::1%eth0', '64:ff9b::192.0.2.33',
  ];
  const got = await lua.post<Array<string | null>>('/steps', ips.map((ip) => ({ op: 'subnet', ip })));
  ips.forEach((ip, i) => {
    const want = subnetOf(ip);
    // the gateway answers nil where the service echoes the address back (not a subnet it keys)
    if (want === ip) t.equal(got[i], null, `${ip}: no subnet key`);
    else t.equal(got[i], want, `${ip} -> ${want}`);
  });
});

t.test('a request finds what the service stored under each key type', async (t) => {
  const v4 = '203.0.113.9', v6 = '2001:db8:0:1::5';
  const cases: Array<[string, ReturnType<typeof lookup>, ReturnType<typeof lookup>]> = [
    // key the service stored, a request that must hit it, a request that must not
    [serviceKey('ip', v4), lookup(v4), lookup('203.0.113.10')],
    [serviceKey('subnet', v4), lookup('203.0.113.200'), lookup('203.0.114.9')],
    [serviceKey('subnet', v6), lookup('2001:db8:0:1:ffff::1'), lookup('2001:db8:0:2::5')],
    [serviceKey('session', v4), lookup(undefined, { session }), lookup(undefined, { session: hash('other') })],
    [serviceKey('principal', v4), lookup(undefined, { token }), lookup(undefined, { token: hash('other') })],
    [serviceKey('device', v4), lookup(undefined, { device }), lookup(undefined, { device: hash('other') })],
  ];
  for (const [key, hit, miss] of cases) {
    const r = await lua.post<[string, Hit | null, Hit | null]>('/steps', [store(key, 'CHALLENGE', 60, 70, ['a.b', 'c.d']), hit, miss]);
    t.equal(r[0], 'stored', `${key}: stored`);
    t.same(r[1], { action: 'CHALLENGE', score: 70, reasons: ['a.b', 'c.d'], cache_key: key }, `${key}: hit`);
    t.equal(r[2], null, `${key}: another client misses`);
  }
});

t.test('a probed URL (target key) is refused for whoever asks for exactly it', async (t) => {
  const target = (path: string, query: string) =>
    cacheKeyFor('target', { req: { path, query } } as unknown as RequestFeatures);
  const r = await lua.post<Array<Hit | string | null>>('/steps', [
    store(target('/.git/config', ''), 'BLOCK', 60, 100, ['probe.sensitive_path']),
    store(target('/', "q=<script>alert(1)</script>"), 'BLOCK', 60, 90, ['probe.injection']),
    { op: 'live' },
    lookup('192.0.2.50', { path: '/.git/config' }),
    lookup('198.51.100.51', { path: '/.git/config', query: '' }),
    lookup('192.0.2.50', { path: '/.git/config', query: 'a=1' }),
    lookup('192.0.2.50', { path: '/', query: "q=<script>alert(1)</script>" }),
    lookup('192.0.2.50', { path: '/' }),
    lookup('192.0.2.50', { path: '/', query: 'q=shoes' }),
  ]);
  t.match(target('/.git/config', ''), /^target:[A-Za-z0-9+/]{27}=$/, 'a hash: no raw URL in any record of it');
  t.equal(r[0], 'stored');
  t.equal((r[2] as unknown as boolean[])[0], true, 'a target entry: something live to look up');
  t.match(r[3], { action: 'BLOCK', cache_key: target('/.git/config', '') }, 'any address');
  t.match(r[4], { action: 'BLOCK' }, 'an empty query is no query');
  t.equal(r[5], null, 'another query is another URL');
  t.match(r[6], { action: 'BLOCK', reasons: ['probe.injection'] }, 'path and query');
  t.equal(r[7], null, 'the home page itself is not refused');
  t.equal(r[8], null);
});

t.test('an IPv6 key is stored lower-case, as nginx writes $remote_addr', async (t) => {
  const r = await lua.post<unknown[]>('/steps', [store('ip:2001:DB8::AB', 'BLOCK'), lookup('2001:db8::ab')]);
  t.match(r[1], { action: 'BLOCK', cache_key: 'ip:2001:db8::ab' });
});

t.test('the most severe verdict among the request\'s keys wins', async (t) => {
  const ip = '198.51.100.7';
  const s2 = hash('severity-session'), d2 = hash('severity-device');
  const f = { ip, subnet: subnetOf(ip), req: { session_hash: s2, device_hash: d2 } } as unknown as RequestFeatures;
  const r = await lua.post<Array<Hit | string | null>>('/steps', [
    store(cacheKeyFor('session', f), 'TAG'),
    store(cacheKeyFor('ip', f), 'ALLOW'),
    lookup(ip, { session: s2 }),
    store(cacheKeyFor('subnet', f), 'BLOCK'),
    store(cacheKeyFor('device', f), 'CHALLENGE'),
    lookup(ip, { session: s2, device: d2 }),
    lookup(ip, { session: s2 }),
    lookup('198.51.100.8', { device: d2 }),
  ]);
  t.match(r[2], { action: 'TAG', cache_key: cacheKeyFor('session', f) }, 'TAG over ALLOW');
  t.match(r[5], { action: 'BLOCK', cache_key: cacheKeyFor('subnet', f) }, 'BLOCK over CHALLENGE, TAG and ALLOW');
  t.match(r[7], { action: 'BLOCK' }, 'a neighbour in the subnet is blocked too');
});

t.test('what is not cacheable is refused, and never found', async (t) => {
  const r = await lua.post<unknown[]>('/steps', [
    store('ip:192.0.2.1', 'BLOCK', 0),
    store('', 'BLOCK'),
    store('user:alice', 'BLOCK'),
    store('ip:', 'BLOCK'),
    store('IP:192.0.2.2', 'BLOCK'),
    lookup('192.0.2.1'),
    lookup('192.0.2.2'),
  ]);
  t.same(r, ['not cacheable', 'not cacheable', 'not cacheable', 'not cacheable', 'not cacheable', null, null]);
});
