// What every campaign generator shares: the window it runs in, where its traffic comes from
// (a pool of rented servers, a rotating proxy network, a few fixed hosts) and its tooling.

import { carrierPool, formLength, jsonLength, vpnPool, type GenContext, type SimEnv } from '../simulator.ts';
import {
  appClient,
  appHeaders,
  browserHeaders,
  humanBrowser,
  idcIp,
  popularBrowser,
  ProxyPool,
  residentialIp,
  toolHeaders,
  toolUa,
  type AppClient,
  type Browser,
  type Headers,
  type PopularBuild,
  type Tool,
} from '../clients.ts';
import type { Rng } from '../rng.ts';

export interface Window {
  /** hours after the scenario start */
  startH: number;
  durationH: number;
}

/**
 * Where requests come from:
 *  idc      — `size` rented servers, each used throughout;
 *  proxies  — a rotating proxy network: `singleShare` of requests from a never-reused exit,
 *             the rest from `size` sticky exits (residential addresses);
 *  fixed    — `size` addresses of one kind, e.g. a couple of hosts;
 *  carrier  — mobile proxies: the first `size` addresses of the world's carrier-NAT pool, shared
 *             with the real phones behind that carrier (simulator.ts carrierPool; `carrier`: which);
 *  vpn      — a VPN provider's exits in a hosting range, shared with the people who use that VPN
 *             (simulator.ts vpnPool; `provider`: which).
 * Proxy exits are residential addresses unless `exits` says datacenter ('idc').
 */
export type PoolSpec =
  | { kind: 'idc'; size: number }
  | { kind: 'proxies'; size: number; singleShare: number; exits?: 'residential' | 'idc' }
  | { kind: 'residential'; size: number }
  | { kind: 'carrier'; size: number; carrier?: number }
  | { kind: 'vpn'; size: number; provider?: number };

export interface Source {
  next(): string;
  all(): readonly string[];
}

export function source(rng: Rng, spec: PoolSpec, env?: SimEnv): Source {
  if (spec.kind === 'carrier' || spec.kind === 'vpn') {
    if (!env) throw new Error(`a ${spec.kind} pool needs the world (source(rng, spec, ctx.env))`);
    const ips = spec.kind === 'carrier' ? carrierPool(env, spec.size, spec.carrier) : vpnPool(env, spec.size, spec.provider);
    return { next: () => rng.pick(ips), all: () => ips };
  }
  if (spec.kind === 'proxies') {
    const pool = new ProxyPool(rng, spec.size, spec.singleShare, spec.exits);
    return { next: () => pool.next(), all: () => [] };
  }
  const ips = Array.from({ length: spec.size }, () => (spec.kind === 'idc' ? idcIp(rng) : residentialIp(rng)));
  return { next: () => rng.pick(ips), all: () => ips };
}

export function windowOf(ctx: GenContext, w: Window): { start: number; end: number } {
  const start = ctx.start + w.startH * 3_600_000;
  return { start, end: Math.min(ctx.end, start + w.durationH * 3_600_000) };
}

/** A tool-made POST with a JSON (or, for some tools, form) body. */
export function toolPost(ctx: GenContext, rng: Rng, tool: Tool, body: Record<string, string>, authorization?: string, extra?: Headers, ua?: string): { headers: Headers; body: Record<string, string> } {
  const form = (tool === 'curl' || tool === 'java') && rng.chance(0.5);
  const contentType = form ? 'application/x-www-form-urlencoded' : 'application/json';
  const contentLength = form ? formLength(body) : jsonLength(body);
  return { headers: toolHeaders(rng, tool, { host: ctx.env.host, authorization, contentType, contentLength, extra, ua }), body };
}

export function toolGet(ctx: GenContext, rng: Rng, tool: Tool, authorization?: string, extra?: Headers): Headers {
  return toolHeaders(rng, tool, { host: ctx.env.host, authorization, extra });
}

/** A phone outside the shop's block (the attacker's own SIM farm / virtual numbers). */
export function farmPhone(rng: Rng, n: number): string {
  return String(13900000000 + ((n * 7919 + rng.int(0, 6)) % 9_999_999));
}

// ------------------------------------------------------------------ disguised attackers (worlds)

/** When attempts go out: spread over the window ('rate'; a short window is a burst), or every address of the pool on its own timer ('per-ip'). */
export type Pacing = { kind: 'rate' } | { kind: 'per-ip'; minS: number; maxS: number };

/**
 * Attempt times and exits: 'rate' spreads `count` attempts over the window (each 0.3–1.7 of the
 * mean gap), an exit per attempt from the pool; 'per-ip' gives every address of a fixed pool its
 * own timer (minS–maxS between its attempts), up to `count` in all. In time order.
 */
export function schedule(ctx: GenContext, rng: Rng, w: Window, pacing: Pacing, count: number, src: Source): Array<{ t: number; ip: string }> {
  const { start, end } = windowOf(ctx, w);
  const out: Array<{ t: number; ip: string }> = [];
  if (pacing.kind === 'rate') {
    const gap = (end - start) / Math.max(1, count);
    let t = start;
    for (let i = 0; i < count; i++) {
      out.push({ t, ip: src.next() });
      t += gap * rng.between(0.3, 1.7);
    }
    return out;
  }
  const ips = src.all();
  if (ips.length === 0) throw new Error('per-ip pacing needs a pool of fixed addresses (idc, residential, carrier, vpn)');
  for (const ip of ips) {
    for (let t = start + rng.between(0, pacing.maxS * 1000); t < end; t += rng.between(pacing.minS, pacing.maxS) * 1000) out.push({ t, ip });
  }
  out.sort((a, b) => a.t - b.t || (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));
  return out.slice(0, count);
}

/**
 * How an attacker's client looks to the site:
 *  headers     tool      — an HTTP library's own header set (one UA per session);
 *              shuffled  — a browser UA pasted on a library's headers, names in random order;
 *              browser   — a real browser's exact header set, order and client hints (a copied
 *                          capture, or a real browser driven by the bot); `popularShare` of the
 *                          sessions copy the world's most common build (`popular`);
 *              app       — the shop app's exact headers with a fresh x-device-id per session
 *                          (an emulator farm);
 *  precursors  none      — straight to the API, no cookie;
 *              forged    — no page, but a session cookie the site never issued;
 *              partial   — the home page first (its cookie), then the API a second or two later;
 *              complete  — the page with its CSS and JS, a person's pause, then the API.
 */
export interface Disguise {
  headers: 'tool' | 'shuffled' | 'browser' | 'app';
  precursors: 'none' | 'forged' | 'partial' | 'complete';
  /** the page a session loads first (default '/') */
  page?: string;
  /** browser: share of sessions on the world's most common build */
  popularShare?: number;
  popular?: PopularBuild;
}

/** One attacker session: an exit, a client, a cookie jar (sim.actor). */
export interface BotSession {
  readonly actor: string;
  ip: string;
  readonly browser: Browser | undefined;
  readonly app: AppClient | undefined;
  readonly tool: Tool;
  readonly ua: string;
  cookie: string | undefined;
  /** requests sent; precursors go before the first */
  sent: number;
}

/**
 * The sessions of a disguised campaign, by key (an exit for rotating campaigns, an account for
 * farms). A new key opens a session: a fresh client as the disguise says, and its precursors
 * before its first request.
 */
export class BotSessions {
  private readonly sessions = new Map<string, BotSession>();

  constructor(
    private readonly ctx: GenContext,
    private readonly rng: Rng,
    readonly disguise: Disguise,
    private readonly tools: readonly Tool[],
  ) {}

  get(key: string, ip: string): BotSession {
    let s = this.sessions.get(key);
    if (!s) {
      const d = this.disguise;
      const rng = this.rng;
      const tool: Tool = d.headers === 'shuffled' ? 'shuffled' : this.tools.length > 0 ? rng.pick(this.tools) : 'python-requests';
      const browser = d.headers === 'browser' ? (d.popular && rng.chance(d.popularShare ?? 0) ? popularBrowser(d.popular) : humanBrowser(rng, { uncleanShare: 0, mobile: rng.chance(0.3) })) : undefined;
      const app = d.headers === 'app' ? appClient(rng) : undefined;
      const ua = browser?.ua ?? app?.ua ?? toolUa(rng, tool);
      const cookie = d.precursors === 'forged' ? `sid=${rng.alnum(32)}` : undefined;
      s = { actor: `s${this.sessions.size}`, ip, browser, app, tool, ua, cookie, sent: 0 };
      this.sessions.set(key, s);
    }
    s.ip = ip;
    return s;
  }

  /** A page view of session `s` at `t` (a navigation; with its CSS and JS when `assets`); the site's cookie from then on. */
  page(s: BotSession, t: number, path: string, assets: boolean): void {
    const ctx = this.ctx;
    const host = ctx.env.host;
    ctx.emit({ ts: t, ip: s.ip, method: 'GET', path, headers: this.headers(s, 'document', { referer: s.sent > 0 ? `https://${host}/` : undefined }), actor: s.actor });
    s.cookie ??= `sid=${this.rng.alnum(32)}`;
    s.sent++;
    if (!assets) return;
    for (const [asset, kind] of [['/static/style.css', 'style'], ['/static/app.js', 'script']] as const) {
      t += this.rng.between(20, 250);
      ctx.emit({ ts: t, ip: s.ip, method: 'GET', path: asset, headers: this.headers(s, kind, { referer: `https://${host}${path}` }), actor: s.actor });
    }
  }

  /**
   * Sends one request of session `s` at `t` (its precursors first, before `t`, on the session's
   * first request). Returns the request's time.
   */
  send(s: BotSession, t: number, method: string, path: string, body?: Record<string, unknown>, opts: { authorization?: string; extra?: Headers; sim?: { issues_token: string }; referer?: string; query?: string } = {}): number {
    const ctx = this.ctx;
    const rng = this.rng;
    const host = ctx.env.host;
    if (s.sent === 0 && (this.disguise.precursors === 'partial' || this.disguise.precursors === 'complete')) {
      const complete = this.disguise.precursors === 'complete';
      // a person's pause on the page, or a script's second or two
      this.page(s, t - (complete ? rng.between(4, 40) : rng.between(0.8, 3)) * 1000, this.disguise.page ?? '/', complete);
    }
    s.sent++;
    const ct = body ? 'application/json' : undefined;
    const len = body ? jsonLength(body) : undefined;
    const headers = this.headers(s, 'fetch', { authorization: opts.authorization, contentType: ct, contentLength: len, extra: opts.extra, referer: opts.referer ?? `https://${host}${this.disguise.page ?? '/'}` });
    ctx.emit({ ts: t, ip: s.ip, method, path, query: opts.query, headers, body, sim: opts.sim, actor: s.actor });
    return t;
  }

  private headers(s: BotSession, kind: 'document' | 'style' | 'script' | 'fetch', r: { authorization?: string; contentType?: string; contentLength?: number; extra?: Headers; referer?: string }): Headers {
    const host = this.ctx.env.host;
    if (s.browser) {
      const referer = kind === 'document' ? undefined : r.referer;
      return browserHeaders(s.browser, { kind, host, referer, origin: `https://${host}`, cookie: s.cookie, authorization: r.authorization, contentType: r.contentType, contentLength: r.contentLength });
    }
    if (s.app) return appHeaders(s.app, { host, authorization: r.authorization, contentType: r.contentType, contentLength: r.contentLength });
    const extra: Headers = [...(r.extra ?? [])];
    if (s.cookie) extra.push(['cookie', s.cookie]);
    return toolHeaders(this.rng, s.tool, { host, authorization: r.authorization, contentType: r.contentType, contentLength: r.contentLength, extra, ua: s.ua });
  }
}
