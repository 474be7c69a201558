// What every campaign generator shares: the window it runs in, where its traffic comes from
// (a pool of rented servers, a rotating proxy network, a few fixed hosts) and its tooling.

import { carrierPool, formLength, jsonLength, type GenContext, type SimEnv } from '../simulator.ts';
import { idcIp, ProxyPool, residentialIp, toolHeaders, type Headers, type Tool } from '../clients.ts';
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
 *             with the real phones behind that carrier (simulator.ts carrierPool).
 */
export type PoolSpec =
  | { kind: 'idc'; size: number }
  | { kind: 'proxies'; size: number; singleShare: number }
  | { kind: 'residential'; size: number }
  | { kind: 'carrier'; size: number };

export interface Source {
  next(): string;
  all(): readonly string[];
}

export function source(rng: Rng, spec: PoolSpec, env?: SimEnv): Source {
  if (spec.kind === 'carrier') {
    if (!env) throw new Error('a carrier pool needs the world (source(rng, spec, ctx.env))');
    const ips = carrierPool(env, spec.size);
    return { next: () => rng.pick(ips), all: () => ips };
  }
  if (spec.kind === 'proxies') {
    const pool = new ProxyPool(rng, spec.size, spec.singleShare);
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
