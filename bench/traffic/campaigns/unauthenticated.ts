// Unauthenticated calls to protected routes, and to API routes absent from the inventory
// (shadow endpoints an attacker guesses), hoping something answers without credentials.

import { FIRST_ORDER_ID, FIRST_USER_ID } from '../../../scripts/demo-shop/users.ts';
import type { Tool } from '../clients.ts';
import type { GenContext } from '../simulator.ts';
import { BotSessions, source, toolGet, toolPost, windowOf, type Disguise, type PoolSpec, type Window } from './common.ts';

export interface UnauthenticatedParams extends Window {
  requests: number;
  pool: PoolSpec;
  tools: Tool[];
  /** worlds: a disguised client (common.ts Disguise), one session per exit */
  disguise?: Disguise;
}

const SHADOW = ['/api/admin/export', '/api/v2/users', '/api/users/export', '/api/orders/search', '/api/internal/config', '/api/v1/orders'] as const;

export function unauthenticated(ctx: GenContext, p: UnauthenticatedParams): void {
  if (p.disguise) return disguised(ctx, p, p.disguise);
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

function disguised(ctx: GenContext, p: UnauthenticatedParams, d: Disguise): void {
  const rng = ctx.rng;
  const { start, end } = windowOf(ctx, p);
  const src = source(rng, p.pool, ctx.env);
  const bots = new BotSessions(ctx, rng, d, p.tools);
  const gap = (end - start) / p.requests;
  let t = start;
  for (let i = 0; i < p.requests; i++) {
    const ip = src.next();
    const s = bots.get(ip, ip);
    const r = rng.int(0, 9);
    if (r < 4) bots.send(s, t, 'GET', `/api/orders/${FIRST_ORDER_ID + rng.int(0, 15_000)}`);
    else if (r < 7) bots.send(s, t, 'GET', `/api/users/${FIRST_USER_ID + rng.int(0, 6000)}/profile`);
    else if (r < 8) bots.send(s, t, 'POST', '/api/promo/claim', { campaign: 'spring-red-envelopes' });
    else bots.send(s, t, 'GET', rng.pick(SHADOW));
    t += gap * rng.between(0.5, 1.5);
  }
}
