// Credential stuffing with leaked username/password pairs. Variants by parameters:
//   fast         — few IPs, high rate;
//   distributed  — rotating proxies, each exit a handful of attempts;
//   low-and-slow — each IP one attempt every 3–4 minutes, for hours;
//   known        — after an enumeration: only accounts that exist (phones in the walked range);
//   legacy       — against the forgotten /api/v1/login;
//   crew         — browser workers (headless Chromium, stealth-patched or not) instead of HTTP
//                  tools: each loads the home page, then submits the login form through the
//                  page's fetch, like a person. A worker is one browser profile (one cookie jar,
//                  sim.actor) behind a proxy: it moves to another exit every `exitEvery`
//                  attempts (keeping its cookies: a clearance from the old /24 turns invalid)
//                  and to a fresh profile (new User-Agent, empty jar) every `profileEvery`.

import { PHONE_BLOCK, type DemoUser } from '../../../scripts/demo-shop/users.ts';
import { browserHeaders, chromeBrowser, toolUa, type Browser, type Tool } from '../clients.ts';
import type { Rng } from '../rng.ts';
import { jsonLength, type GenContext } from '../simulator.ts';
import { BotSessions, schedule, source, toolPost, windowOf, type Disguise, type PoolSpec, type Window } from './common.ts';

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
  /** the campaign sends one User-Agent throughout (absent: its tools name a version per request) */
  fixedUa?: boolean;
  /** browser workers instead of `tools` (pacing 'rate'; attempts dealt to the workers in turn) */
  crew?: CrewParams;
  /** worlds: a disguised client (common.ts Disguise), one session per exit */
  disguise?: Disguise;
  /** with `disguise`: spray this one password over the accounts of the list instead of leaked pairs */
  spray?: string;
}

export interface CrewParams {
  workers: number;
  /** attempts per exit before a worker moves to the pool's next one (0: keeps its first exit) */
  exitEvery: number;
  /** attempts per browser profile before a worker starts a fresh one (0: never) */
  profileEvery: number;
  /** share of profiles that still say HeadlessChrome (the rest are patched to look like Chrome) */
  headlessShare: number;
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
  const src = source(rng, p.pool, ctx.env);
  if (p.crew) return crew(ctx, p, p.crew, src.next, () => leakedPair(rng, users, p, known));
  if (p.disguise) {
    const bots = new BotSessions(ctx, rng, p.disguise, p.tools);
    for (const { t, ip } of schedule(ctx, rng, p, p.pacing, p.attempts, src)) {
      let body = leakedPair(rng, users, p, known);
      if (p.spray !== undefined) body = { username: body.username, password: p.spray };
      bots.send(bots.get(ip, ip), t, 'POST', p.endpoint, body);
    }
    return;
  }
  const fixed = p.fixedUa ? { tool: p.tools[0]!, ua: toolUa(rng, p.tools[0]!) } : undefined;
  const attempt = (t: number, ip: string) => {
    const post = fixed ? toolPost(ctx, rng, fixed.tool, leakedPair(rng, users, p, known), undefined, undefined, fixed.ua) : toolPost(ctx, rng, rng.pick(p.tools), leakedPair(rng, users, p, known));
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

interface Worker {
  readonly id: number;
  ip: string;
  browser: Browser;
  profile: number;
  cookie: string | undefined;
  attempts: number;
}

/** A crew of browser workers: home page, then the login form's fetch, on the crew's exits. */
function crew(ctx: GenContext, p: StuffingParams, c: CrewParams, nextIp: () => string, pair: () => { username: string; password: string }): void {
  const rng = ctx.rng;
  const host = ctx.env.host;
  const { start, end } = windowOf(ctx, p);
  const profile = (): Browser => chromeBrowser(rng, { headless: rng.chance(c.headlessShare) });
  const workers: Worker[] = Array.from({ length: c.workers }, (_, id) => ({ id, ip: nextIp(), browser: profile(), profile: 0, cookie: undefined, attempts: 0 }));
  const gap = (end - start) / p.attempts;
  let t = start;
  for (let i = 0; i < p.attempts; i++) {
    const w = workers[i % workers.length]!;
    if (w.attempts > 0 && c.profileEvery > 0 && w.attempts % c.profileEvery === 0) {
      w.browser = profile();
      w.profile++;
      w.cookie = undefined;
    }
    if (w.attempts > 0 && c.exitEvery > 0 && w.attempts % c.exitEvery === 0) w.ip = nextIp();
    w.attempts++;
    const actor = `w${w.id}.p${w.profile}`;
    ctx.emit({ ts: t, ip: w.ip, method: 'GET', path: '/', headers: browserHeaders(w.browser, { kind: 'document', host, cookie: w.cookie }), actor });
    w.cookie ??= `sid=${rng.alnum(32)}`;
    const body = pair();
    const headers = browserHeaders(w.browser, { kind: 'fetch', host, referer: `https://${host}/`, origin: `https://${host}`, cookie: w.cookie, contentType: 'application/json', contentLength: jsonLength(body) });
    ctx.emit({ ts: t + rng.between(800, 2500), ip: w.ip, method: 'POST', path: p.endpoint, headers, body, actor });
    t += gap * rng.between(0.3, 1.7);
  }
}
