// The decision audit trail: every non-ALLOW verdict (and a sample of allows), every verdict a
// gateway enforced from its cache, and every override change, so an operator can answer "why was
// request X stopped?" and "who let client Y through?".
//
// What a record holds: request id, time, route, path template (ids folded: /api/orders/{id}),
// action, source (service | cache | async), score, reasons, and per signal the key it acted on
// and its strength, with the route class's thresholds. Keys are the service's own names for them:
// the client IP and its subnet (operators act on those: nginx logs them too), the gateway's keyed
// hashes of session / device / token (never the cookie or token), the keyed hash of an identifier
// (never the phone or email) and only an 8-character prefix of a password hash. No raw body,
// header value, query string or identifier is ever recorded.
//
// Where: a ring of VERDICT_AUDIT_RING records in memory (lookup by request id, recent stops);
// optionally appended to VERDICT_AUDIT_FILE as JSON Lines, rotated by size; with Redis, a capped
// stream of all instances' records plus one key per request id with a TTL, so any instance answers
// a lookup. File and Redis writes leave the decide path: records are queued and written by a timer.

import { appendFile, renameSync, statSync, existsSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Redis, Cluster } from 'ioredis';
import type { Thresholds } from '../config/policy.ts';
import type { Decision } from '../engine/engine.ts';
import { templateOf } from '../engine/inventory.ts';
import type { RequestFeatures, Signal } from '../engine/signal.ts';
import { BoundedMap } from '../state/bounded-map.ts';
import type { Outcome } from '../wire/schema.ts';
import type { RiskEvents } from './risk-events.ts';

export type AuditSource = 'service' | 'cache' | 'async';

export interface AuditEvidence {
  /** Reason code (dry_run: prefix for monitor-mode rules). */
  readonly code: string;
  /** Strength 0..100 the signal contributed (noisy-or). */
  readonly strength: number;
  /** The key the evidence is about: "<kind>:<value>" (request = the request itself). */
  readonly key: string;
  readonly monitor: boolean;
  /** The key type and TTL the signal asked the gateway to cache the verdict under. */
  readonly cache?: string;
  /** What a counting rule counted on that key: count (of attempts, for shares) against the
   *  policy's threshold for the key (Signal.evidence). */
  readonly count?: number;
  readonly of?: number;
  readonly threshold?: number;
}

export interface AuditKeys {
  readonly ip: string;
  readonly subnet: string;
  readonly session?: string;
  readonly device?: string;
  readonly principal?: string;
  readonly identifier?: string;
}

export interface DecisionRecord {
  readonly kind: 'decision';
  readonly request_id: string;
  readonly ts: number;
  readonly instance: string;
  readonly gateway_id: string;
  readonly source: AuditSource;
  readonly mode: string;
  readonly route: string;
  readonly route_class: string;
  readonly method: string;
  readonly path: string;
  readonly action: string;
  readonly would_action: string;
  readonly score: number;
  readonly reasons: readonly string[];
  readonly evidence: readonly AuditEvidence[];
  readonly thresholds: Thresholds | undefined;
  readonly keys: AuditKeys;
  readonly cache_key: string;
  readonly cache_ttl_s: number;
  readonly policy_version: string;
  /** For source "cache": the audited decision whose cached verdict the gateway enforced. */
  readonly cached_from?: string;
  /** Id of the operator override that set the action. */
  readonly override?: string;
}

export interface OverrideRecord {
  readonly kind: 'override';
  readonly ts: number;
  readonly instance: string;
  readonly change: 'create' | 'delete';
  readonly id: string;
  readonly key: string;
  readonly action: string;
  readonly expires: number;
  readonly note: string;
  /** Who: the name the operator gave, how they were admitted (token | loopback), their address. */
  readonly by: string;
  readonly via: string;
  readonly peer: string;
}

export type AuditRecord = DecisionRecord | OverrideRecord;

export interface AuditCounter {
  inc(labels: { kind: string; action: string }): void;
}
export interface AuditDropCounter {
  inc(labels: { sink: string }): void;
}

export interface AuditOptions {
  /** Records kept in memory (the ring). */
  readonly ring: number;
  /** Share of ALLOW verdicts recorded (0..1). */
  readonly allowSample: number;
  readonly file?: string;
  readonly fileMaxBytes?: number;
  /** Rotated files kept (file.1 … file.N). */
  readonly fileKeep?: number;
  readonly redis?: Redis | Cluster;
  readonly redisPrefix?: string;
  readonly redisMaxLen?: number;
  readonly redisTtlS?: number;
  readonly instance: string;
  readonly logger: Logger;
  readonly flushMs?: number;
  readonly recorded?: AuditCounter;
  readonly dropped?: AuditDropCounter;
  readonly random?: () => number;
  /** Risk events raised from recorded decisions (key.blocked, campaign.detected); none when absent. */
  readonly events?: RiskEvents;
  /** campaign.detected is raised once per reason family and key within this window (default 10 min). */
  readonly campaignWindowMs?: number;
}

/** Most records queued for the file and Redis between flushes; beyond it they are dropped (counted). */
const MAX_QUEUED = 20_000;
/** Keys remembered for deduplicating risk events (per map; BoundedMap forgets the least recently seen). */
const MAX_EVENT_KEYS = 10_000;

/** Reason-code prefix → the campaign family a risk event names. */
const FAMILIES: Readonly<Record<string, string>> = {
  cs: 'credential_stuffing',
  enum: 'enumeration',
  bola: 'traversal',
  exfil: 'exfil',
  probe: 'probing',
  authz: 'unauthorized_access',
  promo: 'promo_abuse',
  bot: 'automation',
  session: 'session_forgery',
};
/** Reasons that are not a campaign: operator overrides, clearance bookkeeping, monitor-only rules. */
const NOT_A_CAMPAIGN = /^(dry_run:|override\.|clearance\.)/;

/** The campaign family of a reason code, or undefined when it names none. */
export function familyOf(code: string): string | undefined {
  if (NOT_A_CAMPAIGN.test(code)) return undefined;
  const prefix = code.slice(0, code.indexOf('.') >>> 0);
  return FAMILIES[prefix] ?? (prefix || undefined);
}

function keysOf(f: RequestFeatures): AuditKeys {
  return {
    ip: f.ip,
    subnet: f.subnet,
    ...(f.session ? { session: f.session } : {}),
    ...(f.device ? { device: f.device } : {}),
    ...(f.principal ? { principal: f.principal } : {}),
    ...(f.identifierHash ? { identifier: f.identifierHash } : {}),
  };
}

/** "<kind>:<value>" of the key a signal acted on; hashes only (password: a prefix). */
export function subjectKey(s: Signal, f: RequestFeatures): string {
  switch (s.subject ?? 'request') {
    case 'request': return 'request';
    case 'session': return `session:${f.session}`;
    case 'device': return `device:${f.device}`;
    case 'principal': return `principal:${f.principal}`;
    case 'client': return `client:${f.ip}|${f.fingerprint}`;
    case 'ip': return `ip:${f.ip}`;
    case 'subnet': return `subnet:${f.subnet}`;
    case 'tool': return `tool:${f.headerSet}`;
    case 'fingerprint': return `fingerprint:${f.fingerprint}`;
    case 'password': return `password:${f.passwordHash.slice(0, 8)}…`;
    case 'identifier': return `identifier:${f.identifierHash}`;
    case 'global': return `global:${f.routeClass}`;
  }
}

/** True (and remembered for `forMs`) when `key` has not been seen within its last window. */
function firstSince(seen: BoundedMap<string, number>, key: string, now: number, forMs: number): boolean {
  const until = seen.peek(key);
  if (until !== undefined && now < until) return false;
  seen.set(key, now + forMs);
  return true;
}

export class AuditLog {
  private readonly ring: (AuditRecord | undefined)[];
  private next = 0;
  private readonly byRequest = new Map<string, DecisionRecord>();
  /** Latest cacheable record per cache key and per IP: what a cache-enforced outcome came from. */
  private readonly byCacheKey = new Map<string, DecisionRecord>();
  private queue: AuditRecord[] = [];
  private fileBytes = 0;
  private writing = false;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly random: () => number;
  /** Risk-event dedupe: "family|subject" → until (ms), cache key → block expiry (ms). */
  private readonly campaignsSeen = new BoundedMap<string, number>(MAX_EVENT_KEYS);
  private readonly blocksSeen = new BoundedMap<string, number>(MAX_EVENT_KEYS);

  constructor(private readonly opts: AuditOptions) {
    this.ring = new Array<AuditRecord | undefined>(Math.max(1, opts.ring)).fill(undefined);
    this.random = opts.random ?? Math.random;
    if (opts.file && existsSync(opts.file)) this.fileBytes = statSync(opts.file).size;
    if (opts.file || opts.redis) {
      this.timer = setInterval(() => void this.flush(), opts.flushMs ?? 250);
      this.timer.unref();
    }
  }

  /** Whether a decision with this action is recorded (every non-ALLOW; allows by sample). */
  wants(action: string): boolean {
    return action !== 'ALLOW' || (this.opts.allowSample > 0 && this.random() < this.opts.allowSample);
  }

  /** Records a decision the engine just made (call right after Engine.decide: reads its last features and signals). */
  decision(d: Decision, f: RequestFeatures, signals: readonly Signal[], thresholds: Thresholds | undefined, source: AuditSource, gatewayId: string, override?: string): DecisionRecord {
    const evidence: AuditEvidence[] = [];
    for (const s of signals) {
      evidence.push({
        code: s.code,
        strength: Math.round(s.score),
        key: subjectKey(s, f),
        monitor: s.monitor,
        ...(s.cache ? { cache: `${s.cache.key} ${s.cache.ttl_s}s` } : {}),
        ...(s.evidence ? { count: s.evidence.count, ...(s.evidence.of !== undefined ? { of: s.evidence.of } : {}), threshold: Math.round(s.evidence.threshold * 100) / 100 } : {}),
      });
    }
    const r: DecisionRecord = {
      kind: 'decision',
      request_id: d.request_id,
      ts: f.now,
      instance: this.opts.instance,
      gateway_id: gatewayId,
      source,
      mode: f.req.mode,
      route: f.route.name,
      route_class: d.routeClass,
      method: f.method,
      path: templateOf(f.req.path),
      action: d.action,
      would_action: d.wouldAction,
      score: d.score,
      reasons: d.reasons,
      evidence,
      thresholds,
      keys: keysOf(f),
      cache_key: d.cache_key,
      cache_ttl_s: d.cache_ttl_s,
      policy_version: d.policy_version,
      ...(override ? { override } : {}),
    };
    if (d.cache_key) {
      this.remember(d.cache_key, r);
      this.remember(`ip:${f.ip}`, r);
    }
    this.push(r);
    if (this.opts.events && d.action !== 'ALLOW' && f.req.mode !== 'MONITOR') this.raise(r, f.ip);
    return r;
  }

  /**
   * Risk events from a recorded (enforced) decision: key.blocked once per cache key while its
   * block lasts, campaign.detected once per family and key within the campaign window. Events
   * carry what the record does (hashes, addresses, route, reason codes), never more.
   */
  private raise(r: DecisionRecord, ip: string): void {
    const bus = this.opts.events as RiskEvents;
    const now = r.ts;
    // a client's key refused at the gateways; not a probed URL (target:), which every scanner's
    // request caches and which names no client
    const clientKey = r.cache_key.startsWith('target:') ? '' : r.cache_key;
    if (r.action === 'BLOCK' && clientKey && r.cache_ttl_s > 0 && firstSince(this.blocksSeen, clientKey, now, r.cache_ttl_s * 1000)) {
      bus.publish({ type: 'key.blocked', key: r.cache_key, ttl_s: r.cache_ttl_s, reasons: [...r.reasons], route: r.route, request_id: r.request_id });
    }
    if (r.action !== 'TAG' && r.action !== 'CHALLENGE' && r.action !== 'BLOCK') return;
    const window = this.opts.campaignWindowMs ?? 600_000;
    const families = new Set<string>();
    for (const code of r.reasons) {
      const family = familyOf(code);
      if (!family || families.has(family)) continue;
      families.add(family);
      // the narrowest key the family's evidence names (a password-hash prefix is not one to hand out)
      const ev = r.evidence.find((e) => familyOf(e.code) === family && e.key !== 'request' && !e.key.startsWith('password:'));
      const subject = ev?.key ?? (clientKey || `ip:${ip}`);
      if (!firstSince(this.campaignsSeen, `${family}|${subject}`, now, window)) continue;
      bus.publish({
        type: 'campaign.detected', family, reasons: [...r.reasons], key: r.cache_key, action: r.action,
        route: r.route, request_id: r.request_id, subject,
      });
    }
  }

  /** A verdict a gateway enforced from its cache (an outcome with from_cache), tied to the decision that cached it when known. */
  cached(o: Outcome, gatewayId: string, now: number): void {
    if (o.action === 'ALLOW' && !this.wants('ALLOW')) return;
    const from = this.byCacheKey.get(`ip:${o.client_ip}`);
    const r: DecisionRecord = {
      kind: 'decision',
      request_id: o.request_id,
      ts: o.ts_ms || now,
      instance: this.opts.instance,
      gateway_id: gatewayId,
      source: 'cache',
      mode: 'INLINE',
      route: from?.route ?? '',
      route_class: from?.route_class ?? '',
      method: o.method,
      path: templateOf(o.path.split('?')[0] ?? ''),
      action: o.action,
      would_action: o.action,
      score: from?.score ?? 0,
      reasons: from?.reasons ?? [],
      evidence: from?.evidence ?? [],
      thresholds: from?.thresholds,
      keys: from?.keys ?? { ip: o.client_ip, subnet: '' },
      cache_key: from?.cache_key ?? '',
      cache_ttl_s: 0,
      policy_version: from?.policy_version ?? '',
      ...(from ? { cached_from: from.request_id } : {}),
    };
    this.push(r);
  }

  /** An override created or deleted (who, when, why). */
  override(r: Omit<OverrideRecord, 'kind' | 'instance'>): void {
    this.push({ kind: 'override', instance: this.opts.instance, ...r });
  }

  private remember(key: string, r: DecisionRecord): void {
    const m = this.byCacheKey;
    m.delete(key);
    m.set(key, r);
    if (m.size > 10_000) m.delete(m.keys().next().value as string);
  }

  private push(r: AuditRecord): void {
    const i = this.next;
    const old = this.ring[i];
    if (old && old.kind === 'decision' && this.byRequest.get(old.request_id) === old) this.byRequest.delete(old.request_id);
    this.ring[i] = r;
    this.next = (i + 1) % this.ring.length;
    if (r.kind === 'decision' && r.request_id) this.byRequest.set(r.request_id, r);
    this.opts.recorded?.inc({ kind: r.kind === 'decision' ? r.source : 'override', action: r.action });
    if (this.opts.file || this.opts.redis) {
      if (this.queue.length < MAX_QUEUED) this.queue.push(r);
      else this.opts.dropped?.inc({ sink: 'queue' });
    }
  }

  /** Newest first, at most `limit`, optionally only non-ALLOW decisions ("stops") or only overrides. */
  recent(limit: number, filter: 'all' | 'stops' | 'overrides' = 'all'): AuditRecord[] {
    const out: AuditRecord[] = [];
    const n = this.ring.length;
    for (let k = 1; k <= n && out.length < limit; k++) {
      const r = this.ring[(this.next - k + n) % n];
      if (!r) break;
      if (filter === 'stops' && !(r.kind === 'decision' && r.action !== 'ALLOW' && r.action !== 'TAG')) continue;
      if (filter === 'overrides' && r.kind !== 'override') continue;
      out.push(r);
    }
    return out;
  }

  /** Records whose keys include `key` ("ip:…", "session:…"), newest first: what an override touches. */
  matching(key: string, limit = 1000): DecisionRecord[] {
    const [type, ...rest] = key.split(':');
    const value = rest.join(':');
    const out: DecisionRecord[] = [];
    for (const r of this.recent(this.ring.length)) {
      if (r.kind !== 'decision') continue;
      if ((r.keys as unknown as Record<string, string | undefined>)[type ?? ''] === value || r.cache_key === key) out.push(r);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** The record of a request id: this instance's ring, else (with Redis) any instance's. */
  async lookup(requestId: string): Promise<DecisionRecord | undefined> {
    const local = this.byRequest.get(requestId);
    if (local) return local;
    const redis = this.opts.redis;
    if (!redis || redis.status !== 'ready') return undefined;
    try {
      const text = await redis.get(this.redisKey(`req:${requestId}`));
      return text ? (JSON.parse(text) as DecisionRecord) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Recent records of every instance (Redis stream), newest first; this instance's ring without Redis. */
  async fleetRecent(limit: number, filter: 'all' | 'stops' | 'overrides' = 'all'): Promise<AuditRecord[]> {
    const redis = this.opts.redis;
    if (!redis || redis.status !== 'ready') return this.recent(limit, filter);
    try {
      const rows = await redis.xrevrange(this.redisKey('stream'), '+', '-', 'COUNT', Math.min(5000, limit * 20));
      const out: AuditRecord[] = [];
      for (const [, fields] of rows) {
        const r = JSON.parse(fields[1] ?? '{}') as AuditRecord;
        if (filter === 'stops' && !(r.kind === 'decision' && r.action !== 'ALLOW' && r.action !== 'TAG')) continue;
        if (filter === 'overrides' && r.kind !== 'override') continue;
        out.push(r);
        if (out.length >= limit) break;
      }
      // records not yet flushed to Redis
      const pending = this.queue.filter((r) => filter === 'all' || (filter === 'overrides' ? r.kind === 'override' : r.kind === 'decision' && r.action !== 'ALLOW' && r.action !== 'TAG'));
      return [...pending.reverse(), ...out].slice(0, limit);
    } catch {
      return this.recent(limit, filter);
    }
  }

  private redisKey(suffix: string): string {
    // one hash tag: every audit key in one Redis Cluster slot
    return `${this.opts.redisPrefix ?? 'verdict:'}{audit}:${suffix}`;
  }

  /** Writes queued records to the file and Redis (the timer calls it; tests and close() too). */
  async flush(): Promise<void> {
    if (this.writing || this.queue.length === 0) return;
    this.writing = true;
    const batch = this.queue;
    this.queue = [];
    try {
      const lines = batch.map((r) => JSON.stringify(r));
      if (this.opts.file) await this.writeFile(lines);
      const redis = this.opts.redis;
      if (redis) {
        if (redis.status !== 'ready') {
          this.opts.dropped?.inc({ sink: 'redis' });
        } else {
          const p = redis.pipeline();
          const stream = this.redisKey('stream');
          const ttl = this.opts.redisTtlS ?? 86_400;
          for (let i = 0; i < batch.length; i++) {
            const r = batch[i] as AuditRecord;
            const line = lines[i] as string;
            p.xadd(stream, 'MAXLEN', '~', this.opts.redisMaxLen ?? 100_000, '*', 'r', line);
            if (r.kind === 'decision' && r.request_id) p.set(this.redisKey(`req:${r.request_id}`), line, 'EX', ttl);
          }
          await p.exec().catch(() => this.opts.dropped?.inc({ sink: 'redis' }));
        }
      }
    } catch (err) {
      this.opts.logger.warn({ err: String(err) }, 'audit trail write failed; records kept in memory only');
    } finally {
      this.writing = false;
    }
  }

  private async writeFile(lines: string[]): Promise<void> {
    const file = this.opts.file as string;
    const text = `${lines.join('\n')}\n`;
    const max = this.opts.fileMaxBytes ?? 64 * 2 ** 20;
    if (this.fileBytes > 0 && this.fileBytes + text.length > max) this.rotate(file);
    await new Promise<void>((resolve, reject) => appendFile(file, text, { mode: 0o600 }, (err) => (err ? reject(err) : resolve())));
    this.fileBytes += Buffer.byteLength(text);
  }

  /** file → file.1 → … → file.N (the oldest dropped). */
  private rotate(file: string): void {
    const keep = this.opts.fileKeep ?? 5;
    for (let i = keep - 1; i >= 1; i--) {
      if (existsSync(`${file}.${i}`)) renameSync(`${file}.${i}`, `${file}.${i + 1}`);
    }
    if (keep >= 1) renameSync(file, `${file}.1`);
    this.fileBytes = 0;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    while (this.writing) await new Promise((r) => setTimeout(r, 5));
    await this.flush();
  }
}
