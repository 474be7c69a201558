// Shared store for fleets: answers every call synchronously from local state and merges with
// Redis in the background, so the decide path never waits on Redis.
//
// Each key keeps, per bucket, three parts: `remote` (the merged value last read from Redis, which
// already holds this instance's acknowledged writes), `inflight` (deltas sent, not yet answered)
// and `pending` (deltas not yet sent). A read returns remote + inflight + pending: no double
// counting, because every write's reply carries the merged value after that write (INCRBY, the
// scripts) and replaces `remote` as it clears `inflight`; and because commands and replies of one
// key are ordered on one connection, a read's snapshot always holds every write sent before it.
//
// Staleness. A read sees: everything this instance did (immediately); another instance's
// contribution once that instance flushed it (≤ flushMs) and this instance pulled it afterwards
// (≤ refreshMs), each plus one round trip — at most flushMs + refreshMs + 2·RTT (≈ 350 ms with
// the defaults) for keys this instance touched within activeMs. A key new to this instance
// reads local-only until the pull that follows its first touch (≤ flushMs + RTT). While Redis is
// unreachable reads are local-only (plus the last merged view) and the lag grows; stats().lagMs
// shows it.
//
// Failure. No call waits on Redis: flushes are skipped while disconnected, deltas stay pending
// (bounded by maxKeys entries and maxDirty queued keys; beyond that dropped and counted), and go
// out on reconnect. Delivery of counter deltas is at-least-once: a write whose connection breaks
// after Redis executed it is sent again. A restart that lost Redis's data is detected by this
// instance's liveness marker (SET … GET returns nothing); every live key then re-sends this
// instance's own contribution, so the merged state rebuilds.
//
// Redis Cluster. All Redis keys of one store key share its hash tag (redis-keys.ts), so every
// command and script carries the keys of one slot; a batch goes out as one pipeline per slot
// group (master and replicas), each command placed by the slot of its first key. A master that
// dies fails its group's commands at once (not retried by ioredis): their deltas are pending
// again, the slot map is re-read, and the next flush after its replica's promotion delivers them
// there; the other masters keep merging meanwhile. Writes the dead master acknowledged but had
// not yet replicated are lost (Redis replication is asynchronous; on one machine that is the
// last millisecond or so), and the liveness marker lives on one node, so neither a failover nor
// a restart of another shard triggers a re-send: such keys rebuild from new traffic.

import { randomBytes } from 'node:crypto';
import { Cluster, Redis, type ChainableCommander, type RedisOptions } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { shedLru } from './bounded-map.ts';
import { DistinctSketch } from './distinct.ts';
import { arrivalKey, counterKey, distinctRegKey, distinctSetKey, instanceKey, keySlot, markKey, valueKey } from './redis-keys.ts';
import { ARRIVALS, DISTINCT_ADD, DISTINCT_READ, INCR_MANY, MARK, SWAP } from './redis-scripts.ts';
import { rankOf, registerOf, SKETCH_M, SKETCH_SMALL, sketchFrom, unionInto } from './sketch-union.ts';
import type { IntervalStats, Store } from './store.ts';

export interface StoreLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface RedisStoreOptions {
  /** redis://host:port/db (single Redis); ignored when clusterNodes is set. */
  readonly url?: string;
  /** Redis Cluster seed nodes. */
  readonly clusterNodes?: ReadonlyArray<{ readonly host: string; readonly port: number }>;
  /** Prefix of every Redis key (default "verdict:"). */
  readonly prefix?: string;
  /** Interval of batched writes (default 100 ms). */
  readonly flushMs?: number;
  /** Interval of background reads of recently touched keys (default 250 ms). */
  readonly refreshMs?: number;
  /** false: no timers; the caller drives flush()/pull()/sync() (tests, replays). */
  readonly timers?: boolean;
  /** Keys held locally per structure (LRU), as MemoryStore's maxKeys. */
  readonly maxKeys?: number;
  /** Keys touched within this are refreshed in the background (default 2 s). */
  readonly activeMs?: number;
  /** Most keys read per refresh (the most recently touched win). */
  readonly maxRefreshKeys?: number;
  /** Most keys with pending deltas queued for the next flush. */
  readonly maxDirty?: number;
  /** TTL of arrival lists, which have no window (default 10 min). */
  readonly arrivalTtlMs?: number;
  readonly logger?: StoreLogger;
  /** One "still down" line per this many ms while disconnected (default 30 s). */
  readonly logEveryMs?: number;
  readonly connectTimeoutMs?: number;
  readonly commandTimeoutMs?: number;
  /** Redis Cluster: interval of slot-map refreshes, which find a promoted replica (default 1 s). */
  readonly slotsRefreshMs?: number;
}

export interface RedisStoreStats {
  readonly connected: boolean;
  readonly flushes: number;
  readonly flushErrors: number;
  readonly pulls: number;
  readonly pullErrors: number;
  /** ms since the last successful flush (0 before the first one is due). */
  readonly lagMs: number;
  /** Commands in the last flush. */
  readonly opsPerFlush: number;
  /** Commands sent in total (flushes and pulls). */
  readonly commands: number;
  /** Keys with deltas waiting for the next flush. */
  readonly pendingKeys: number;
  /** Keys whose deltas were dropped because the pending queue was full. */
  readonly dropped: number;
  /** Times a Redis data loss was detected and this instance's contribution re-sent. */
  readonly reseeds: number;
}

type Reply = unknown;
type Handler = (err: Error | null, res: Reply) => void;
type Client = Redis | Cluster;
type Pipe = ChainableCommander & Record<string, (...args: Array<string | number>) => Pipe>;

const SLACK_MS = 60_000;
const RING = 8;
const PENDING_MEMBERS = 32;

const BULK = 1000;

/** Replies that mean the slot map is out of date (a failover, a resharding, a dead node). */
const STALE_SLOTS = /^(MOVED|ASK|CLUSTERDOWN|TRYAGAIN) |Connection is closed|slots allocation group/;

/**
 * Commands of one flush or pull, with one reply handler each. Reads and counter increments are
 * collected so that, against a single Redis, they go out as a few bulk commands (MGET, one
 * script call per kind) instead of one command per key; against a Cluster every store key gets
 * its own commands (a multi-key command must stay in one slot, and store keys spread over all).
 */
class Batch {
  readonly keys: string[] = [];
  readonly names: string[] = [];
  readonly args: Array<Array<string | number>> = [];
  readonly handlers: Handler[] = [];
  readonly mgetKeys: string[] = [];
  readonly mgetHandlers: Array<(values: Reply[]) => void> = [];
  readonly mgetCounts: number[] = [];
  readonly dreadKeys: string[] = [];
  readonly dreadHandlers: Array<(reads: Reply[]) => void> = [];
  readonly incrKeys: string[] = [];
  readonly incrArgs: Array<string | number> = [];
  readonly incrHandlers: Handler[] = [];
  constructor(readonly bulk: boolean) {}

  /**
   * One command; `key` is its first Redis key, which routes it to its slot's node in a Cluster
   * (a script's first argument may be its key count, not a key).
   */
  add(name: string, key: string, args: Array<string | number>, handler: Handler): void {
    this.keys.push(key);
    this.names.push(name);
    this.args.push(args);
    this.handlers.push(handler);
  }

  /** GET of several keys of one store key (one slot); the handler gets the values or errs silently. */
  mget(keys: string[], handler: (values: Reply[]) => void): void {
    if (!this.bulk) {
      this.add('mget', keys[0] ?? '', keys, (err, res) => { if (!err && Array.isArray(res)) handler(res); });
      return;
    }
    this.mgetKeys.push(...keys);
    this.mgetCounts.push(keys.length);
    this.mgetHandlers.push(handler);
  }

  /** Distinct reads of (set, registers) pairs of one store key. */
  dread(keys: string[], handler: (reads: Reply[]) => void): void {
    if (!this.bulk) {
      this.add('verdictDistinctRead', keys[0] ?? '', [keys.length, ...keys, SKETCH_SMALL], (err, res) => { if (!err && Array.isArray(res)) handler(res); });
      return;
    }
    this.dreadKeys.push(...keys);
    this.dreadHandlers.push(handler);
  }

  /** INCRBY + PEXPIRE of a counter bucket; the handler gets the new value. */
  incr(key: string, delta: number, ttlMs: number, handler: Handler): void {
    if (!this.bulk) {
      this.add(Number.isInteger(delta) ? 'incrby' : 'incrbyfloat', key, [key, delta], handler);
      this.add('pexpire', key, [key, ttlMs], noop);
      return;
    }
    this.incrKeys.push(key);
    this.incrArgs.push(delta, ttlMs);
    this.incrHandlers.push(handler);
  }

  get size(): number {
    return this.names.length + Math.ceil(this.mgetKeys.length / BULK) + Math.ceil(this.dreadKeys.length / (2 * BULK)) + Math.ceil(this.incrKeys.length / BULK);
  }

  get empty(): boolean {
    return this.names.length + this.mgetKeys.length + this.dreadKeys.length + this.incrKeys.length === 0;
  }

  /** Folds the bulk parts into plain commands (chunked), keeping one handler per command. */
  seal(): void {
    for (let i = 0; i < this.incrKeys.length; i += BULK) {
      const keys = this.incrKeys.slice(i, i + BULK);
      const handlers = this.incrHandlers.slice(i, i + BULK);
      this.add('verdictIncrMany', keys[0] ?? '', [keys.length, ...keys, ...this.incrArgs.slice(2 * i, 2 * i + 2 * keys.length)], (err, res) => {
        for (let j = 0; j < handlers.length; j++) handlers[j]?.(err ?? (Array.isArray(res) ? null : new Error('bad reply')), Array.isArray(res) ? res[j] : null);
      });
    }
    let h = 0;
    let k = 0;
    while (h < this.mgetHandlers.length) {
      const handlers: Array<(values: Reply[]) => void> = [];
      const counts: number[] = [];
      let n = 0;
      while (h < this.mgetHandlers.length && n < BULK) {
        const c = this.mgetCounts[h] ?? 0;
        handlers.push(this.mgetHandlers[h] as (values: Reply[]) => void);
        counts.push(c);
        n += c;
        h++;
      }
      const keys = this.mgetKeys.slice(k, k + n);
      k += n;
      this.add('mget', keys[0] ?? '', keys, (err, res) => {
        if (err || !Array.isArray(res)) return;
        let off = 0;
        for (let j = 0; j < handlers.length; j++) {
          const c = counts[j] ?? 0;
          handlers[j]?.(res.slice(off, off + c));
          off += c;
        }
      });
    }
    // every distinct read is two pairs (current and previous bucket)
    for (let i = 0; i < this.dreadHandlers.length; i += BULK / 2) {
      const handlers = this.dreadHandlers.slice(i, i + BULK / 2);
      const keys = this.dreadKeys.slice(4 * i, 4 * i + 4 * handlers.length);
      this.add('verdictDistinctRead', keys[0] ?? '', [keys.length, ...keys, SKETCH_SMALL], (err, res) => {
        if (err || !Array.isArray(res)) return;
        for (let j = 0; j < handlers.length; j++) handlers[j]?.(res.slice(2 * j, 2 * j + 2));
      });
    }
    for (const a of [this.mgetKeys, this.mgetHandlers, this.mgetCounts, this.dreadKeys, this.dreadHandlers, this.incrKeys, this.incrArgs, this.incrHandlers]) a.length = 0;
  }
}

abstract class Entry {
  touchGen = -1;
  inHot = false;
  dirty = false;
  constructor(readonly key: string) {}
  abstract flush(b: Batch, s: RedisStore): void;
  abstract pull(b: Batch, s: RedisStore): void;
  /** Redis lost its data: queue this instance's whole contribution again. */
  abstract reseed(s: RedisStore): void;
}

// ------------------------------------------------------------------------------- counters

class Cell {
  remote = 0;
  inflight = 0;
  pending = 0;
  /** This instance's writes Redis acknowledged (re-sent after a data loss). */
  acked = 0;
  constructor(readonly bucket: number, readonly rkey: string) {}
  total(): number {
    return this.remote + this.inflight + this.pending;
  }
}

class CounterEntry extends Entry {
  cur: Cell;
  prev: Cell;
  constructor(key: string, readonly windowMs: number, now: number, private readonly prefix: string) {
    super(key);
    const b = Math.floor(now / windowMs);
    this.cur = new Cell(b, counterKey(prefix, key, windowMs, b));
    this.prev = new Cell(b - 1, counterKey(prefix, key, windowMs, b - 1));
  }

  roll(now: number, s: RedisStore): void {
    const b = Math.floor(now / this.windowMs);
    if (b === this.cur.bucket) return;
    const mk = (x: number) => new Cell(x, counterKey(this.prefix, this.key, this.windowMs, x));
    if (this.prev.pending !== 0) s.orphan(this, this.prev);
    if (b === this.cur.bucket + 1) {
      this.prev = this.cur;
    } else {
      if (this.cur.pending !== 0) s.orphan(this, this.cur);
      this.prev = mk(b - 1);
    }
    this.cur = mk(b);
  }

  estimate(now: number): number {
    const elapsed = (now - this.cur.bucket * this.windowMs) / this.windowMs;
    return this.cur.total() + this.prev.total() * (1 - elapsed);
  }

  flushCell(c: Cell, b: Batch, s: RedisStore): void {
    const d = c.pending;
    if (d === 0) return;
    c.pending = 0;
    c.inflight += d;
    b.incr(c.rkey, d, 2 * this.windowMs + SLACK_MS, (err, res) => {
      c.inflight -= d;
      if (err) {
        c.pending += d;
        s.requeue(this);
        return;
      }
      c.acked += d;
      // The reply holds every write up to this one; what is still in flight was sent later.
      c.remote = Number(res);
    });
  }

  flush(b: Batch, s: RedisStore): void {
    this.flushCell(this.cur, b, s);
    this.flushCell(this.prev, b, s);
  }

  pull(b: Batch): void {
    const cur = this.cur;
    const prev = this.prev;
    b.mget([cur.rkey, prev.rkey], (res) => {
      cur.remote = Number(res[0] ?? 0);
      prev.remote = Number(res[1] ?? 0);
    });
  }

  reseed(s: RedisStore): void {
    for (const c of [this.cur, this.prev]) {
      c.pending += c.acked;
      c.acked = 0;
      c.remote = 0;
    }
    s.requeue(this);
  }
}

// ------------------------------------------------------------------------------- distinct sets

class DCell {
  remote: DistinctSketch | undefined = undefined;
  /** Members this instance added to the bucket. */
  readonly mine = new DistinctSketch();
  pending: number[] = [];
  /** More members pending than sent one by one: send mine's registers instead. */
  overflow = false;
  constructor(readonly bucket: number, readonly setKey: string, readonly regKey: string) {}
}

class DistinctEntry extends Entry {
  cur: DCell;
  prev: DCell;
  readonly view = new DistinctSketch();
  viewOk = false;
  constructor(key: string, readonly windowMs: number, now: number, private readonly prefix: string) {
    super(key);
    const b = Math.floor(now / windowMs);
    this.cur = this.mk(b);
    this.prev = this.mk(b - 1);
  }

  private mk(b: number): DCell {
    return new DCell(b, distinctSetKey(this.prefix, this.key, this.windowMs, b), distinctRegKey(this.prefix, this.key, this.windowMs, b));
  }

  roll(now: number, s: RedisStore): void {
    const b = Math.floor(now / this.windowMs);
    if (b === this.cur.bucket) return;
    if (this.prev.pending.length > 0 || this.prev.overflow) s.orphan(this, this.prev);
    if (b === this.cur.bucket + 1) {
      this.prev = this.cur;
    } else {
      if (this.cur.pending.length > 0 || this.cur.overflow) s.orphan(this, this.cur);
      this.prev = this.mk(b - 1);
    }
    this.cur = this.mk(b);
    this.viewOk = false;
  }

  add(member: number): void {
    const c = this.cur;
    const known = c.mine.small !== undefined && c.mine.small.includes(member);
    c.mine.add(member);
    if (!known && !c.overflow) {
      if (c.pending.length < PENDING_MEMBERS) {
        if (!c.pending.includes(member)) c.pending.push(member);
      } else {
        c.overflow = true;
        c.pending = [];
      }
    }
    if (this.viewOk) this.view.add(member);
  }

  count(): number {
    if (!this.viewOk) {
      const v = this.view;
      v.reset();
      unionInto(v, this.cur.remote);
      unionInto(v, this.cur.mine);
      unionInto(v, this.prev.remote);
      unionInto(v, this.prev.mine);
      this.viewOk = true;
    }
    return this.view.count();
  }

  flushCell(c: DCell, b: Batch, s: RedisStore): void {
    if (c.pending.length === 0 && !c.overflow) return;
    const args: Array<string | number> = [c.setKey, c.regKey, 2 * this.windowMs + SLACK_MS, SKETCH_SMALL];
    const sent = c.pending;
    const overflow = c.overflow;
    if (overflow) {
      const regs = c.mine.registers;
      if (regs) for (let i = 0; i < SKETCH_M; i++) if ((regs[i] ?? 0) > 0) args.push('-', i, regs[i] ?? 0);
      for (const x of c.mine.small ?? []) args.push(x, registerOf(x), rankOf(x));
    } else {
      for (const x of sent) args.push(x, registerOf(x), rankOf(x));
    }
    c.pending = [];
    c.overflow = false;
    b.add('verdictDistinctAdd', c.setKey, args, (err, res) => {
      if (err) {
        if (overflow) c.overflow = true;
        else for (const x of sent) if (!c.pending.includes(x)) c.pending.push(x);
        if (c.pending.length > PENDING_MEMBERS) { c.overflow = true; c.pending = []; }
        s.requeue(this);
        return;
      }
      c.remote = decodeSketch(res);
      this.viewOk = false;
    });
  }

  flush(b: Batch, s: RedisStore): void {
    this.flushCell(this.cur, b, s);
    this.flushCell(this.prev, b, s);
  }

  pull(b: Batch): void {
    const cur = this.cur;
    const prev = this.prev;
    b.dread([cur.setKey, cur.regKey, prev.setKey, prev.regKey], (res) => {
      cur.remote = decodeSketch(res[0]);
      prev.remote = decodeSketch(res[1]);
      this.viewOk = false;
    });
  }

  reseed(s: RedisStore): void {
    for (const c of [this.cur, this.prev]) {
      if (c.mine.small) c.pending = c.mine.small.slice();
      else c.overflow = true;
      c.remote = undefined;
    }
    this.viewOk = false;
    s.requeue(this);
  }
}

function decodeSketch(res: Reply): DistinctSketch | undefined {
  if (!Array.isArray(res) || res.length === 0) return undefined;
  const values = res.slice(1).map(Number);
  return sketchFrom(Number(res[0]) === 1, values);
}

// ------------------------------------------------------------------------------- marks

class MarkEntry extends Entry {
  local = 0;
  remote = 0;
  ttlMs = 0;
  pending = false;
  constructor(key: string, readonly rkey: string) {
    super(key);
  }
  flush(b: Batch, s: RedisStore): void {
    if (!this.pending) return;
    this.pending = false;
    const until = this.local;
    b.add('verdictMark', this.rkey, [this.rkey, until, this.ttlMs], (err, res) => {
      if (err) {
        this.pending = true;
        s.requeue(this);
        return;
      }
      this.remote = Number(res) || 0;
    });
  }
  pull(b: Batch): void {
    b.mget([this.rkey], (res) => {
      this.remote = Number(res[0] ?? 0) || 0;
    });
  }
  reseed(s: RedisStore): void {
    this.remote = 0;
    if (this.local > 0) {
      this.pending = true;
      s.requeue(this);
    }
  }
}

// ------------------------------------------------------------------------------- arrivals

const NO_ARRIVALS: IntervalStats = Object.freeze({ n: 0, meanMs: 0, cv: 1 });

class ArrivalEntry extends Entry {
  remote: number[] = [];
  inflight: number[] = [];
  pending: number[] = [];
  constructor(key: string, readonly rkey: string, private readonly ttlMs: number) {
    super(key);
  }
  record(now: number): IntervalStats {
    this.pending.push(now);
    if (this.pending.length > RING + 1) this.pending.shift();
    const all = this.remote.length + this.inflight.length === 0 ? this.pending.slice() : this.remote.concat(this.inflight, this.pending);
    if (all.length < 2) return NO_ARRIVALS;
    all.sort((a, b) => b - a);
    const k = Math.min(all.length, RING + 1);
    const n = k - 1;
    const mean = ((all[0] ?? 0) - (all[k - 1] ?? 0)) / n;
    let sq = 0;
    for (let i = 0; i < n; i++) sq += ((all[i] ?? 0) - (all[i + 1] ?? 0) - mean) ** 2;
    const cv = mean > 0 ? Math.sqrt(sq / n) / mean : 0;
    return { n, meanMs: mean, cv };
  }
  flush(b: Batch, s: RedisStore): void {
    if (this.pending.length === 0) return;
    const sent = this.pending;
    this.pending = [];
    this.inflight = this.inflight.concat(sent);
    b.add('verdictArrivals', this.rkey, [this.rkey, this.ttlMs, RING + 1, ...sent], (err, res) => {
      this.inflight = [];
      if (err) {
        this.pending = sent.concat(this.pending).slice(-(RING + 1));
        s.requeue(this);
        return;
      }
      if (Array.isArray(res)) this.remote = res.map(Number);
    });
  }
  pull(b: Batch): void {
    b.add('lrange', this.rkey, [this.rkey, 0, -1], (err, res) => {
      if (!err && Array.isArray(res)) this.remote = res.map(Number);
    });
  }
  reseed(): void {
    // Timing evidence is short-lived: rebuilt from new arrivals, not re-sent.
    this.remote = [];
  }
}

// ------------------------------------------------------------------------------- values

class ValueSlot {
  constructor(readonly value: number, readonly at: number, readonly expires: number) {}
}

function parseValue(res: Reply): ValueSlot | undefined {
  if (typeof res !== 'string') return undefined;
  const [at, exp, v] = res.split('|');
  const slot = new ValueSlot(Number(v), Number(at), Number(exp));
  return Number.isFinite(slot.value) && Number.isFinite(slot.at) ? slot : undefined;
}

class ValueEntry extends Entry {
  local: ValueSlot | undefined = undefined;
  remote: ValueSlot | undefined = undefined;
  ttlMs = 0;
  pending = false;
  constructor(key: string, readonly rkey: string) {
    super(key);
  }
  current(): ValueSlot | undefined {
    const l = this.local;
    const r = this.remote;
    if (!r) return l;
    if (!l) return r;
    return r.at > l.at ? r : l;
  }
  flush(b: Batch, s: RedisStore): void {
    const l = this.local;
    if (!this.pending || !l) return;
    this.pending = false;
    b.add('verdictSwap', this.rkey, [this.rkey, l.at, `${l.at}|${l.expires}|${l.value}`, this.ttlMs], (err, res) => {
      if (err) {
        this.pending = true;
        s.requeue(this);
        return;
      }
      this.remote = parseValue(res);
    });
  }
  pull(b: Batch): void {
    b.mget([this.rkey], (res) => {
      this.remote = parseValue(res[0]);
    });
  }
  reseed(s: RedisStore): void {
    this.remote = undefined;
    if (this.local) {
      this.pending = true;
      s.requeue(this);
    }
  }
}

function noop(): void {}

// ------------------------------------------------------------------------------- the store

export class RedisStore implements Store {
  readonly prefix: string;
  readonly instanceId = randomBytes(8).toString('hex');
  private readonly client: Client;
  /** Single Redis: reads and increments go out as bulk commands. */
  private readonly bulk: boolean;
  private readonly counters: LRUCache<string, CounterEntry>;
  private readonly distinct: LRUCache<string, DistinctEntry>;
  private readonly marks: LRUCache<string, MarkEntry>;
  private readonly arrivals: LRUCache<string, ArrivalEntry>;
  private readonly values: LRUCache<string, ValueEntry>;
  private readonly flushMs: number;
  private readonly refreshMs: number;
  private readonly activeGens: number;
  private readonly maxRefreshKeys: number;
  private readonly maxDirty: number;
  private readonly arrivalTtlMs: number;
  private readonly logger: StoreLogger | undefined;
  private readonly logEveryMs: number;
  private gen = 0;
  private hot: Entry[] = [];
  private dirty: Entry[] = [];
  private fresh: Entry[] = [];
  private orphans: Array<[CounterEntry | DistinctEntry, Cell | DCell]> = [];
  private flushing: Promise<void> | undefined = undefined;
  private pulling: Promise<void> | undefined = undefined;
  private flushTimer: NodeJS.Timeout | undefined = undefined;
  private pullTimer: NodeJS.Timeout | undefined = undefined;
  private markerTtlMs = 2 * SLACK_MS;
  private flushedOnce = false;
  private readonly slotsRefreshMs: number;
  private lastSlotsRefresh = 0;
  private up = false;
  private downSince = 0;
  private lastDownLog = 0;
  private closed = false;
  private readonly counts = { flushes: 0, flushErrors: 0, pulls: 0, pullErrors: 0, opsPerFlush: 0, commands: 0, dropped: 0, reseeds: 0, lastFlushOk: 0 };

  constructor(opts: RedisStoreOptions) {
    this.prefix = opts.prefix ?? 'verdict:';
    this.flushMs = opts.flushMs ?? 100;
    this.refreshMs = opts.refreshMs ?? 250;
    this.activeGens = Math.max(1, Math.ceil((opts.activeMs ?? 2000) / this.refreshMs));
    this.maxRefreshKeys = opts.maxRefreshKeys ?? 50_000;
    const max = opts.maxKeys ?? 500_000;
    this.maxDirty = opts.maxDirty ?? max;
    this.arrivalTtlMs = opts.arrivalTtlMs ?? 600_000;
    this.logger = opts.logger;
    this.logEveryMs = opts.logEveryMs ?? 30_000;
    this.counters = new LRUCache({ max });
    this.distinct = new LRUCache({ max });
    this.marks = new LRUCache({ max });
    this.arrivals = new LRUCache({ max });
    this.values = new LRUCache({ max });

    const redisOptions: RedisOptions = {
      // Never queue or replay behind our back: the store keeps its own pending deltas.
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      connectTimeout: opts.connectTimeoutMs ?? 1000,
      commandTimeout: opts.commandTimeoutMs ?? 2000,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 10), 2000),
      lazyConnect: false,
    };
    if (opts.clusterNodes && opts.clusterNodes.length > 0) {
      this.client = new Cluster(opts.clusterNodes.map((n) => ({ host: n.host, port: n.port })), {
        redisOptions,
        enableOfflineQueue: false,
        clusterRetryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 10), 2000),
        // No slotsRefreshInterval: its timer re-arms itself when a refresh is in flight during
        // disconnect() and keeps the process alive; flush() refreshes instead (refreshSlots).
        // A pipeline whose node died is failed at once instead of retried for seconds by ioredis
        // (its deltas are pending again and go out with the next flush, to the promoted replica):
        // one dead node must not hold up the flushes of the others.
        retryDelayOnFailover: 0,
        retryDelayOnClusterDown: 0,
      });
      this.client.on('node error', (err: Error, node: string) => this.onDown(`${node}: ${err.message}`));
    } else {
      if (!opts.url) throw new Error('RedisStore needs url or clusterNodes');
      this.client = new Redis(opts.url, redisOptions);
    }
    this.bulk = !(this.client instanceof Cluster);
    this.slotsRefreshMs = opts.slotsRefreshMs ?? 1000;
    const c = this.client;
    c.defineCommand('verdictDistinctAdd', { numberOfKeys: 2, lua: DISTINCT_ADD });
    c.defineCommand('verdictDistinctRead', { lua: DISTINCT_READ });
    c.defineCommand('verdictIncrMany', { lua: INCR_MANY });
    c.defineCommand('verdictMark', { numberOfKeys: 1, lua: MARK });
    c.defineCommand('verdictSwap', { numberOfKeys: 1, lua: SWAP });
    c.defineCommand('verdictArrivals', { numberOfKeys: 1, lua: ARRIVALS });
    c.on('ready', () => this.onUp());
    c.on('error', (err: Error) => this.onDown(err.message));
    c.on('close', () => this.onDown('connection closed'));
    c.on('end', () => this.onDown('connection ended'));

    if (opts.timers !== false) {
      this.flushTimer = setInterval(() => void this.flush(), this.flushMs);
      this.pullTimer = setInterval(() => void this.pull(), this.refreshMs);
      this.flushTimer.unref();
      this.pullTimer.unref();
    }
  }

  // ----------------------------------------------------------------------------- Store

  incr(key: string, windowMs: number, now: number, by = 1): number {
    const e = this.counter(key, windowMs, now);
    e.cur.pending += by;
    this.markDirty(e);
    return e.estimate(now);
  }

  count(key: string, windowMs: number, now: number): number {
    return this.counter(key, windowMs, now).estimate(now);
  }

  addDistinct(key: string, member: number, windowMs: number, now: number): number {
    const e = this.distinctEntry(key, windowMs, now);
    e.add(member);
    this.markDirty(e);
    return e.count();
  }

  countDistinct(key: string, windowMs: number, now: number): number {
    return this.distinctEntry(key, windowMs, now).count();
  }

  mark(key: string, now: number, ttlMs: number): void {
    const e = this.markEntry(key);
    const until = now + ttlMs;
    if (until > e.local && until > e.remote) {
      e.local = until;
      e.ttlMs = ttlMs;
      e.pending = true;
      this.markDirty(e);
    }
  }

  marked(key: string, now: number): boolean {
    const e = this.markEntry(key);
    return e.local > now || e.remote > now;
  }

  arrival(key: string, now: number): IntervalStats {
    let e = this.arrivals.get(key);
    if (!e) {
      e = new ArrivalEntry(key, arrivalKey(this.prefix, key), this.arrivalTtlMs);
      this.arrivals.set(key, e);
      this.addFresh(e);
    }
    this.touch(e);
    const stats = e.record(now);
    this.markDirty(e);
    return stats;
  }

  swap(key: string, value: number, now: number, ttlMs: number): number | undefined {
    let e = this.values.get(key);
    if (!e) {
      e = new ValueEntry(key, valueKey(this.prefix, key));
      this.values.set(key, e);
      this.addFresh(e);
    }
    this.touch(e);
    const cur = e.current();
    const prev = cur && cur.expires > now ? cur.value : undefined;
    e.local = new ValueSlot(value, now, now + ttlMs);
    e.ttlMs = ttlMs;
    e.pending = true;
    this.markDirty(e);
    return prev;
  }

  size(): number {
    return this.counters.size + this.distinct.size + this.marks.size + this.arrivals.size + this.values.size;
  }

  /**
   * Memory pressure: drops the least recently used `fraction` of each local structure, as LRU
   * eviction would (deltas already queued still go out with the next flush). The shared state in
   * Redis is untouched; a dropped key reads from Redis again on its next use.
   */
  shed(fraction: number): number {
    return shedLru(this.counters, fraction) + shedLru(this.distinct, fraction) + shedLru(this.marks, fraction)
      + shedLru(this.arrivals, fraction) + shedLru(this.values, fraction);
  }

  // ----------------------------------------------------------------------------- sync

  /** Sends pending deltas (and first reads of new keys) in one pipelined batch. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (!this.ready()) return Promise.resolve();
    this.refreshSlots(false);
    const b = new Batch(this.bulk);
    const marker = instanceKey(this.prefix, this.instanceId);
    b.add('set', marker, [marker, '1', 'PX', this.markerTtlMs, 'GET'], (err, res) => {
      if (!err && res === null && this.flushedOnce) this.reseed();
      if (!err) this.flushedOnce = true;
    });
    const dirty = this.dirty;
    this.dirty = [];
    for (const e of dirty) {
      e.dirty = false;
      e.flush(b, this);
    }
    const orphans = this.orphans;
    this.orphans = [];
    for (const [e, c] of orphans) {
      if (c instanceof Cell) (e as CounterEntry).flushCell(c, b, this);
      else (e as DistinctEntry).flushCell(c, b, this);
    }
    const fresh = this.fresh;
    this.fresh = [];
    for (const e of fresh) e.pull(b, this);
    this.flushing = this.exec(b).then(
      (failed) => {
        this.counts.opsPerFlush = b.size;
        this.counts.flushes++;
        if (failed) {
          this.counts.flushErrors++;
        } else {
          this.counts.lastFlushOk = Date.now();
          // a Cluster stays "ready" through a node's failover: a clean flush is the way back
          if (!this.up) this.onUp();
        }
      },
      () => { this.counts.flushErrors++; },
    ).finally(() => { this.flushing = undefined; });
    return this.flushing;
  }

  /** Reads the merged view of the keys touched within activeMs. */
  pull(): Promise<void> {
    if (this.pulling) return this.pulling;
    if (!this.ready()) return Promise.resolve();
    const gen = this.gen++;
    const keep: Entry[] = [];
    for (const e of this.hot) {
      if (gen - e.touchGen < this.activeGens) keep.push(e);
      else e.inHot = false;
    }
    this.hot = keep;
    const from = Math.max(0, keep.length - this.maxRefreshKeys);
    const b = new Batch(this.bulk);
    for (let i = from; i < keep.length; i++) keep[i]?.pull(b, this);
    if (b.empty) return Promise.resolve();
    this.pulling = this.exec(b).then(
      (failed) => {
        this.counts.pulls++;
        if (failed) this.counts.pullErrors++;
      },
      () => { this.counts.pullErrors++; },
    ).finally(() => { this.pulling = undefined; });
    return this.pulling;
  }

  /** flush() then pull(), waiting for any batch already in flight: for tests and replays. */
  async sync(): Promise<void> {
    await this.flushing;
    await this.flush();
    await this.pulling;
    await this.pull();
  }

  /** Resolves once connected (or rejects after timeoutMs). */
  async waitReady(timeoutMs = 5000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!this.ready()) {
      if (Date.now() > until) throw new Error('redis store: not connected');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  stats(): RedisStoreStats {
    const c = this.counts;
    return {
      connected: this.ready(),
      flushes: c.flushes,
      flushErrors: c.flushErrors,
      pulls: c.pulls,
      pullErrors: c.pullErrors,
      lagMs: c.lastFlushOk === 0 ? 0 : Math.max(0, Date.now() - c.lastFlushOk),
      opsPerFlush: c.opsPerFlush,
      commands: c.commands,
      pendingKeys: this.dirty.length + this.orphans.length,
      dropped: c.dropped,
      reseeds: c.reseeds,
    };
  }

  /** Stops the timers, sends what is pending (bounded wait) and disconnects. */
  async close(timeoutMs = 1000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.flushTimer);
    clearInterval(this.pullTimer);
    if (this.ready()) {
      await Promise.race([(async () => { await this.flushing; await this.flush(); })(), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    }
    this.client.disconnect();
  }

  // ----------------------------------------------------------------------------- internals

  /** Queues an entry whose write failed for the next flush. */
  requeue(e: Entry): void {
    this.markDirty(e);
  }

  /** A bucket that rolled out locally with deltas still pending: flushed with the next batch. */
  orphan(e: CounterEntry | DistinctEntry, c: Cell | DCell): void {
    if (this.orphans.length >= this.maxDirty) {
      this.counts.dropped++;
      return;
    }
    this.orphans.push([e, c]);
  }

  private ready(): boolean {
    return !this.closed && this.client.status === 'ready';
  }

  private counter(key: string, windowMs: number, now: number): CounterEntry {
    let e = this.counters.get(key);
    if (!e || e.windowMs !== windowMs) {
      e = new CounterEntry(key, windowMs, now, this.prefix);
      this.counters.set(key, e);
      this.addFresh(e);
      const ttl = 2 * windowMs + SLACK_MS;
      if (ttl * 2 > this.markerTtlMs) this.markerTtlMs = ttl * 2;
    } else {
      e.roll(now, this);
    }
    this.touch(e);
    return e;
  }

  private distinctEntry(key: string, windowMs: number, now: number): DistinctEntry {
    let e = this.distinct.get(key);
    if (!e || e.windowMs !== windowMs) {
      e = new DistinctEntry(key, windowMs, now, this.prefix);
      this.distinct.set(key, e);
      this.addFresh(e);
    } else {
      e.roll(now, this);
    }
    this.touch(e);
    return e;
  }

  private markEntry(key: string): MarkEntry {
    let e = this.marks.get(key);
    if (!e) {
      e = new MarkEntry(key, markKey(this.prefix, key));
      this.marks.set(key, e);
      this.addFresh(e);
    }
    this.touch(e);
    return e;
  }

  private touch(e: Entry): void {
    if (e.touchGen === this.gen) return;
    e.touchGen = this.gen;
    if (!e.inHot) {
      e.inHot = true;
      this.hot.push(e);
    }
  }

  private addFresh(e: Entry): void {
    if (this.fresh.length < this.maxRefreshKeys) this.fresh.push(e);
  }

  private markDirty(e: Entry): void {
    if (e.dirty) return;
    if (this.dirty.length >= this.maxDirty) {
      this.counts.dropped++;
      return;
    }
    e.dirty = true;
    this.dirty.push(e);
  }

  private reseed(): void {
    this.counts.reseeds++;
    this.logger?.warn({ instance: this.instanceId }, 'redis store: Redis lost its data (restart?); re-sending this instance\'s contribution');
    const all: Array<Iterable<Entry>> = [this.counters.values(), this.distinct.values(), this.marks.values(), this.arrivals.values(), this.values.values()];
    for (const it of all) for (const e of it) e.reseed(this);
  }

  /** Runs a batch (one pipeline, or one per cluster node); resolves true if anything failed. */
  private async exec(b: Batch): Promise<boolean> {
    b.seal();
    this.counts.commands += b.size;
    const groups = new Map<string, number[]>();
    const c = this.client;
    if (c instanceof Cluster) {
      // One pipeline per slot group (master and replicas), as ioredis requires; every command's
      // keys are of one slot (hash tags), and its first key names that slot.
      for (let i = 0; i < b.size; i++) {
        const slot = keySlot(b.keys[i] ?? '');
        const node = c.slots[slot]?.join(',') ?? '';
        let g = groups.get(node);
        if (!g) groups.set(node, (g = []));
        g.push(i);
      }
    } else {
      groups.set('', b.names.map((_, i) => i));
    }
    let failed = false;
    let stale = false;
    await Promise.all(
      [...groups.values()].map(async (idx) => {
        const pipe = c.pipeline() as Pipe;
        for (const i of idx) {
          const name = b.names[i] as string;
          const fn = pipe[name];
          if (typeof fn === 'function') fn.apply(pipe, b.args[i] ?? []);
          else pipe.call(name, ...(b.args[i] ?? []));
        }
        let results: Array<[Error | null, unknown]> | null;
        try {
          results = await pipe.exec();
        } catch (err) {
          results = null;
          failed = true;
          const e = err instanceof Error ? err : new Error(String(err));
          if (STALE_SLOTS.test(e.message)) stale = true;
          for (const i of idx) b.handlers[i]?.(e, null);
          return;
        }
        for (let j = 0; j < idx.length; j++) {
          const r = results?.[j];
          const err = r ? r[0] : new Error('no reply');
          if (err) {
            failed = true;
            if (STALE_SLOTS.test(err.message)) stale = true;
          }
          b.handlers[idx[j] as number]?.(err, r ? r[1] : null);
        }
      }),
    );
    // The failed deltas are pending again for the next flush, which goes by the new slot map.
    if (stale) this.refreshSlots(true);
    return failed;
  }

  /**
   * Redis Cluster: re-reads the slot map at once (a redirection or a dead node was seen) or
   * every slotsRefreshMs. ioredis learns a failover only from a single command's MOVED, and a
   * pipeline of writes is not retried on a redirection, so without this the store would keep
   * sending a promoted replica's slots to the dead master.
   */
  private refreshSlots(now: boolean): void {
    const c = this.client;
    if (!(c instanceof Cluster)) return;
    const t = Date.now();
    if (!now && t - this.lastSlotsRefresh < this.slotsRefreshMs) return;
    this.lastSlotsRefresh = t;
    c.refreshSlotsCache();
  }

  private onUp(): void {
    if (this.up) return;
    const wasDown = this.downSince > 0;
    this.up = true;
    this.logger?.info(
      { pendingKeys: this.dirty.length, downMs: wasDown ? Date.now() - this.downSince : 0 },
      wasDown ? 'redis store: reconnected; merging pending deltas' : 'redis store: connected',
    );
    this.downSince = 0;
  }

  private onDown(reason: string): void {
    const now = Date.now();
    if (this.up || this.downSince === 0) {
      this.up = false;
      this.downSince = now;
      this.lastDownLog = now;
      if (!this.closed) this.logger?.warn({ reason }, 'redis store: Redis unreachable; answering from local state');
      return;
    }
    if (!this.closed && now - this.lastDownLog >= this.logEveryMs) {
      this.lastDownLog = now;
      this.logger?.warn({ reason, downMs: now - this.downSince, pendingKeys: this.dirty.length }, 'redis store: Redis still unreachable');
    }
  }
}
