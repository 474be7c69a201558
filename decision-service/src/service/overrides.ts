// Operator overrides: allow or block one key (ip, subnet, device, session, principal, identifier)
// for a TTL, with a note and who set it. The decision service applies them around the engine on
// every decide (decision-service.ts), and every gateway drops its cached verdicts for the keys an
// override touches through the revocations in the OutcomeAck it receives on each outcome flush
// (at least once a second: the Lua gateway sends an empty batch when it has nothing to report).
//
// Keys use the gateway cache's spelling (CONTRACT.md): "ip:203.0.113.7", "subnet:203.0.113.0/24",
// "session:<base64>", "device:<base64>", "principal:<base64>" (the gateway's keyed hashes, as the
// audit trail shows them), and "identifier:<keyed hash>" — a raw identifier given to POST
// /v1/overrides is hashed on arrival with VERDICT_IDENTIFIER_KEY and never stored.
//
// Which override wins when several match one request: the narrowest key (identifier, session,
// device, principal, then ip, then subnet); on a tie the newest.
//
// Persistence: VERDICT_STATE_DIR/overrides.json, rewritten (atomically) on every change and read
// at start; expired entries are dropped. With Redis, a hash shared by the fleet is the truth:
// every instance re-reads it each second, and revocations go through a capped Redis list so the
// gateways of every instance learn them.

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Redis, Cluster } from 'ioredis';
import { z } from 'zod';
import { hashIdentifier } from '../engine/features.ts';
import type { RequestFeatures } from '../engine/signal.ts';
import { isValidIp, subnetOf } from '../net/ip.ts';

export const OVERRIDE_KEY_TYPES = ['identifier', 'session', 'device', 'principal', 'ip', 'subnet'] as const;
export type OverrideKeyType = (typeof OVERRIDE_KEY_TYPES)[number];
/** Narrowest first: the precedence of overrides matching one request. */
const RANK: Record<OverrideKeyType, number> = { identifier: 0, session: 1, device: 2, principal: 3, ip: 4, subnet: 5 };

export interface Override {
  readonly id: string;
  readonly key: string;
  readonly action: 'ALLOW' | 'BLOCK';
  readonly created: number;
  readonly expires: number;
  readonly note: string;
  readonly by: string;
  readonly via: string;
}

/** The body of POST /v1/overrides. */
export const overrideInput = z.object({
  key: z.string().min(3).max(200).describe('"<type>:<value>", type one of ip, subnet, device, session, principal, identifier'),
  action: z.enum(['allow', 'block', 'ALLOW', 'BLOCK']),
  ttl_s: z.number().int().min(1).max(30 * 86_400).default(3600),
  note: z.string().max(500).default(''),
  by: z.string().max(100).default(''),
  /** identifier only: the value is already the keyed hash the audit trail shows, not the raw identifier. */
  hashed: z.boolean().default(false),
}).strict();
export type OverrideInput = z.input<typeof overrideInput>;

const B64 = /^[A-Za-z0-9+/_-]{4,100}={0,2}$/;

/** The canonical key of an override request; throws a message naming the fix. */
export function canonicalKey(key: string, hashed: boolean, identifierKey: Buffer): string {
  const i = key.indexOf(':');
  const type = key.slice(0, i) as OverrideKeyType;
  const value = key.slice(i + 1).trim();
  if (i < 0 || !OVERRIDE_KEY_TYPES.includes(type)) throw new Error(`key: write "<type>:<value>" with type one of ${OVERRIDE_KEY_TYPES.join(', ')} (e.g. "ip:203.0.113.7")`);
  if (!value) throw new Error(`key: the ${type} value is empty`);
  switch (type) {
    case 'ip':
      if (!isValidIp(value)) throw new Error(`key: ${JSON.stringify(value)} is not an IP address`);
      return `ip:${value.toLowerCase()}`;
    case 'subnet': {
      const ip = value.replace(/\/\d+$/, '');
      if (!isValidIp(ip)) throw new Error('key: write the subnet as an address in it or its /24 (v4) or /64 (v6), e.g. "subnet:203.0.113.0/24"');
      return `subnet:${subnetOf(ip)}`;
    }
    case 'identifier':
      if (hashed) {
        if (!B64.test(value)) throw new Error('key: a hashed identifier is the base64 text the audit trail shows');
        return `identifier:${value}`;
      }
      return `identifier:${hashIdentifier(identifierKey, value)}`;
    default:
      if (!B64.test(value)) throw new Error(`key: a ${type} is the gateway's base64 hash as the audit trail shows it (e.g. "${type}:q1w2e3…=")`);
      return `${type}:${value}`;
  }
}

export interface Revocation {
  readonly id: string;
  readonly seq: number;
  readonly key: string;
  readonly at: number;
}

export interface OverrideBookOptions {
  readonly stateDir?: string;
  readonly identifierKey: Buffer;
  readonly logger: Logger;
  readonly now?: () => number;
  readonly redis?: Redis | Cluster;
  readonly redisPrefix?: string;
  readonly syncMs?: number;
}

/** How long a revocation is offered to gateways that had not yet asked for it, and to new ones. */
const REVOCATION_KEEP_MS = 60_000;
/** A gateway id seen for the first time gets the revocations of this last stretch. */
const NEW_GATEWAY_WINDOW_MS = 30_000;

export class OverrideBook {
  private readonly byKey = new Map<string, Override[]>();
  /** Overrides per key type: a type with none is not looked at on the decide path. */
  private readonly perType = new Map<OverrideKeyType, number>();
  private revocations: Revocation[] = [];
  private seq = 0;
  private readonly seenRevocations = new Set<string>();
  /** gateway id → the revocation seq it has been sent up to (bounded: oldest forgotten). */
  private readonly cursors = new Map<string, number>();
  private readonly file: string | undefined;
  private readonly now: () => number;
  private readonly timer: NodeJS.Timeout | undefined;
  private syncing = false;
  /** Time of the last successful Redis sync: local overrides newer than it and absent from Redis
   *  were made while Redis was unreachable (or before the fleet used it) and are pushed up. */
  private lastSync = 0;
  /** Called after an override change arrives from another instance (Redis). */
  onRemoteChange: (() => void) | undefined;

  constructor(private readonly opts: OverrideBookOptions) {
    this.now = opts.now ?? Date.now;
    this.file = opts.stateDir ? path.join(opts.stateDir, 'overrides.json') : undefined;
    this.load();
    if (opts.redis) {
      this.timer = setInterval(() => void this.sync(), opts.syncMs ?? 1000);
      this.timer.unref();
    }
  }

  get size(): number {
    let n = 0;
    for (const list of this.byKey.values()) n += list.length;
    return n;
  }

  /** Live overrides, newest first. */
  list(): Override[] {
    const now = this.now();
    const out: Override[] = [];
    for (const list of this.byKey.values()) for (const o of list) if (o.expires > now) out.push(o);
    return out.sort((a, b) => b.created - a.created);
  }

  get(id: string): Override | undefined {
    return this.list().find((o) => o.id === id);
  }

  /** Adds an override (see overrideInput); returns it. Throws a message naming the field on a bad key. */
  add(input: z.output<typeof overrideInput>, via: string): Override {
    const key = canonicalKey(input.key, input.hashed, this.opts.identifierKey);
    const now = this.now();
    const o: Override = {
      id: randomBytes(6).toString('hex'),
      key,
      action: input.action.toUpperCase() as 'ALLOW' | 'BLOCK',
      created: now,
      expires: now + input.ttl_s * 1000,
      note: input.note,
      by: input.by,
      via,
    };
    this.insert(o);
    this.save();
    void this.publish(o, undefined);
    return o;
  }

  /** Removes an override by id; returns it, or undefined when there is none. */
  remove(id: string): Override | undefined {
    for (const [key, list] of this.byKey) {
      const i = list.findIndex((o) => o.id === id);
      if (i < 0) continue;
      const [o] = list.splice(i, 1);
      if (list.length === 0) this.byKey.delete(key);
      this.count(key, -1);
      this.save();
      void this.publish(undefined, o);
      return o;
    }
    return undefined;
  }

  private insert(o: Override): void {
    const list = this.byKey.get(o.key);
    if (list) list.push(o);
    else this.byKey.set(o.key, [o]);
    this.count(o.key, 1);
  }

  private count(key: string, d: number): void {
    const type = key.slice(0, key.indexOf(':')) as OverrideKeyType;
    this.perType.set(type, (this.perType.get(type) ?? 0) + d);
  }

  private has(type: OverrideKeyType): boolean {
    return (this.perType.get(type) ?? 0) > 0;
  }

  /**
   * The override in force for a request, read from the keys the engine already computed for it
   * (Engine.lastFeatures: subnet, base64 hashes, the identifier's keyed hash), or undefined.
   * Cheap when there are none: one size check.
   */
  match(f: RequestFeatures): Override | undefined {
    if (this.byKey.size === 0) return undefined;
    let best: Override | undefined;
    let bestRank = 99;
    const now = this.now();
    const consider = (type: OverrideKeyType, key: string) => {
      const list = this.byKey.get(key);
      if (!list) return;
      for (const o of list) {
        if (o.expires <= now) continue;
        const rank = RANK[type];
        if (rank < bestRank || (rank === bestRank && best && o.created > best.created)) {
          best = o;
          bestRank = rank;
        }
      }
    };
    if (this.has('ip')) consider('ip', `ip:${f.ip.toLowerCase()}`);
    if (this.has('subnet')) consider('subnet', `subnet:${f.subnet}`);
    if (this.has('session') && f.session) consider('session', `session:${f.session}`);
    if (this.has('device') && f.device) consider('device', `device:${f.device}`);
    if (this.has('principal') && f.principal) consider('principal', `principal:${f.principal}`);
    if (this.has('identifier') && f.identifierHash) consider('identifier', `identifier:${f.identifierHash}`);
    return best;
  }

  /** Whether an ALLOW override covers this exact gateway cache key (late verdicts for it are dropped). */
  allows(cacheKey: string): boolean {
    const list = this.byKey.get(cacheKey);
    const now = this.now();
    return list !== undefined && list.some((o) => o.action === 'ALLOW' && o.expires > now);
  }

  /** Queues the revocation of gateway cache keys: every gateway drops them on its next outcome flush. */
  revoke(keys: Iterable<string>): void {
    const now = this.now();
    for (const key of new Set(keys)) {
      if (key.startsWith('identifier:')) continue; // gateways cache no identifier keys
      const r: Revocation = { id: randomBytes(6).toString('hex'), seq: ++this.seq, key, at: now };
      this.revocations.push(r);
      this.seenRevocations.add(r.id);
      void this.publishRevocation(r);
    }
    this.trim(now);
  }

  private trim(now: number): void {
    if (this.revocations.length > 0 && (this.revocations[0] as Revocation).at < now - REVOCATION_KEEP_MS) {
      this.revocations = this.revocations.filter((r) => r.at >= now - REVOCATION_KEEP_MS);
    }
    if (this.revocations.length > 10_000) this.revocations = this.revocations.slice(-10_000);
    if (this.seenRevocations.size > 50_000) this.seenRevocations.clear();
  }

  /** The revocations `gatewayId` has not been sent yet (and marks them sent). */
  revocationsFor(gatewayId: string): string[] {
    if (this.revocations.length === 0) return [];
    const now = this.now();
    this.trim(now);
    const from = this.cursors.get(gatewayId);
    const out: string[] = [];
    for (const r of this.revocations) {
      if (from === undefined ? r.at >= now - NEW_GATEWAY_WINDOW_MS : r.seq > from) out.push(r.key);
    }
    this.cursors.delete(gatewayId);
    this.cursors.set(gatewayId, this.seq);
    if (this.cursors.size > 4096) this.cursors.delete(this.cursors.keys().next().value as string);
    return out;
  }

  // --- persistence -------------------------------------------------------------------------

  private load(): void {
    if (!this.file || !existsSync(this.file)) return;
    try {
      const doc = JSON.parse(readFileSync(this.file, 'utf8')) as { overrides?: Override[] };
      const now = this.now();
      for (const o of doc.overrides ?? []) if (o.expires > now) this.insert(o);
    } catch (err) {
      this.opts.logger.error({ file: this.file, err: String(err) }, 'cannot read the overrides file; starting without overrides (fix or delete the file)');
    }
  }

  private save(): void {
    if (!this.file) return;
    try {
      mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
      const tmp = `${this.file}.${process.pid}.tmp`;
      writeFileSync(tmp, `${JSON.stringify({ overrides: this.list() }, null, 1)}\n`, { mode: 0o600 });
      renameSync(tmp, this.file);
    } catch (err) {
      this.opts.logger.error({ file: this.file, err: String(err) }, 'cannot write the overrides file: overrides are live but will not survive a restart (check VERDICT_STATE_DIR)');
    }
  }

  // --- fleet (Redis) -----------------------------------------------------------------------

  private rkey(suffix: string): string {
    return `${this.opts.redisPrefix ?? 'verdict:'}{admin}:${suffix}`;
  }

  private async publish(added: Override | undefined, removed: Override | undefined): Promise<void> {
    const redis = this.opts.redis;
    if (!redis || redis.status !== 'ready') return;
    try {
      if (added) await redis.hset(this.rkey('overrides'), added.id, JSON.stringify(added));
      if (removed) await redis.hdel(this.rkey('overrides'), removed.id);
    } catch (err) {
      this.opts.logger.warn({ err: String(err) }, 'override not shared through Redis; other instances learn it at the next successful sync');
    }
  }

  private async publishRevocation(r: Revocation): Promise<void> {
    const redis = this.opts.redis;
    if (!redis || redis.status !== 'ready') return;
    try {
      const k = this.rkey('revocations');
      await redis.pipeline().rpush(k, JSON.stringify({ id: r.id, key: r.key, at: r.at })).ltrim(k, -1000, -1).expire(k, 3600).exec();
    } catch { /* the local gateways have it; others miss it (logged by the next sync's failure) */ }
  }

  /** Re-reads the fleet's overrides and revocations from Redis (every syncMs). */
  async sync(): Promise<void> {
    const redis = this.opts.redis;
    if (!redis || redis.status !== 'ready' || this.syncing) return;
    this.syncing = true;
    try {
      const [[, all], [, revs]] = (await redis.pipeline().hgetall(this.rkey('overrides')).lrange(this.rkey('revocations'), -200, -1).exec()) as [[unknown, Record<string, string>], [unknown, string[]]];
      const now = this.now();
      const remote = new Map<string, Override>();
      for (const [id, text] of Object.entries(all ?? {})) {
        const o = JSON.parse(text) as Override;
        if (o.expires > now) remote.set(id, o);
        else await redis.hdel(this.rkey('overrides'), id);
      }
      for (const o of this.list()) {
        if (remote.has(o.id) || o.created < this.lastSync) continue;
        remote.set(o.id, o);
        await redis.hset(this.rkey('overrides'), o.id, JSON.stringify(o));
      }
      const before = JSON.stringify(this.list().map((o) => o.id).sort());
      this.byKey.clear();
      this.perType.clear();
      for (const o of remote.values()) this.insert(o);
      const after = JSON.stringify(this.list().map((o) => o.id).sort());
      for (const text of revs ?? []) {
        const r = JSON.parse(text) as { id: string; key: string; at: number };
        if (this.seenRevocations.has(r.id) || r.at < now - REVOCATION_KEEP_MS) continue;
        this.seenRevocations.add(r.id);
        this.revocations.push({ id: r.id, key: r.key, at: r.at, seq: ++this.seq });
      }
      if (before !== after) {
        this.save();
        this.onRemoteChange?.();
      }
      this.lastSync = now;
    } catch (err) {
      this.opts.logger.warn({ err: String(err) }, 'override sync with Redis failed; serving the last known overrides');
    } finally {
      this.syncing = false;
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
