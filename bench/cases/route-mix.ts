// Case 3: Verdict as it is meant to be deployed: identity and promo routes inline, static files
// off, everything else async (no wait; metadata shipped from the log phase, batched).
import type { ProxyCase } from '../lib/case.ts';
import { LUA_GUARD, mixLocations, startLuaGateway } from '../lib/gateway.ts';

const routeMix: ProxyCase = {
  kind: 'proxy',
  id: 'mix',
  order: 3,
  title: '3. Verdict, realistic route mix',
  underLoad: true,
  start: (env) => startLuaGateway(env, mixLocations({ identity: 'inline', promo: 'inline', static: 'off', rest: 'async' }, LUA_GUARD)),
};

export default routeMix;
