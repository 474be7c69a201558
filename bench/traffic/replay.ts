// In-process replay: pushes traffic lines through a guard (Verdict's engine behind a modeled
// gateway, or the per-IP rate-limit baseline) on a virtual clock, so hours of traffic replay in
// seconds. Upstream statuses come from an in-process demo shop (simulated scenarios: a blocked
// bot claim really consumes no coupon, a login really answers 200/401/404) or, for a user's own
// log file, from each line's `status`.
//
// Verdict is modeled as the gateway runs it (gateway-plugin/lua/verdict/handler.lua):
//   off     → nothing; inline → cache hit? enforce : decide, cache the verdict, enforce;
//   async   → cache hit? enforce : let through, then decide late (as /v1/outcomes does) and cache;
//   every guarded request reports its outcome (status after enforcement) to engine.observe.
// Simplification: async scoring and outcomes reach the service right after each response
// instead of in ~1 s batches (slightly optimistic for verdicts learned from async routes).

import type { FastifyInstance } from 'fastify';
import { loadPolicyFile, type CompiledPolicy } from '../../decision-service/src/config/policy.ts';
import { VirtualClock } from '../../decision-service/src/engine/clock.ts';
import { Engine } from '../../decision-service/src/engine/engine.ts';
import type { DetectorFactory } from '../../decision-service/src/engine/signal.ts';
import { MemoryStore } from '../../decision-service/src/state/memory-store.ts';
import type { Store } from '../../decision-service/src/state/store.ts';
import type { Action } from '../../decision-service/src/wire/codec.ts';
import type { Outcome } from '../../decision-service/src/wire/schema.ts';
import { buildShop } from '../../scripts/demo-shop/app.ts';
import { makeUsers } from '../../scripts/demo-shop/users.ts';
import { BaselineLimiter } from './baseline.ts';
import { headerValue, type TrafficLine } from './format.ts';
import { GatewayCache } from './gateway-cache.ts';
import { gatewayOptions, lineBody, toDecideRequest, type GatewayOptions } from './to-request.ts';

export type Source = 'service' | 'cache' | 'async' | 'off' | 'baseline';

export interface LineResult {
  readonly action: Action;
  readonly source: Source;
  /** reasons that fired (for async routes: those of the late decision) */
  reasons: readonly string[];
  /** what the client got: the upstream's status, or the gateway's block (403) / challenge (429) */
  readonly status: number;
  readonly routeClass: string;
}

export interface Guard {
  readonly name: string;
  check(line: TrafficLine, index: number): Omit<LineResult, 'status'>;
  /** the response the client got (log phase) */
  after(line: TrafficLine, index: number, result: LineResult): void;
  /** optional: background work due by this line's time (e.g. a fleet's Redis sync) */
  tick?(line: TrafficLine): Promise<void>;
}

export interface Upstream {
  send(line: TrafficLine): Promise<number>;
  close(): Promise<void>;
}

export const BLOCK_STATUS = 403;
export const CHALLENGE_STATUS = 429;

// ------------------------------------------------------------------ guards

export interface VerdictGuardOptions {
  policy: CompiledPolicy;
  gateway?: GatewayOptions;
  identifierKey?: Buffer;
  startMs?: number;
  /** the engine's detector set (default: all of them) */
  detectors?: readonly DetectorFactory[];
  /** the engine's state store (default: a fresh embedded store) */
  store?: Store;
}

/** Verdict's engine behind the modeled Lua gateway (verdict cache, per-location modes). */
export class VerdictGuard implements Guard {
  readonly name = 'verdict';
  readonly engine: Engine;
  readonly cache = new GatewayCache();
  private readonly clock: VirtualClock;
  private readonly gw: GatewayOptions;
  private pending: { req: ReturnType<typeof toDecideRequest>; fromCache: boolean } | undefined;

  constructor(opts: VerdictGuardOptions) {
    this.clock = new VirtualClock(opts.startMs ?? 0);
    this.gw = opts.gateway ?? gatewayOptions();
    this.engine = new Engine({
      policy: opts.policy,
      store: opts.store ?? new MemoryStore(),
      clock: this.clock,
      identifierKey: opts.identifierKey ?? Buffer.from('verdict-replay-identifier-key-32b'),
      detectors: opts.detectors,
    });
  }

  check(line: TrafficLine, index: number): Omit<LineResult, 'status'> {
    this.clock.set(line.ts);
    const gr = toDecideRequest(line, `r${index}`, this.gw);
    this.pending = { req: gr, fromCache: false };
    if (gr.mode === 'off') return { action: 'ALLOW', source: 'off', reasons: [], routeClass: '' };
    const hit = this.cache.lookup(gr.req, line.ts);
    if (hit) {
      this.pending.fromCache = true;
      const action = gr.mode === 'monitor' ? 'ALLOW' : hit.action;
      return { action, source: 'cache', reasons: hit.reasons, routeClass: '' };
    }
    if (gr.mode === 'async') return { action: 'ALLOW', source: 'async', reasons: [], routeClass: '' };
    const d = this.engine.decide(gr.req);
    this.cache.store(d, line.ts);
    const action = gr.mode === 'monitor' ? 'ALLOW' : d.action;
    return { action, source: 'service', reasons: d.reasons, routeClass: d.routeClass };
  }

  after(line: TrafficLine, _index: number, result: LineResult): void {
    const p = this.pending;
    this.pending = undefined;
    if (!p || p.req.mode === 'off') return;
    const req = p.req.req;
    // async: the log phase ships the request; /v1/outcomes scores it and returns cacheable verdicts
    if (p.req.mode === 'async' && !p.fromCache) {
      const d = this.engine.decide({ ...req, mode: 'ASYNC' });
      if (d.cache_key && d.cache_ttl_s > 0) this.cache.store(d, line.ts);
      result.reasons = d.reasons;
    }
    const outcome: Outcome = {
      request_id: req.request_id,
      ts_ms: req.ts_ms,
      client_ip: req.client_ip,
      method: req.method,
      path: req.path,
      route_tag: req.route_tag,
      status: result.status,
      auth_result: '',
      upstream_ms: 0,
      bytes_sent: 0,
      action: result.action,
      fail_open: '',
      from_cache: p.fromCache,
      request: undefined,
    };
    this.engine.observe(outcome, req.gateway_id);
  }
}

/** nginx limit_req per client IP (baseline.ts); a rejected request is a block. */
export class BaselineGuard implements Guard {
  readonly name = 'baseline';
  private readonly limiter = new BaselineLimiter();

  check(line: TrafficLine): Omit<LineResult, 'status'> {
    const r = this.limiter.check(line);
    return { action: r.action, source: 'baseline', reasons: r.action === 'BLOCK' ? [`limit_req.${r.zone}`] : [], routeClass: r.zone };
  }

  after(): void {}
}

// ------------------------------------------------------------------ upstreams

/** Statuses from the file (a user's own logs); 0 when a line has none. */
export const fileUpstream: Upstream = {
  send: async (line) => line.status ?? 0,
  close: async () => {},
};

export interface ShopUpstreamOptions {
  seed?: number;
  users?: number;
  promoInventory?: number;
}

/**
 * The demo shop in-process (app.inject). Bearer tokens in the file are the simulator's names for
 * sessions: a line with sim.issues_token maps that name to the token the shop really issued, and
 * sim.token_user marks a session opened before the file starts (logged in out of band here).
 */
export class ShopUpstream implements Upstream {
  readonly app: FastifyInstance;
  private readonly tokens = new Map<string, string>();
  private readonly passwords: Map<string, string>;

  constructor(opts: ShopUpstreamOptions = {}) {
    this.app = buildShop({ seed: opts.seed, users: opts.users, promoInventory: opts.promoInventory });
    this.passwords = new Map(makeUsers(opts.seed, opts.users).map((u) => [u.username, u.password]));
  }

  async send(line: TrafficLine): Promise<number> {
    const headers: Record<string, string> = {};
    for (const [n, v] of line.headers) {
      if (n === 'host' || n === 'content-length' || n === 'connection') continue;
      headers[n] = headers[n] === undefined ? v : `${headers[n]}, ${v}`;
    }
    const auth = headers.authorization;
    if (auth && auth.startsWith('Bearer ')) {
      const name = auth.slice(7).trim();
      let live = this.tokens.get(name);
      if (live === undefined && line.sim?.token_user) live = await this.openSession(name, line.sim.token_user);
      headers.authorization = `Bearer ${live ?? name}`;
    }
    const payload = lineBody(line);
    if (payload !== undefined && !headerValue(line, 'content-type')) headers['content-type'] = 'application/json';
    const url = line.query ? `${line.path}?${line.query}` : line.path;
    const res = await this.app.inject({ method: line.method as 'GET', url, headers, payload });
    if (line.sim?.issues_token && res.statusCode === 200) {
      const token = (res.json() as { token?: unknown }).token;
      if (typeof token === 'string') this.tokens.set(line.sim.issues_token, token);
    }
    return res.statusCode;
  }

  private async openSession(name: string, username: string): Promise<string | undefined> {
    const password = this.passwords.get(username);
    if (password === undefined) return undefined;
    const res = await this.app.inject({ method: 'POST', url: '/api/auth/login', payload: { username, password } });
    const token = res.statusCode === 200 ? (res.json() as { token?: string }).token : undefined;
    if (token) this.tokens.set(name, token);
    return token;
  }

  async promoStats(): Promise<{ inventory: number; claimed: number; claims: Array<{ user_id: number }> }> {
    return (await this.app.inject({ method: 'GET', url: '/api/promo/stats' })).json();
  }

  async close(): Promise<void> {
    await this.app.close();
  }
}

// ------------------------------------------------------------------ the loop

/**
 * Replays `lines` (in ts order) through `guard` against `upstream`; returns one result per line.
 * Blocked and challenged requests never reach the upstream.
 */
export async function replay(lines: readonly TrafficLine[], guard: Guard, upstream: Upstream): Promise<LineResult[]> {
  const out: LineResult[] = new Array(lines.length);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (guard.tick) await guard.tick(line);
    const c = guard.check(line, i);
    const status = c.action === 'BLOCK' ? BLOCK_STATUS : c.action === 'CHALLENGE' ? CHALLENGE_STATUS : await upstream.send(line);
    const r: LineResult = { action: c.action, source: c.source, reasons: c.reasons, status, routeClass: c.routeClass };
    guard.after(line, i, r);
    out[i] = r;
  }
  return out;
}

export function loadPolicy(file: string): CompiledPolicy {
  return loadPolicyFile(file);
}

/** Stable order for replay: by ts, ties keep file order. */
export function sortByTime(lines: TrafficLine[]): TrafficLine[] {
  return lines
    .map((l, i) => [l, i] as const)
    .sort((a, b) => a[0].ts - b[0].ts || a[1] - b[1])
    .map(([l]) => l);
}
