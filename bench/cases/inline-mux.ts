// Case 2m: case 2 (Verdict inline on every request) with transport = "mux": every decide call of
// the worker pipelined over one long-lived framed connection (issue 15), side by side with the
// per-request pool of case 2.
import type { ProxyCase } from '../lib/case.ts';
import { LUA_GUARD, mixLocations, startLuaGateway } from '../lib/gateway.ts';

const inlineMux: ProxyCase = {
  kind: 'proxy',
  id: 'inline-mux',
  order: 2.1,
  title: '2m. Verdict inline, every request, mux transport',
  underLoad: true,
  // mux multiplexes the framed transport: always the frame address, also under --http
  start: (env) => startLuaGateway(env, mixLocations({ identity: 'inline', promo: 'inline', static: 'inline', rest: 'inline' }, LUA_GUARD), {
    service: env.service.frameAddr,
    init: { transport: 'mux' },
  }),
};

export default inlineMux;
