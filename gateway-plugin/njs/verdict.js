// Verdict for stock nginx + njs (written for Debian's njs 0.7.9): the same contract, field names,
// settings and failure causes as the Lua script (gateway-plugin/lua/verdict/), through the only
// hooks njs 0.7.x has.
//
// njs has no access phase, so each guarded location asks `auth_request /_verdict/decide`
// (verdict-njs-location.conf); that internal location (verdict-njs-server.conf) runs decide()
// below. auth_request only understands 2xx / 401 / 403 (anything else becomes a 500), so the
// answer is always 204 (go on) or 403 (stop); the parent's `error_page 403 = @verdict_deny` then
// runs deny(), which sends the real block / challenge / fail-closed response.
//
// Results travel back in variables, not headers: an auth_request subrequest shares the parent's
// variable array, so what decide() writes into $verdict_njs_* (js_var, verdict-njs-http.conf) is
// what the parent's proxy_set_header lines (X-Verdict-Score / -Reasons / -Fail-Open), deny() and
// headers() (the js_header_filter that adds a clearance cookie) read, and what an access log can
// record.
//
// Challenges and clearance (CONTRACT.md, issue 13): decide() checks the verdict_clearance cookie
// or an X-Verdict-Proof header locally, deny() issues signed nonces (the 429 descriptor or the
// proof-of-work page), answer() serves /.verdict/answer. Nothing is stored: nonces and tokens
// carry their own MAC.
//
// Limits of njs 0.7.9 (gateway-plugin/README.md, "The njs variant"):
//  * a VM lives for one request: no module state survives it, and js_shared_dict_zone only
//    arrived in 0.8.0. So: no verdict cache, no circuit breaker, no counters, no rate-limited log,
//    and a proof is not single-use (nowhere to record a nonce's rand until it expires).
//  * a request's VM is finalised only when its last pending event ends, and ngx.fetch cannot be
//    cancelled: a Promise.race with setTimeout decides *what* happens at the budget, but the
//    subrequest still waits for the fetch. The hard deadline is therefore js_fetch_timeout of the
//    internal location the budget maps to ($verdict_njs_rung, a ladder of locations).
//  * ngx.fetch: TCP to an IP literal only (no unix sockets, no keep-alive, no resolver here).
//  * the request body is not read before an auth_request subrequest: identity routes cannot send
//    the identifier or the password hash. Nothing runs after the response: no outcomes, and async
//    mode (and a cleared request in $verdict_cleared async) has nothing to send the metadata with.
//  * module code runs again for every request: the challenge page template is read from disk on
//    each challenged navigation (there is no start-up hook to read it once).

import crypto from 'crypto';
import fs from 'fs';

// header name (lower-case) -> DecideRequest field
const SELECTED = {
  'user-agent': 'user_agent', accept: 'accept', 'accept-language': 'accept_language',
  'accept-encoding': 'accept_encoding', referer: 'referer', origin: 'origin',
  'content-type': 'content_type', 'sec-fetch-site': 'sec_fetch_site',
  'sec-fetch-mode': 'sec_fetch_mode', 'sec-fetch-dest': 'sec_fetch_dest',
  'sec-fetch-user': 'sec_fetch_user', 'sec-ch-ua': 'sec_ch_ua',
};
const MAX_VALUE = 512;
const MODE_FIELD = { inline: 'INLINE', monitor: 'MONITOR' };
const ACTIONS = { ALLOW: 'allow', TAG: 'tag', CHALLENGE: 'challenge', BLOCK: 'block' };
const ACTION_BY_NUMBER = ['ALLOW', 'TAG', 'CHALLENGE', 'BLOCK'];
const ADDRESS = /^(\d{1,3}(\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]):\d{1,5}$/;
const HEADER_NAME = /^[A-Za-z0-9_-]+$/;
const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]):\d{1,5}$/;
const CLEARANCE_FIELD = { none: 'NONE', valid: 'VALID', invalid: 'INVALID', expired: 'EXPIRED' };
const KINDS = ['DEFAULT', 'POW', 'PAGE', 'STATUS'];
const UINT32_MAX = 4294967295;

// X-Verdict-Auth (gateway-plugin/CONTRACT.md, authentication): kid, time, and the HMAC of both
// with the path and the exact body; absent without a secret
function authHeader(secret, path, body) {
  const kid = crypto.createHash('sha1').update(secret).digest('hex').slice(0, 8);
  const ts = String(Date.now());
  const mac = crypto.createHmac('sha1', secret).update('verdict http v1\n' + ts + '\n' + path + '\n' + body).digest('base64');
  return kid + ':' + ts + ':' + mac;
}

// BEGIN generated from gateway-plugin/spec/options.json by spec/generate.ts
// Per-location settings $verdict_<name>: the same names, types, bounds and defaults as the Lua
// script (lua/verdict/spec.lua). Their description is quoted in the invalid-value warning.
const OPTIONS = {
  mode: { type: "enum", default: "inline", values: ["inline", "async", "monitor", "off"], description: "inline | async | monitor | off" },
  budget_ms: { type: "int", default: 25, min: 1, max: 60000, description: "total deadline of the decide call (connect + send + read), ms" },
  fail: { type: "enum", default: "open", values: ["open", "closed"], description: "open | closed: what happens when the call fails" },
  priority: { type: "enum", default: "normal", values: ["low", "normal"], description: "low | normal: under overload (see shed_timeout_share) calls from low locations are skipped first" },
  fail_closed_status: { type: "status", default: 503, min: 200, max: 599, description: "status sent when the call fails on a fail-closed location" },
  block_status: { type: "status", default: 403, min: 200, max: 599, description: "status of a block" },
  block_body: { type: "string", default: "", description: "body of a block (default: {\"error\":\"blocked\",\"request_id\":\"<id>\"})" },
  challenge_status: { type: "status", default: 429, min: 200, max: 599, description: "status of a challenge: the proof-of-work page and the STATUS kind (API clients always get 429 with a challenge descriptor)" },
  challenge_retry_after: { type: "int", default: 30, min: 0, max: 86400, description: "Retry-After seconds of a challenge" },
  challenge_url: { type: "string", default: "", description: "when set, a challenge of the default kind is a 302 to this URL (the pre-clearance behaviour); empty = the proof-of-work challenge" },
  challenge_difficulty: { type: "int", default: 16, min: 1, max: 32, description: "leading zero bits of SHA-256 a proof-of-work challenge asks for when the verdict names none; the page offers its no-JS fallback only up to this difficulty" },
  challenge_nojs_wait_s: { type: "int", default: 5, min: 1, max: 120, description: "seconds the no-JS fallback makes a browser wait before its clearance (level 0)" },
  clearance_ttl_s: { type: "int", default: 3600, min: 60, max: 604800, description: "lifetime of a clearance token when the verdict names none, s" },
  cleared: { type: "enum", default: "async", values: ["async", "inline"], description: "async | inline: a request with a valid clearance token is not waited on (async: cached verdicts apply, its metadata goes out after the response) or is still decided inline" },
  route_tag: { type: "string", default: "", description: "tag sent as route_tag (e.g. login)" },
  identity_fields: { type: "list", default: "", description: "comma list of body fields holding the identifier; empty = not an identity route" },
  password_field: { type: "string", default: "password", description: "body field holding the password (sent only as HMAC)" },
  device_header: { type: "header", default: "x-device-id", description: "request header carrying a device id" },
  session_cookie: { type: "string", default: "sid", description: "cookie holding the session id" },
  api_key_header: { type: "header", default: "x-api-key", description: "request header carrying an API key (hashed as the principal when no Authorization)" },
  inspect: { type: "string", default: "auto", description: "auto | off | all | a share 0..1: which guarded JSON responses the gateway inspects for sensitive values (auto: as the service's verdict says, else inspect_sample)" },
  auth_result_header: { type: "header", default: "", description: "upstream response header reported as the outcome's auth_result" },
};
// http-level options njs cannot set (it has no init step): fixed at the Lua defaults.
const HTTP = { query_max_bytes: 1024, header_names_max: 64 };
// END generated

// syntax: value = setting(r, name)
// Reads $verdict_<name>; empty = the default; an invalid value logs a warning (every time: njs
// 0.7.9 has no state to rate-limit with) and yields the default.
function setting(r, name) {
  const o = OPTIONS[name];
  const raw = r.variables['verdict_' + name];
  if (raw === undefined || raw === '') return o.default;
  const type = o.type;
  let v;
  if (type === 'string') return raw;
  if (type === 'enum') {
    const low = raw.toLowerCase();
    if (o.values.indexOf(low) !== -1) v = low;
  } else if (type === 'int' || type === 'status') {
    const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
    if (n >= o.min && n <= o.max) v = n;
  } else if (type === 'header') {
    if (HEADER_NAME.test(raw)) v = raw.toLowerCase();
  }
  if (v === undefined) {
    r.warn('verdict: invalid $verdict_' + name + ' value "' + raw + '" (' + o.description + '); using the default "' + o.default + '"');
    return o.default;
  }
  return v;
}

function hmac(key, value) {
  return crypto.createHmac('sha1', key).update(value).digest('base64');
}

function cookies(req, value, sessionCookie, key) {
  const pairs = value.split(';');
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i];
    const eq = pair.indexOf('=');
    const name = (eq === -1 ? pair : pair.slice(0, eq)).trim();
    if (name === '') continue;
    if (req.cookie_names.length < 64) req.cookie_names.push(name);
    if (name === sessionCookie && req.session_hash === undefined && eq !== -1) {
      const v = pair.slice(eq + 1).trim();
      if (v !== '') req.session_hash = hmac(key, v);
    }
  }
}

// syntax: req = build(r, mode, key, clear)
// The DecideRequest (JSON form) for the parent of this auth_request subrequest; clear is what
// clearanceOf() found. The subrequest
// carries the parent's headers (r.rawHeadersIn keeps their arrival order and case); the parent's
// URI and arguments come from $verdict_njs_uri / $verdict_njs_args (verdict-njs-location.conf),
// because $uri and $args here are the subrequest's own.
function build(r, mode, key, clear) {
  const v = r.variables;
  let query = v.verdict_njs_args || '';
  if (query.length > HTTP.query_max_bytes) query = query.slice(0, HTTP.query_max_bytes);
  const req = {
    request_id: v.request_id,
    ts_ms: Date.now(),
    client_ip: v.remote_addr,
    method: v.request_method,
    host: v.host,
    path: v.verdict_njs_uri || '/',
    query: query,
    route_tag: setting(r, 'route_tag'),
    http_version: r.httpVersion,
    tls_protocol: v.ssl_protocol || '',
    tls_cipher: v.ssl_cipher || '',
    header_names: [],
    cookie_names: [],
    has_authorization: false,
    auth_scheme: '',
    session_hash: undefined,
    token_hash: undefined,
    device_hash: undefined,
    mode: MODE_FIELD[mode],
    gateway_id: v.hostname + '/' + process.pid,
    clearance: CLEARANCE_FIELD[clear.state],
    clearance_level: clear.level,
    clearance_age_s: clear.age,
  };
  const sessionCookie = setting(r, 'session_cookie');
  const deviceHeader = setting(r, 'device_header');
  const apiKeyHeader = setting(r, 'api_key_header');
  let apiKey = '';
  const raw = r.rawHeadersIn;
  for (let i = 0; i < raw.length; i++) {
    const name = raw[i][0].toLowerCase();
    const value = raw[i][1];
    if (req.header_names.length < HTTP.header_names_max) req.header_names.push(name);
    const field = SELECTED[name];
    if (field !== undefined) {
      if (req[field] === undefined) req[field] = value.length > MAX_VALUE ? value.slice(0, MAX_VALUE) : value;
    } else if (name === 'cookie') {
      cookies(req, value, sessionCookie, key);
    } else if (name === 'authorization') {
      req.has_authorization = true;
      const m = /^(\S+)\s*(.*)$/.exec(value);
      if (m) {
        req.auth_scheme = m[1].toLowerCase();
        if (m[2] !== '') req.token_hash = hmac(key, m[2]);
      }
    } else if (name === apiKeyHeader) {
      apiKey = value;
    } else if (name === deviceHeader) {
      if (value !== '' && req.device_hash === undefined) req.device_hash = hmac(key, value);
    }
  }
  if (req.token_hash === undefined && apiKey !== '') req.token_hash = hmac(key, apiKey);
  return req;
}

// syntax: cause = causeOf(err)
// Maps an ngx.fetch rejection to the fixed failure causes of the Lua script.
function causeOf(err) {
  const m = String(err && err.message);
  if (m.indexOf('timed out') !== -1) return 'timeout';
  // njs 0.7.9 reports refused, reset during connect and a missing socket all as "connect failed"
  if (m.indexOf('connect failed') !== -1) return 'refused';
  if (m.indexOf('prematurely closed') !== -1 || m.indexOf('closed') !== -1) return 'closed';
  if (m.indexOf('invalid') !== -1) return 'bad response';
  return 'socket error';
}

// syntax: verdict = parse(text)
// A DecideResponse from JSON text (action by name or number), or null when it is not one.
function parse(text) {
  let v;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return null;
  }
  if (v === null || typeof v !== 'object') return null;
  let action = v.action === undefined ? 'ALLOW' : v.action;
  if (typeof action === 'number') action = ACTION_BY_NUMBER[action];
  if (ACTIONS[action] === undefined) return null;
  let kind = v.challenge_kind === undefined ? 'DEFAULT' : v.challenge_kind;
  if (typeof kind === 'number') kind = KINDS[kind];
  if (KINDS.indexOf(kind) === -1) kind = 'DEFAULT'; // a kind this script does not know: the location's
  return {
    action: action,
    score: typeof v.score === 'number' ? v.score : 0,
    reasons: Array.isArray(v.reasons) ? v.reasons : [],
    challenge_kind: kind,
    challenge_difficulty: uint32(v.challenge_difficulty),
    clearance_ttl_s: uint32(v.clearance_ttl_s),
  };
}

// absent, negative, fractional or out-of-range numbers read as 0 (= the location's default)
function uint32(n) {
  return typeof n === 'number' && n >= 0 && n <= UINT32_MAX && Math.floor(n) === n ? n : 0;
}

// Sentinel the budget timer resolves with (never a fetch result).
const TIMEOUT = { timeout: true };

// syntax: decide(r)        (js_content of the internal /_verdict/decide/<rung> locations)
// Answers 204 (go on; tag / fail-open marker in $verdict_njs_*) or 403 (deny() takes over).
// The fallback is decided before the call: every failure ends in fail(). An exception must not
// escape either: auth_request would turn the subrequest's 500 into the client's 500.
function decide(r) {
  try {
    decideOrThrow(r);
  } catch (e) {
    r.error('verdict: decide failed: ' + e.message + ' (failing open)');
    r.variables.verdict_njs_fail = 'socket error';
    r.return(204);
  }
}

function decideOrThrow(r) {
  const mode = setting(r, 'mode');
  // async: njs can neither send after the response nor cache, so there is nothing to enforce
  if (mode === 'off' || mode === 'async') {
    r.return(204);
    return;
  }
  const v = r.variables;
  const key = v.verdict_hmac_key || '';
  const service = v.verdict_service || '';
  if (key.length < 16 || !ADDRESS.test(service)) {
    // a configuration mistake, not a service failure: Verdict stays out of the way (as the Lua
    // script does before config.init); nginx cannot refuse to start from njs 0.7.9
    r.error('verdict: Verdict is inactive: $verdict_hmac_key must be at least 16 characters and ' +
            '$verdict_service an "ip:port" (njs 0.7.9: no unix sockets, no host names); got service "' + service + '"');
    r.return(204);
    return;
  }
  const secret = v.verdict_secret || '';
  if (secret !== '' && secret.length < 32) {
    r.error('verdict: Verdict is inactive: $verdict_secret must hold at least 32 characters (openssl rand -hex 32)');
    r.return(204);
    return;
  }
  if (secret === '' && !LOOPBACK.test(service)) {
    r.error('verdict: Verdict is inactive: $verdict_service ' + service + ' is not loopback: declare ' +
            'js_var $verdict_secret (the service\'s VERDICT_GATEWAY_SECRET_FILE key) so only your gateways can ask for verdicts');
    r.return(204);
    return;
  }
  const clear = clearanceOf(r);
  if (clear.state === 'valid' && mode === 'inline' && setting(r, 'cleared') === 'async') {
    // "not waited on": the Lua script enforces cached verdicts and sends the metadata from the
    // log phase; njs has neither, so the closest is no call at all until the token expires
    r.return(204);
    return;
  }
  const failClosed = mode === 'inline' && setting(r, 'fail') === 'closed';
  const budget = setting(r, 'budget_ms');

  function fail(cause) {
    v.verdict_njs_fail = cause;
    if (failClosed) {
      v.verdict_njs_action = 'block';
      r.return(403);
      return;
    }
    r.return(204);
  }

  function enforce(verdict) {
    const action = ACTIONS[verdict.action];
    v.verdict_njs_action = action;
    if (mode === 'monitor' || action === 'allow') {
      r.return(204);
      return;
    }
    if (action === 'tag') {
      v.verdict_njs_score = String(verdict.score);
      v.verdict_njs_reasons = verdict.reasons.join(',');
      r.return(204);
      return;
    }
    if (action === 'challenge') {
      v.verdict_njs_challenge = verdict.challenge_kind + ':' + verdict.challenge_difficulty + ':' + verdict.clearance_ttl_s;
    }
    r.return(403); // block / challenge: deny() sends the location's response
  }

  let body;
  try {
    const req = build(r, mode, key, clear);
    req.budget_ms = budget; // the service drops the call unanswered once this has passed
    body = JSON.stringify(req);
  } catch (e) {
    r.error('verdict: cannot build the decide request: ' + e.message);
    fail('socket error');
    return;
  }
  let timer;
  const deadline = new Promise(function (resolve) { timer = setTimeout(function () { resolve(TIMEOUT); }, budget); });
  const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
  if (secret !== '') headers['X-Verdict-Auth'] = authHeader(secret, '/v1/decide', body);
  const call = ngx.fetch('http://' + service + '/v1/decide', {
    method: 'POST',
    body: body,
    headers: headers,
  }).then(function (resp) {
    if (resp.status !== 200) return 'http error';
    return resp.text().then(function (text) { return parse(text) || 'bad response'; });
  }).catch(causeOf);

  Promise.race([call, deadline]).then(function (result) {
    clearTimeout(timer);
    if (result === TIMEOUT) fail('timeout');
    else if (typeof result === 'string') fail(result);
    else enforce(result);
  }).catch(function (e) {
    r.error('verdict: decide failed: ' + e.message + ' (failing open)');
    v.verdict_njs_fail = 'socket error';
    r.return(204);
  });
}

function jsonEscape(s) {
  return String(s).replace(/["\\\u0000-\u001f]/g, function (ch) {
    return ch === '"' ? '\\"' : ch === '\\' ? '\\\\' : '';
  });
}

// ------------------------------------------------------------------ challenges and clearance
// CONTRACT.md, "Challenges and clearance (issue 13)": the same keys, binding, nonce, proof and
// token as lua/verdict/clearance.lua and decision-service/src/gateway/clearance.ts, checked
// against spec/clearance-vectors.json. All times are unix seconds; MACs are HMAC-SHA-256 cut to
// 16 bytes, b64u (base64url, no padding).

const COOKIE_NAME = 'verdict_clearance';
const NONCE_LIFE_S = 300;
const ANSWER_URL = '/.verdict/answer';
const PROOF_HEADER = 'X-Verdict-Proof';
const ALGORITHM = 'sha256-leading-zero-bits';
// (?![\s\S]) ends these patterns, not $: njs 0.7.9's regexps (PCRE) let $ match before a final
// "\n", so "<proof>\n" would pass.
const KEY_ID = /^[A-Za-z0-9_-]{1,16}(?![\s\S])/;
// The field widths the TypeScript reference fixes where the contract gives none: iat, exp 1-12
// digits, ttl 1-7, difficulty and level 1-2 (a nonce's difficulty at most 32); anything else is
// malformed. c1.<kid>.<iat>.<exp>.<difficulty>.<ttl>.<nh>.<uh>.<rand>.<sig>
const NONCE = /^c1\.([A-Za-z0-9_-]{1,16})\.(\d{1,12})\.(\d{1,12})\.(\d{1,2})\.(\d{1,7})\.([A-Za-z0-9_-]{8})\.([A-Za-z0-9_-]{8})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{22})(?![\s\S])/;
// v1.<kid>.<iat>.<exp>.<level>.<nh>.<uh>.<sig>
const TOKEN = /^v1\.([A-Za-z0-9_-]{1,16})\.(\d{1,12})\.(\d{1,12})\.(\d{1,2})\.([A-Za-z0-9_-]{8})\.([A-Za-z0-9_-]{8})\.([A-Za-z0-9_-]{22})(?![\s\S])/;
const COUNTER = /^\d{1,12}(?![\s\S])/;
const MAX_DIFFICULTY = 32;
const MAX_TTL = 9999999;
// what may stay as is in a URL (RFC 3986 unreserved, reserved and "%"); the rest is %-encoded
const URL_UNSAFE = /[^A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]/g;
const HTML_UNSAFE = /[&<>"']/g;
const HTML_ENTITY = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

function now() {
  return Math.floor(Date.now() / 1000);
}

// MAC(key, text): HMAC-SHA-256, first 16 bytes, b64u
function mac(secret, text) {
  return crypto.createHmac('sha256', secret).update(text).digest().slice(0, 16).toString('base64url');
}

// b64u of the first 6 bytes of SHA-256(text): the nh / uh binding hashes
function bindHash(text) {
  return crypto.createHash('sha256').update(text).digest().slice(0, 6).toString('base64url');
}

// constant-time for strings of one length (MACs are always 22 characters)
function same(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return d === 0;
}

function leadingZeroBits(bytes) {
  let bits = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b !== 0) return bits + Math.clz32(b) - 24;
    bits += 8;
  }
  return bits;
}

// syntax: s = subnet(ip)
// The verdict cache's subnet string (CONTRACT.md, cache keys; spec/cache-key-vectors.json): the
// same steps as lua/verdict/cache.lua's subnet. null when the address is not recognised.
function subnet(ip) {
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.\d+$/.exec(ip);
  if (v4) return v4[1] + '.' + v4[2] + '.' + v4[3] + '.0/24';
  if (ip.indexOf(':') === -1) return null;
  const nonEmpty = function (g) { return g !== ''; };
  let groups;
  const cut = ip.indexOf('::');
  if (cut !== -1) {
    const head = ip.slice(0, cut).split(':').filter(nonEmpty);
    const tail = ip.slice(cut + 2).split(':').filter(nonEmpty);
    groups = head;
    for (let i = head.length + tail.length; i < 8; i++) groups.push('0');
    groups = groups.concat(tail);
  } else {
    groups = [];
    const all = ip.split(':').filter(nonEmpty);
    // an embedded IPv4 address ends the groups (it sits in the low 32 bits)
    for (let i = 0; i < all.length && all[i].indexOf('.') === -1; i++) groups.push(all[i]);
  }
  if (groups.length < 4) return null;
  const out = [];
  for (let i = 0; i < 4; i++) {
    if (!/^[0-9A-Fa-f]+$/.test(groups[i])) return null;
    out.push(parseInt(groups[i], 16).toString(16));
  }
  return out.join(':') + '::/64';
}

// syntax: b = binding(net, userAgent)       b = { nh, uh }
// Ties a nonce or token to the client's network (its subnet string) and browser.
function binding(net, userAgent) {
  return { nh: bindHash('net:' + net), uh: bindHash('ua:' + userAgent) };
}

// An address with no subnet (a unix socket peer) is bound as itself, as the service keys such a
// client (net/ip.ts subnetOf); the User-Agent as nginx received it, "" when absent.
function clientBinding(r) {
  const v = r.variables;
  const ip = v.remote_addr || '';
  const net = subnet(ip);
  return binding(net === null ? ip : net, v.http_user_agent || '');
}

// syntax: keys = keyList(raw, hmacKey)      keys = { list: [{ id, secret }], bad: [entry, ...] }
// $verdict_clearance_keys "id:secret,id:secret" (the first signs, every one verifies), or without
// it one key derived from $verdict_hmac_key. Entries that are not a valid id and a 32+ character
// secret are skipped and named in bad, by id, or by position ("#2") when the entry has no valid
// id: a secret is never logged; with none left the derived key applies. An empty list means no
// key at all (no usable hmac key either).
function keyList(raw, hmacKey) {
  const keys = { list: [], bad: [] };
  const entries = raw === '' ? [] : raw.split(',');
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i].trim();
    const colon = entry.indexOf(':');
    const id = colon === -1 ? entry : entry.slice(0, colon).trim();
    const secret = colon === -1 ? '' : entry.slice(colon + 1).trim();
    if (KEY_ID.test(id) && secret.length >= 32) keys.list.push({ id: id, secret: secret });
    else keys.bad.push(colon !== -1 && KEY_ID.test(id) ? id : '#' + (i + 1));
  }
  if (keys.list.length === 0 && hmacKey.length >= 16) {
    keys.list.push({
      id: 'h' + crypto.createHash('sha256').update(hmacKey).digest('hex').slice(0, 8),
      secret: crypto.createHmac('sha256', hmacKey).update('verdict clearance key v1').digest('hex'),
    });
  }
  return keys;
}

// keyList() of this request's variables; bad entries are logged on every use (njs 0.7.9 has no
// state to log once with, and no start-up hook to refuse them)
function clearanceKeys(r) {
  const v = r.variables;
  const keys = keyList(v.verdict_clearance_keys || '', v.verdict_hmac_key || '');
  if (keys.bad.length > 0) {
    r.error('verdict: $verdict_clearance_keys: skipped entries ' + keys.bad.join(', ') + ' (each "id:secret": id ' +
            '1-16 of A-Z a-z 0-9 _ -, secret 32+ characters)' + (keys.list.length > 0 && v.verdict_clearance_keys ? '' : '; using the key derived from $verdict_hmac_key'));
  }
  return keys.list;
}

function secretOf(keys, id) {
  for (let i = 0; i < keys.length; i++) if (keys[i].id === id) return keys[i].secret;
  return undefined;
}

// syntax: nonce = issueNonce(key, bind, t, difficulty, ttl, nojsWait[, rand])
// A difficulty-0 nonce (the no-JS fallback) has its wait signed in: iat = t + nojsWait, the time
// it becomes valid; any other has iat = t. exp = iat + 5 minutes. rand: 12 random bytes unless given.
function issueNonce(key, bind, t, difficulty, ttl, nojsWait, rand) {
  if (rand === undefined) rand = Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(12))).toString('base64url');
  const iat = difficulty === 0 ? t + nojsWait : t;
  const body = 'c1.' + key.id + '.' + iat + '.' + (iat + NONCE_LIFE_S) + '.' + difficulty + '.' + ttl + '.' + bind.nh + '.' + bind.uh + '.' + rand;
  return body + '.' + mac(key.secret, 'verdict-challenge-v1.' + body);
}

// syntax: token = issueToken(key, bind, t, level, ttl)
function issueToken(key, bind, t, level, ttl) {
  const body = 'v1.' + key.id + '.' + t + '.' + (t + ttl) + '.' + level + '.' + bind.nh + '.' + bind.uh;
  return body + '.' + mac(key.secret, 'verdict-clearance-v1.' + body);
}

// syntax: p = checkProof(proof, keys, bind, t)
// p = { why, level, ttl, rand, exp }: why is '' for a valid proof, else the first failed check of
// CONTRACT.md's list (malformed, unknown key, bad signature, expired, network, browser, work,
// too early: a no-JS nonce before its iat). "reused" is never answered here: njs 0.7.9 cannot
// remember a nonce.
function checkProof(proof, keys, bind, t) {
  const p = { why: 'malformed', level: 0, ttl: 0, rand: '', exp: 0 };
  const dot = proof.lastIndexOf('.');
  if (dot === -1) return p;
  const nonce = proof.slice(0, dot);
  const m = NONCE.exec(nonce);
  if (m === null || Number(m[4]) > MAX_DIFFICULTY || !COUNTER.test(proof.slice(dot + 1))) return p;
  const secret = secretOf(keys, m[1]);
  if (secret === undefined) { p.why = 'unknown key'; return p; }
  const signed = nonce.slice(0, nonce.lastIndexOf('.'));
  if (!same(mac(secret, 'verdict-challenge-v1.' + signed), m[9])) { p.why = 'bad signature'; return p; }
  const iat = Number(m[2]);
  const difficulty = Number(m[4]);
  if (t > Number(m[3])) { p.why = 'expired'; return p; }
  if (m[6] !== bind.nh) { p.why = 'network'; return p; }
  if (m[7] !== bind.uh) { p.why = 'browser'; return p; }
  if (difficulty > 0) {
    if (leadingZeroBits(crypto.createHash('sha256').update(proof).digest()) < difficulty) { p.why = 'work'; return p; }
  } else {
    if (proof.slice(dot + 1) !== '0') { p.why = 'work'; return p; }
    if (t < iat) { p.why = 'too early'; return p; }
  }
  p.why = '';
  p.level = difficulty;
  p.ttl = Number(m[5]);
  p.rand = m[8];
  p.exp = Number(m[3]);
  return p;
}

// syntax: c = checkToken(token, keys, bind, t)     c = { state, why, level, age }
// state: none (no token, or "": nginx's $cookie_ cannot tell an empty cookie from none in Lua,
// and both gateways agree) | invalid | expired | valid, checked in that order; why names what
// made it invalid (malformed, unknown key, bad signature, network, browser); level and age
// (t - iat, never negative: a gateway whose clock runs ahead issued it) are 0 unless valid.
function checkToken(token, keys, bind, t) {
  const c = { state: 'none', why: '', level: 0, age: 0 };
  if (token === undefined || token === '') return c;
  c.state = 'invalid';
  c.why = 'malformed';
  const m = TOKEN.exec(token);
  if (m === null) return c;
  const secret = secretOf(keys, m[1]);
  c.why = 'unknown key';
  if (secret === undefined) return c;
  c.why = 'bad signature';
  if (!same(mac(secret, 'verdict-clearance-v1.' + token.slice(0, token.lastIndexOf('.'))), m[7])) return c;
  c.why = 'network';
  if (m[5] !== bind.nh) return c;
  c.why = 'browser';
  if (m[6] !== bind.uh) return c;
  c.why = '';
  if (t > Number(m[3])) { c.state = 'expired'; return c; }
  c.state = 'valid';
  c.level = Number(m[4]);
  c.age = Math.max(t - Number(m[2]), 0);
  return c;
}

function cookieOf(r, token, ttl) {
  return COOKIE_NAME + '=' + token + '; Path=/; Max-Age=' + ttl + '; HttpOnly; SameSite=Lax' +
    (r.variables.scheme === 'https' ? '; Secure' : '');
}

// syntax: c = clearanceOf(r)                (decide(); c as checkToken's)
// A valid X-Verdict-Proof counts as the token it earns: the token is issued at once and
// $verdict_njs_set_cookie carries its cookie to the response (headers() or deny()). Otherwise the
// verdict_clearance cookie is checked. $verdict_njs_clearance records the state.
function clearanceOf(r) {
  const v = r.variables;
  const proof = v.http_x_verdict_proof;
  const token = v.cookie_verdict_clearance;
  if (proof === undefined && token === undefined) {
    v.verdict_njs_clearance = 'none';
    return { state: 'none', why: '', level: 0, age: 0 }; // the common case: no key derivation, no hashing
  }
  const keys = clearanceKeys(r);
  const bind = clientBinding(r);
  const t = now();
  if (proof !== undefined) {
    const p = checkProof(proof, keys, bind, t);
    if (p.why === '') {
      v.verdict_njs_set_cookie = cookieOf(r, issueToken(keys[0], bind, t, p.level, p.ttl), p.ttl);
      v.verdict_njs_clearance = 'valid';
      return { state: 'valid', why: '', level: p.level, age: 0 };
    }
  }
  const c = checkToken(token, keys, bind, t);
  v.verdict_njs_clearance = c.state;
  return c;
}

function htmlEscape(s) {
  return String(s).replace(HTML_UNSAFE, function (ch) { return HTML_ENTITY[ch]; });
}

// %-encodes what may not stand in a URL (spaces, controls, quotes, non-ASCII as UTF-8); existing
// %XX escapes stay as they are
function urlEncode(s) {
  return s.replace(URL_UNSAFE, function (ch) { return encodeURIComponent(ch); });
}

// syntax: path = sameSitePath(value)
// A path on this site: starts with exactly one "/" (not "//" nor "/\", which browsers read as
// another host), %-encoded; anything else is "/".
function sameSitePath(value) {
  if (typeof value !== 'string' || !/^\/(?![/\\])/.test(value)) return '/';
  try {
    return urlEncode(value);
  } catch (e) {
    return '/'; // not text (bytes that are not UTF-8)
  }
}

// syntax: path = returnUrl(r)               (deny(): {{RETURN_URL}})
// GET / HEAD come back to the same URI; a challenged POST is not replayed: the person lands on the
// page the form was on (a same-host Referer's path) and submits again, now cleared.
function returnUrl(r) {
  const v = r.variables;
  if (r.method === 'GET' || r.method === 'HEAD') return sameSitePath(v.request_uri);
  const m = /^https?:\/\/([^/?#]*)([^?#]*)/i.exec(v.http_referer || '');
  if (m === null) return '/';
  const host = m[1].replace(/^.*@/, '').replace(/:\d*$/, '').toLowerCase();
  return host === v.host ? sameSitePath(m[2] === '' ? '/' : m[2]) : '/';
}

// Sec-Fetch-Mode: navigate, or (older browsers) no Sec-Fetch-Mode and an Accept naming text/html
function isNavigation(r) {
  const v = r.variables;
  const mode = v.http_sec_fetch_mode;
  if (mode !== undefined) return mode.toLowerCase() === 'navigate';
  return (v.http_accept || '').toLowerCase().indexOf('text/html') !== -1;
}

function pageLang(r) {
  const first = (r.variables.http_accept_language || '').split(',')[0].split(';')[0].trim().toLowerCase();
  return first.slice(0, 2) === 'zh' ? 'zh-CN' : 'en';
}

// syntax: html = challengePage(r, nonce, difficulty, nojs)   (null when a file cannot be read)
// The template ($verdict_challenge_template, else page.html of $verdict_njs_challenge_dir) with
// every {{PLACEHOLDER}} replaced in one pass (a value is never scanned for placeholders again).
function challengePage(r, nonce, difficulty, nojs) {
  const v = r.variables;
  const dir = v.verdict_njs_challenge_dir || '/usr/local/share/verdict/challenge';
  const templatePath = v.verdict_challenge_template || dir + '/page.html';
  let template;
  let solver;
  try {
    template = fs.readFileSync(templatePath, 'utf8');
    solver = fs.readFileSync(dir + '/solver.js', 'utf8');
  } catch (e) {
    r.error('verdict: cannot read the challenge page (' + e.message + '): set $verdict_njs_challenge_dir ' +
            '(gateway-plugin/challenge) or $verdict_challenge_template; sending the JSON challenge instead');
    return null;
  }
  const values = {
    LANG: pageLang(r),
    NONCE: htmlEscape(nonce),
    DIFFICULTY: String(difficulty),
    RETURN_URL: htmlEscape(returnUrl(r)),
    ANSWER_URL: ANSWER_URL,
    REQUEST_ID: htmlEscape(v.request_id),
    NOJS: nojs,
    SOLVER: solver,
  };
  return template.replace(/\{\{([A-Z_]+)\}\}/g, function (all, name) {
    return values[name] === undefined ? all : values[name];
  });
}

// syntax: challenge(r)                       (deny() for a CHALLENGE verdict)
// $verdict_njs_challenge "<kind>:<difficulty>:<ttl>" as the verdict named them (0 = the location's).
function challenge(r) {
  const v = r.variables;
  const c = (v.verdict_njs_challenge || 'DEFAULT:0:0').split(':');
  const url = setting(r, 'challenge_url');
  let kind = c[0];
  if (kind === 'DEFAULT') kind = url !== '' ? 'PAGE' : 'POW';
  if (kind === 'PAGE' && url !== '') {
    r.return(302, url);
    return;
  }
  const retry = setting(r, 'challenge_retry_after');
  if (kind === 'STATUS') {
    r.headersOut['Retry-After'] = String(retry);
    r.headersOut['Content-Type'] = 'application/json';
    r.return(setting(r, 'challenge_status'),
      '{"error":"challenge","request_id":"' + jsonEscape(v.request_id) + '","retry_after":' + retry + '}');
    return;
  }
  // POW, and PAGE where the location has no $verdict_challenge_url to send people to
  const locationDifficulty = setting(r, 'challenge_difficulty');
  const difficulty = Math.min(Number(c[1]) || locationDifficulty, MAX_DIFFICULTY);
  const ttl = Math.min(Number(c[2]) || setting(r, 'clearance_ttl_s'), MAX_TTL);
  const keys = clearanceKeys(r);
  const bind = clientBinding(r);
  const t = now();
  const nonce = issueNonce(keys[0], bind, t, difficulty, ttl, 0);
  if (isNavigation(r)) {
    let nojs = '';
    if (difficulty <= locationDifficulty) {
      const wait = setting(r, 'challenge_nojs_wait_s');
      nojs = '<meta http-equiv="refresh" content="' + wait + ';url=' + ANSWER_URL +
        '?proof=' + issueNonce(keys[0], bind, t, 0, ttl, wait) + '.0&amp;return=' + htmlEscape(encodeURIComponent(returnUrl(r))) + '">';
    }
    const html = challengePage(r, nonce, difficulty, nojs);
    if (html !== null) {
      r.headersOut['Content-Type'] = 'text/html; charset=utf-8';
      r.return(setting(r, 'challenge_status'), html);
      return;
    }
  }
  r.headersOut['Retry-After'] = String(retry);
  r.headersOut['Content-Type'] = 'application/json';
  r.return(429, JSON.stringify({
    error: 'challenge',
    request_id: v.request_id,
    retry_after: retry,
    challenge: {
      algorithm: ALGORITHM,
      difficulty: difficulty,
      nonce: nonce,
      expires: t + NONCE_LIFE_S,
      answer: { header: PROOF_HEADER, endpoint: ANSWER_URL },
    },
  }));
}

// syntax: deny(r)          (js_content of @verdict_deny: `error_page 403 = @verdict_deny`)
// Sends what decide() chose: the block status and body, the challenge (challenge()), or
// $verdict_fail_closed_status. A 403 that Verdict did not cause (e.g. `deny` in the same
// location) stays a plain 403. A clearance cookie a valid proof earned goes out with any of them.
function deny(r) {
  const v = r.variables;
  const action = v.verdict_njs_action;
  r.headersOut['Cache-Control'] = 'no-store';
  if (v.verdict_njs_set_cookie) r.headersOut['Set-Cookie'] = v.verdict_njs_set_cookie;
  if (action === 'block' && v.verdict_njs_fail) {
    r.return(setting(r, 'fail_closed_status'));
  } else if (action === 'block') {
    let body = setting(r, 'block_body');
    if (body === '') body = '{"error":"blocked","request_id":"' + jsonEscape(v.request_id) + '"}';
    r.headersOut['Content-Type'] = 'application/json';
    r.return(setting(r, 'block_status'), body);
  } else if (action === 'challenge') {
    challenge(r);
  } else {
    r.return(403);
  }
}

function firstArg(a) {
  return Array.isArray(a) ? a[0] : a;
}

// syntax: answer(r)        (js_content of `location ^~ /.verdict/`, verdict-njs-server.conf)
// GET|POST /.verdict/answer?proof=<proof>[&return=<path>]: a valid proof earns the clearance
// cookie and a 303 to the return path (or 200 JSON with the token); a rejected one a 403 naming
// the check that failed. Known limit: the proof is not single-use here (njs 0.7.9 keeps nothing
// across requests): until its nonce expires it earns a token again, for the same client binding.
function answer(r) {
  r.headersOut['Cache-Control'] = 'no-store';
  if (r.uri !== ANSWER_URL) {
    r.return(404);
    return;
  }
  if (r.method !== 'GET' && r.method !== 'POST') {
    r.headersOut['Allow'] = 'GET, POST';
    r.return(405);
    return;
  }
  const proof = firstArg(r.args.proof);
  const back = firstArg(r.args['return']);
  const keys = clearanceKeys(r);
  const bind = clientBinding(r);
  const t = now();
  const p = checkProof(typeof proof === 'string' ? proof : '', keys, bind, t);
  if (p.why !== '') {
    r.headersOut['Content-Type'] = 'application/json';
    r.return(403, '{"error":"proof rejected","why":"' + p.why + '"}');
    return;
  }
  const token = issueToken(keys[0], bind, t, p.level, p.ttl);
  r.headersOut['Set-Cookie'] = cookieOf(r, token, p.ttl);
  if (back !== undefined) {
    r.return(303, sameSitePath(back));
    return;
  }
  r.headersOut['Content-Type'] = 'application/json';
  r.return(200, '{"clearance":"' + token + '","expires":' + (t + p.ttl) + ',"level":' + p.level + '}');
}

// syntax: headers(r)       (js_header_filter of guarded locations, verdict-njs-location.conf)
// Adds the cookie a valid X-Verdict-Proof earned to the upstream's answer, after the upstream's
// own Set-Cookie headers. (A header filter, not `add_header`: an add_header in the location would
// stop the server's own add_header lines, e.g. HSTS, from being inherited there.)
function headers(r) {
  const cookie = r.variables.verdict_njs_set_cookie;
  if (!cookie) return;
  const had = r.headersOut['Set-Cookie'];
  r.headersOut['Set-Cookie'] = had && had.length > 0 ? had.concat([cookie]) : [cookie];
}

export default {
  decide, deny, answer, headers,
  // the contract's pieces, for the test harness that runs spec/clearance-vectors.json in nginx
  clearance: { subnet, binding, mac, keyList, checkProof, checkToken, issueNonce, issueToken },
};
