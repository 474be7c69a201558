// A fleet never stops a customer on a view it has not merged (Settling, issue 14): a key new to
// an instance, or one it stopped refreshing, reads local-only until the next pull, so a session
// another instance issued a moment ago looks never issued. A decision that finds something on
// such keys is undone, the keys are read from Redis, and the request is decided again. Real
// Redis, two stores.

import t, { type Test } from 'tap';
import { VirtualClock } from '../../../decision-service/src/engine/clock.ts';
import { RedisStore } from '../../../decision-service/src/state/redis-store.ts';
import type { Settling } from '../../../decision-service/src/state/store.ts';
import { startRedis } from '../../helpers/redis.ts';
import { request } from '../../helpers/policy.ts';
import { createLogger } from '../../../decision-service/src/logger.ts';
import { DecisionService } from '../../../decision-service/src/service/decision-service.ts';
import { OutcomeBatchType, openOutcomeBatch } from '../../../decision-service/src/wire/codec.ts';
import { engine, T0 } from './redis-fleet-harness.ts';

const engine_ = (store: RedisStore) => engine(store, new VirtualClock(Date.now()));

const redis = await startRedis();
t.teardown(() => redis.stop());

let n = 0;
async function pair(t: Test): Promise<[RedisStore, RedisStore]> {
  const opts = { url: redis.url, prefix: `settle${n++}:`, maxKeys: 10_000, timers: false };
  const a = new RedisStore(opts);
  const b = new RedisStore(opts);
  t.teardown(async () => { await a.close(); await b.close(); });
  await Promise.all([a.waitReady(), b.waitReady()]);
  // both in the registry of live instances: neither is alone
  await a.sync(); await b.sync(); await a.sync();
  return [a, b];
}

const settling = (s: RedisStore): Settling => s.settling;

t.test('a key new to this instance is unsettled until read; settle reads it from Redis', async (t) => {
  const [a, b] = await pair(t);
  const now = Date.now();
  a.mark('issued:s1', now, 60_000);
  await a.sync();
  t.ok(settling(b).begin(), 'not alone: recording');
  t.notOk(b.marked('issued:s1', now), 'the local view of a key new to B lacks A\'s mark');
  const u = settling(b).end();
  t.ok(u && u.size === 1, 'the read is reported unsettled');
  await settling(b).settle(u!, 1000);
  t.ok(b.marked('issued:s1', now), 'after settling B sees A\'s mark');
  t.ok(settling(b).begin());
  b.marked('issued:s1', now);
  t.equal(settling(b).end(), undefined, 'a merged key is settled');
  t.equal(b.stats().settles, 1);
});

t.test('a key this instance stopped refreshing is unsettled again', async (t) => {
  const [a, b] = await pair(t);
  const W = 600_000;
  const now = Date.now();
  b.count('c', W, now);
  await b.sync();
  t.ok(settling(b).begin());
  b.count('c', W, now);
  t.equal(settling(b).end(), undefined, 'read and refreshed: settled');
  for (let i = 0; i < 12; i++) await b.sync(); // untouched past activeMs: no longer refreshed
  for (let i = 0; i < 5; i++) a.incr('c', W, now);
  await a.sync();
  t.ok(settling(b).begin());
  t.equal(b.count('c', W, now), 0, 'the cold view is behind');
  const u = settling(b).end();
  t.ok(u, 'and reported unsettled');
  await settling(b).settle(u!, 1000);
  t.equal(b.count('c', W, now), 5, 'settled: A\'s five');
});

t.test('undo takes back every kind of write of the recorded decision', async (t) => {
  const [, b] = await pair(t);
  const W = 600_000;
  const now = Date.now();
  b.incr('k', W, now, 2);
  b.mark('m', now, 1000);
  b.swap('v', 7, now, 60_000);
  b.arrival('a', now - 1000);
  b.arrival('a', now - 500);
  const before = b.arrival('a', now);
  t.ok(settling(b).begin());
  b.incr('k', W, now, 3);
  b.mark('m', now, 50_000);
  b.mark('fresh-mark', now, 50_000);
  t.equal(b.swap('v', 9, now, 60_000), 7);
  b.arrival('a', now + 1);
  const u = settling(b).end();
  t.ok(u, 'new keys were read');
  settling(b).undo(u!);
  t.equal(b.count('k', W, now), 2, 'counter back');
  t.ok(b.marked('m', now + 500) && !b.marked('m', now + 2000), 'mark back to its old expiry');
  t.notOk(b.marked('fresh-mark', now), 'a new mark taken back');
  t.equal(b.swap('v', 7, now, 60_000), 7, 'value back');
  const again = b.arrival('a', now + 1);
  t.equal(again.n, before.n + 1, 'the undone arrival is not counted twice');
});

t.test('alone, nothing is recorded', async (t) => {
  const a = new RedisStore({ url: redis.url, prefix: `alone${n++}:`, timers: false });
  t.teardown(() => a.close());
  await a.waitReady();
  await a.sync(); await a.sync();
  t.equal(a.stats().instances, 1);
  t.notOk(settling(a).begin(), 'no other instance contributes: decide on the local view');
});

// The failure the fleet scorecard found: a customer's page load on instance A issues their
// session; their login a moment later lands on instance B, which has not read that mark, during a
// stuffing wave: "session never issued", "no page first", and blocked.
t.test('a customer whose page load another instance saw is not stopped on the lagging view', async (t) => {
  const [a, b] = await pair(t);
  const clock = new VirtualClock(T0);
  const ea = engine(a, clock);
  const eb = engine(b, clock);
  const browser = {
    user_agent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
    accept_language: 'en-US,en;q=0.9',
    header_names: ['host', 'user-agent', 'accept', 'accept-language', 'content-type', 'cookie'],
  };
  // a stuffing wave on both instances: cookieless logins from fresh addresses, nearly all failing
  for (let i = 0; i < 400; i++) {
    const e = i % 2 === 0 ? ea : eb;
    e.decide(request({ ...browser, request_id: `w${i}`, client_ip: `198.51.${i % 200}.${(i % 250) + 1}`, method: 'POST', path: '/api/auth/login', identifier: `victim${i}@mail.test`, password_hash: Buffer.from(`p${i}`) }));
    e.observe({ request_id: `w${i}`, status: 401, auth_result: '' } as never);
    clock.advance(250);
    if (i % 10 === 9) { await a.sync(); await b.sync(); }
  }
  const person = { ...browser, client_ip: '203.0.113.77', session_hash: Buffer.from('session-of-a-customer') };
  const login = { ...person, method: 'POST', path: '/api/auth/login', identifier: 'customer@mail.test', password_hash: Buffer.from('right') };
  // the page load on A, flushed to Redis (as A's timer does within flushMs)
  ea.decide(request({ ...person, request_id: 'p1', method: 'GET', path: '/' }));
  await a.flush();
  clock.advance(1500);
  // on the lagging view B stops them: what every fleet did before settling
  const stale = eb.decide(request({ ...login, request_id: 'l0' }));
  t.ok(stale.action === 'BLOCK' || stale.action === 'CHALLENGE', `the lagging view stops the customer (${stale.action}: ${stale.reasons.join(',')})`);
  t.ok(stale.reasons.includes('session.never_issued'), 'for a session it never saw issued');

  // the same login on a third instance that settles first
  const c = new RedisStore({ url: redis.url, prefix: a.prefix, maxKeys: 10_000, timers: false });
  t.teardown(() => c.close());
  await c.waitReady();
  await c.sync();
  const ec = engine(c, clock);
  const r = ec.decideOrSettle(request({ ...login, request_id: 'l1' }), 1000);
  t.ok('ready' in r, 'the would-be stop read keys instance C had not merged: decided again');
  if (!('ready' in r)) return;
  await r.ready;
  const d = ec.redo(r);
  t.notOk(d.reasons.includes('session.never_issued'), `the session A issued is seen (${d.action}: ${d.reasons.join(',')})`);
  t.ok(d.action !== 'BLOCK', 'not blocked');

  // a script's made-up session is still stopped after settling
  const forged = ec.decideOrSettle(request({ ...login, session_hash: Buffer.from('made-up'), client_ip: '198.18.0.9', request_id: 'l2' }), 1000);
  const fd = 'ready' in forged ? (await forged.ready, ec.redo(forged)) : forged;
  t.ok(fd.action === 'BLOCK' || fd.action === 'CHALLENGE', `a never-issued session is still stopped (${fd.action})`);
  t.ok(fd.reasons.includes('session.never_issued'));
});

// Async-mode requests are decided from outcome batches. One that settles is not waited on there:
// a Redis round trip per outcome would pace the whole batch (and, under a crew on an async route,
// stall the gateway's outcome stream). Its verdict rides on a later ack.
t.test('an outcome batch is not paced by the settles of its async decisions', async (t) => {
  const [, b] = await pair(t);
  const engine = engine_(b);
  const service = new DecisionService({ engine: () => engine, metrics: undefined, logger: createLogger('silent'), settleMs: 1000 });
  const outcomes = Array.from({ length: 20 }, (_, i) => ({
    request_id: `a${i}`, ts_ms: Date.now(), client_ip: `198.18.7.${i + 1}`, method: 'POST', path: '/api/auth/login', status: 401,
    // a login with a session cookie nobody issued: found out on keys new to this instance
    request: { request_id: `a${i}`, client_ip: `198.18.7.${i + 1}`, method: 'POST', path: '/api/auth/login', session_hash: Buffer.from(`made-up-${i}`), cookie_names: ['sid'], header_names: ['host', 'user-agent', 'cookie'], user_agent: 'Mozilla/5.0', mode: 1 },
  }));
  const batch = Buffer.from(OutcomeBatchType.encode(OutcomeBatchType.fromObject({ gateway_id: 'gw/1', outcomes })).finish());
  // Redis holds every client's commands for 1.5 s: each settle would wait its full second
  await redis.client().call('CLIENT', 'PAUSE', '1500', 'ALL');
  const t0 = performance.now();
  const ack = await service.outcomes(openOutcomeBatch(batch, 'protobuf', 100));
  const ms = performance.now() - t0;
  t.equal(ack.accepted, 20);
  t.ok(ms < 500, `the batch was applied in ${ms.toFixed(0)} ms, not paced by 20 waits of up to 1 s`);
  t.ok(b.stats().settles >= 1, `its async decisions settled (${b.stats().settles})`);
  await new Promise((r) => setTimeout(r, 1600));
});
