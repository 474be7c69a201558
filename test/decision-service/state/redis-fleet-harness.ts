// Two engines sharing one Redis (a single server or a Cluster): the campaign tests, the decide
// latency probe and the TTL sweep that redis-fleet.test.ts and redis-cluster.test.ts both run.

import { PerformanceObserver, performance } from 'node:perf_hooks';
import type { Test } from 'tap';
import { loadPolicyFile } from '../../../decision-service/src/config/policy.ts';
import { VirtualClock } from '../../../decision-service/src/engine/clock.ts';
import { Engine } from '../../../decision-service/src/engine/engine.ts';
import { MemoryStore } from '../../../decision-service/src/state/memory-store.ts';
import { RedisStore, type RedisStoreOptions } from '../../../decision-service/src/state/redis-store.ts';
import type { Store } from '../../../decision-service/src/state/store.ts';
import type { Outcome } from '../../../decision-service/src/wire/schema.ts';
import { request } from '../../helpers/policy.ts';

const policy = loadPolicyFile('policies/default.yaml');
const KEY = Buffer.alloc(32, 7); // the fleet shares VERDICT_IDENTIFIER_KEY
export const T0 = 1_763_800_000_000;
const CHROME = {
  user_agent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  accept_language: 'en-US,en;q=0.9',
  header_names: ['host', 'user-agent', 'accept', 'accept-language', 'content-type'],
};

export interface Step { readonly fields: Record<string, unknown>; readonly status: number }

/** Credential stuffing: each victim tried 6 times with different leaked passwords, a new IP per try. */
export const stuffing = (i: number): Step => ({
  fields: { ...CHROME, client_ip: `198.19.${i % 250}.${((i * 7) % 250) + 1}`, method: 'POST', path: '/api/auth/login', identifier: `victim${Math.floor(i / 6)}@mail.test`, password_hash: Buffer.from(`leak-${i}`) },
  status: 401,
});
/** Enumeration: a walk through one block of phone numbers, a new IP per number. */
export const walk = (i: number): Step => ({
  fields: { ...CHROME, client_ip: `198.20.${i % 250}.${((i * 7) % 250) + 1}`, method: 'POST', path: '/api/auth/password-reset', identifier: `13800${String(20000 + i).padStart(6, '0')}` },
  status: 404,
});

const detected = (action: string) => action === 'CHALLENGE' || action === 'BLOCK';

export function engine(store: Store, clock: VirtualClock): Engine {
  return new Engine({ policy, store, clock, identifierKey: KEY });
}

/**
 * Runs `length` requests of a campaign; request i goes to engine i % engines.length, every
 * `syncEvery` requests the stores sync (all flush, then all pull: one sync interval). Returns the
 * 1-based index of the first request challenged or blocked, 0 if none.
 */
export async function run(engines: Engine[], clock: VirtualClock, gen: (i: number) => Step, length: number, opts: { only?: number; syncEvery?: number; stores?: RedisStore[] } = {}): Promise<number> {
  let first = 0;
  for (let i = 0; i < length; i++) {
    const k = i % engines.length;
    if (opts.only === undefined || opts.only === k) {
      const e = engines[k] as Engine;
      const s = gen(i);
      const d = e.decide(request({ request_id: `r${i}`, ...s.fields }));
      e.observe({ request_id: `r${i}`, status: s.status, auth_result: '' } as Outcome);
      if (!first && detected(d.action)) first = i + 1;
    }
    clock.advance(25);
    if (opts.stores && opts.syncEvery && (i + 1) % opts.syncEvery === 0) {
      for (const st of opts.stores) await st.flush();
      for (const st of opts.stores) await st.pull();
    }
  }
  return first;
}

export interface Fleet { readonly stores: RedisStore[]; readonly engines: Engine[]; readonly clock: VirtualClock }

/** Store options of one fleet member (shared Redis, shared prefix). */
export type FleetOptions = (prefix: string) => RedisStoreOptions;

let prefixes = 0;
/** Two stores on one fresh prefix, no timers (the caller syncs), closed with the test. */
export async function fleet(t: Test, options: FleetOptions): Promise<Fleet> {
  const clock = new VirtualClock(T0);
  const prefix = `fleet${++prefixes}:`;
  const stores = [0, 1].map(() => new RedisStore({ ...options(prefix), maxKeys: 20_000, timers: false }));
  await Promise.all(stores.map((s) => s.waitReady()));
  t.teardown(() => Promise.all(stores.map((s) => s.close())));
  return { stores, engines: stores.map((s) => engine(s, clock)), clock };
}

/** Campaigns split half-and-half across two instances are caught about as early as by one. */
export function campaignTests(t: Test, options: FleetOptions, where: string): void {
  for (const [name, gen, length] of [['credential stuffing', stuffing, 18], ['enumeration', walk, 14]] as const) {
    t.test(`${name}: split across two instances, caught as fast as by one (+ one sync interval)`, async (t) => {
      const clockOne = new VirtualClock(T0);
      const one = await run([engine(new MemoryStore({ maxKeys: 10_000 }), clockOne)], clockOne, gen, length);
      t.ok(one > 0, `one instance seeing everything catches it at request ${one}`);

      for (const k of [0, 1]) {
        const c = new VirtualClock(T0);
        const alone = await run([engine(new MemoryStore({ maxKeys: 10_000 }), c), engine(new MemoryStore({ maxKeys: 10_000 }), c)], c, gen, length, { only: k });
        t.equal(alone, 0, `instance ${k} alone (its half, own memory) never catches it`);
      }

      for (const syncEvery of [1, 2, 4]) {
        const f = await fleet(t, options);
        const shared = await run(f.engines, f.clock, gen, length, { syncEvery, stores: f.stores });
        t.ok(shared > 0 && shared <= one + syncEvery, `two instances on ${where}, sync every ${syncEvery} requests: caught at ${shared} (one instance: ${one}, bound ${one + syncEvery})`);
        t.same(f.stores.map((s) => s.stats().flushErrors + s.stats().pullErrors), [0, 0], 'no batch refused');
      }
    });
  }
}

/** Fills a fleet's prefix with every kind of key, for a TTL sweep; returns the prefix's stores. */
export async function fillEveryKind(t: Test, options: FleetOptions): Promise<Fleet> {
  const f = await fleet(t, options);
  await run(f.engines, f.clock, stuffing, 60, { syncEvery: 5, stores: f.stores });
  await run(f.engines, f.clock, walk, 60, { syncEvery: 5, stores: f.stores });
  const s = f.stores[0] as RedisStore;
  s.mark('m:x', T0, 1000);
  s.swap('v:x', 3, T0, 1000);
  s.arrival('a:x', T0);
  await s.sync();
  return f;
}

// GC pauses of this process (start, end in performance.now() ms), to tell a decision that waited
// from one that a collection stopped; the observer is idle unless a test reads it.
const gcPauses: Array<[number, number]> = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcPauses.push([e.startTime, e.startTime + e.duration]);
  if (gcPauses.length > 10_000) gcPauses.splice(0, gcPauses.length - 10_000);
}).observe({ entryTypes: ['gc'] });

export interface DecideTimes {
  readonly n: number;
  readonly p99: number;
  /** Slowest decision, whatever stopped it. */
  readonly max: number;
  /** Slowest decision that no GC pause overlapped: the time the decision itself took. */
  readonly maxNoGc: number;
  /** Decisions over 5 ms that a GC pause overlapped. */
  readonly gcStalled: number;
  /** Every latency, ascending. */
  readonly times: readonly number[];
}

/** decide() latencies (ms) of n enumeration requests, yielding to the store's timers every 100. */
export async function timedDecides(e: Engine, from: number, n: number): Promise<DecideTimes> {
  const times: number[] = [];
  const slow: Array<[number, number]> = [];
  let maxNoGc = 0;
  for (let i = from; i < from + n; i++) {
    const s = walk(i);
    const t0 = performance.now();
    e.decide(request({ request_id: `k${i}`, ...s.fields }));
    const t1 = performance.now();
    times.push(t1 - t0);
    if (t1 - t0 > 5) slow.push([t0, t1]);
    else if (t1 - t0 > maxNoGc) maxNoGc = t1 - t0;
    if (i % 100 === 0) await new Promise((r) => setTimeout(r, 5)); // let the flush timers run
  }
  await new Promise((r) => setTimeout(r, 1)); // GC entries arrive asynchronously
  let gcStalled = 0;
  for (const [t0, t1] of slow) {
    if (gcPauses.some(([g0, g1]) => g0 < t1 && g1 > t0)) gcStalled++;
    else maxNoGc = Math.max(maxNoGc, t1 - t0);
  }
  times.sort((x, y) => x - y);
  return { n, p99: times[Math.floor(times.length * 0.99)] ?? 0, max: times[times.length - 1] ?? 0, maxNoGc, gcStalled, times };
}
