// Password spraying: one common password tried once against many accounts, slowly enough per
// account that no per-account lockout would trip.

import type { Tool } from '../clients.ts';
import type { GenContext } from '../simulator.ts';
import { source, toolPost, windowOf, type PoolSpec, type Window } from './common.ts';

export interface SprayingParams extends Window {
  password: string;
  accounts: number;
  pool: PoolSpec;
  tools: Tool[];
  endpoint: '/api/auth/login' | '/api/v1/login';
}

export function passwordSpraying(ctx: GenContext, p: SprayingParams): void {
  const rng = ctx.rng;
  const { start, end } = windowOf(ctx, p);
  const src = source(rng, p.pool, ctx.env);
  // account names from a scraped list: mostly real usernames, some stale ones
  const targets = rng.shuffle([...ctx.env.users]).slice(0, p.accounts);
  const gap = (end - start) / Math.max(1, targets.length);
  let t = start;
  for (const u of targets) {
    const username = rng.chance(0.85) ? u.username : `${u.username}x`;
    const post = toolPost(ctx, rng, rng.pick(p.tools), { username, password: p.password });
    ctx.emit({ ts: t, ip: src.next(), method: 'POST', path: p.endpoint, headers: post.headers, body: post.body });
    t += gap * rng.between(0.5, 1.5);
  }
}
