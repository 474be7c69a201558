// In-process replay: pushes traffic lines through a guard (Verdict's engine behind a modeled
// gateway, or the per-IP rate-limit baseline) on a virtual clock, so hours of traffic replay in
// seconds. Upstream statuses come from an in-process demo shop (simulated scenarios: a blocked
// bot claim really consumes no coupon, a login really answers 200/401/404) or, for a user's own
// log file, from each line's `status`.
//
// Verdict is modeled as the gateway runs it (gateway-plugin/lua/verdict/handler.lua):
//   off     → nothing; inline → cache hit? enforce : decide, cache the verdict, enforce;
//   async   → cache hit? enforce : let through, then decide late (as /v1/outcomes does) and cache;
//   cleared → a request with a valid verdict_clearance or a clean mark (a cached ALLOW under its
//             principal, session or device, issue 15) where cleared=async (the default) is
//             handled as async; a cached CHALLENGE its clearance level meets does not apply;
//   every guarded request reports its outcome (status after enforcement) to engine.observe.
// Challenged clients (challenge-clients.ts) that can solve get the clearance cookie after their
// solve time and send the request again; everything that client sends later is that much later
// too (a person waits for the page, a bot worker for its solver).
// Simplification: async scoring and outcomes reach the service right after each response
// instead of in ~1 s batches (slightly optimistic for verdicts learned from async routes).

import type { FastifyInstance } from 'fastify';
import { loadPolicyFile, type CompiledPolicy } from '../../decision-service/src/config/policy.ts';
import { VirtualClock } from '../../decision-service/src/engine/clock.ts';
import { Engine, type Decision } from '../../decision-service/src/engine/engine.ts';
import type { DetectorFactory } from '../../decision-service/src/engine/signal.ts';
import { MemoryStore } from '../../decision-service/src/state/memory-store.ts';
import { hash32 } from '../../decision-service/src/state/distinct.ts';
import type { Store } from '../../decision-service/src/state/store.ts';
import type { Action } from '../../decision-service/src/wire/codec.ts';
import type { Clearance, DecideRequest, Outcome } from '../../decision-service/src/wire/schema.ts';
import { loadSpec } from '../../gateway-plugin/spec/render.ts';
import { buildShop } from '../../scripts/demo-shop/app.ts';
import { DEFAULT_SEED, DEFAULT_USER_COUNT } from '../../scripts/demo-shop/users.ts';
import { BaselineLimiter } from './baseline.ts';
import { ChallengeClients, type StopWhy } from './challenge-clients.ts';
import { headerValue, type ClientKind, type TrafficLine } from './format.ts';
import { GatewayCache } from './gateway-cache.ts';
import { challengeAsk, ClearanceGate, satisfies, type ChallengeAsk } from './gateway-clearance.ts';
import { inspectResponse } from './response-sample.ts';
import { usersFor } from './simulator.ts';
import { gatewayOptions, lineBody, toDecideRequest, type GatewayOptions, type GatewayRequest } from './to-request.ts';

/** service = inline call, cache = verdict cache, async = scored after the response, cleared = async because of a valid clearance, off = not guarded */
export type Source = 'service' | 'cache' | 'async' | 'cleared' | 'off' | 'baseline';

/** What the guard did with one request as sent. */
export interface Check {
  readonly action: Action;
  readonly source: Source;
  /** reasons that fired (for async and cleared requests: those of the late decision) */
  reasons: readonly string[];
  readonly routeClass: string;
  /** what the gateway found in the request's verdict_clearance cookie */
  readonly clearance: Clearance;
  /** CHALLENGE: what the client is asked to do */
  readonly challenge: ChallengeAsk | undefined;
}

/** One traffic line's fate: its first attempt's check, and how the client ended. */
export interface LineResult extends Check {
  /** what the client finally got: the upstream's status, or the gateway's block (403) / challenge (429) */
  status: number;
  /** the action enforced on the last attempt (after a solve, the re-sent request's) */
  finalAction: Action;
  /** challenged, solved, and let through when sent again */
  passed: boolean;
  /** proofs of work the client paid for this request, their SHA-256 evaluations (2^d each) and seconds */
  solves: number;
  hashes: number;
  solveS: number;
  /** a challenge the client did not get past: why */
  why: StopWhy | undefined;
  /** challenged: what kind of client met it */
  client: ClientKind | undefined;
}

/** One sending of a line: the line as logged (retry 0), or re-sent after a solved challenge. */
export interface Attempt {
  readonly retry: number;
  /** the verdict_clearance cookie the client sends */
  readonly cookie: string | undefined;
}

const FIRST: Attempt = Object.freeze({ retry: 0, cookie: undefined });

export interface Guard {
  readonly name: string;
  /** a promise when the decision waits on shared state (a fleet settling a decision that found something) */
  check(line: TrafficLine, index: number, attempt?: Attempt): Check | Promise<Check>;
  /** the response the client got (log phase); `body`: the upstream's JSON body, when it answered with one */
  after(line: TrafficLine, index: number, result: LineResult, body?: string): void | Promise<void>;
  /** optional: background work due by this line's time (e.g. a fleet's Redis sync) */
  tick?(line: TrafficLine): Promise<void>;
  /** the gateway's answer endpoint: the clearance token a valid proof of `level` bits earns this line's client */
  issue?(line: TrafficLine, level: number, ttlS: number, nowMs: number): string;
}

export interface Upstream {
  send(line: TrafficLine): Promise<number>;
  /** the JSON body of the last answer send() returned (upstreams that have bodies), else undefined */
  readonly lastBody?: string | undefined;
  close(): Promise<void>;
}

/** The simulated gateway's key for hashing sensitive values in responses (response-sample.ts). */
const RESPONSE_KEY = Buffer.from('verdict-simulated-gateway-response-key');

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
  /** a fleet's store: longest wait to read unmerged keys before a stop (the service's VERDICT_REDIS_SETTLE_MS) */
  settleMs?: number;
}

/**
 * The share of responses the gateway inspects when no call decided the request (cached, async;
 * cleared ones without a token, session or device): the Lua gateway's `inspect_sample` default at
 * `$verdict_inspect auto`, from the one declaration of its options.
 */
const GATEWAY_INSPECT_SAMPLE = ((): number => {
  const v = loadSpec().http.find((o) => o.name === 'inspect_sample')?.default;
  if (typeof v !== 'number') throw new Error('gateway-plugin/spec/options.json: inspect_sample has no numeric default');
  return v;
})();

/** Whether the gateway inspects this request's response: a draw of `share`, fixed by its request id. */
function drawn(requestId: string, share: number): boolean {
  return share >= 1 || (share > 0 && hash32(requestId) / 0x1_0000_0000 < share);
}

/** A request between the gateway's check and its log phase; `inspect`: the share of such responses inspected. */
interface Pending { req: GatewayRequest; fromCache: boolean; late: boolean; inspect: number }

/** Verdict's engine behind the modeled Lua gateway (verdict cache, per-location modes). */
export class VerdictGuard implements Guard {
  readonly name = 'verdict';
  readonly engine: Engine;
  readonly cache = new GatewayCache();
  readonly gate: ClearanceGate;
  private readonly clock: VirtualClock;
  private readonly gw: GatewayOptions;
  private pending: Pending | undefined;
  private readonly settleMs: number;

  constructor(opts: VerdictGuardOptions) {
    this.clock = new VirtualClock(opts.startMs ?? 0);
    this.gw = opts.gateway ?? gatewayOptions();
    const key = this.gw.hmacKey;
    this.gate = new ClearanceGate(typeof key === 'string' ? key : Buffer.from(key).toString('latin1'));
    this.engine = new Engine({
      policy: opts.policy,
      store: opts.store ?? new MemoryStore(),
      clock: this.clock,
      identifierKey: opts.identifierKey ?? Buffer.from('verdict-replay-identifier-key-32b'),
      detectors: opts.detectors,
    });
    this.settleMs = opts.settleMs ?? 0;
  }

  /** The engine's decision, settled first in a fleet (DecisionService.decideSettled). */
  private decide(req: DecideRequest): Decision | Promise<Decision> {
    const r = this.engine.decideOrSettle(req, this.settleMs);
    return 'ready' in r ? r.ready.then(() => this.engine.redo(r)) : r;
  }

  check(line: TrafficLine, index: number, attempt: Attempt = FIRST): Check | Promise<Check> {
    this.clock.set(line.ts);
    const cl = this.gate.check(attempt.cookie, line, line.ts);
    const gr = toDecideRequest(line, attempt.retry === 0 ? `r${index}` : `r${index}.${attempt.retry}`, this.gw, cl);
    this.pending = { req: gr, fromCache: false, late: false, inspect: GATEWAY_INSPECT_SAMPLE };
    if (gr.mode === 'off') return { action: 'ALLOW', source: 'off', reasons: [], routeClass: '', clearance: cl.state, challenge: undefined };
    // a proven client is not waited on ($verdict_cleared async); monitor locations still never
    // enforce. Proven: a valid clearance, or a clean mark (a cached ALLOW, issue 15)
    const hit = this.cache.lookup(gr.req, line.ts);
    const cleared = (cl.state === 'VALID' || hit?.action === 'ALLOW') && gr.mode === 'inline' && gr.challenge.cleared === 'async';
    if (hit && hit.action !== 'ALLOW' && !(hit.action === 'CHALLENGE' && satisfies(cl, hit.challenge.difficulty, gr.challenge))) {
      this.pending.fromCache = true;
      const action = gr.mode === 'monitor' ? 'ALLOW' : hit.action;
      const challenge = action === 'CHALLENGE' ? challengeAsk({ challenge_kind: hit.challenge.kind, challenge_difficulty: hit.challenge.difficulty, clearance_ttl_s: hit.challenge.ttlS }, gr.challenge, line) : undefined;
      return { action, source: 'cache', reasons: hit.reasons, routeClass: '', clearance: cl.state, challenge };
    }
    if (gr.mode === 'async' || cleared) {
      this.pending.late = true;
      // a cleared client's skipped call: inspected when it carries a key the exfil detector counts
      if (cleared && (gr.req.token_hash || gr.req.session_hash || gr.req.device_hash)) this.pending.inspect = 1;
      return { action: 'ALLOW', source: cleared ? 'cleared' : 'async', reasons: [], routeClass: '', clearance: cl.state, challenge: undefined };
    }
    const d = this.decide(gr.req);
    return d instanceof Promise ? d.then((v) => this.enforce(v, gr, line, cl.state)) : this.enforce(d, gr, line, cl.state);
  }

  private enforce(d: Decision, gr: GatewayRequest, line: TrafficLine, clearance: Clearance): Check {
    this.cache.store(d, line.ts);
    this.unmark(d);
    const action = gr.mode === 'monitor' ? 'ALLOW' : d.action;
    // the service asks for inspection on the answers it lets through (DecisionService.finish)
    if (this.pending) this.pending.inspect = action === 'ALLOW' || action === 'TAG' ? this.engine.inspectShare(d) : 0;
    return { action, source: 'service', reasons: d.reasons, routeClass: d.routeClass, clearance, challenge: action === 'CHALLENGE' ? challengeAsk(d, gr.challenge, line) : undefined };
  }

  /** The clean marks a decision took back (OutcomeAck.unmarked_keys), dropped at once. */
  private unmark(d: Decision): void {
    if (d.unmark) for (const u of d.unmark) this.cache.unmark(u.key);
  }

  issue(line: TrafficLine, level: number, ttlS: number, nowMs: number): string {
    return this.gate.issue(line, level, ttlS, nowMs);
  }

  after(line: TrafficLine, _index: number, result: LineResult, body?: string): void | Promise<void> {
    const p = this.pending;
    this.pending = undefined;
    if (!p || p.req.mode === 'off') return;
    // async (and cleared): the log phase ships the request; /v1/outcomes scores it and returns cacheable verdicts
    if (!p.late) return this.report(p, line, result, body);
    const d = this.decide({ ...p.req.req, mode: 'ASYNC' });
    if (!(d instanceof Promise)) return this.late(d, p, line, result, body);
    return d.then((v) => this.late(v, p, line, result, body));
  }

  private late(d: Decision, p: Pending, line: TrafficLine, result: LineResult, body: string | undefined): void {
    if (d.cache_key && d.cache_ttl_s > 0) this.cache.store(d, line.ts);
    this.unmark(d);
    result.reasons = d.reasons;
    this.report(p, line, result, body);
  }

  /** The outcome the log phase reports. */
  private report(p: Pending, line: TrafficLine, result: LineResult, body: string | undefined): void {
    const req = p.req.req;
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
      // the gateway's response inspection (issue 17): counts and keyed hashes, never the values
      response: body === undefined || !drawn(req.request_id, p.inspect) ? undefined : inspectResponse(body, { key: RESPONSE_KEY, requestedLimit: requestedLimit(line.query) }),
    };
    this.engine.observe(outcome, req.gateway_id);
  }
}

/** nginx limit_req per client IP (baseline.ts); a rejected request is a block. */
export class BaselineGuard implements Guard {
  readonly name = 'baseline';
  private readonly limiter = new BaselineLimiter();

  check(line: TrafficLine): Check {
    const r = this.limiter.check(line);
    return { action: r.action, source: 'baseline', reasons: r.action === 'BLOCK' ? [`limit_req.${r.zone}`] : [], routeClass: r.zone, clearance: 'NONE', challenge: undefined };
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
  lastBody: string | undefined = undefined;

  constructor(opts: ShopUpstreamOptions = {}) {
    this.app = buildShop({ seed: opts.seed, users: opts.users, promoInventory: opts.promoInventory });
    this.passwords = new Map(usersFor({ seed: opts.seed ?? DEFAULT_SEED, users: opts.users ?? DEFAULT_USER_COUNT }).map((u) => [u.username, u.password]));
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
    this.lastBody = String(res.headers['content-type'] ?? '').includes('json') ? res.body : undefined;
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

export interface ReplayOptions {
  /** what challenged clients do and the cookies they hold (default: ChallengeClients' default world) */
  readonly clients?: ChallengeClients;
}

/**
 * Replays `lines` (in ts order) through `guard` against `upstream`; returns one result per line.
 * Blocked and challenged requests never reach the upstream; a challenged client that solves
 * sends the request again (with its new clearance) after its solve time, and its later lines
 * move back by as much.
 */
export async function replay(lines: readonly TrafficLine[], guard: Guard, upstream: Upstream, opts: ReplayOptions = {}): Promise<LineResult[]> {
  const clients = opts.clients ?? new ChallengeClients();
  const out: LineResult[] = new Array(lines.length);
  const queue = new EventQueue();
  // actor → ms its requests are late by (time spent on challenges)
  const late = new Map<string, number>();

  const send = async (ev: QueuedEvent): Promise<void> => {
    const logged = lines[ev.index]!;
    const line = ev.at === logged.ts ? logged : { ...logged, ts: ev.at };
    if (guard.tick) await guard.tick(line);
    if (ev.cookie !== undefined) clients.store(line, ev.cookie.token, ev.cookie.expiresMs);
    const checked = guard.check(line, ev.index, { retry: ev.retry, cookie: clients.cookie(line) });
    const c = checked instanceof Promise ? await checked : checked;
    const reached = c.action !== 'BLOCK' && c.action !== 'CHALLENGE';
    const status = c.action === 'BLOCK' ? BLOCK_STATUS : c.action === 'CHALLENGE' ? CHALLENGE_STATUS : await upstream.send(line);
    const r: LineResult = { ...c, status, finalAction: c.action, passed: false, solves: 0, hashes: 0, solveS: 0, why: undefined, client: undefined };
    const logging = guard.after(line, ev.index, r, reached ? upstream.lastBody : undefined);
    if (logging) await logging;
    let res = r;
    if (ev.retry === 0) out[ev.index] = r;
    else {
      res = out[ev.index]!;
      res.status = r.status;
      res.finalAction = r.action;
      res.passed = r.action !== 'BLOCK' && r.action !== 'CHALLENGE';
    }
    if (r.action !== 'CHALLENGE' || !r.challenge || !guard.issue) return;
    res.client = clients.kindOf(line);
    const m = clients.meet(line, r.challenge, res.solves);
    if (!m.pass) {
      res.why = m.why;
      return;
    }
    res.solves++;
    res.hashes += m.hashes;
    res.solveS += m.solveS;
    const answered = line.ts + m.answerMs;
    const cookie = { token: guard.issue(line, m.level, r.challenge.ttlS, answered), expiresMs: answered + r.challenge.ttlS * 1000 };
    late.set(ev.actor, (late.get(ev.actor) ?? 0) + m.retryMs);
    queue.push({ at: line.ts + m.retryMs, index: ev.index, retry: ev.retry + 1, actor: ev.actor, late: 0, cookie });
  };

  let next = 0;
  while (next < lines.length || queue.size > 0) {
    const head = queue.peek();
    if (next < lines.length) {
      const line = lines[next]!;
      const actor = clients.actorOf(line);
      const shift = late.get(actor) ?? 0;
      if (shift > 0) {
        // this client lost time on a challenge: its request goes out that much later
        queue.push({ at: line.ts + shift, index: next++, retry: 0, actor, late: shift, cookie: undefined });
        continue;
      }
      if (head === undefined || line.ts < head.at) {
        await send({ at: line.ts, seq: 0, index: next++, retry: 0, actor, late: 0, cookie: undefined });
        continue;
      }
    }
    const ev = queue.pop()!;
    const shift = late.get(ev.actor) ?? 0;
    if (ev.retry === 0 && ev.late !== shift) {
      // queued before its client lost more time
      queue.push({ ...ev, at: lines[ev.index]!.ts + shift, late: shift });
      continue;
    }
    await send(ev);
  }
  return out;
}

interface QueuedEvent {
  /** when it is sent (virtual ms) */
  readonly at: number;
  /** queue order among equal times */
  readonly seq: number;
  readonly index: number;
  readonly retry: number;
  readonly actor: string;
  /** a line (retry 0): the delay its actor had when it was queued */
  readonly late: number;
  /** a re-send: the clearance cookie the answer endpoint set before it */
  readonly cookie: { readonly token: string; readonly expiresMs: number } | undefined;
}

/** Events by (at, seq): a binary min-heap. */
class EventQueue {
  private readonly heap: QueuedEvent[] = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  peek(): QueuedEvent | undefined {
    return this.heap[0];
  }

  push(e: Omit<QueuedEvent, 'seq'>): void {
    const h = this.heap;
    h.push({ ...e, seq: ++this.seq });
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  pop(): QueuedEvent | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: QueuedEvent, b: QueuedEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
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

/** The page size a query asks for (`size`, `limit`, `page_size`, `per_page`), 0 when none. */
function requestedLimit(query: string): number {
  const m = /(?:^|&)(?:size|limit|page_size|per_page)=(\d{1,7})(?:&|$)/.exec(query);
  return m ? Number(m[1]) : 0;
}
