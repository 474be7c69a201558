// Data traversal (BOLA): with one valid token of an account the attacker owns, walk object ids
// on /api/orders/{id} or /api/users/{id}/profile — sequentially or at random.

import { FIRST_ORDER_ID, FIRST_USER_ID } from '../../../scripts/demo-shop/users.ts';
import type { Tool } from '../clients.ts';
import type { GenContext } from '../simulator.ts';
import { farmPhone, source, toolGet, toolPost, windowOf, type PoolSpec, type Window } from './common.ts';

export interface TraversalParams extends Window {
  target: 'orders' | 'profiles';
  order: 'sequential' | 'random';
  requests: number;
  pool: PoolSpec;
  tools: Tool[];
  /** distinguishes this attacker's own account */
  account: number;
}

export function dataTraversal(ctx: GenContext, p: TraversalParams): void {
  const rng = ctx.rng;
  const { start, end } = windowOf(ctx, p);
  const src = source(rng, p.pool, ctx.env);
  const tool = rng.pick(p.tools);
  // the attacker's own account: register, log in, keep the token
  const phone = farmPhone(rng, 500 + p.account);
  const password = `Zz${rng.alnum(10)}9`;
  const ip0 = src.next();
  const reg = toolPost(ctx, rng, tool, { phone, password });
  ctx.emit({ ts: start, ip: ip0, method: 'POST', path: '/api/auth/register', headers: reg.headers, body: reg.body });
  const token = ctx.token();
  const login = toolPost(ctx, rng, tool, { username: phone, password });
  ctx.emit({ ts: start + 1500, ip: ip0, method: 'POST', path: '/api/auth/login', headers: login.headers, body: login.body, sim: { issues_token: token } });

  const first = p.target === 'orders' ? FIRST_ORDER_ID : FIRST_USER_ID;
  const span = p.target === 'orders' ? 15_000 : 6_000;
  const gap = (end - start - 5000) / p.requests;
  let t = start + 5000;
  for (let i = 0; i < p.requests; i++) {
    const id = p.order === 'sequential' ? first + i : first + rng.int(0, span);
    const path = p.target === 'orders' ? `/api/orders/${id}` : `/api/users/${id}/profile`;
    ctx.emit({ ts: t, ip: src.next(), method: 'GET', path, headers: toolGet(ctx, rng, rng.chance(0.8) ? tool : rng.pick(p.tools), `Bearer ${token}`) });
    t += gap * rng.between(0.6, 1.4);
  }
}
