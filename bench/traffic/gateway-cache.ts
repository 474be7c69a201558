// The gateway's verdict cache (gateway-plugin/lua/verdict/cache.lua) on virtual time: verdicts
// that carry cache_key + cache_ttl_s are stored under that key; a later request is looked up
// under all its keys (session, principal, device, ip, subnet, client, target) and the most severe hit is
// enforced without a call, except a cached ALLOW: a clean mark (issue 15), which lets an inline
// request of a location with cleared=async pass, scored after the response. Same key strings as gateway-plugin/CONTRACT.md. A cached CHALLENGE
// keeps what it asked (kind, difficulty, clearance lifetime): the gateway lets a request whose
// clearance meets that difficulty through (gateway-clearance.ts satisfies); a cached BLOCK,
// being the most severe, always applies.
//
// Not modeled: the shared dict's 10 MB bound (LRU eviction under memory pressure), which the
// scorecard's volumes never reach.

import { isIP } from 'node:net';
import type { Action, ChallengeKind, DecideResponse } from '../../decision-service/src/wire/codec.ts';
import type { DecideRequest } from '../../decision-service/src/wire/schema.ts';
import { subnetOf } from '../../decision-service/src/net/ip.ts';
import { clientKey, targetKey } from '../../decision-service/src/engine/engine.ts';

const SEVERITY: Readonly<Record<Action, number>> = { ALLOW: 1, TAG: 2, CHALLENGE: 3, BLOCK: 4 };
const TYPES = new Set(['ip', 'subnet', 'client', 'device', 'session', 'principal', 'target']);

export interface CachedVerdict {
  readonly action: Action;
  readonly score: number;
  readonly reasons: readonly string[];
  readonly cacheKey: string;
  /** CHALLENGE: what it asked (kind, difficulty, clearance lifetime; 0 = the location's) */
  readonly challenge: { readonly kind: ChallengeKind; readonly difficulty: number; readonly ttlS: number };
}

/** cache.subnet(ip): "a.b.c.0/24" or the first four IPv6 groups + "::/64"; undefined if not an IP. */
export function gatewaySubnet(ip: string): string | undefined {
  // The gateway computes no subnet key for IPv6 with an embedded IPv4 tail.
  const family = isIP(ip);
  if (family === 0 || (family === 6 && ip.includes('.'))) return undefined;
  return subnetOf(ip);
}

/**
 * cache.keys(req): the keys a request matches, most specific first; its URL's `target:` key with
 * `target`, its `client:` key with `client` (the gateway hashes either only while one is cached).
 */
export function gatewayKeys(req: DecideRequest, target = true, client = true): string[] {
  const keys: string[] = [];
  if (req.session_hash) keys.push(`session:${req.session_hash.toString('base64')}`);
  if (req.token_hash) keys.push(`principal:${req.token_hash.toString('base64')}`);
  if (req.device_hash) keys.push(`device:${req.device_hash.toString('base64')}`);
  if (req.client_ip) {
    keys.push(`ip:${req.client_ip}`);
    const s = gatewaySubnet(req.client_ip);
    if (s) keys.push(`subnet:${s}`);
    if (client) keys.push(clientKey(req));
  }
  if (target) keys.push(targetKey(req.path, req.query));
  return keys;
}

export type CacheableVerdict = Pick<DecideResponse, 'action' | 'score' | 'reasons' | 'cache_key' | 'cache_ttl_s' | 'challenge_kind' | 'challenge_difficulty' | 'clearance_ttl_s'>;

interface Entry {
  readonly verdict: CachedVerdict;
  readonly expiresAt: number;
}

export class GatewayCache {
  private readonly entries = new Map<string, Entry>();
  /** The latest expiry of a stored target entry: until then lookups hash the URL (cache.lua's live flag). */
  private targetUntil = 0;
  /** The same for client entries. */
  private clientUntil = 0;
  stores = 0;
  hits = 0;

  /** cache.store(resp) at virtual time `now`; false when the verdict is not cacheable. */
  store(resp: CacheableVerdict, now: number): boolean {
    let key = resp.cache_key;
    if (!key || !(resp.cache_ttl_s > 0)) return false;
    const m = /^([a-z]+):./.exec(key);
    if (!m || !TYPES.has(m[1]!)) return false;
    if (m[1] === 'ip' || m[1] === 'subnet') key = key.toLowerCase();
    if (m[1] === 'target') this.targetUntil = Math.max(this.targetUntil, now + resp.cache_ttl_s * 1000);
    if (m[1] === 'client') this.clientUntil = Math.max(this.clientUntil, now + resp.cache_ttl_s * 1000);
    this.entries.set(key, {
      verdict: {
        action: resp.action,
        score: resp.score,
        reasons: resp.reasons,
        cacheKey: key,
        challenge: { kind: resp.challenge_kind ?? 'DEFAULT', difficulty: resp.challenge_difficulty ?? 0, ttlS: resp.clearance_ttl_s ?? 0 },
      },
      expiresAt: now + resp.cache_ttl_s * 1000,
    });
    this.stores++;
    return true;
  }

  /** cache.lookup(req) at virtual time `now`: the most severe live verdict among the request's keys. */
  lookup(req: DecideRequest, now: number): CachedVerdict | undefined {
    let best: CachedVerdict | undefined;
    let bestSev = 0;
    for (const k of gatewayKeys(req, now < this.targetUntil, now < this.clientUntil)) {
      const e = this.entries.get(k);
      if (!e) continue;
      if (e.expiresAt <= now) {
        this.entries.delete(k);
        continue;
      }
      const sev = SEVERITY[e.verdict.action];
      if (sev > bestSev) {
        best = e.verdict;
        bestSev = sev;
      }
    }
    if (best) this.hits++;
    return best;
  }

  /** cache.unmark(key): drops a clean mark (an ALLOW) under `key`; any other verdict stays. */
  unmark(key: string): void {
    if (this.entries.get(key)?.verdict.action === 'ALLOW') this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
