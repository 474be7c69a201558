// Case 2p: case 2 (Verdict inline on every request) with transport = "pool": a pooled framed
// connection per decide call, the gateway's transport before the multiplexed one became the
// default over frames (issue 15), side by side with case 2's mux.
import type { ProxyCase } from '../lib/case.ts';
import { LUA_GUARD, mixLocations, startLuaGateway } from '../lib/gateway.ts';

const inlinePool: ProxyCase = {
  kind: 'proxy',
  id: 'inline-pool',
  order: 2.1,
  title: '2p. Verdict inline, every request, per-call pool transport',
  underLoad: true,
  start: (env) => startLuaGateway(env, mixLocations({ identity: 'inline', promo: 'inline', static: 'inline', rest: 'inline' }, LUA_GUARD), {
    init: { transport: 'pool' },
  }),
};

export default inlinePool;
