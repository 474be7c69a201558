// What the engine keeps besides the store: requests awaiting outcomes (only their keys) and the
// inventory (bounded per route), and what it gives up under memory pressure.
import t from 'tap';
import { VirtualClock } from '../../../decision-service/src/engine/clock.ts';
import { Engine } from '../../../decision-service/src/engine/engine.ts';
import { Inventory, OVERFLOW_TEMPLATE } from '../../../decision-service/src/engine/inventory.ts';
import type { OutcomeContext } from '../../../decision-service/src/engine/signal.ts';
import { MemoryStore } from '../../../decision-service/src/state/memory-store.ts';
import type { Outcome } from '../../../decision-service/src/wire/schema.ts';
import { policy, request } from '../../helpers/policy.ts';

function engine(seen: Array<OutcomeContext | undefined>, opts: { inventoryTemplatesPerRoute?: number } = {}) {
  return new Engine({
    policy: policy(), store: new MemoryStore({ maxKeys: 1000 }), clock: new VirtualClock(1_763_800_000_000), identifierKey: Buffer.alloc(32, 3),
    ...opts,
    detectors: [() => ({ name: 'probe', inspect() {}, observes: ['identity', 'object'], observe(_o, f) { seen.push(f); } })],
  });
}

t.test('a request awaiting its outcome is remembered by its keys, not kept whole', async (t) => {
  const seen: Array<OutcomeContext | undefined> = [];
  const e = engine(seen);
  const session = Buffer.from('a-session-hash-of-twenty');
  e.decide(request({ request_id: 'r1', method: 'POST', path: '/api/auth/login', identifier: 'alice', password_hash: Buffer.from('pw'), session_hash: session }));
  e.observe({ request_id: 'r1', status: 401, auth_result: '' } as Outcome);
  const f = seen[0];
  t.ok(f);
  t.equal(f?.route.name, 'login');
  t.equal(f?.method, 'POST');
  t.equal(f?.session, session.toString('base64'));
  t.notOk(f && 'req' in f, 'no request (nor its buffers) retained');
  const inv = e.inventory.snapshot().find((x) => x.template === '/api/auth/login');
  t.same(inv?.statuses, { 401: 1 }, 'the outcome reached its inventory entry');
});

t.test('Engine.shed forgets the oldest requests awaiting outcomes and inventory entries', async (t) => {
  const seen: Array<OutcomeContext | undefined> = [];
  const e = engine(seen);
  for (let i = 0; i < 100; i++) e.decide(request({ request_id: `o${i}`, path: `/api/orders/${i}`, has_authorization: true }));
  t.ok(e.shed(1) >= 100);
  e.observe({ request_id: 'o99', status: 404, auth_result: '' } as Outcome);
  t.same(seen, [undefined], 'no longer attributed');
  t.equal(e.inventory.size, 0);
  e.decide(request({ request_id: 'n1', path: '/api/orders/1', has_authorization: true }));
  e.observe({ request_id: 'n1', status: 200, auth_result: '' } as Outcome);
  t.ok(seen[1], 'works again after shedding');
});

t.test('the inventory keeps at most perRoute templates per route; the rest count under one entry', async (t) => {
  const seen: Array<OutcomeContext | undefined> = [];
  const e = engine(seen, { inventoryTemplatesPerRoute: 3 });
  for (let i = 0; i < 50; i++) e.decide(request({ path: `/files/report-${i.toString(36)}x.pdf` }));
  for (let i = 0; i < 20; i++) e.decide(request({ path: `/static/app-${i}.js` }));
  e.decide(request({ path: '/api/orders/7', has_authorization: true }));
  e.decide(request({ method: 'BREW', path: '/coffee' }));
  const snap = e.inventory.snapshot();
  const shadow = snap.filter((x) => x.route === null);
  t.equal(shadow.filter((x) => x.method === 'GET' && x.template !== OVERFLOW_TEMPLATE).length, 3, 'three shadow templates');
  t.match(shadow.find((x) => x.template === OVERFLOW_TEMPLATE && x.method === 'GET'), { status: 'shadow', requests: 47 });
  t.equal(snap.filter((x) => x.route === 'static').length, 4, 'a declared route too: three templates and the overflow');
  t.match(snap.find((x) => x.route === 'static' && x.template === OVERFLOW_TEMPLATE), { status: 'declared', requests: 17 });
  t.ok(snap.find((x) => x.template === '/api/orders/{id}'), 'other routes unaffected');
  t.ok(snap.find((x) => x.method === 'OTHER'), 'unknown methods fold into OTHER');
});

t.test('per-route counts follow evictions: a route under its cap learns templates again', async (t) => {
  const inv = new Inventory(4, 2);
  const f = (path: string) => ({ req: { path }, method: 'GET', route: { name: 'r', deprecated: false }, routeClass: 'public', now: 0, hasCredentials: false, identifierHash: '' }) as never;
  inv.record(f('/a'), 'default');
  inv.record(f('/b'), 'default');
  t.equal(inv.record(f('/c'), 'default'), `GET ${OVERFLOW_TEMPLATE} r`);
  t.equal(inv.shed(1), 3);
  t.equal(inv.record(f('/c'), 'default'), 'GET /c');
});
