// A big outcome batch is applied in slices: the event loop turns many times while it runs, and
// work queued meanwhile (another client's decide) is done before the batch finishes.

import t from 'tap';
import { VirtualClock } from '../../../decision-service/src/engine/clock.ts';
import { Engine } from '../../../decision-service/src/engine/engine.ts';
import { createLogger } from '../../../decision-service/src/logger.ts';
import { DecisionService } from '../../../decision-service/src/service/decision-service.ts';
import { MemoryStore } from '../../../decision-service/src/state/memory-store.ts';
import { openOutcomeBatch } from '../../../decision-service/src/wire/codec.ts';
import { policy, request } from '../../helpers/policy.ts';
import { outcomeBatch } from '../hardening-lib.ts';

t.test('a 5,000-outcome batch yields to the event loop while it is applied', async (t) => {
  const engine = new Engine({ policy: policy(), store: new MemoryStore({ maxKeys: 10_000 }), clock: new VirtualClock(1_800_000_000_000), identifierKey: Buffer.alloc(32) });
  const service = new DecisionService({ engine: () => engine, metrics: undefined, logger: createLogger('silent') });
  let turns = 0;
  let ticking = true;
  const tick = () => {
    turns++;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  let decidedWhileApplying = false;
  let applied = false;
  setImmediate(() => {
    service.decide(request({ path: '/api/orders/1' }));
    decidedWhileApplying = !applied;
  });
  const ack = await service.outcomes(openOutcomeBatch(outcomeBatch(5000), 'protobuf', 5000));
  applied = true;
  ticking = false;
  t.equal(ack.accepted, 1667, 'the third carrying async metadata; the others were never decided here');
  t.ok(turns >= 5, `the loop turned ${turns} times during the batch`);
  t.ok(decidedWhileApplying, 'a decide queued meanwhile ran before the batch finished');
});
