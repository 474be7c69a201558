// The gateway settings that shape a DecideRequest, with config.lua's names, defaults and
// parsing: the http-level options of config.init{} and the per-location $verdict_<name>
// variables. The reference request builder (request-builder.ts) reads them; GET /v1/auth takes
// the location ones from its query string.

export type LocationMode = 'inline' | 'async' | 'monitor' | 'off';

export interface GatewaySettings {
  // http level (config.init{})
  /** hmac_key: the key of the session / token / device / password hashes (HMAC-SHA1). */
  readonly hmacKey: string | Uint8Array;
  /** query_max_bytes: query string bytes sent. */
  readonly queryMaxBytes: number;
  /** body_max_bytes: largest body parsed for the identifier and password. */
  readonly bodyMaxBytes: number;
  /** header_names_max: header names sent, in arrival order. */
  readonly headerNamesMax: number;
  // location level ($verdict_<name>)
  /** mode: async requests go out from the log phase, without identity fields or budget. */
  readonly mode: LocationMode;
  /** budget_ms: sent as budget_ms on the calls that wait for the answer (inline, monitor). */
  readonly budgetMs: number;
  /** route_tag */
  readonly routeTag: string;
  /** identity_fields: body fields holding the identifier, in order; empty = not an identity route. */
  readonly identityFields: readonly string[];
  /** password_field */
  readonly passwordField: string;
  /** device_header (lower-case) */
  readonly deviceHeader: string;
  /** session_cookie */
  readonly sessionCookie: string;
  /** api_key_header (lower-case) */
  readonly apiKeyHeader: string;
}

/** config.lua's defaults (every setting but the key, which has none). */
export const GATEWAY_DEFAULTS: Readonly<Omit<GatewaySettings, 'hmacKey'>> = Object.freeze({
  queryMaxBytes: 1024,
  bodyMaxBytes: 16384,
  headerNamesMax: 64,
  mode: 'inline',
  budgetMs: 25,
  routeTag: '',
  identityFields: Object.freeze([]) as readonly string[],
  passwordField: 'password',
  deviceHeader: 'x-device-id',
  sessionCookie: 'sid',
  apiKeyHeader: 'x-api-key',
});

export function gatewaySettings(hmacKey: string | Uint8Array, overrides: Partial<Omit<GatewaySettings, 'hmacKey'>> = {}): GatewaySettings {
  return { ...GATEWAY_DEFAULTS, ...overrides, hmacKey };
}

const MODES: readonly string[] = ['inline', 'async', 'monitor', 'off'];
// Lua's %w is ASCII alphanumerics (the C locale nginx runs in)
const HEADER_NAME = /^[A-Za-z0-9_-]*$/;
const LUA_SPACE = /[\t\n\v\f\r ]/;

type Parsed = { ok: true; value: unknown } | { ok: false };
const invalid: Parsed = { ok: false };

// config.lua parse_location() by option kind
const PARSERS: Readonly<Record<string, readonly [keyof GatewaySettings, (raw: string) => Parsed]>> = {
  mode: ['mode', (raw) => (MODES.includes(raw.toLowerCase()) ? { ok: true, value: raw.toLowerCase() } : invalid)],
  budget_ms: ['budgetMs', (raw) => {
    const n = luaNumber(raw);
    return Number.isInteger(n) && n >= 1 && n <= 60000 ? { ok: true, value: n } : invalid;
  }],
  route_tag: ['routeTag', (raw) => ({ ok: true, value: raw })],
  identity_fields: ['identityFields', (raw) => ({ ok: true, value: raw.split(/[,\t\n\v\f\r ]+/).filter((s) => s !== '') })],
  password_field: ['passwordField', (raw) => ({ ok: true, value: raw })],
  device_header: ['deviceHeader', (raw) => (HEADER_NAME.test(raw) ? { ok: true, value: raw.toLowerCase() } : invalid)],
  session_cookie: ['sessionCookie', (raw) => ({ ok: true, value: raw })],
  api_key_header: ['apiKeyHeader', (raw) => (HEADER_NAME.test(raw) ? { ok: true, value: raw.toLowerCase() } : invalid)],
};

/** Lua's tonumber() for the decimal text a setting holds (surrounding whitespace allowed). */
function luaNumber(raw: string): number {
  const t = raw.replace(/^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g, '');
  return t === '' || LUA_SPACE.test(t) ? Number.NaN : Number(t);
}

/**
 * `base` with the location options `values` names ($verdict_<name> without the prefix), parsed
 * as config.lua's get() parses them: an empty value keeps base's; an invalid one too, and is
 * reported to `onInvalid`. Names the builder does not read are ignored.
 */
export function withLocationOptions(
  base: GatewaySettings,
  values: Readonly<Record<string, string | undefined>>,
  onInvalid?: (name: string, raw: string) => void,
): GatewaySettings {
  const out: Record<string, unknown> = { ...base };
  for (const [name, raw] of Object.entries(values)) {
    const p = PARSERS[name];
    if (!p || raw === undefined || raw === '') continue;
    const r = p[1](raw);
    if (r.ok) out[p[0]] = r.value;
    else onInvalid?.(name, raw);
  }
  return out as unknown as GatewaySettings;
}
