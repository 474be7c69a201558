// Warm-up runs synthetic traffic through a throwaway copy of the app: the real app's state,
// metrics and inventory stay empty, and it answers normally afterwards.

import t from 'tap';
import { buildApp } from '../../../decision-service/src/app.ts';
import { parseEnv } from '../../../decision-service/src/config/env.ts';
import { loadPolicyFile } from '../../../decision-service/src/config/policy.ts';
import { syntheticRequest } from '../../../decision-service/src/http/warm-up.ts';
import { createLogger } from '../../../decision-service/src/logger.ts';
import { MemoryStore } from '../../../decision-service/src/state/memory-store.ts';
import { decideRequestSchema } from '../../../decision-service/src/wire/schema.ts';
import { matchRoute } from '../../../decision-service/src/config/policy.ts';
import { ROUTE_CLASSES } from '../../../decision-service/src/config/policy-schema.ts';

const POLICY = loadPolicyFile('policies/default.yaml');

t.test('synthetic requests are valid and cover every route class of the policy', async (t) => {
  const classes = new Set<string>();
  const invalid: string[] = [];
  for (let i = 0; i < 200; i++) {
    const parsed = decideRequestSchema.safeParse(syntheticRequest(POLICY, i, Date.now()));
    if (parsed.success) classes.add(matchRoute(POLICY, parsed.data.method, parsed.data.path, parsed.data.route_tag).class);
    else invalid.push(`${i}: ${parsed.error.message}`);
  }
  t.same(invalid, [], 'all valid');
  t.same([...classes].sort(), [...ROUTE_CLASSES].sort());
});

t.test('warming up leaves the real app untouched', async (t) => {
  const store = new MemoryStore({ maxKeys: 10_000 });
  const built = buildApp(parseEnv({ VERDICT_POLICY_WATCH: '0' }), { logger: createLogger('silent'), store, policy: POLICY });
  t.teardown(() => built.app.close());
  await built.warmUp(300);
  t.equal(store.size(), 0, 'no detector state');
  t.notOk(built.frameServer.listening, 'the real frame server was never opened');
  const m = (await built.app.inject({ url: '/metrics' })).body;
  t.notMatch(m, /verdict_decisions_total\{/, 'no decisions counted');
  t.notMatch(m, /verdict_outcomes_total\{/, 'no outcomes counted');
  t.notMatch(m, /verdict_decide_duration_seconds_count/, 'no latency samples');
  const inv = (await built.app.inject({ url: '/v1/inventory' })).json();
  t.same(inv.endpoints, [], 'no inventory');
  const res = await built.app.inject({ method: 'POST', url: '/v1/decide', payload: { client_ip: '1.2.3.4', method: 'GET', path: '/' } });
  t.equal(res.statusCode, 200);
  t.match((await built.app.inject({ url: '/metrics' })).body, /verdict_decisions_total\{action="ALLOW",route_class="public",mode="INLINE"\} 1/);
});
