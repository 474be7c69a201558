// Deadline propagation: the per-gateway clock-skew estimate and the drop of INLINE decides whose
// gateway stopped waiting, judged on an injected clock.

import t from 'tap';
import { buildApp } from '../../../decision-service/src/app.ts';
import { parseEnv } from '../../../decision-service/src/config/env.ts';
import { VirtualClock } from '../../../decision-service/src/engine/clock.ts';
import { DeadlineCheck } from '../../../decision-service/src/service/deadline.ts';
import { createLogger } from '../../../decision-service/src/logger.ts';
import { policy } from '../../helpers/policy.ts';

const START = 1_800_000_000_000;

/** A gateway whose clock is `skew` ms off the service's, sending with `transit` ms delay. */
function gateway(clock: VirtualClock, skew: number) {
  return { ts: (sentAgoMs = 0) => clock.now() + skew - sentAgoMs };
}

t.test('the offset estimate is the smallest recent delay, whatever the skew', async (t) => {
  for (const skew of [-3_600_000, -250, 0, 250, 86_400_000]) {
    const clock = new VirtualClock(START);
    const check = new DeadlineCheck({ clock });
    const gw = gateway(clock, skew);
    const dropped: boolean[] = [];
    for (let i = 0; i < 200; i++) {
      clock.advance(5);
      // transit 1-20 ms: all within a 25 ms budget
      dropped.push(check.expired('gw', gw.ts(1 + (i * 7) % 20), 25));
    }
    t.same(dropped.filter(Boolean), [], `skew ${skew}: nothing in budget dropped`);
    t.equal(check.offset('gw'), -skew + 1, `skew ${skew}: offset = -skew + fastest transit`);
    t.equal(check.expired('gw', gw.ts(30), 25), true, `skew ${skew}: 30 ms late is dropped`);
    t.equal(check.expired('gw', gw.ts(25), 25), false, `skew ${skew}: exactly at the budget is kept`);
  }
});

t.test('a stopped service drops the backlog that queued during the stop (SIGSTOP / SIGCONT)', async (t) => {
  for (const pauseMs of [5_000, 60_000]) {
    const clock = new VirtualClock(START);
    const check = new DeadlineCheck({ clock, windowMs: 5000 });
    const gw = gateway(clock, -1234);
    for (let i = 0; i < 100; i++) {
      clock.advance(10);
      check.expired('gw', gw.ts(1), 25);
    }
    // Requests sent every 10 ms during the pause, all read at once when it ends.
    const pausedAt = clock.now();
    clock.advance(pauseMs);
    let processed = 0;
    let dropped = 0;
    for (let sent = pausedAt; sent < clock.now(); sent += 10) {
      if (check.expired('gw', sent - 1234, 25)) dropped++;
      else processed++;
    }
    t.ok(processed <= 3, `pause ${pauseMs} ms: only the last budget's worth is computed (${processed})`);
    t.ok(dropped >= pauseMs / 10 - 3, `pause ${pauseMs} ms: ${dropped} stale dropped`);
    clock.advance(1);
    t.equal(check.expired('gw', gw.ts(1), 25), false, 'fresh traffic after the pause is decided');
  }
});

t.test('a gateway clock stepping backwards recovers within two windows', async (t) => {
  const clock = new VirtualClock(START);
  const check = new DeadlineCheck({ clock, windowMs: 1000 });
  let skew = 0;
  for (let i = 0; i < 50; i++) {
    clock.advance(10);
    check.expired('gw', clock.now() + skew - 1, 25);
  }
  skew = -500; // NTP stepped the gateway's clock back by 0.5 s
  let firstKept = -1;
  for (let i = 0; i < 400; i++) {
    clock.advance(10);
    if (!check.expired('gw', clock.now() + skew - 1, 25) && firstKept < 0) firstKept = i * 10;
  }
  t.ok(firstKept >= 0 && firstKept <= 2000, `decided again after ${firstKept} ms`);
});

t.test('gateways are judged on their own clocks; no deadline without a budget or a timestamp', async (t) => {
  const clock = new VirtualClock(START);
  const check = new DeadlineCheck({ clock });
  const ahead = gateway(clock, 100);
  const behind = gateway(clock, -100);
  for (let i = 0; i < 20; i++) {
    clock.advance(10);
    t.notOk(check.expired('ahead', ahead.ts(2), 25));
    t.notOk(check.expired('behind', behind.ts(2), 25));
  }
  t.notOk(check.expired('behind', behind.ts(5000), 0), 'budget 0');
  t.notOk(check.expired('behind', 0, 25), 'no ts_ms');
  t.notOk(check.expired('new', behind.ts(5000), 25), 'a gateway seen for the first time has no estimate yet');
});

t.test('HTTP: an expired INLINE decide is a 504 DEADLINE, counted, not decided', async (t) => {
  const clock = new VirtualClock(START);
  const built = buildApp(parseEnv({ VERDICT_POLICY_WATCH: '0' }), { logger: createLogger('silent'), policy: policy(), clock });
  t.teardown(() => built.app.close());
  const decide = (tsMs: number, extra: Record<string, unknown> = {}) =>
    built.app.inject({ method: 'POST', url: '/v1/decide', payload: { client_ip: '1.2.3.4', method: 'GET', path: '/', ts_ms: tsMs, budget_ms: 25, ...extra } });
  t.equal((await decide(clock.now() - 2)).statusCode, 200);
  clock.advance(100);
  const late = await decide(clock.now() - 60);
  t.equal(late.statusCode, 504);
  t.equal(late.json().error.code, 'DEADLINE');
  t.equal((await decide(clock.now() - 60, { gateway_id: 'other/1' })).statusCode, 200, 'the peer address and a gateway_id are different clocks');
  t.equal((await decide(clock.now() - 2)).statusCode, 200);
  const m = (await built.app.inject({ url: '/metrics' })).body;
  t.match(m, /verdict_decide_expired_total\{transport="http"\} 1/);
  t.match(m, /verdict_decisions_total\{action="ALLOW",route_class="public",mode="INLINE"\} 3/);
});
