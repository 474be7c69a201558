// Shared store for fleets: answers every call synchronously from local state and merges with
// Redis in the background, so the decide path never waits on Redis. This file is the Store API,
// the flush and pull cycle and the connection; each key's merge with Redis is a state machine in
// redis-merge.ts, and the commands go out batched and routed by redis-batch.ts.
//
// Staleness. A read sees: everything this instance did (immediately); another instance's
// contribution once that instance flushed it (≤ flushMs) and this instance pulled it afterwards
// (≤ refreshMs), each plus one round trip — at most flushMs + refreshMs + 2·RTT (≈ 350 ms with
// the defaults) for keys this instance touched within activeMs. An instance that is the only one
// alive (the registry of live instances every flush updates says so) skips the background reads:
// nobody else contributes, and they are most of what a store costs (issue 10: one instance at
// 1,000 req/s spent 640 µs of CPU per request, most of it reading back its own writes). It
// resumes them at the first flush that sees another instance (≤ flushMs + RTT after that one's
// first flush). A key new to this instance
// reads local-only until the pull that follows its first touch (≤ flushMs + RTT). While Redis is
// unreachable reads are local-only (plus the last merged view) and the lag grows; stats().lagMs
// shows it.
//
// Settling. A decision that found something on keys without a merged view (new to this instance,
// or no longer refreshed) can be undone and decided again once they are read (store.ts Settling;
// Engine.decideOrSettle): a Recording notes those reads and the undo of the decision's writes.
//
// Failure. No call waits on Redis: flushes are skipped while disconnected, deltas stay pending
// (bounded by maxKeys entries and maxDirty queued keys; beyond that dropped and counted), and go
// out on reconnect. A restart that lost Redis's data is detected by this instance's liveness
// marker (SET … GET returns nothing); every live key then re-sends this instance's own
// contribution, so the merged state rebuilds.
//
// Redis Cluster. A master's failover fails its slot group's commands at once (redis-batch.ts);
// the store re-reads the slot map and their deltas go out with a later flush. Writes the dead
// master acknowledged but had not yet replicated are lost (Redis replication is asynchronous; on
// one machine that is the last millisecond or so), and the liveness marker lives on one node, so
// neither a failover nor a restart of another shard triggers a re-send: such keys rebuild from
// new traffic.

import { randomBytes } from 'node:crypto';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { shedLru } from './bounded-map.ts';
import { Batch, sendBatch, type Client } from './redis-batch.ts';
import { arrivalKey, instanceKey, instancesKey, markKey, valueKey } from './redis-keys.ts';
import { ArrivalEntry, bucketTtlMs, type Cell, CounterEntry, type DCell, DistinctEntry, type Entry, MarkEntry, type MergeQueue, SLACK_MS, ValueEntry, type WindowEntry } from './redis-merge.ts';
import { ARRIVALS, DISTINCT_ADD, DISTINCT_READ, INCR_MANY, MARK, SWAP } from './redis-scripts.ts';
import type { IntervalStats, Settling, Store, Unsettled } from './store.ts';

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
  /** Most keys one flush writes, and most new keys it reads (default 1,000): building and sending
   *  a flush holds the event loop, so a burst (keys left dirty by an outage, a re-send of
   *  everything after Redis lost its data) goes out in pieces, the next 20 ms after the last is
   *  answered (with timers), with decisions in between, instead of holding it for seconds. */
  readonly maxFlushKeys?: number;
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
  /** The last failed batch's first error ("" when none failed). */
  readonly lastError: string;
  /** Live store instances sharing this Redis as of the last flush (this one included; 0 = not known yet). */
  readonly instances: number;
  /** Background reads skipped because this instance was the only one alive. */
  readonly pullsSkippedAlone: number;
  /** Decisions that found something on keys not yet merged, whose keys were read from Redis first (Settling). */
  readonly settles: number;
  /** ...of which Redis did not answer within the wait (decided on the local view). */
  readonly settleTimeouts: number;
}

const IGNORE = (): void => {};
/** Between two pieces of a flush backlog (maxFlushKeys keys each). */
const BACKLOG_GAP_MS = 20;

/**
 * One decision's reads of unsettled keys and the undo of its writes (Settling). One per store,
 * cleared by begin(): a decision is recorded, undone and its keys sent out synchronously.
 */
class Recording implements Unsettled {
  readonly reads = new Set<Entry>();
  readonly undos: Array<() => void> = [];
  get size(): number {
    return this.reads.size;
  }
  clear(): void {
    this.reads.clear();
    this.undos.length = 0;
  }
}

/** Puts a mark's or a value's local state back as it is now (a Recording's undo). */
function restorer<T extends { local: unknown; ttlMs: number; pending: boolean }>(e: T): () => void {
  const { local, ttlMs, pending } = e;
  return () => { e.local = local; e.ttlMs = ttlMs; e.pending = pending; };
}

export class RedisStore implements Store, MergeQueue, Settling {
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
  private readonly maxFlushKeys: number;
  private readonly arrivalTtlMs: number;
  private readonly logger: StoreLogger | undefined;
  private readonly logEveryMs: number;
  private gen = 0;
  private hot: Entry[] = [];
  private dirty: Entry[] = [];
  private fresh: Entry[] = [];
  private orphans: Array<[WindowEntry<Cell | DCell>, Cell | DCell]> = [];
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
  private readonly counts = { flushes: 0, flushErrors: 0, pulls: 0, pullErrors: 0, opsPerFlush: 0, commands: 0, dropped: 0, reseeds: 0, lastFlushOk: 0, lastError: '', pullsSkippedAlone: 0, settles: 0, settleTimeouts: 0 };
  /** Live instances as of the last flush (0 = not known yet: pull as if not alone). */
  private instances = 0;
  /** The decision being recorded (Settling), if any: `recording` while begin() … end(). */
  private rec: Recording | undefined = undefined;
  private readonly recording = new Recording();
  readonly settling: Settling = this;

  constructor(opts: RedisStoreOptions) {
    this.prefix = opts.prefix ?? 'verdict:';
    this.flushMs = opts.flushMs ?? 100;
    this.refreshMs = opts.refreshMs ?? 250;
    this.activeGens = Math.max(1, Math.ceil((opts.activeMs ?? 2000) / this.refreshMs));
    this.maxRefreshKeys = opts.maxRefreshKeys ?? 50_000;
    const max = opts.maxKeys ?? 500_000;
    this.maxDirty = opts.maxDirty ?? max;
    this.maxFlushKeys = Math.max(1, opts.maxFlushKeys ?? 1000);
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
    e.add(by);
    if (this.rec) {
      const cell = e.cur;
      this.rec.undos.push(() => { cell.pending -= by; });
    }
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
    if (this.rec) this.rec.undos.push(restorer(e));
    if (e.extend(now + ttlMs, ttlMs)) this.markDirty(e);
  }

  marked(key: string, now: number): boolean {
    return this.markEntry(key).marked(now);
  }

  arrival(key: string, now: number): IntervalStats {
    let e = this.arrivals.get(key);
    if (!e) {
      e = new ArrivalEntry(key, arrivalKey(this.prefix, key), this.arrivalTtlMs);
      this.arrivals.set(key, e);
      this.addFresh(e);
    }
    this.touch(e);
    if (this.rec) {
      const pending = e.pending.slice();
      this.rec.undos.push(() => { e.pending = pending; });
    }
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
    if (this.rec) this.rec.undos.push(restorer(e));
    const prev = e.swap(value, now, ttlMs);
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

  // ----------------------------------------------------------------------------- Settling

  begin(): boolean {
    // alone, nobody else contributes; unreachable, nothing better can be read
    if (this.instances === 1 || !this.ready()) return false;
    this.recording.clear();
    this.rec = this.recording;
    return true;
  }

  end(): Unsettled | undefined {
    const r = this.rec;
    this.rec = undefined;
    return r && r.reads.size > 0 ? r : undefined;
  }

  undo(u: Unsettled): void {
    const undos = (u as Recording).undos;
    for (let i = undos.length - 1; i >= 0; i--) (undos[i] as () => void)();
    undos.length = 0;
  }

  settle(u: Unsettled, timeoutMs: number): Promise<void> {
    if (!this.ready()) return Promise.resolve();
    const b = new Batch(this.bulk);
    for (const e of (u as Recording).reads) e.pull(b, this);
    if (b.empty) return Promise.resolve();
    this.counts.settles++;
    let timer: NodeJS.Timeout | undefined;
    // The timer fires in the loop's timers phase, before the poll phase reads the socket: after a
    // pause of this process (GC, a busy core) an answer already waiting would lose to it. The
    // wait ends a turn later (check phase), once what arrived has been read.
    let done = false;
    const late = new Promise<void>((r) => {
      timer = setTimeout(() => setImmediate(() => {
        if (!done) this.counts.settleTimeouts++;
        r();
      }), timeoutMs);
    });
    const read = this.exec(b).then(() => { done = true; }, (err: unknown) => { done = true; this.counts.lastError = String(err); });
    return Promise.race([read, late]).finally(() => clearTimeout(timer));
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
    // the registry of live instances: this one for the next few flushes; the dead (and the stalled)
    // drop out, and count again from their next flush
    const registry = instancesKey(this.prefix);
    const wall = Date.now();
    const live = Math.max(2000, 20 * this.flushMs);
    b.add('zadd', registry, [registry, wall + live, this.instanceId], IGNORE);
    b.add('zremrangebyscore', registry, [registry, '-inf', wall], IGNORE);
    b.add('pexpire', registry, [registry, 2 * live], IGNORE);
    b.add('zcard', registry, [registry], (err, res) => { if (!err) this.instances = Number(res) || 0; });
    // at most maxFlushKeys keys written and maxFlushKeys new keys read per flush; the rest wait
    for (const e of this.dirty.splice(0, this.maxFlushKeys)) {
      e.dirty = false;
      e.flush(b, this);
    }
    const orphans = this.orphans;
    this.orphans = [];
    for (const [e, c] of orphans) e.flushCell(c, b, this);
    for (const e of this.fresh.splice(0, this.maxFlushKeys)) e.pull(b, this);
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
      (err: unknown) => { this.counts.flushErrors++; this.counts.lastError = String(err); },
    ).finally(() => {
      this.flushing = undefined;
      // a backlog goes out piece by piece, BACKLOG_GAP_MS apart: decisions (and, on a shared core,
      // nginx and Redis) get most of the time in between
      if (this.flushTimer && !this.closed && (this.dirty.length > 0 || this.fresh.length > 0)) setTimeout(() => void this.flush(), BACKLOG_GAP_MS).unref();
    });
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
      else {
        // no longer refreshed: its view is behind from now on, until it is read again
        e.inHot = false;
        e.merged = false;
      }
    }
    this.hot = keep;
    if (this.instances === 1) {
      // alone: what Redis holds for these keys is what this instance wrote
      this.counts.pullsSkippedAlone++;
      return Promise.resolve();
    }
    const from = Math.max(0, keep.length - this.maxRefreshKeys);
    const b = new Batch(this.bulk);
    for (let i = from; i < keep.length; i++) keep[i]?.pull(b, this);
    if (b.empty) return Promise.resolve();
    this.pulling = this.exec(b).then(
      (failed) => {
        this.counts.pulls++;
        if (failed) this.counts.pullErrors++;
      },
      (err: unknown) => { this.counts.pullErrors++; this.counts.lastError = String(err); },
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
      lastError: c.lastError,
      instances: this.instances,
      pullsSkippedAlone: c.pullsSkippedAlone,
      settles: c.settles,
      settleTimeouts: c.settleTimeouts,
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

  // ----------------------------------------------------------------------------- MergeQueue

  requeue(e: Entry): void {
    this.markDirty(e);
  }

  orphan(e: WindowEntry<Cell | DCell>, c: Cell | DCell): void {
    if (this.orphans.length >= this.maxDirty) {
      this.counts.dropped++;
      return;
    }
    this.orphans.push([e, c]);
  }

  // ----------------------------------------------------------------------------- internals

  private ready(): boolean {
    return !this.closed && this.client.status === 'ready';
  }

  private counter(key: string, windowMs: number, now: number): CounterEntry {
    let e = this.counters.get(key);
    if (!e || e.windowMs !== windowMs) {
      e = new CounterEntry(key, windowMs, now, this.prefix);
      this.counters.set(key, e);
      this.addFresh(e);
      const ttl = bucketTtlMs(windowMs);
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
    if (this.rec && !e.merged) this.rec.reads.add(e);
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
    const { failed, stale, error } = await sendBatch(this.client, b);
    if (error !== undefined) this.counts.lastError = error;
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
