// The seeded traffic simulator's core: a scenario (human mix + campaigns) → labelled traffic
// lines in time order. Deterministic: same scenario + seed → the same lines, byte for byte.
// Every generator gets its own random stream (rng.ts), so generators are independent.

import { makeUsers, type DemoUser } from '../../scripts/demo-shop/users.ts';
import type { ClientKind, CustomerType, TrafficLine } from './format.ts';
import { carrierNatIps, vpnExitIps, type Headers } from './clients.ts';
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
  /** what this client does when challenged (sim.client); defaults to the generator's */
  client?: ClientKind;
  /** the cookie jar it holds (sim.actor), within the label: a browser profile, a bot worker */
  actor?: string;
  /** a person's customer type (sim.customer) */
  customer?: CustomerType;
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
    /** the client kind of every line that names none (campaigns declare theirs) */
    private readonly defaultClient?: ClientKind,
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
    const client = s.client ?? this.defaultClient;
    if (s.sim !== undefined || client !== undefined || s.actor !== undefined || s.customer !== undefined) {
      const sim: NonNullable<TrafficLine['sim']> = { ...s.sim };
      if (client !== undefined) sim.client = client;
      if (s.actor !== undefined) sim.actor = s.actor;
      if (s.customer !== undefined) sim.customer = s.customer;
      line.sim = sim;
    }
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
/** The shop's seeded population (makeUsers), built once per process for each (seed, count). */
export function usersFor(shop: { seed: number; users: number }): DemoUser[] {
  const k = `${shop.seed}:${shop.users}`;
  let u = userCache.get(k);
  if (!u) {
    u = makeUsers(shop.seed, shop.users);
    userCache.set(k, u);
  }
  return u;
}

/**
 * The world's carrier-NAT egress addresses: the first `n` of one carrier's pool, the same for
 * every generator of a seed (its phones and the mobile proxies that exit there).
 */
export function carrierPool(env: SimEnv, n: number, carrier = 0): string[] {
  return carrierNatIps(new Rng(env.seed, carrier === 0 ? 'carrier-nat' : `carrier-nat/${carrier}`), n);
}

/**
 * The world's VPN exits: `n` addresses in hosting ranges where a VPN provider's customers (and
 * anyone else renting that VPN) come out; the same for every generator of a seed.
 */
export function vpnPool(env: SimEnv, n: number, provider = 0): string[] {
  return vpnExitIps(new Rng(env.seed, `vpn-exits/${provider}`), n);
}

/** Time order; ties keep generation order (a stable sort keeps the output deterministic). */
export function timeOrder(lines: TrafficLine[]): TrafficLine[] {
  return lines.map((l, i) => [l, i] as const).sort((a, b) => a[0].ts - b[0].ts || a[1] - b[1]).map(([l]) => l);
}
