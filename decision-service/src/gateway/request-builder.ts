// The TypeScript reference of the gateway's request builder: raw request + gateway settings →
// the DecideRequest the Lua gateway sends (gateway-plugin/lua/verdict/request.lua, what
// production runs; handler.lua adds budget_ms to the calls that wait). Replay, the bench mix and
// GET /v1/auth build their requests here, so none of them keeps its own copy of the mapping.
//
// Pure and deterministic: everything nginx would read at request time (request id, clock,
// worker id) comes in with the raw request. The result is what the service holds after decoding
// the gateway's protobuf: strings are the UTF-8 text of the bytes sent, hashes are 20-byte
// Buffers, absent values are '' / false / undefined.
//
// Byte-exact where Lua is: caps count bytes (a cap may cut a UTF-8 sequence; the cut bytes
// decode as U+FFFD, as in the service), lower-casing and trimming are ASCII-only, the hashes
// are HMAC-SHA1 of the bytes received. Header strings from node's HTTP parser carry one byte per
// character: say so with `encoding: 'latin1'`.
//
// Known differences from Lua (inputs no gateway can reproduce from a list of pairs): on HTTP/2
// and later nginx hands Lua the headers as a hash table, so its header_names are the distinct
// names in hash order (here: in first-seen order); lua-cjson accepts NaN, Infinity and hex
// numbers in JSON bodies, which JSON.parse refuses (no identifier here).

import type { DecideRequest, Mode } from '../wire/schema.ts';
import { readIdentity } from './identity.ts';
import { keyedHash } from './keyed-hash.ts';
import type { GatewaySettings, LocationMode } from './settings.ts';

/** What nginx knows about a request when the verdict script runs (access phase). */
export interface RawRequest {
  /** $request_id */
  readonly requestId: string;
  /** the gateway's clock, epoch ms (0: let the service stamp it) */
  readonly tsMs: number;
  /** $remote_addr, after real-IP */
  readonly clientIp: string;
  readonly method: string;
  /** $host */
  readonly host: string;
  /** $uri: the decoded, normalised path, without the query */
  readonly path: string;
  /** $args: the query string as received, without '?' ('' when none) */
  readonly query: string;
  /** ngx.req.http_version() as text: '1.0', '1.1', '2.0'; '' when unknown (read as HTTP/1) */
  readonly httpVersion: string;
  /** $ssl_protocol / $ssl_cipher ('' or absent without TLS) */
  readonly tlsProtocol?: string;
  readonly tlsCipher?: string;
  /** [name, value] per header line, in arrival order, as received (any case) */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /**
   * How the strings of this request (path, query, host, headers, a string body) stand for the
   * bytes received: 'utf8' (default; text such as traffic files) or 'latin1' (one character per
   * byte: node's HTTP parser).
   */
  readonly encoding?: 'utf8' | 'latin1';
  /** the request body as read into memory; read only on identity routes */
  readonly body?: string | Uint8Array;
  /** the worker's id (config.gateway_id()) */
  readonly gatewayId: string;
  /** what the gateway's check of the verdict_clearance cookie found (clearance.ts checkToken);
   *  absent = no token */
  readonly clearance?: { readonly state: DecideRequest['clearance']; readonly level?: number; readonly ageS?: number };
}

/** request.lua's SELECTED: header → DecideRequest field, values capped at MAX_VALUE bytes. */
const SELECTED = new Map<string, SelectedField>([
  ['user-agent', 'user_agent'], ['accept', 'accept'], ['accept-language', 'accept_language'],
  ['accept-encoding', 'accept_encoding'], ['referer', 'referer'], ['origin', 'origin'],
  ['content-type', 'content_type'], ['sec-fetch-site', 'sec_fetch_site'],
  ['sec-fetch-mode', 'sec_fetch_mode'], ['sec-fetch-dest', 'sec_fetch_dest'],
  ['sec-fetch-user', 'sec_fetch_user'], ['sec-ch-ua', 'sec_ch_ua'],
]);
type SelectedField = 'user_agent' | 'accept' | 'accept_language' | 'accept_encoding' | 'referer' | 'origin'
  | 'content_type' | 'sec_fetch_site' | 'sec_fetch_mode' | 'sec_fetch_dest' | 'sec_fetch_user' | 'sec_ch_ua';
const MAX_VALUE = 512;
/** ngx.req.get_headers(100): the header lines Lua sees on HTTP/2 and later. */
const TABLE_MAX_HEADERS = 100;
const MODE_FIELD: Readonly<Record<LocationMode, Mode>> = { inline: 'INLINE', async: 'ASYNC', monitor: 'MONITOR', off: 'INLINE' };

const ASCII = /^[\x00-\x7f]*$/;
const UPPER = /[A-Z]/;
// Lua's %s: the C locale's isspace()
const LUA_TRIM = /^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g;
const AUTHORIZATION = /^([^\t\n\v\f\r ]+)[\t\n\v\f\r ]*([\s\S]*)$/;

type Encoding = 'utf8' | 'latin1';

/** The text the service decodes from the bytes `s` stands for. */
function text(s: string, enc: Encoding): string {
  return enc === 'utf8' || ASCII.test(s) ? s : Buffer.from(s, 'latin1').toString();
}

/** Lua's `#s > max and sub(s, 1, max) or s`, as the service decodes it. */
function capped(s: string, max: number, enc: Encoding): string {
  if (ASCII.test(s)) return s.length > max ? s.slice(0, max) : s;
  const b = Buffer.from(s, enc);
  return b.length > max ? b.subarray(0, max).toString() : enc === 'utf8' ? s : b.toString();
}

/** string.lower: ASCII letters only. */
function lower(s: string): string {
  if (!UPPER.test(s)) return s;
  return ASCII.test(s) ? s.toLowerCase() : s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/** Leading SP/HT and trailing CR/SP/HT, as scan_raw slices a value out of the raw header. */
function trimValue(v: string): string {
  let a = 0;
  let b = v.length;
  while (a < b && (v.charCodeAt(a) === 32 || v.charCodeAt(a) === 9)) a++;
  while (b > a && (v.charCodeAt(b - 1) === 32 || v.charCodeAt(b - 1) === 9 || v.charCodeAt(b - 1) === 13)) b--;
  return a === 0 && b === v.length ? v : v.slice(a, b);
}

/**
 * The DecideRequest the Lua gateway builds for `raw` under `settings` (request.build(mode,
 * with_identity) plus handler.lua's budget_ms). Identity fields are read from the body when the
 * location has them and its mode waits for the answer (not async), as the handler asks.
 */
export function buildDecideRequest(raw: RawRequest, settings: GatewaySettings): DecideRequest {
  const enc: Encoding = raw.encoding ?? 'utf8';
  const key = settings.hmacKey;
  const req: DecideRequest = {
    request_id: raw.requestId,
    ts_ms: raw.tsMs,
    client_ip: raw.clientIp,
    method: raw.method,
    host: text(raw.host, enc),
    path: text(raw.path, enc),
    query: capped(raw.query, settings.queryMaxBytes, enc),
    route_tag: settings.routeTag,
    http_version: raw.httpVersion,
    tls_protocol: raw.tlsProtocol ?? '',
    tls_cipher: raw.tlsCipher ?? '',
    user_agent: '', accept: '', accept_language: '', accept_encoding: '', referer: '', origin: '',
    content_type: '', sec_fetch_site: '', sec_fetch_mode: '', sec_fetch_dest: '', sec_fetch_user: '', sec_ch_ua: '',
    header_names: [],
    cookie_names: [],
    has_authorization: false,
    auth_scheme: '',
    session_hash: undefined,
    token_hash: undefined,
    device_hash: undefined,
    identifier: '',
    password_hash: undefined,
    mode: MODE_FIELD[settings.mode],
    gateway_id: raw.gatewayId,
    budget_ms: settings.mode === 'async' ? 0 : settings.budgetMs,
    clearance: raw.clearance?.state ?? 'NONE',
    clearance_level: raw.clearance?.state === 'VALID' ? raw.clearance.level ?? 0 : 0,
    clearance_age_s: raw.clearance?.state === 'VALID' ? raw.clearance.ageS ?? 0 : 0,
  };

  // the cookie name to hash, as the bytes the header strings stand for
  const sessionCookie = enc === 'latin1' ? Buffer.from(settings.sessionCookie).toString('latin1') : settings.sessionCookie;
  const { deviceHeader, apiKeyHeader, headerNamesMax } = settings;
  // HTTP/2+: get_headers(100), one entry per distinct name
  const table = Number(raw.httpVersion) >= 2;
  const seenNames = table ? new Set<string>() : undefined;
  const seenFields = new Set<SelectedField>();
  let apiKey: string | undefined;
  const headers = raw.headers;
  const count = table ? Math.min(headers.length, TABLE_MAX_HEADERS) : headers.length;
  for (let i = 0; i < count; i++) {
    const [rawName, rawValue] = headers[i] as readonly [string, string];
    const name = lower(rawName);
    if (req.header_names.length < headerNamesMax && (!seenNames || !seenNames.has(name))) req.header_names.push(text(name, enc));
    seenNames?.add(name);
    const field = SELECTED.get(name);
    if (field !== undefined) {
      if (!seenFields.has(field)) {
        seenFields.add(field);
        req[field] = capped(trimValue(rawValue), MAX_VALUE, enc);
      }
    } else if (name === 'cookie') {
      for (const pair of trimValue(rawValue).split(';')) {
        const eq = pair.indexOf('=');
        const cname = (eq >= 0 ? pair.slice(0, eq) : pair).replace(LUA_TRIM, '');
        if (cname === '') continue;
        req.cookie_names.push(text(cname, enc));
        if (cname === sessionCookie && req.session_hash === undefined) {
          const v = eq >= 0 ? pair.slice(eq + 1).replace(LUA_TRIM, '') : '';
          if (v !== '') req.session_hash = keyedHash(key, v, enc);
        }
      }
    } else if (name === 'authorization') {
      req.has_authorization = true;
      const m = AUTHORIZATION.exec(trimValue(rawValue));
      if (m) {
        req.auth_scheme = text(lower(m[1] as string), enc);
        if (m[2] !== '') req.token_hash = keyedHash(key, m[2] as string, enc);
      }
    } else if (name === apiKeyHeader) {
      apiKey = trimValue(rawValue); // the last one counts
    } else if (name === deviceHeader) {
      const v = trimValue(rawValue);
      if (v !== '' && req.device_hash === undefined) req.device_hash = keyedHash(key, v, enc);
    }
  }
  if (req.token_hash === undefined && apiKey) req.token_hash = keyedHash(key, apiKey, enc);

  if (settings.identityFields.length > 0 && settings.mode !== 'async') {
    const body = typeof raw.body === 'string' ? Buffer.from(raw.body, enc) : raw.body;
    const id = readIdentity(
      { method: raw.method, contentType: req.content_type, contentLength: firstValue(raw.headers, 'content-length'), body },
      settings,
    );
    if (id) {
      req.identifier = id.identifier;
      req.password_hash = id.passwordHash;
    }
  }
  return req;
}

/** The first value of a header ($http_<name>), trimmed. */
function firstValue(headers: RawRequest['headers'], name: string): string | undefined {
  for (const [n, v] of headers) if (lower(n) === name) return trimValue(v);
  return undefined;
}
