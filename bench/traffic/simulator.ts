// The seeded traffic simulator's core: a scenario (human mix + campaigns) → labelled traffic
// lines in time order. Deterministic: same scenario + seed → the same lines, byte for byte.
// Every generator gets its own random stream (rng.ts), so generators are independent.

import { makeUsers, type DemoUser } from '../../scripts/demo-shop/users.ts';
import type { TrafficLine } from './format.ts';
import type { Headers } from './clients.ts';
import { Rng } from './rng.ts';

/** 2025-11-22 08:00:00 UTC: scenarios start here unless they say otherwise. */
export const DEFAULT_START_MS = Date.UTC(2025, 10, 22, 8, 0, 0);
export const DEFAULT_HOST = 'shop.example';

export interface ShopSetup {
  /** demo shop population seed (scripts/demo-shop/users.ts) */
  seed: number;
  users: number;
  promoInventory: number;
}

export interface SimEnv {
  readonly seed: number;
  readonly startMs: number;
  readonly durationMs: number;
  readonly host: string;
  readonly shop: ShopSetup;
  /** the shop's seeded population, as the simulator rebuilds it */
  readonly users: readonly DemoUser[];
}

export interface LineSpec {
  ts: number;
  ip: string;
  method: string;
  path: string;
  query?: string;
  headers: Headers;
  body?: Record<string, unknown>;
  sim?: TrafficLine['sim'];
  /** defaults to the generator's label */
  label?: string;
}

/** What a generator writes into. */
export class GenContext {
  readonly rng: Rng;
  private tokenSeq = 0;

  constructor(
    readonly env: SimEnv,
    readonly name: string,
    private readonly defaultLabel: string,
    private readonly out: TrafficLine[],
  ) {
    this.rng = new Rng(env.seed, name);
  }

  get start(): number {
    return this.env.startMs;
  }

  get end(): number {
    return this.env.startMs + this.env.durationMs;
  }

  emit(s: LineSpec): void {
    if (s.ts >= this.end) return; // the scenario window closes; later steps are cut off
    const line: TrafficLine = {
      ts: Math.round(s.ts),
      ip: s.ip,
      method: s.method,
      host: this.env.host,
      path: s.path,
      query: s.query ?? '',
      headers: s.headers,
    };
    if (s.body !== undefined) line.body = s.body;
    line.label = s.label ?? this.defaultLabel;
    if (s.sim !== undefined) line.sim = s.sim;
    this.out.push(line);
  }

  /** A fresh session-token name (40 hex, like the shop's); stands for whatever the shop issues. */
  token(): string {
    this.tokenSeq++;
    return this.rng.hex(40);
  }
}

/** Content-Length of a JSON body as a client would send it. */
export function jsonLength(body: Record<string, unknown>): number {
  return Buffer.byteLength(JSON.stringify(body));
}

export function formLength(body: Record<string, string>): number {
  return new URLSearchParams(body).toString().length;
}

export function makeEnv(opts: { seed: number; hours: number; shop: ShopSetup; startMs?: number; host?: string }): SimEnv {
  return {
    seed: opts.seed,
    startMs: opts.startMs ?? DEFAULT_START_MS,
    durationMs: Math.round(opts.hours * 3_600_000),
    host: opts.host ?? DEFAULT_HOST,
    shop: opts.shop,
    users: usersFor(opts.shop),
  };
}

const userCache = new Map<string, DemoUser[]>();
function usersFor(shop: ShopSetup): DemoUser[] {
  const k = `${shop.seed}:${shop.users}`;
  let u = userCache.get(k);
  if (!u) {
    u = makeUsers(shop.seed, shop.users);
    userCache.set(k, u);
  }
  return u;
}

/** Time order; ties keep generation order (a stable sort keeps the output deterministic). */
export function timeOrder(lines: TrafficLine[]): TrafficLine[] {
  return lines.map((l, i) => [l, i] as const).sort((a, b) => a[0].ts - b[0].ts || a[1] - b[1]).map(([l]) => l);
}
