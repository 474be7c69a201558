// Data harvesting (issue 17): slowly, through ONE valid account token, a crew collects customers'
// unmasked phone numbers from what the API sends back — other users' profiles or orders (the BOLA
// flaw), or the promo winners list paged with a large page size — rotating exits and copying real
// browsers, at a person's pace. No request alone looks wrong; what gives it away is that almost
// every response brings the token a phone number it never received before.

import { promoWinners, WINNERS_PAGE_SIZE } from '../../../scripts/demo-shop/app.ts';
import { FIRST_ORDER_ID, FIRST_USER_ID } from '../../../scripts/demo-shop/users.ts';
import type { Tool } from '../clients.ts';
import type { GenContext } from '../simulator.ts';
import { BotSessions, farmPhone, schedule, source, windowOf, type Disguise, type Pacing, type PoolSpec, type Window } from './common.ts';

export interface HarvestParams extends Window {
  /** profiles / orders of other users (random ids over the shop's population), or the winners list page by page */
  target: 'profiles' | 'orders' | 'winners';
  requests: number;
  /** winners: the page size asked for */
  pageSize: number;
  pool: PoolSpec;
  tools: Tool[];
  disguise: Disguise;
  pacing: Pacing;
  /** distinguishes this crew's own account */
  account: number;
}

export function harvest(ctx: GenContext, p: HarvestParams): void {
  const rng = ctx.rng;
  const { start, end } = windowOf(ctx, p);
  const src = source(rng, p.pool, ctx.env);
  const bots = new BotSessions(ctx, rng, p.disguise, p.tools);
  // one browser profile, one account: register, log in, keep the token
  const s = bots.get('harvester', src.next());
  const phone = farmPhone(rng, 700 + p.account);
  const password = `Zz${rng.alnum(10)}9`;
  bots.send(s, start, 'POST', '/api/auth/register', { phone, password });
  const token = ctx.token();
  bots.send(s, start + rng.between(2000, 6000), 'POST', '/api/auth/login', { username: phone, password }, { sim: { issues_token: token } });
  const users = ctx.env.users;
  const orders = users.flatMap((u) => u.orders.map((o) => o.id));
  // the winners list ends: a crew stops at its last page
  const pages = Math.ceil(promoWinners(users).length / Math.max(1, p.pageSize || WINNERS_PAGE_SIZE));
  const requests = p.target === 'winners' ? Math.min(p.requests, pages) : p.requests;
  const reads = schedule(ctx, rng, { startH: (start + 10_000 - ctx.start) / 3_600_000, durationH: (end - start - 10_000) / 3_600_000 }, p.pacing, requests, src);
  for (const [i, { t, ip }] of reads.entries()) {
    const path =
      p.target === 'profiles' ? `/api/users/${FIRST_USER_ID + rng.int(0, users.length - 1)}/profile`
      : p.target === 'orders' ? `/api/orders/${orders.length > 0 ? rng.pick(orders) : FIRST_ORDER_ID + i}`
      : '/api/promo/winners';
    const query = p.target === 'winners' ? `page=${i}&size=${p.pageSize}` : undefined;
    bots.send(bots.get('harvester', ip), t, 'GET', path, undefined, { authorization: `Bearer ${token}`, query });
  }
}
