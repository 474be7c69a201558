// Traffic line → DecideRequest, exactly as the Lua gateway builds it
// (gateway-plugin/lua/verdict/request.lua) behind the demo layout of scripts/lib/nginx.ts
// (defaultLocations). Keep the two in step: this module is how replay and the scorecard claim
// to show what the real gateway would do.
//
// Modeled: location choice (nginx rules: longest prefix, then regexes in order), per-location
// mode / route_tag / identity fields, selected header values (first occurrence, capped at 512),
// header names in arrival order (capped at 64), cookie names, the session cookie / bearer token /
// x-api-key / x-device-id / password as HMAC-SHA1, the identifier from a JSON or form body.
// Not modeled: TLS fields (a traffic line has none), HTTP/2 (names in table order), bodies over
// body_max_bytes (16 KiB).

import { createHmac } from 'node:crypto';
import type { DecideRequest, Mode } from '../../decision-service/src/wire/schema.ts';
import type { TrafficLine } from './format.ts';

export type LocationMode = 'inline' | 'async' | 'monitor' | 'off';

export interface GatewayLocation {
  /** nginx `location /prefix/` (prefix) or `location ~ regex` (regex). */
  readonly match: { prefix: string } | { regex: RegExp };
  readonly mode: LocationMode;
  readonly routeTag: string;
  readonly identityFields: readonly string[];
}

export interface GatewayOptions {
  readonly hmacKey: string;
  readonly locations: readonly GatewayLocation[];
  readonly sessionCookie: string;
  readonly deviceHeader: string;
  readonly apiKeyHeader: string;
  readonly passwordField: string;
  readonly queryMaxBytes: number;
  readonly headerNamesMax: number;
  readonly gatewayId: string;
}

const ID_FIELDS = ['username', 'phone', 'email'] as const;

/** The location layout of scripts/lib/nginx.ts defaultLocations() (the demo stack). */
export const DEMO_LOCATIONS: readonly GatewayLocation[] = Object.freeze([
  { match: { prefix: '/api/auth/' }, mode: 'inline', routeTag: 'auth', identityFields: ID_FIELDS },
  { match: { prefix: '/api/v1/login' }, mode: 'inline', routeTag: 'legacy-login', identityFields: ID_FIELDS },
  { match: { prefix: '/api/sms/' }, mode: 'inline', routeTag: 'sms', identityFields: ['phone'] },
  { match: { prefix: '/api/promo/' }, mode: 'inline', routeTag: 'promo', identityFields: [] },
  { match: { regex: /^\/api\/(orders|users)\// }, mode: 'inline', routeTag: '', identityFields: [] },
  { match: { regex: /^\/(internal|actuator)\// }, mode: 'inline', routeTag: '', identityFields: [] },
  { match: { prefix: '/api/' }, mode: 'inline', routeTag: '', identityFields: [] },
  { match: { prefix: '/static/' }, mode: 'off', routeTag: '', identityFields: [] },
  { match: { prefix: '/' }, mode: 'async', routeTag: '', identityFields: [] },
] satisfies GatewayLocation[]);

/** The test/demo HMAC key of scripts/lib/nginx.ts (renderConfig's default). */
export const DEMO_HMAC_KEY = 'verdict-test-hmac-key-0123456789';

export function gatewayOptions(overrides: Partial<GatewayOptions> = {}): GatewayOptions {
  return {
    hmacKey: DEMO_HMAC_KEY,
    locations: DEMO_LOCATIONS,
    sessionCookie: 'sid',
    deviceHeader: 'x-device-id',
    apiKeyHeader: 'x-api-key',
    passwordField: 'password',
    queryMaxBytes: 1024,
    headerNamesMax: 64,
    gatewayId: 'replay',
    ...overrides,
  };
}

/** nginx location selection: the longest matching prefix, unless a regex (in order) matches. */
export function locationFor(path: string, locations: readonly GatewayLocation[]): GatewayLocation | undefined {
  let best: GatewayLocation | undefined;
  let bestLen = -1;
  for (const l of locations) {
    if ('prefix' in l.match && path.startsWith(l.match.prefix) && l.match.prefix.length > bestLen) {
      best = l;
      bestLen = l.match.prefix.length;
    }
  }
  for (const l of locations) if ('regex' in l.match && l.match.regex.test(path)) return l;
  return best;
}

const SELECTED: Readonly<Record<string, keyof DecideRequest>> = {
  'user-agent': 'user_agent',
  accept: 'accept',
  'accept-language': 'accept_language',
  'accept-encoding': 'accept_encoding',
  referer: 'referer',
  origin: 'origin',
  'content-type': 'content_type',
  'sec-fetch-site': 'sec_fetch_site',
  'sec-fetch-mode': 'sec_fetch_mode',
  'sec-fetch-dest': 'sec_fetch_dest',
  'sec-fetch-user': 'sec_fetch_user',
  'sec-ch-ua': 'sec_ch_ua',
};
const MAX_VALUE = 512;
const MAX_IDENTIFIER = 256;
const MODE: Readonly<Record<Exclude<LocationMode, 'off'>, Mode>> = { inline: 'INLINE', async: 'ASYNC', monitor: 'MONITOR' };

export function hmacSha1(key: string, value: string): Buffer {
  return createHmac('sha1', key).update(value).digest();
}

export interface GatewayRequest {
  /** The location's mode; 'off' means the gateway does nothing for this request. */
  readonly mode: LocationMode;
  readonly req: DecideRequest;
}

/**
 * The DecideRequest the gateway sends for a traffic line. `requestId` plays nginx's
 * $request_id. The result has every field set, as the service sees it after decoding.
 */
export function toDecideRequest(line: TrafficLine, requestId: string, opts: GatewayOptions): GatewayRequest {
  const loc = locationFor(line.path, opts.locations);
  const mode: LocationMode = loc?.mode ?? 'off';
  const key = opts.hmacKey;
  const sel: Record<string, string> = {};
  const headerNames: string[] = [];
  const cookieNames: string[] = [];
  let hasAuthorization = false;
  let authScheme = '';
  let tokenHash: Buffer | undefined;
  let sessionHash: Buffer | undefined;
  let deviceHash: Buffer | undefined;
  let apiKey: string | undefined;

  for (const [rawName, value] of line.headers) {
    const name = rawName.toLowerCase();
    if (headerNames.length < opts.headerNamesMax) headerNames.push(name);
    const field = SELECTED[name];
    if (field) {
      if (sel[field] === undefined) sel[field] = value.length > MAX_VALUE ? value.slice(0, MAX_VALUE) : value;
    } else if (name === 'cookie') {
      for (const pair of value.split(';')) {
        const eq = pair.indexOf('=');
        const cname = (eq >= 0 ? pair.slice(0, eq) : pair).trim();
        if (cname === '') continue;
        cookieNames.push(cname);
        if (cname === opts.sessionCookie && !sessionHash) {
          const v = eq >= 0 ? pair.slice(eq + 1).trim() : '';
          if (v !== '') sessionHash = hmacSha1(key, v);
        }
      }
    } else if (name === 'authorization') {
      hasAuthorization = true;
      const m = /^(\S+)\s*(.*)$/s.exec(value);
      if (m) {
        authScheme = m[1]!.toLowerCase();
        if (m[2] !== '') tokenHash = hmacSha1(key, m[2]!);
      }
    } else if (name === opts.apiKeyHeader) {
      apiKey = value;
    } else if (name === opts.deviceHeader) {
      if (value !== '') deviceHash = hmacSha1(key, value);
    }
  }
  if (!tokenHash && apiKey) tokenHash = hmacSha1(key, apiKey);

  let identifier = '';
  let passwordHash: Buffer | undefined;
  const fields = loc?.identityFields ?? [];
  if (fields.length > 0 && (line.method === 'POST' || line.method === 'PUT' || line.method === 'PATCH') && line.body) {
    const ct = sel.content_type ?? '';
    // the Lua script parses JSON and urlencoded forms only
    if (ct.includes('json') || ct.includes('application/x-www-form-urlencoded')) {
      for (const f of fields) {
        let v = line.body[f];
        if (typeof v === 'number') v = v.toFixed(0);
        if (typeof v === 'string' && v !== '') {
          identifier = v.length > MAX_IDENTIFIER ? v.slice(0, MAX_IDENTIFIER) : v;
          break;
        }
      }
      const pw = line.body[opts.passwordField];
      if (typeof pw === 'string' && pw !== '') passwordHash = hmacSha1(key, pw);
    }
  }

  const query = line.query.length > opts.queryMaxBytes ? line.query.slice(0, opts.queryMaxBytes) : line.query;
  const req: DecideRequest = {
    request_id: requestId,
    ts_ms: line.ts,
    client_ip: line.ip,
    method: line.method,
    host: line.host,
    path: line.path,
    query,
    route_tag: loc?.routeTag ?? '',
    http_version: '1.1',
    tls_protocol: '',
    tls_cipher: '',
    user_agent: sel.user_agent ?? '',
    accept: sel.accept ?? '',
    accept_language: sel.accept_language ?? '',
    accept_encoding: sel.accept_encoding ?? '',
    referer: sel.referer ?? '',
    origin: sel.origin ?? '',
    content_type: sel.content_type ?? '',
    sec_fetch_site: sel.sec_fetch_site ?? '',
    sec_fetch_mode: sel.sec_fetch_mode ?? '',
    sec_fetch_dest: sel.sec_fetch_dest ?? '',
    sec_fetch_user: sel.sec_fetch_user ?? '',
    sec_ch_ua: sel.sec_ch_ua ?? '',
    header_names: headerNames,
    cookie_names: cookieNames,
    has_authorization: hasAuthorization,
    auth_scheme: authScheme,
    session_hash: sessionHash,
    token_hash: tokenHash,
    device_hash: deviceHash,
    identifier,
    password_hash: passwordHash,
    mode: mode === 'off' ? 'INLINE' : MODE[mode],
    gateway_id: opts.gatewayId,
    // the gateway sends its budget on inline calls; replays carry simulated times, which the
    // service's deadline check would read as long expired, so they carry no deadline
    budget_ms: 0,
  };
  return { mode, req };
}
