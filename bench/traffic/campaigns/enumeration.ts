// Account enumeration: walk the 11-digit phone block on register / password-reset / SMS and read
// the answer (409 vs 201, 404 vs 200). From rented servers, or from rotating proxies where a
// large share of exits send exactly one request (DESIGN §1: over 35%).

import { phoneInBlock, PHONE_BLOCK } from '../../../scripts/demo-shop/users.ts';
import type { Tool } from '../clients.ts';
import type { GenContext } from '../simulator.ts';
import { BotSessions, schedule, source, toolPost, windowOf, type Disguise, type Pacing, type PoolSpec, type Window } from './common.ts';

export interface EnumerationParams extends Window {
  endpoints: Array<'register' | 'password-reset' | 'sms'>;
  requests: number;
  /** first offset in the phone block; the walk is sequential from there (step `step`) */
  fromOffset: number;
  step: number;
  pool: PoolSpec;
  tools: Tool[];
  /**
   * Worlds: a disguised client (common.ts Disguise), one session per exit. With it, `list` says
   * which numbers: the sequential walk above, a purchased list scattered over the block and beyond
   * it, or a list of known customers' numbers (mostly registered); `pacing` when they go out.
   */
  disguise?: Disguise;
  list?: 'sequential' | 'scattered' | 'known';
  pacing?: Pacing;
}

const PATH = { register: '/api/auth/register', 'password-reset': '/api/auth/password-reset', sms: '/api/sms/send' } as const;

export function enumeration(ctx: GenContext, p: EnumerationParams): void {
  if (p.disguise) return disguised(ctx, p, p.disguise);
  const rng = ctx.rng;
  const { start, end } = windowOf(ctx, p);
  const src = source(rng, p.pool, ctx.env);
  const gap = (end - start) / p.requests;
  let t = start;
  for (let i = 0; i < p.requests; i++) {
    const offset = (p.fromOffset + i * p.step) % PHONE_BLOCK.size;
    const phone = phoneInBlock(offset);
    const ep = p.endpoints[i % p.endpoints.length]!;
    const body: Record<string, string> = ep === 'register' ? { phone, password: `Aa${rng.alnum(8)}1` } : { phone };
    const post = toolPost(ctx, rng, rng.pick(p.tools), body);
    ctx.emit({ ts: t, ip: src.next(), method: 'POST', path: PATH[ep], headers: post.headers, body: post.body });
    t += gap * rng.between(0.5, 1.5);
  }
}

function disguised(ctx: GenContext, p: EnumerationParams, d: Disguise): void {
  const rng = ctx.rng;
  const src = source(rng, p.pool, ctx.env);
  const bots = new BotSessions(ctx, rng, d, p.tools);
  const slots = schedule(ctx, rng, p, p.pacing ?? { kind: 'rate' }, p.requests, src);
  const known = p.list === 'known' ? rng.shuffle(ctx.env.users.map((u) => u.phone)) : [];
  for (const [i, { t, ip }] of slots.entries()) {
    let phone: string;
    if (p.list === 'scattered') {
      // a bought list: numbers all over the block, and many from other carriers' blocks
      phone = rng.chance(0.6) ? phoneInBlock(rng.int(0, PHONE_BLOCK.size - 1)) : String(rng.pick([135, 139, 150, 158, 182, 187, 199]) * 100_000_000 + rng.int(0, 99_999_999));
    } else if (p.list === 'known' && known.length > 0) {
      // customers' numbers from an earlier leak, with some stale entries
      phone = rng.chance(0.9) ? known[i % known.length]! : phoneInBlock(rng.int(0, PHONE_BLOCK.size - 1));
    } else phone = phoneInBlock((p.fromOffset + i * p.step) % PHONE_BLOCK.size);
    const ep = p.endpoints[i % p.endpoints.length]!;
    const body: Record<string, string> = ep === 'register' ? { phone, password: `Aa${rng.alnum(8)}1` } : { phone };
    bots.send(bots.get(ip, ip), t, 'POST', PATH[ep], body);
  }
}
