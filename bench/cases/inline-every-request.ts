// Case 2: Verdict inline on every request: each request waits for the decision service (25 ms
// budget), identity routes also parse the body for the identifier and password hash.
import type { ProxyCase } from '../lib/case.ts';
import { LUA_GUARD, mixLocations, startLuaGateway } from '../lib/gateway.ts';

const inlineEveryRequest: ProxyCase = {
  kind: 'proxy',
  id: 'inline',
  order: 2,
  title: '2. Verdict inline, every request',
  underLoad: true,
  start: (env) => startLuaGateway(env, mixLocations({ identity: 'inline', promo: 'inline', static: 'inline', rest: 'inline' }, LUA_GUARD)),
};

export default inlineEveryRequest;
