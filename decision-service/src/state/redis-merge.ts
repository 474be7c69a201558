// The merge state machines of the Redis store, one per store structure (counters, distinct
// sets, marks, arrivals, values): each entry answers from local state and puts its writes and
// reads into a Batch (redis-batch.ts); the replies merge back into it.
//
// Each key keeps, per bucket, three parts: `remote` (the merged value last read from Redis, which
// already holds this instance's acknowledged writes), `inflight` (deltas sent, not yet answered)
// and `pending` (deltas not yet sent). A read returns remote + inflight + pending: no double
// counting, because every write's reply carries the merged value after that write (INCRBY, the
// scripts) and replaces `remote` as it clears `inflight`; and because commands and replies of one
// key are ordered on one connection, a read's snapshot always holds every write sent before it.
// A write that fails is pending again (requeued for the next flush), so delivery of counter
// deltas is at-least-once: a write whose connection breaks after Redis executed it is sent again.

import { DistinctSketch, M, rankOf, registerOf, SMALL } from './distinct.ts';
import type { Batch, Reply } from './redis-batch.ts';
import { counterKey, distinctRegKey, distinctSetKey } from './redis-keys.ts';
import { sketchFrom, unionInto } from './sketch-union.ts';
import type { IntervalStats } from './store.ts';

/** Slack on top of two windows before Redis expires a bucket. */
export const SLACK_MS = 60_000;
const RING = 8;
const PENDING_MEMBERS = 32;

/** TTL of a counter or distinct bucket: two windows (current and previous) plus slack. */
export function bucketTtlMs(windowMs: number): number {
  return 2 * windowMs + SLACK_MS;
}

/** What an entry needs from its store: the queue of the next flush. */
export interface MergeQueue {
  /** Queues an entry whose write failed for the next flush. */
  requeue(e: Entry): void;
  /** A bucket that rolled out locally with deltas still pending: flushed with the next batch. */
  orphan(e: WindowEntry<Cell | DCell>, c: Cell | DCell): void;
}

export abstract class Entry {
  touchGen = -1;
  inHot = false;
  dirty = false;
  /** Holds the merged view: read from Redis since this instance last started (or resumed) using it. */
  merged = false;
  constructor(readonly key: string) {}
  abstract flush(b: Batch, q: MergeQueue): void;
  abstract pull(b: Batch, q: MergeQueue): void;
  /** Redis lost its data: queue this instance's whole contribution again. */
  abstract reseed(q: MergeQueue): void;
}

/**
 * A windowed entry (counters, distinct sets): the current and the previous bucket, rolled
 * forward with engine time. A bucket that rolls out with writes still pending is handed to the
 * store as an orphan, which flushes it with the next batch.
 */
export abstract class WindowEntry<C extends Cell | DCell> extends Entry {
  cur: C;
  prev: C;
  constructor(key: string, readonly windowMs: number, now: number, protected readonly prefix: string) {
    super(key);
    const b = Math.floor(now / windowMs);
    this.cur = this.cell(b);
    this.prev = this.cell(b - 1);
  }

  /** A new, empty bucket (called from the constructor: may read only this class's fields). */
  protected abstract cell(bucket: number): C;
  protected abstract hasPending(c: C): boolean;
  abstract flushCell(c: C, b: Batch, q: MergeQueue): void;

  /** Moves to the bucket of `now`; returns whether the buckets changed. */
  roll(now: number, q: MergeQueue): boolean {
    const b = Math.floor(now / this.windowMs);
    if (b === this.cur.bucket) return false;
    if (this.hasPending(this.prev)) q.orphan(this, this.prev);
    if (b === this.cur.bucket + 1) {
      this.prev = this.cur;
    } else {
      if (this.hasPending(this.cur)) q.orphan(this, this.cur);
      this.prev = this.cell(b - 1);
    }
    this.cur = this.cell(b);
    return true;
  }

  flush(b: Batch, q: MergeQueue): void {
    this.flushCell(this.cur, b, q);
    this.flushCell(this.prev, b, q);
  }
}

// ------------------------------------------------------------------------------- counters

export class Cell {
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

export class CounterEntry extends WindowEntry<Cell> {
  protected cell(bucket: number): Cell {
    return new Cell(bucket, counterKey(this.prefix, this.key, this.windowMs, bucket));
  }

  protected hasPending(c: Cell): boolean {
    return c.pending !== 0;
  }

  add(by: number): void {
    this.cur.pending += by;
  }

  estimate(now: number): number {
    const elapsed = (now - this.cur.bucket * this.windowMs) / this.windowMs;
    return this.cur.total() + this.prev.total() * (1 - elapsed);
  }

  flushCell(c: Cell, b: Batch, q: MergeQueue): void {
    const d = c.pending;
    if (d === 0) return;
    c.pending = 0;
    c.inflight += d;
    b.incr(c.rkey, d, bucketTtlMs(this.windowMs), (err, res) => {
      c.inflight -= d;
      if (err) {
        c.pending += d;
        q.requeue(this);
        return;
      }
      c.acked += d;
      // The reply holds every write up to this one; what is still in flight was sent later.
      c.remote = Number(res);
    });
  }

  pull(b: Batch): void {
    const cur = this.cur;
    const prev = this.prev;
    b.mget([cur.rkey, prev.rkey], (res) => {
      cur.remote = Number(res[0] ?? 0);
      prev.remote = Number(res[1] ?? 0);
      this.merged = true;
    });
  }

  reseed(q: MergeQueue): void {
    for (const c of [this.cur, this.prev]) {
      c.pending += c.acked;
      c.acked = 0;
      c.remote = 0;
    }
    q.requeue(this);
  }
}

// ------------------------------------------------------------------------------- distinct sets

export class DCell {
  remote: DistinctSketch | undefined = undefined;
  /** Members this instance added to the bucket. */
  readonly mine = new DistinctSketch();
  pending: number[] = [];
  /** More members pending than sent one by one: send mine's registers instead. */
  overflow = false;
  constructor(readonly bucket: number, readonly setKey: string, readonly regKey: string) {}
}

export class DistinctEntry extends WindowEntry<DCell> {
  readonly view = new DistinctSketch();
  viewOk = false;

  protected cell(bucket: number): DCell {
    return new DCell(bucket, distinctSetKey(this.prefix, this.key, this.windowMs, bucket), distinctRegKey(this.prefix, this.key, this.windowMs, bucket));
  }

  protected hasPending(c: DCell): boolean {
    return c.pending.length > 0 || c.overflow;
  }

  override roll(now: number, q: MergeQueue): boolean {
    if (!super.roll(now, q)) return false;
    this.viewOk = false;
    return true;
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

  flushCell(c: DCell, b: Batch, q: MergeQueue): void {
    if (c.pending.length === 0 && !c.overflow) return;
    const args: Array<string | number> = [c.setKey, c.regKey, bucketTtlMs(this.windowMs), SMALL];
    const sent = c.pending;
    const overflow = c.overflow;
    if (overflow) {
      const regs = c.mine.registers;
      if (regs) for (let i = 0; i < M; i++) if ((regs[i] ?? 0) > 0) args.push('-', i, regs[i] ?? 0);
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
        q.requeue(this);
        return;
      }
      c.remote = decodeSketch(res);
      this.viewOk = false;
    });
  }

  pull(b: Batch): void {
    const cur = this.cur;
    const prev = this.prev;
    b.dread([cur.setKey, cur.regKey, prev.setKey, prev.regKey], (res) => {
      cur.remote = decodeSketch(res[0]);
      prev.remote = decodeSketch(res[1]);
      this.viewOk = false;
      this.merged = true;
    });
  }

  reseed(q: MergeQueue): void {
    for (const c of [this.cur, this.prev]) {
      if (c.mine.small) c.pending = c.mine.small.slice();
      else c.overflow = true;
      c.remote = undefined;
    }
    this.viewOk = false;
    q.requeue(this);
  }
}

function decodeSketch(res: Reply): DistinctSketch | undefined {
  if (!Array.isArray(res) || res.length === 0) return undefined;
  const values = res.slice(1).map(Number);
  return sketchFrom(Number(res[0]) === 1, values);
}

// ------------------------------------------------------------------------------- marks

export class MarkEntry extends Entry {
  local = 0;
  remote = 0;
  ttlMs = 0;
  pending = false;
  constructor(key: string, readonly rkey: string) {
    super(key);
  }
  /** Marks until `until` if that is later than the mark known; returns whether it was. */
  extend(until: number, ttlMs: number): boolean {
    if (until > this.local && until > this.remote) {
      this.local = until;
      this.ttlMs = ttlMs;
      this.pending = true;
      return true;
    }
    return false;
  }
  marked(now: number): boolean {
    return this.local > now || this.remote > now;
  }
  flush(b: Batch, q: MergeQueue): void {
    if (!this.pending) return;
    this.pending = false;
    const until = this.local;
    b.add('verdictMark', this.rkey, [this.rkey, until, this.ttlMs], (err, res) => {
      if (err) {
        this.pending = true;
        q.requeue(this);
        return;
      }
      this.remote = Number(res) || 0;
    });
  }
  pull(b: Batch): void {
    b.mget([this.rkey], (res) => {
      this.remote = Number(res[0] ?? 0) || 0;
      this.merged = true;
    });
  }
  reseed(q: MergeQueue): void {
    this.remote = 0;
    if (this.local > 0) {
      this.pending = true;
      q.requeue(this);
    }
  }
}

// ------------------------------------------------------------------------------- arrivals

const NO_ARRIVALS: IntervalStats = Object.freeze({ n: 0, meanMs: 0, cv: 1 });

export class ArrivalEntry extends Entry {
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
  flush(b: Batch, q: MergeQueue): void {
    if (this.pending.length === 0) return;
    const sent = this.pending;
    this.pending = [];
    this.inflight = this.inflight.concat(sent);
    b.add('verdictArrivals', this.rkey, [this.rkey, this.ttlMs, RING + 1, ...sent], (err, res) => {
      this.inflight = [];
      if (err) {
        this.pending = sent.concat(this.pending).slice(-(RING + 1));
        q.requeue(this);
        return;
      }
      if (Array.isArray(res)) this.remote = res.map(Number);
    });
  }
  pull(b: Batch): void {
    b.add('lrange', this.rkey, [this.rkey, 0, -1], (err, res) => {
      if (err || !Array.isArray(res)) return;
      this.remote = res.map(Number);
      this.merged = true;
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

export class ValueEntry extends Entry {
  local: ValueSlot | undefined = undefined;
  remote: ValueSlot | undefined = undefined;
  ttlMs = 0;
  pending = false;
  constructor(key: string, readonly rkey: string) {
    super(key);
  }
  private current(): ValueSlot | undefined {
    const l = this.local;
    const r = this.remote;
    if (!r) return l;
    if (!l) return r;
    return r.at > l.at ? r : l;
  }
  /** Remembers `value` until now + ttlMs; returns the value it replaces, if not expired. */
  swap(value: number, now: number, ttlMs: number): number | undefined {
    const cur = this.current();
    const prev = cur && cur.expires > now ? cur.value : undefined;
    this.local = new ValueSlot(value, now, now + ttlMs);
    this.ttlMs = ttlMs;
    this.pending = true;
    return prev;
  }
  flush(b: Batch, q: MergeQueue): void {
    const l = this.local;
    if (!this.pending || !l) return;
    this.pending = false;
    b.add('verdictSwap', this.rkey, [this.rkey, l.at, `${l.at}|${l.expires}|${l.value}`, this.ttlMs], (err, res) => {
      if (err) {
        this.pending = true;
        q.requeue(this);
        return;
      }
      this.remote = parseValue(res);
    });
  }
  pull(b: Batch): void {
    b.mget([this.rkey], (res) => {
      this.remote = parseValue(res[0]);
      this.merged = true;
    });
  }
  reseed(q: MergeQueue): void {
    this.remote = undefined;
    if (this.local) {
      this.pending = true;
      q.requeue(this);
    }
  }
}
