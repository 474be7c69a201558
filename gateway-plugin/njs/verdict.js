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
// what the parent's proxy_set_header lines (X-Verdict-Score / -Reasons / -Fail-Open) and deny()
// read, and what an access log can record.
//
// Limits of njs 0.7.9 (gateway-plugin/README.md, "The njs variant"):
//  * a VM lives for one request: no module state survives it, and js_shared_dict_zone only
//    arrived in 0.8.0. So: no verdict cache, no circuit breaker, no counters, no rate-limited log.
//  * a request's VM is finalised only when its last pending event ends, and ngx.fetch cannot be
//    cancelled: a Promise.race with setTimeout decides *what* happens at the budget, but the
//    subrequest still waits for the fetch. The hard deadline is therefore js_fetch_timeout of the
//    internal location the budget maps to ($verdict_njs_rung, a ladder of locations).
//  * ngx.fetch: TCP to an IP literal only (no unix sockets, no keep-alive, no resolver here).
//  * the request body is not read before an auth_request subrequest: identity routes cannot send
//    the identifier or the password hash. Nothing runs after the response: no outcomes, and async
//    mode has nothing to send the metadata with.

import crypto from 'crypto';

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

// syntax: req = build(r, mode, key)
// The DecideRequest (JSON form) for the parent of this auth_request subrequest. The subrequest
// carries the parent's headers (r.rawHeadersIn keeps their arrival order and case); the parent's
// URI and arguments come from $verdict_njs_uri / $verdict_njs_args (verdict-njs-location.conf),
// because $uri and $args here are the subrequest's own.
function build(r, mode, key) {
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
  return {
    action: action,
    score: typeof v.score === 'number' ? v.score : 0,
    reasons: Array.isArray(v.reasons) ? v.reasons : [],
  };
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
    r.return(403); // block / challenge: deny() sends the location's response
  }

  let body;
  try {
    const req = build(r, mode, key);
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

// syntax: deny(r)          (js_content of @verdict_deny: `error_page 403 = @verdict_deny`)
// Sends what decide() chose: the block status and body, the challenge (429 + Retry-After, or a
// 302 to $verdict_challenge_url), or $verdict_fail_closed_status. A 403 that Verdict did not
// cause (e.g. `deny` in the same location) stays a plain 403.
function deny(r) {
  const v = r.variables;
  const action = v.verdict_njs_action;
  r.headersOut['Cache-Control'] = 'no-store';
  if (action === 'block' && v.verdict_njs_fail) {
    r.return(setting(r, 'fail_closed_status'));
  } else if (action === 'block') {
    let body = setting(r, 'block_body');
    if (body === '') body = '{"error":"blocked","request_id":"' + jsonEscape(v.request_id) + '"}';
    r.headersOut['Content-Type'] = 'application/json';
    r.return(setting(r, 'block_status'), body);
  } else if (action === 'challenge') {
    const url = setting(r, 'challenge_url');
    if (url !== '') {
      r.return(302, url);
      return;
    }
    const retry = setting(r, 'challenge_retry_after');
    r.headersOut['Content-Type'] = 'application/json';
    r.headersOut['Retry-After'] = String(retry);
    r.return(setting(r, 'challenge_status'),
      '{"error":"challenge","request_id":"' + jsonEscape(v.request_id) + '","retry_after":' + retry + '}');
  } else {
    r.return(403);
  }
}

export default { decide, deny };
