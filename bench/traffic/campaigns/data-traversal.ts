// Data traversal (BOLA): with one valid token of an account the attacker owns, walk object ids
// on /api/orders/{id} or /api/users/{id}/profile — sequentially or at random. Worlds add account
// farms: dozens of fresh accounts, each reading a few dozen ids (a sequential walk split between
// them, or random ids), through a disguised client.

import { FIRST_ORDER_ID, FIRST_USER_ID } from '../../../scripts/demo-shop/users.ts';
import type { Tool } from '../clients.ts';
import type { GenContext } from '../simulator.ts';
import { BotSessions, farmPhone, schedule, source, toolGet, toolPost, windowOf, type Disguise, type Pacing, type PoolSpec, type Window } from './common.ts';

export interface TraversalParams extends Window {
  target: 'orders' | 'profiles';
  order: 'sequential' | 'random';
  requests: number;
  pool: PoolSpec;
  tools: Tool[];
  /** distinguishes this attacker's own account */
  account: number;
  /** worlds: a disguised client (common.ts Disguise), one session per account */
  disguise?: Disguise;
  /** with `disguise`: this many accounts, registered and logged in during the first tenth of the window (default 1) */
  farm?: number;
  pacing?: Pacing;
}

export function dataTraversal(ctx: GenContext, p: TraversalParams): void {
  if (p.disguise) return farm(ctx, p, p.disguise);
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

function farm(ctx: GenContext, p: TraversalParams, d: Disguise): void {
  const rng = ctx.rng;
  const { start, end } = windowOf(ctx, p);
  const src = source(rng, p.pool, ctx.env);
  const bots = new BotSessions(ctx, rng, d, p.tools);
  const n = Math.max(1, p.farm ?? 1);
  const setupEnd = start + (end - start) * 0.1;
  const tokens: string[] = [];
  for (let a = 0; a < n; a++) {
    const phone = farmPhone(rng, 500 + p.account * 1000 + a);
    const password = `Zz${rng.alnum(10)}9`;
    const key = `acct-${a}`;
    const t = start + ((setupEnd - start) * a) / n;
    bots.send(bots.get(key, src.next()), t, 'POST', '/api/auth/register', { phone, password });
    const token = ctx.token();
    bots.send(bots.get(key, src.next()), t + rng.between(1000, 4000), 'POST', '/api/auth/login', { username: phone, password }, { sim: { issues_token: token } });
    tokens.push(token);
  }
  const first = p.target === 'orders' ? FIRST_ORDER_ID : FIRST_USER_ID;
  const span = p.target === 'orders' ? 15_000 : 6_000;
  const reads = schedule(ctx, rng, { startH: (setupEnd + 5000 - ctx.start) / 3_600_000, durationH: (end - setupEnd - 5000) / 3_600_000 }, p.pacing ?? { kind: 'rate' }, p.requests, src);
  const per = Math.ceil(reads.length / n);
  for (const [i, { t, ip }] of reads.entries()) {
    // the accounts work side by side; a sequential walk is split into one run of ids per account
    const a = i % n;
    const id = p.order === 'sequential' ? first + a * per + Math.floor(i / n) : first + rng.int(0, span);
    const path = p.target === 'orders' ? `/api/orders/${id}` : `/api/users/${id}/profile`;
    bots.send(bots.get(`acct-${a}`, ip), t, 'GET', path, undefined, { authorization: `Bearer ${tokens[a]}` });
  }
}
