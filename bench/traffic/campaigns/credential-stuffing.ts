// Credential stuffing with leaked username/password pairs. Variants by parameters:
//   fast         — few IPs, high rate;
//   distributed  — rotating proxies, each exit a handful of attempts;
//   low-and-slow — each IP one attempt every 3–4 minutes, for hours;
//   known        — after an enumeration: only accounts that exist (phones in the walked range);
//   legacy       — against the forgotten /api/v1/login.

import { PHONE_BLOCK, type DemoUser } from '../../../scripts/demo-shop/users.ts';
import type { Tool } from '../clients.ts';
import type { Rng } from '../rng.ts';
import type { GenContext } from '../simulator.ts';
import { source, toolPost, windowOf, type PoolSpec, type Window } from './common.ts';

export interface StuffingParams extends Window {
  endpoint: '/api/auth/login' | '/api/v1/login';
  /** total attempts (for per-ip pacing: an upper bound) */
  attempts: number;
  /** 'rate': spread evenly over the window; 'per-ip': every IP in the pool fires every minS–maxS seconds */
  pacing: { kind: 'rate' } | { kind: 'per-ip'; minS: number; maxS: number };
  pool: PoolSpec;
  tools: Tool[];
  /** share of leaked pairs naming accounts that exist here; of those, share with the right password */
  existingShare: number;
  validShare: number;
  /** only accounts whose phone offset lies in [from, from + count) (post-enumeration lists) */
  knownRange?: { fromOffset: number; count: number };
}

function leakedPair(rng: Rng, users: readonly DemoUser[], p: StuffingParams, known: readonly DemoUser[]): { username: string; password: string } {
  const pool = known.length > 0 ? known : users;
  if (known.length > 0 || rng.chance(p.existingShare)) {
    const u = rng.pick(pool);
    const username = rng.chance(0.6) ? u.phone : u.username;
    // the leak has this person's password from another site: sometimes the same one
    return { username, password: rng.chance(p.validShare) ? u.password : rng.pick(['123456', 'password1', 'qwerty', `${u.username}2019`, 'iloveyou', rng.alnum(10)]) };
  }
  const username = rng.chance(0.5) ? String(PHONE_BLOCK.first + rng.int(0, 400_000)) : `${rng.pick(['li', 'wang', 'zhao', 'kim', 'jo', 'max'])}${rng.pick(['_', '.', ''])}${rng.int(1, 99_999)}`;
  return { username, password: rng.alnum(rng.int(6, 12)) };
}

export function credentialStuffing(ctx: GenContext, p: StuffingParams): void {
  const rng = ctx.rng;
  const { start, end } = windowOf(ctx, p);
  const users = ctx.env.users;
  const known = p.knownRange
    ? users.filter((u) => {
        const off = Number(u.phone) - PHONE_BLOCK.first;
        return off >= p.knownRange!.fromOffset && off < p.knownRange!.fromOffset + p.knownRange!.count;
      })
    : [];
  const src = source(rng, p.pool);
  const attempt = (t: number, ip: string) => {
    const post = toolPost(ctx, rng, rng.pick(p.tools), leakedPair(rng, users, p, known));
    ctx.emit({ ts: t, ip, method: 'POST', path: p.endpoint, headers: post.headers, body: post.body });
  };
  if (p.pacing.kind === 'rate') {
    const gap = (end - start) / p.attempts;
    let t = start;
    for (let i = 0; i < p.attempts; i++) {
      attempt(t, src.next());
      t += gap * rng.between(0.3, 1.7);
    }
    return;
  }
  // low and slow: each IP on its own timer
  const ips = src.all();
  const perIp = Math.ceil(p.attempts / Math.max(1, ips.length));
  for (const ip of ips) {
    let t = start + rng.between(0, p.pacing.maxS * 1000);
    for (let i = 0; i < perIp && t < end; i++) {
      attempt(t, ip);
      t += rng.between(p.pacing.minS, p.pacing.maxS) * 1000;
    }
  }
}
