// Account enumeration: walk the 11-digit phone block on register / password-reset / SMS and read
// the answer (409 vs 201, 404 vs 200). From rented servers, or from rotating proxies where a
// large share of exits send exactly one request (DESIGN §1: over 35%).

import { phoneInBlock, PHONE_BLOCK } from '../../../scripts/demo-shop/users.ts';
import type { Tool } from '../clients.ts';
import type { GenContext } from '../simulator.ts';
import { source, toolPost, windowOf, type PoolSpec, type Window } from './common.ts';

export interface EnumerationParams extends Window {
  endpoints: Array<'register' | 'password-reset' | 'sms'>;
  requests: number;
  /** first offset in the phone block; the walk is sequential from there (step `step`) */
  fromOffset: number;
  step: number;
  pool: PoolSpec;
  tools: Tool[];
}

const PATH = { register: '/api/auth/register', 'password-reset': '/api/auth/password-reset', sms: '/api/sms/send' } as const;

export function enumeration(ctx: GenContext, p: EnumerationParams): void {
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
