// The reference request builder (gateway/request-builder.ts) against request.lua's rules. The
// shared vectors of gateway-plugin/spec/ hold it, Lua and njs to the same answers; these cases
// pin the rules one by one.
import t from 'tap';
import { decodeFormArgs } from '../../../decision-service/src/gateway/form-args.ts';
import { luaIntegerText } from '../../../decision-service/src/gateway/identity.ts';
import { keyedHash } from '../../../decision-service/src/gateway/keyed-hash.ts';
import { buildDecideRequest, type RawRequest } from '../../../decision-service/src/gateway/request-builder.ts';
import { GATEWAY_DEFAULTS, gatewaySettings, withLocationOptions, type GatewaySettings } from '../../../decision-service/src/gateway/settings.ts';
import { decideRequestSchema } from '../../../decision-service/src/wire/schema.ts';

const KEY = 'verdict-test-hmac-key-0123456789';
const h = (v: string | Uint8Array) => keyedHash(KEY, v);
const base = gatewaySettings(KEY);
const LOGIN = gatewaySettings(KEY, { routeTag: 'login', identityFields: ['username', 'phone', 'email'] });

function raw(over: Partial<RawRequest> = {}): RawRequest {
  return {
    requestId: 'r1', tsMs: 1_800_000_000_000, clientIp: '198.51.100.7', method: 'GET', host: 'shop.example',
    path: '/', query: '', httpVersion: '1.1', headers: [], gatewayId: 'gw/1/abc', ...over,
  };
}

function post(body: string, contentType: string, settings: GatewaySettings = LOGIN, over: Partial<RawRequest> = {}) {
  return buildDecideRequest(raw({
    method: 'POST', path: '/api/auth/login', body,
    headers: [['Content-Type', contentType], ['Content-Length', String(Buffer.byteLength(body))]], ...over,
  }), settings);
}

t.test('the request line, the settings and every field present', async (t) => {
  const req = buildDecideRequest(raw({ query: 'a=1', tlsProtocol: 'TLSv1.3', tlsCipher: 'TLS_AES_128_GCM_SHA256' }), { ...base, routeTag: 'home', budgetMs: 30 });
  t.match(req, {
    request_id: 'r1', ts_ms: 1_800_000_000_000, client_ip: '198.51.100.7', method: 'GET', host: 'shop.example', path: '/',
    query: 'a=1', route_tag: 'home', http_version: '1.1', tls_protocol: 'TLSv1.3', tls_cipher: 'TLS_AES_128_GCM_SHA256',
    user_agent: '', header_names: [], cookie_names: [], has_authorization: false, auth_scheme: '', identifier: '',
    mode: 'INLINE', gateway_id: 'gw/1/abc', budget_ms: 30,
  });
  t.equal(req.session_hash, undefined);
  t.same(decideRequestSchema.parse(req), req, 'the service accepts it as built');
  t.equal(buildDecideRequest(raw(), { ...base, mode: 'monitor' }).mode, 'MONITOR');
  t.equal(buildDecideRequest(raw(), { ...base, mode: 'monitor', budgetMs: 40 }).budget_ms, 40, 'monitor calls wait too');
  const async = buildDecideRequest(raw(), { ...base, mode: 'async' });
  t.equal(async.mode, 'ASYNC');
  t.equal(async.budget_ms, 0, 'async metadata goes out from the log phase: no budget');
  t.equal(buildDecideRequest(raw({ query: 'q'.repeat(2000) }), base).query.length, 1024, 'query_max_bytes');
  t.equal(buildDecideRequest(raw({ query: 'q'.repeat(2000) }), { ...base, queryMaxBytes: 10 }).query, 'q'.repeat(10));
});

t.test('header names: lower-case (ASCII only), arrival order, duplicates kept, at most header_names_max', async (t) => {
  const headers = Array.from({ length: 80 }, (_, i) => [`X-H${i}`, 'v'] as [string, string]);
  const req = buildDecideRequest(raw({ headers: [['Host', 'a'], ['HOST', 'b'], ['X-Ünïcode', 'v'], ...headers] }), base);
  t.equal(req.header_names.length, 64, 'the gateway keeps 64');
  t.same(req.header_names.slice(0, 4), ['host', 'host', 'x-Ünïcode', 'x-h0'], 'string.lower leaves non-ASCII letters alone');
  t.equal(buildDecideRequest(raw({ headers }), { ...base, headerNamesMax: 3 }).header_names.length, 3);
  const h2 = buildDecideRequest(raw({ httpVersion: '2.0', headers: [['cookie', 'a=1'], ['accept', 'x'], ['cookie', 'b=2']] }), base);
  t.same(h2.header_names, ['cookie', 'accept'], 'HTTP/2: one name per header (Lua reads a table)');
  t.same(h2.cookie_names, ['a', 'b'], 'with every value');
});

t.test('selected headers: first occurrence, trimmed, capped at 512 bytes', async (t) => {
  const req = buildDecideRequest(raw({
    headers: [
      ['User-Agent', '  UA-1 \t'], ['user-agent', 'UA-2'], ['Accept', ''], ['accept', 'late'],
      ['Referer', 'r'.repeat(600)], ['Sec-CH-UA', `${'x'.repeat(511)}é`], ['Sec-Fetch-User', '?1'],
    ],
  }), base);
  t.equal(req.user_agent, 'UA-1');
  t.equal(req.accept, '', 'an empty first value still wins');
  t.equal(req.referer.length, 512);
  t.equal(req.sec_ch_ua, `${'x'.repeat(511)}\ufffd`, 'the cap cuts bytes: half a UTF-8 character decodes as U+FFFD');
  t.equal(req.sec_fetch_user, '?1');
});

t.test('cookies: names only, the session cookie hashed (first non-empty), name from settings', async (t) => {
  const req = buildDecideRequest(raw({ headers: [['Cookie', 'a=1; sid= ; b'], ['Cookie', ';; sid = S1 ;sid=S2']] }), base);
  t.same(req.cookie_names, ['a', 'sid', 'b', 'sid', 'sid']);
  t.same(req.session_hash, h('S1'), 'trimmed value; an empty sid is skipped');
  const custom = buildDecideRequest(raw({ headers: [['Cookie', 'sid=S; SESSIONID=X']] }), { ...base, sessionCookie: 'SESSIONID' });
  t.same(custom.session_hash, h('X'), 'session_cookie setting');
  t.equal(buildDecideRequest(raw({ headers: [['Cookie', 'sid']] }), base).session_hash, undefined, 'no value, no hash');
});

t.test('credentials: Authorization scheme and token, API key as the fallback principal, device id', async (t) => {
  const bearer = buildDecideRequest(raw({ headers: [['Authorization', 'Bearer  TOK'], ['X-Api-Key', 'K']] }), base);
  t.equal(bearer.has_authorization, true);
  t.equal(bearer.auth_scheme, 'bearer');
  t.same(bearer.token_hash, h('TOK'), 'the bearer token wins over the API key');
  const schemeOnly = buildDecideRequest(raw({ headers: [['Authorization', 'Negotiate'], ['X-Api-Key', 'K1'], ['x-api-key', 'K2']] }), base);
  t.equal(schemeOnly.auth_scheme, 'negotiate');
  t.same(schemeOnly.token_hash, h('K2'), 'no credential: the last API key counts');
  const empty = buildDecideRequest(raw({ headers: [['Authorization', '']] }), base);
  t.equal(empty.has_authorization, true);
  t.equal(empty.auth_scheme, '');
  const devices = buildDecideRequest(raw({ headers: [['X-Device-Id', ''], ['X-Device-Id', 'D1'], ['X-Device-Id', 'D2']] }), base);
  t.same(devices.device_hash, h('D1'), 'the first non-empty device id');
  const custom = buildDecideRequest(raw({ headers: [['X-Device-Id', 'D'], ['X-Dev', 'MINE'], ['X-Key', 'KK']] }), { ...base, deviceHeader: 'x-dev', apiKeyHeader: 'x-key' });
  t.same(custom.device_hash, h('MINE'), 'device_header setting');
  t.same(custom.token_hash, h('KK'), 'api_key_header setting');
  const selectedFirst = buildDecideRequest(raw({ headers: [['User-Agent', 'UA']] }), { ...base, deviceHeader: 'user-agent' });
  t.equal(selectedFirst.device_hash, undefined, 'a selected header is never read as the device id');
});

t.test('bytes: strings from node\'s HTTP parser (latin1) are hashed and decoded as the bytes they stand for', async (t) => {
  const utf8 = Buffer.from('é-ü').toString('latin1'); // what node hands over for these UTF-8 bytes
  const req = buildDecideRequest(raw({ encoding: 'latin1', path: `/${utf8}`, headers: [['User-Agent', utf8], ['X-Device-Id', utf8], ['Cookie', `${utf8}=1`]] }), base);
  t.equal(req.user_agent, 'é-ü');
  t.equal(req.path, '/é-ü');
  t.same(req.cookie_names, ['é-ü']);
  t.same(req.device_hash, h('é-ü'));
  const invalid = buildDecideRequest(raw({ encoding: 'latin1', headers: [['X-Device-Id', '\xff\xfe']] }), base);
  t.same(invalid.device_hash, h(Buffer.from([0xff, 0xfe])), 'bytes that are not UTF-8 are hashed as they came');
});

t.test('identity: JSON body, fields in order, numbers as integers, password as HMAC', async (t) => {
  const req = post('{"username":"","phone":13800000001,"email":"e@x","password":"pw"}', 'application/json');
  t.equal(req.identifier, '13800000001', 'an empty field is skipped; a number is printed as an integer');
  t.same(req.password_hash, h('pw'));
  t.equal(req.route_tag, 'login');
  t.equal(post('{"username":', 'application/json').identifier, '', 'not JSON: nothing');
  t.equal(post(`{"username":"${'é'.repeat(200)}"}`, 'application/json').identifier, `${'é'.repeat(128)}`, '256 bytes');
  t.equal(post('{"username":"a","password":5}', 'application/json').password_hash, undefined, 'only a string password');
  t.equal(post('{"username":"a"}', 'application/JSON').identifier, '', 'the content type match is case-sensitive, as string.find');
  t.equal(post('{"username":"a"}', 'text/plain').identifier, '', 'neither JSON nor a form');
  t.equal(post('["username"]', 'application/json').identifier, '', 'a top-level array');
  t.equal(post('{"username":"a\\ud800"}', 'application/json').identifier, '', 'lua-cjson refuses a lone surrogate escape');
  t.equal(post('{"username":"a\\ud83d\\ude00"}', 'application/json').identifier, 'a😀', 'a surrogate pair is fine');
  t.equal(post(`${'['.repeat(1001)}${']'.repeat(1001)}`, 'application/json').identifier, '', 'deeper than lua-cjson decodes');
  t.equal(post('{"username":"a","password":"p"}', 'application/json', { ...LOGIN, passwordField: 'pw' }).password_hash, undefined, 'password_field setting');
});

t.test('identity: only on identity routes that wait for the answer, only POST/PUT/PATCH, within body_max_bytes', async (t) => {
  const body = '{"username":"alice","password":"pw"}';
  t.equal(post(body, 'application/json', base).identifier, '', 'no identity fields: not an identity route');
  t.equal(post(body, 'application/json', { ...LOGIN, mode: 'async' }).identifier, '', 'async: the body is not read');
  t.equal(post(body, 'application/json', { ...LOGIN, mode: 'monitor' }).identifier, 'alice');
  t.equal(post(body, 'application/json', LOGIN, { method: 'GET' }).identifier, '');
  t.equal(post(body, 'application/json', LOGIN, { method: 'PATCH' }).identifier, 'alice');
  t.equal(post(body, 'application/json', { ...LOGIN, bodyMaxBytes: 10 }).identifier, '', 'over body_max_bytes');
  const lying = buildDecideRequest(raw({ method: 'POST', body, headers: [['Content-Type', 'application/json'], ['Content-Length', '99999']] }), LOGIN);
  t.equal(lying.identifier, '', 'Content-Length over body_max_bytes: not read');
});

t.test('identity: urlencoded bodies as ngx.decode_args reads them', async (t) => {
  const form = 'application/x-www-form-urlencoded';
  t.equal(post('username=&phone=138%2000+1&password=p%41', form).identifier, '138 00 1', "'+' and %XX decoded");
  t.same(post('username=&phone=138%2000+1&password=p%41', form).password_hash, h('pA'));
  t.equal(post('username=a&username=b&phone=5', form).identifier, '5', 'a repeated field is a table, not a string');
  t.equal(post('username&phone=%zz%4', form).identifier, '%zz%4', 'a key without "=" is true; bad escapes stay');
  t.equal(post('email=%E9t%C3%A9', form).identifier, '\ufffdté', 'decoded bytes, then UTF-8');
  const many = `${Array.from({ length: 32 }, (_, i) => `k${i}=${i}`).join('&')}&phone=9`;
  t.equal(post(many, form).identifier, '', 'only the first 32 pairs are parsed');
  t.equal(post(`${'&'.repeat(31)}phone=9`, form).identifier, '9', 'empty pairs count, the last unterminated one is read');
  t.equal(post(`${'&'.repeat(32)}phone=9`, form).identifier, '');
});

t.test('decodeFormArgs and luaIntegerText match lua-nginx-module and LuaJIT', async (t) => {
  const args = decodeFormArgs(Buffer.from('a=1&a=2&b&=x&c=%41&e='), 0);
  t.same([...args.keys()], ['a', 'b', 'c', 'e']);
  t.same(args.get('a'), [Buffer.from('1'), Buffer.from('2')]);
  t.equal(args.get('b'), true);
  t.same(args.get('c'), Buffer.from('A'));
  t.same(args.get('e'), Buffer.alloc(0));
  // string.format("%.0f", v) in LuaJIT (checked inside nginx)
  const cases: Array<[number, string]> = [[2.5, '3'], [3.5, '4'], [-2.5, '-3'], [0.5, '1'], [-0.3, '-0'], [-0, '-0'], [1e21, '1000000000000000000000'], [13800000001, '13800000001'], [Infinity, 'inf']];
  for (const [v, s] of cases) t.equal(luaIntegerText(v), s, `${v}`);
});

t.test('location settings parse as config.lua parses $verdict_<name>', async (t) => {
  const bad: string[] = [];
  const s = withLocationOptions(base, {
    route_tag: 'login', session_cookie: 'SID', device_header: 'X-Dev', api_key_header: 'bad header!', identity_fields: ' username, phone ,,email ',
    budget_ms: '0', mode: 'MONITOR', password_field: '', not_an_option: 'x',
  }, (name) => bad.push(name));
  t.match(s, { routeTag: 'login', sessionCookie: 'SID', deviceHeader: 'x-dev', apiKeyHeader: GATEWAY_DEFAULTS.apiKeyHeader, identityFields: ['username', 'phone', 'email'], budgetMs: 25, mode: 'monitor', passwordField: 'password' });
  t.same(bad, ['api_key_header', 'budget_ms'], 'invalid values are reported and yield the default; empty means the default');
  t.equal(withLocationOptions(base, { budget_ms: ' 40 ' }).budgetMs, 40);
});
