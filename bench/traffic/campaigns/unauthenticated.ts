// Unauthenticated calls to protected routes, and to API routes absent from the inventory
// (shadow endpoints an attacker guesses), hoping something answers without credentials.

import { FIRST_ORDER_ID, FIRST_USER_ID } from '../../../scripts/demo-shop/users.ts';
import type { Tool } from '../clients.ts';
import type { GenContext } from '../simulator.ts';
import { source, toolGet, toolPost, windowOf, type PoolSpec, type Window } from './common.ts';

export interface UnauthenticatedParams extends Window {
  requests: number;
  pool: PoolSpec;
  tools: Tool[];
}

const SHADOW = ['/api/admin/export', '/api/v2/users', '/api/users/export', '/api/orders/search', '/api/internal/config', '/api/v1/orders'] as const;

export function unauthenticated(ctx: GenContext, p: UnauthenticatedParams): void {
  const rng = ctx.rng;
  const { start, end } = windowOf(ctx, p);
  const src = source(rng, p.pool, ctx.env);
  const gap = (end - start) / p.requests;
  let t = start;
  for (let i = 0; i < p.requests; i++) {
    const tool = rng.pick(p.tools);
    const r = rng.int(0, 9);
    if (r < 4) ctx.emit({ ts: t, ip: src.next(), method: 'GET', path: `/api/orders/${FIRST_ORDER_ID + rng.int(0, 15_000)}`, headers: toolGet(ctx, rng, tool) });
    else if (r < 7) ctx.emit({ ts: t, ip: src.next(), method: 'GET', path: `/api/users/${FIRST_USER_ID + rng.int(0, 6000)}/profile`, headers: toolGet(ctx, rng, tool) });
    else if (r < 8) {
      const post = toolPost(ctx, rng, tool, { campaign: 'spring-red-envelopes' });
      ctx.emit({ ts: t, ip: src.next(), method: 'POST', path: '/api/promo/claim', headers: post.headers, body: post.body });
    } else ctx.emit({ ts: t, ip: src.next(), method: 'GET', path: rng.pick(SHADOW), headers: toolGet(ctx, rng, tool) });
    t += gap * rng.between(0.5, 1.5);
  }
}
