// Two engines, two RedisStores, one real Redis: campaigns split half-and-half across the
// instances are caught about as early as by one instance that sees everything, and neither half
// alone is caught. Redis killed mid-run: decisions keep coming within budget; back: state merges.
// Every key in Redis carries a TTL.

import t from 'tap';
import { loadPolicyFile } from '../../../decision-service/src/config/policy.ts';
import { VirtualClock } from '../../../decision-service/src/engine/clock.ts';
import { Engine } from '../../../decision-service/src/engine/engine.ts';
import { MemoryStore } from '../../../decision-service/src/state/memory-store.ts';
import { RedisStore } from '../../../decision-service/src/state/redis-store.ts';
import type { Store } from '../../../decision-service/src/state/store.ts';
import type { Outcome } from '../../../decision-service/src/wire/schema.ts';
import { request } from '../../helpers/policy.ts';
import { startRedis } from '../../helpers/redis.ts';

const redis = await startRedis();
t.teardown(() => redis.stop());

const policy = loadPolicyFile('policies/default.yaml');
const KEY = Buffer.alloc(32, 7); // the fleet shares VERDICT_IDENTIFIER_KEY
const T0 = 1_763_800_000_000;
const CHROME = {
  user_agent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  accept_language: 'en-US,en;q=0.9',
  header_names: ['host', 'user-agent', 'accept', 'accept-language', 'content-type'],
};

interface Step { readonly fields: Record<string, unknown>; readonly status: number }

/** Credential stuffing: each victim tried 6 times with different leaked passwords, a new IP per try. */
const stuffing = (i: number): Step => ({
  fields: { ...CHROME, client_ip: `198.19.${i % 250}.${((i * 7) % 250) + 1}`, method: 'POST', path: '/api/auth/login', identifier: `victim${Math.floor(i / 6)}@mail.test`, password_hash: Buffer.from(`leak-${i}`) },
  status: 401,
});
/** Enumeration: a walk through one block of phone numbers, a new IP per number. */
const walk = (i: number): Step => ({
  fields: { ...CHROME, client_ip: `198.20.${i % 250}.${((i * 7) % 250) + 1}`, method: 'POST', path: '/api/auth/password-reset', identifier: `13800${String(20000 + i).padStart(6, '0')}` },
  status: 404,
});

const detected = (action: string) => action === 'CHALLENGE' || action === 'BLOCK';

function engine(store: Store, clock: VirtualClock): Engine {
  return new Engine({ policy, store, clock, identifierKey: KEY });
}

/**
 * Runs `length` requests of a campaign; request i goes to engine i % engines.length, every
 * `syncEvery` requests the stores sync (all flush, then all pull: one sync interval). Returns the
 * 1-based index of the first request challenged or blocked, 0 if none.
 */
async function run(engines: Engine[], clock: VirtualClock, gen: (i: number) => Step, length: number, opts: { only?: number; syncEvery?: number; stores?: RedisStore[] } = {}): Promise<number> {
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

let prefixes = 0;
async function fleet(): Promise<{ stores: RedisStore[]; engines: Engine[]; clock: VirtualClock }> {
  const clock = new VirtualClock(T0);
  const prefix = `fleet${++prefixes}:`;
  const stores = [new RedisStore({ url: redis.url, prefix, maxKeys: 20_000, timers: false }), new RedisStore({ url: redis.url, prefix, maxKeys: 20_000, timers: false })];
  await Promise.all(stores.map((s) => s.waitReady()));
  t.teardown(() => Promise.all(stores.map((s) => s.close())));
  return { stores, engines: stores.map((s) => engine(s, clock)), clock };
}

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
      const f = await fleet();
      const shared = await run(f.engines, f.clock, gen, length, { syncEvery, stores: f.stores });
      t.ok(shared > 0 && shared <= one + syncEvery, `two instances on Redis, sync every ${syncEvery} requests: caught at ${shared} (one instance: ${one}, bound ${one + syncEvery})`);
    }
  });
}

t.test('Redis killed mid-run: decisions keep coming within budget; restarted: state merges', async (t) => {
  const prefix = 'crash:';
  const opts = { url: redis.url, prefix, maxKeys: 20_000, flushMs: 20, refreshMs: 50, logger: { warn: () => {}, info: () => {} } };
  const a = new RedisStore(opts);
  const b = new RedisStore(opts);
  t.teardown(async () => { await a.close(); await b.close(); });
  await Promise.all([a.waitReady(), b.waitReady()]);
  const W = 600_000;
  const now = Date.now();
  const ea = engine(a, new VirtualClock(now));
  for (let i = 0; i < 10; i++) { a.incr('shared', W, now); b.incr('shared', W, now); }
  await a.sync(); await b.sync(); await a.sync();
  t.equal(a.count('shared', W, now), 20);
  t.equal(b.count('shared', W, now), 20);

  const timed = async (from: number, n: number): Promise<{ p99: number; max: number }> => {
    const times: number[] = [];
    for (let i = from; i < from + n; i++) {
      const s = walk(i);
      const t0 = process.hrtime.bigint();
      ea.decide(request({ request_id: `k${i}`, ...s.fields }));
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (i % 100 === 0) await new Promise((r) => setTimeout(r, 5)); // let the flush timers run
    }
    times.sort((x, y) => x - y);
    return { p99: times[Math.floor(times.length * 0.99)] ?? 0, max: times[times.length - 1] ?? 0 };
  };
  await timed(0, 3000); // warm-up
  const up = await timed(3000, 2000);
  await redis.kill();
  // Decisions keep coming, none waits on Redis.
  const down = await timed(5000, 2000);
  t.ok(down.p99 <= Math.max(2, 3 * up.p99) && down.max < 25,
    `decide p99 ${down.p99.toFixed(3)} ms, max ${down.max.toFixed(3)} ms with Redis down (up: p99 ${up.p99.toFixed(3)} ms; budget 25 ms)`);
  for (let i = 0; i < 5; i++) { a.incr('shared', W, now); b.incr('shared', W, now); }
  t.equal(a.count('shared', W, now), 25, 'local deltas still counted while down');
  t.notOk(a.stats().connected, 'stats show the store disconnected');

  await redis.start();
  const until = Date.now() + 10_000;
  while ((a.count('shared', W, now) !== 30 || b.count('shared', W, now) !== 30) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
  }
  t.equal(a.count('shared', W, now), 30, 'instance A sees both contributions, before and after the crash');
  t.equal(b.count('shared', W, now), 30, 'instance B too');
  t.ok(a.stats().reseeds >= 1 && b.stats().reseeds >= 1, 'each instance re-sent its contribution to the empty Redis');
  const r = redis.client();
  t.equal(Number(await r.get(`${prefix}{shared}:c:${W}:${Math.floor(now / W)}`)), 30, 'Redis holds the merged count');
});

t.test('every key in Redis has a TTL', async (t) => {
  const f = await fleet();
  await run(f.engines, f.clock, stuffing, 60, { syncEvery: 5, stores: f.stores });
  await run(f.engines, f.clock, walk, 60, { syncEvery: 5, stores: f.stores });
  const s = f.stores[0] as RedisStore;
  s.mark('m:x', T0, 1000);
  s.swap('v:x', 3, T0, 1000);
  s.arrival('a:x', T0);
  await s.sync();
  const r = redis.client();
  let cursor = '0';
  let n = 0;
  const without: string[] = [];
  do {
    const [next, keys] = await r.scan(cursor, 'COUNT', 1000);
    cursor = next;
    for (const k of keys) {
      n++;
      if ((await r.pttl(k)) === -1) without.push(k); // -2: expired meanwhile
    }
  } while (cursor !== '0');
  t.ok(n > 50, `${n} keys scanned`);
  t.same(without, [], 'no key without a TTL');
});
