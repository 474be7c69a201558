// Case 2a: case 2 (Verdict inline on every request) on the attack mix: 2,000 requests from 3,000
// users replayed thousands of times a second, as bots would. Verdict stops a growing share of it
// (blocked and challenged answers are reported), so this is what inline costs under attack, not
// what it costs on traffic it allows (case 2).
import type { ProxyCase } from '../lib/case.ts';
import { LUA_GUARD, mixLocations, startLuaGateway } from '../lib/gateway.ts';

const inlineAttack: ProxyCase = {
  kind: 'proxy',
  id: 'inline-attack',
  order: 2.2,
  title: '2a. Verdict inline, every request, attack mix',
  script: (env) => env.attackScript,
  start: (env) => startLuaGateway(env, mixLocations({ identity: 'inline', promo: 'inline', static: 'inline', rest: 'inline' }, LUA_GUARD)),
};

export default inlineAttack;
