// API inventory learned from traffic: path templates (ids collapsed), first/last seen, volumes,
// share of requests with credentials, statuses (identity and object routes, whose outcomes are
// remembered), whether the policy declares the route (shadow
// otherwise) or marks it deprecated (zombie), and whether an identity endpoint's answers reveal
// if an account exists (an enumeration oracle). Bounded: at most `max` templates, least
// recently seen evicted; and at most `perRoute` templates per route (method + policy route, the
// shadow fallback included), because paths whose segments are not ids (slugs, user names,
// file names, a scanner's random paths) each make a template: beyond the cap, a route's new
// paths are counted under one "/**" entry instead of evicting the endpoints already learned.
// Issue 17: what each endpoint's responses give away (exposure.ts), from the response samples
// gateways report, and the flags that follow.

import { LRUCache } from 'lru-cache';
import type { CompiledResponses } from '../config/policy.ts';
import { shedLru } from '../state/bounded-map.ts';
import type { Outcome } from '../wire/schema.ts';
import { EndpointExposureStats, type ExposureSink, type ExposureView } from './exposure.ts';
import type { RequestFeatures } from './signal.ts';

// Also segments that may be a sensitive value (issue 17: templates name endpoints in metrics and
// risk events): a resident ID number ending in X, anything with an "@" (an e-mail address).
const ID_SEGMENT = /^(\d+|\d{17}[Xx]|[^/]*(@|%40)[^/]*|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,}|(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{20,})$/i;

/** "/api/orders/500123" → "/api/orders/{id}". */
export function templateOf(path: string): string {
  if (!/\d|@|%40/.test(path)) return path;
  const segs = path.split('/');
  for (let i = 0; i < segs.length; i++) if (ID_SEGMENT.test(segs[i] ?? '')) segs[i] = '{id}';
  return segs.join('/');
}

/** Methods the inventory keeps apart; anything else (the wire allows any token) is "OTHER". */
const METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE']);

/** The farthest a Date reaches either side of 1970 (ms): ±100,000,000 days. */
const MAX_DATE_MS = 8.64e15;

/**
 * ISO text of an epoch-ms time, clamped into Date's range: snapshot() must not throw on any number
 * stored (ts_ms is bounded and clamped to the clock before it gets here, but a clock or a path
 * that forgets that must not make the inventory answer 500 until the entry is evicted).
 */
function isoTime(ms: number): string {
  const t = Number.isFinite(ms) ? Math.min(MAX_DATE_MS, Math.max(-MAX_DATE_MS, ms)) : 0;
  return new Date(t).toISOString();
}

/** The template a route's paths are counted under once the route has `perRoute` templates. */
export const OVERFLOW_TEMPLATE = '/**';

interface Entry {
  method: string;
  /** "<method> <route>": the per-route template count this entry holds a place in ("" for an overflow entry). */
  routeKey: string;
  template: string;
  route: string;
  routeClass: string;
  declared: boolean;
  deprecated: boolean;
  firstSeen: number;
  lastSeen: number;
  requests: number;
  withCredentials: number;
  withIdentifier: number;
  statuses: Map<number, number>;
  /** What inspected responses held (undefined until one was reported). */
  exposure: EndpointExposureStats | undefined;
}

export interface InventoryEntry {
  readonly method: string;
  readonly template: string;
  readonly route: string | null;
  readonly route_class: string;
  readonly status: 'declared' | 'shadow' | 'zombie';
  readonly first_seen: string;
  readonly last_seen: string;
  readonly requests: number;
  readonly credentials_share: number;
  readonly statuses: Record<string, number>;
  /** Answers differ for existing and unknown accounts (e.g. 401 vs 404, 409 vs 201). */
  readonly reveals_account_existence: boolean;
  /** Issue 17: what the endpoint's inspected responses gave away; null when none was inspected. */
  readonly exposure: ExposureView | null;
}

/** The endpoint's name in events and metrics: "GET /api/users/{id}/profile", "GET /** (route)" for an overflow entry. */
function endpointName(e: Entry): string {
  return e.routeKey || e.template !== OVERFLOW_TEMPLATE ? `${e.method} ${e.template}` : `${e.method} ${e.template} (${e.route})`;
}

export class Inventory {
  private readonly entries: LRUCache<string, Entry>;
  /** Templates held per "<method> <route>" (bounded: methods × policy routes with live entries). */
  private readonly perRouteCount = new Map<string, number>();
  private sink: ExposureSink | undefined;

  constructor(max = 5000, private readonly perRoute = 200) {
    this.entries = new LRUCache({
      max,
      dispose: (e) => {
        if (!e.routeKey) return;
        const n = (this.perRouteCount.get(e.routeKey) ?? 1) - 1;
        if (n > 0) this.perRouteCount.set(e.routeKey, n);
        else this.perRouteCount.delete(e.routeKey);
      },
    });
  }

  /** Counts a request; returns its entry's key (for outcome()). */
  record(f: RequestFeatures, fallbackRouteName: string): string {
    const method = METHODS.has(f.method) ? f.method : 'OTHER';
    let template = templateOf(f.req.path);
    let key = `${method} ${template}`;
    let e = this.entries.get(key);
    if (!e) {
      const routeKey = `${method} ${f.route.name}`;
      const held = this.perRouteCount.get(routeKey) ?? 0;
      const overflow = held >= this.perRoute;
      if (overflow) {
        template = OVERFLOW_TEMPLATE;
        key = `${method} ${OVERFLOW_TEMPLATE} ${f.route.name}`;
        e = this.entries.get(key);
      } else {
        this.perRouteCount.set(routeKey, held + 1);
      }
      if (!e) {
        const declared = f.route.name !== fallbackRouteName;
        e = {
          method, routeKey: overflow ? '' : routeKey, template, route: f.route.name, routeClass: f.routeClass, declared, deprecated: f.route.deprecated,
          firstSeen: f.now, lastSeen: f.now, requests: 0, withCredentials: 0, withIdentifier: 0, statuses: new Map(), exposure: undefined,
        };
        this.entries.set(key, e);
      }
    }
    e.lastSeen = f.now;
    e.requests++;
    if (f.hasCredentials) e.withCredentials++;
    if (f.identifierHash) e.withIdentifier++;
    return key;
  }

  /** Who hears of inspected responses (metrics) and newly exposed endpoints (risk events); one at a time, the last set wins. */
  setSink(sink: ExposureSink | undefined): void {
    this.sink = sink;
  }

  /**
   * Counts an outcome: its status for the entry record() returned (`key`: the request this
   * service decided for the reporting gateway), and its response sample (when `responses`, the
   * policy's section, is given) for that entry — or, when the request is not remembered (decided
   * from the gateway's cache, on a route class no detector watches, or forgotten), for the entry
   * of the outcome's own method and path. A gateway can thereby add samples only to endpoints
   * already learned, never create one.
   */
  outcome(key: string | undefined, o: Outcome, responses?: CompiledResponses): void {
    let e = key === undefined ? undefined : this.entries.peek(key);
    if (e && o.status !== 0) e.statuses.set(o.status, (e.statuses.get(o.status) ?? 0) + 1);
    const sample = o.response;
    if (!sample || !responses) return;
    if (!e && o.path) {
      const q = o.path.indexOf('?'); // the gateways send the path without its query; a query must not hide the endpoint
      e = this.entries.peek(`${METHODS.has(o.method) ? o.method : 'OTHER'} ${templateOf(q < 0 ? o.path : o.path.slice(0, q))}`);
    }
    if (!e) return;
    e.exposure ??= new EndpointExposureStats(endpointName(e));
    e.exposure.add(sample, o.bytes_sent, responses, this.sink);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Memory pressure: forgets the least recently seen `fraction` of the entries. */
  shed(fraction: number): number {
    return shedLru(this.entries, fraction);
  }

  /** `responses`: the policy's section, for the exposure flags (no exposure views without it). */
  snapshot(responses?: CompiledResponses): InventoryEntry[] {
    const out: InventoryEntry[] = [];
    const maskedSomewhere = new Set<string>();
    if (responses) for (const e of this.entries.values()) e.exposure?.maskedKinds(maskedSomewhere);
    for (const e of this.entries.values()) {
      const has = (s: number) => (e.statuses.get(s) ?? 0) > 0;
      // An identity endpoint that says "not found" to some identifiers and something else
      // (wrong password, already registered, sent) to others tells callers who has an account.
      const oracle = e.withIdentifier > 0 && ((has(404) && (has(401) || has(200) || has(409) || has(201))) || (has(409) && has(201)));
      out.push({
        method: e.method,
        template: e.template,
        route: e.declared ? e.route : null,
        route_class: e.routeClass,
        status: !e.declared ? 'shadow' : e.deprecated ? 'zombie' : 'declared',
        first_seen: isoTime(e.firstSeen),
        last_seen: isoTime(e.lastSeen),
        requests: e.requests,
        credentials_share: Math.round((1000 * e.withCredentials) / Math.max(1, e.requests)) / 1000,
        statuses: Object.fromEntries([...e.statuses].sort((a, b) => a[0] - b[0]).map(([k, v]) => [String(k), v])),
        reveals_account_existence: oracle,
        exposure: e.exposure && responses ? e.exposure.view(responses, maskedSomewhere) : null,
      });
    }
    return out.sort((a, b) => b.requests - a.requests);
  }
}
