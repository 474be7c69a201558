// Command batching and Redis Cluster routing for the Redis store: the commands of one flush or
// pull are collected in a Batch, one reply handler each, and sent as pipelines.
//
// Redis Cluster. All Redis keys of one store key share its hash tag (redis-keys.ts), so every
// command and script carries the keys of one slot; a batch goes out as one pipeline per slot
// group (master and replicas), each command placed by the slot of its first key. A master that
// dies fails its group's commands at once (not retried by ioredis): their deltas are pending
// again, the store re-reads the slot map, and the next flush after its replica's promotion
// delivers them there; the other masters keep merging meanwhile.

import calculateSlot from 'cluster-key-slot';
import { Cluster, type ChainableCommander, type Redis } from 'ioredis';
import { SMALL } from './distinct.ts';

export type Reply = unknown;
type Handler = (err: Error | null, res: Reply) => void;
export type Client = Redis | Cluster;
type Pipe = ChainableCommander & Record<string, (...args: Array<string | number>) => Pipe>;

const BULK = 1000;

/** Replies that mean the slot map is out of date (a failover, a resharding, a dead node). */
const STALE_SLOTS = /^(MOVED|ASK|CLUSTERDOWN|TRYAGAIN) |Connection is closed|slots allocation group/;

function noop(): void {}

/**
 * Commands of one flush or pull, with one reply handler each. Reads and counter increments are
 * collected so that, against a single Redis, they go out as a few bulk commands (MGET, one
 * script call per kind) instead of one command per key; against a Cluster every store key gets
 * its own commands (a multi-key command must stay in one slot, and store keys spread over all).
 */
export class Batch {
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
      this.add('verdictDistinctRead', keys[0] ?? '', [keys.length, ...keys, SMALL], (err, res) => { if (!err && Array.isArray(res)) handler(res); });
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
      this.add('verdictDistinctRead', keys[0] ?? '', [keys.length, ...keys, SMALL], (err, res) => {
        if (err || !Array.isArray(res)) return;
        for (let j = 0; j < handlers.length; j++) handlers[j]?.(res.slice(2 * j, 2 * j + 2));
      });
    }
    for (const a of [this.mgetKeys, this.mgetHandlers, this.mgetCounts, this.dreadKeys, this.dreadHandlers, this.incrKeys, this.incrArgs, this.incrHandlers]) a.length = 0;
  }
}

/** What sending a batch found: any command failed; a reply said the slot map is out of date. */
export interface BatchResult {
  readonly failed: boolean;
  readonly stale: boolean;
  /** The first error's message, when a command failed. */
  readonly error?: string;
}

/**
 * Sends a sealed batch (one pipeline, or one per cluster slot group) and calls every command's
 * handler, with its error when its pipeline or its command failed.
 */
export async function sendBatch(c: Client, b: Batch): Promise<BatchResult> {
  const groups = new Map<string, number[]>();
  if (c instanceof Cluster) {
    // One pipeline per slot group (master and replicas), as ioredis requires; every command's
    // keys are of one slot (hash tags), and its first key names that slot.
    for (let i = 0; i < b.size; i++) {
      const slot = calculateSlot(b.keys[i] ?? '');
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
  let error: string | undefined;
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
        error ??= e.message;
        if (STALE_SLOTS.test(e.message)) stale = true;
        for (const i of idx) b.handlers[i]?.(e, null);
        return;
      }
      for (let j = 0; j < idx.length; j++) {
        const r = results?.[j];
        const err = r ? r[0] : new Error('no reply');
        if (err) {
          failed = true;
          error ??= err.message;
          if (STALE_SLOTS.test(err.message)) stale = true;
        }
        b.handlers[idx[j] as number]?.(err, r ? r[1] : null);
      }
    }),
  );
  return error === undefined ? { failed, stale } : { failed, stale, error };
}
