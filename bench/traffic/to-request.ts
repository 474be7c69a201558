// Traffic line → DecideRequest, as the Lua gateway builds it behind the demo layout of
// scripts/lib/nginx.ts (defaultLocations): this module models nginx's part (the location a path
// falls into, its settings, the body bytes a client sends) and leaves the mapping itself to the
// reference builder the gateway is tested against (decision-service/src/gateway/). Replay and
// the scorecard show what the real gateway would do only as far as this is true.
//
// Not modeled: TLS fields (a traffic line has none), HTTP/2 (names in table order), nginx's
// normalisation of the path and Host (a traffic line carries them as sent).

import { buildDecideRequest } from '../../decision-service/src/gateway/request-builder.ts';
import { gatewaySettings, type GatewaySettings, type LocationMode } from '../../decision-service/src/gateway/settings.ts';
import type { DecideRequest } from '../../decision-service/src/wire/schema.ts';
import { headerValue, type TrafficLine } from './format.ts';
import { CHALLENGE_DEFAULTS, type ChallengeSettings, type ClearanceCheck } from './gateway-clearance.ts';

export type { LocationMode };

export interface GatewayLocation {
  /** nginx `location /prefix/` (prefix) or `location ~ regex` (regex). */
  readonly match: { prefix: string } | { regex: RegExp };
  readonly mode: LocationMode;
  readonly routeTag: string;
  readonly identityFields: readonly string[];
  /** $verdict_challenge_* / $verdict_clearance_ttl_s / $verdict_cleared set in this location (else the spec's defaults) */
  readonly challenge?: Partial<ChallengeSettings>;
}

/** The gateway's settings (http level, location defaults), its locations and its worker id. */
export interface GatewayOptions extends GatewaySettings {
  readonly locations: readonly GatewayLocation[];
  readonly gatewayId: string;
}

const ID_FIELDS = ['username', 'phone', 'email'] as const;

/** The location layout of scripts/lib/nginx.ts defaultLocations() (the demo stack). */
export const DEMO_LOCATIONS: readonly GatewayLocation[] = Object.freeze([
  { match: { prefix: '/api/auth/' }, mode: 'inline', routeTag: 'auth', identityFields: ID_FIELDS, challenge: { cleared: 'inline' } },
  { match: { prefix: '/api/v1/login' }, mode: 'inline', routeTag: 'legacy-login', identityFields: ID_FIELDS, challenge: { cleared: 'inline' } },
  { match: { prefix: '/api/sms/' }, mode: 'inline', routeTag: 'sms', identityFields: ['phone'], challenge: { cleared: 'inline' } },
  { match: { prefix: '/api/promo/' }, mode: 'inline', routeTag: 'promo', identityFields: [], challenge: { cleared: 'inline' } },
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
    ...gatewaySettings(DEMO_HMAC_KEY),
    // the gateway sends its budget on inline calls; replays carry simulated times, which the
    // service's deadline check would read as long expired, so they carry no deadline
    budgetMs: 0,
    locations: DEMO_LOCATIONS,
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

/**
 * The body bytes a client sends for a traffic line's parsed body: urlencoded under a form
 * Content-Type, JSON otherwise (as the HTTP driver sends them); none for GET and HEAD.
 */
export function lineBody(line: TrafficLine): string | undefined {
  if (!line.body || line.method === 'GET' || line.method === 'HEAD') return undefined;
  return (headerValue(line, 'content-type') ?? '').includes('x-www-form-urlencoded')
    ? new URLSearchParams(Object.entries(line.body).map(([k, v]) => [k, String(v)])).toString()
    : JSON.stringify(line.body);
}

export interface GatewayRequest {
  /** The location's mode; 'off' means the gateway does nothing for this request. */
  readonly mode: LocationMode;
  readonly req: DecideRequest;
  /** The location's challenge settings. */
  readonly challenge: ChallengeSettings;
}

const NO_LOCATION: GatewayLocation = { match: { prefix: '' }, mode: 'off', routeTag: '', identityFields: [] };

// a location's settings, built once per gateway
const locationSettings = new WeakMap<GatewayOptions, Map<GatewayLocation, GatewaySettings>>();
const challengeSettings = new WeakMap<GatewayLocation, ChallengeSettings>();

function challengeOf(loc: GatewayLocation): ChallengeSettings {
  if (!loc.challenge) return CHALLENGE_DEFAULTS;
  let s = challengeSettings.get(loc);
  if (!s) {
    s = Object.freeze({ ...CHALLENGE_DEFAULTS, ...loc.challenge });
    challengeSettings.set(loc, s);
  }
  return s;
}

function settingsOf(opts: GatewayOptions, loc: GatewayLocation): GatewaySettings {
  let byLoc = locationSettings.get(opts);
  if (!byLoc) {
    byLoc = new Map();
    locationSettings.set(opts, byLoc);
  }
  let s = byLoc.get(loc);
  if (!s) {
    s = { ...opts, mode: loc.mode, routeTag: loc.routeTag, identityFields: loc.identityFields };
    byLoc.set(loc, s);
  }
  return s;
}

/**
 * The DecideRequest the gateway sends for a traffic line. `requestId` plays nginx's
 * $request_id; `clearance` is what the gateway's check of the line's verdict_clearance cookie
 * found (gateway-clearance.ts; absent: no cookie). The result has every field set, as the
 * service sees it after decoding.
 */
export function toDecideRequest(line: TrafficLine, requestId: string, opts: GatewayOptions, clearance?: ClearanceCheck): GatewayRequest {
  const loc = locationFor(line.path, opts.locations) ?? NO_LOCATION;
  const settings = settingsOf(opts, loc);
  const req = buildDecideRequest({
    requestId,
    tsMs: line.ts,
    clientIp: line.ip,
    method: line.method,
    host: line.host,
    path: line.path,
    query: line.query,
    httpVersion: '1.1',
    headers: line.headers,
    // only identity locations read it
    body: loc.identityFields.length > 0 ? lineBody(line) : undefined,
    gatewayId: opts.gatewayId,
    clearance: clearance && clearance.state !== 'NONE' ? clearance : undefined,
  }, settings);
  return { mode: loc.mode, req, challenge: challengeOf(loc) };
}
