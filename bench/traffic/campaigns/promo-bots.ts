// Promo-abuse bots scripting the whole flow across many fresh accounts and devices:
// register → login → (optionally the page precursors: /promo, /api/promo/info) → claim.
//   scripted    — API clients (okhttp / python) with a device id, rotated every few accounts;
//   browserlike — full browser header sets (some headless), cookies, and for `precursorShare`
//                 of accounts the page + info calls a real visitor makes. The headless share
//                 are real headless browsers (they run challenge pages); the rest copy a
//                 browser's headers from a script (the campaign's declared client).
// Each account is worked in its own session: one cookie jar (sim.actor) per account.
// Timing is machine-regular: accounts start every `intervalS`, steps at fixed offsets.
// Worlds (`disguise`): each account its own session and exit, a client as the disguise says
// (common.ts), steps `pauseS` apart like a person's, accounts made `leadMin` minutes ahead.

import { browserHeaders, chromeBrowser, toolHeaders, toolUa, type Browser, type Tool } from '../clients.ts';
import { jsonLength, type GenContext } from '../simulator.ts';
import { BotSessions, farmPhone, source, windowOf, type Disguise, type PoolSpec, type Window } from './common.ts';

export interface PromoBotParams extends Window {
  style: 'scripted' | 'browserlike';
  accounts: number;
  /** seconds between account starts (per worker) */
  intervalS: number;
  workers: number;
  /** accounts sharing one device id (scripted) */
  accountsPerDevice: number;
  precursorShare: number;
  headlessShare: number;
  pool: PoolSpec;
  tools: Tool[];
  /** keeps farm phone numbers of different bot crews apart */
  phoneBase: number;
  /** scripted: each account keeps one User-Agent (absent: its tool names a version per request) */
  fixedUa?: boolean;
  /** worlds: a disguised client (common.ts Disguise), one session and exit per account */
  disguise?: Disguise;
  /** with `disguise`: seconds between an account's steps (default 1) */
  pauseS?: readonly [number, number];
  /** with `disguise`: accounts are registered this many minutes (± half) before their claim, else just before it */
  leadMin?: number;
}

export function promoBots(ctx: GenContext, p: PromoBotParams): void {
  if (p.disguise) return disguised(ctx, p, p.disguise);
  const rng = ctx.rng;
  const { start } = windowOf(ctx, p);
  const src = source(rng, p.pool, ctx.env);
  const host = ctx.env.host;
  let device = rng.uuid();
  let browser: Browser = chromeBrowser(rng, { headless: rng.chance(p.headlessShare) });
  for (let a = 0; a < p.accounts; a++) {
    const worker = a % p.workers;
    let t = start + worker * 137 + Math.floor(a / p.workers) * p.intervalS * 1000 + rng.between(-15, 15);
    const ip = src.next();
    if (a % p.accountsPerDevice === 0) {
      device = rng.uuid();
      browser = chromeBrowser(rng, { headless: rng.chance(p.headlessShare), mobile: rng.chance(0.3) });
    }
    const phone = farmPhone(rng, p.phoneBase + a);
    const password = `Qq${rng.alnum(8)}7`;
    const token = ctx.token();
    const tool: Tool = p.tools.length > 0 ? rng.pick(p.tools) : 'python-requests';
    const ua = p.fixedUa ? toolUa(rng, tool) : undefined;
    const cookie = p.style === 'browserlike' ? `sid=${rng.alnum(32)}` : undefined;
    const actor = `acct-${a}`;
    const client = p.style === 'browserlike' && browser.ua.includes('HeadlessChrome') ? 'headless' : undefined;
    const post = (path: string, body: Record<string, string> | undefined, authorization?: string, extra: { sim?: { issues_token: string }; referer?: string } = {}) => {
      const contentType = body ? 'application/json' : undefined;
      const contentLength = body ? jsonLength(body) : undefined;
      const headers =
        p.style === 'browserlike'
          ? browserHeaders(browser, { kind: 'fetch', host, referer: extra.referer ?? `https://${host}/`, origin: `https://${host}`, cookie, authorization, contentType, contentLength })
          : toolHeaders(rng, tool, { host, authorization, contentType, contentLength, extra: [['x-device-id', device]], ua });
      ctx.emit({ ts: t, ip, method: body || path.endsWith('claim') ? 'POST' : 'GET', path, headers, body, sim: extra.sim, client, actor });
    };
    post('/api/auth/register', { phone, password });
    t += 1000;
    post('/api/auth/login', { username: phone, password }, undefined, { sim: { issues_token: token } });
    t += 1000;
    if (rng.chance(p.precursorShare)) {
      if (p.style === 'browserlike') {
        ctx.emit({ ts: t, ip, method: 'GET', path: '/promo', headers: browserHeaders(browser, { kind: 'document', host, referer: `https://${host}/`, cookie }), client, actor });
        t += 300;
      }
      post('/api/promo/info', undefined, undefined, { referer: `https://${host}/promo` });
      t += 500;
    }
    post('/api/promo/claim', undefined, `Bearer ${token}`, { referer: `https://${host}/promo` });
  }
}

function disguised(ctx: GenContext, p: PromoBotParams, d: Disguise): void {
  const rng = ctx.rng;
  const { start } = windowOf(ctx, p);
  const src = source(rng, p.pool, ctx.env);
  const bots = new BotSessions(ctx, rng, d, p.tools);
  const host = ctx.env.host;
  const pause = () => rng.between(p.pauseS?.[0] ?? 1, p.pauseS?.[1] ?? 1) * 1000;
  let device = rng.uuid();
  for (let a = 0; a < p.accounts; a++) {
    const worker = a % p.workers;
    const at = start + worker * 137 + Math.floor(a / p.workers) * p.intervalS * 1000 + rng.between(-15, 15);
    if (a % p.accountsPerDevice === 0) device = rng.uuid();
    const extra: Array<[string, string]> = d.headers === 'tool' || d.headers === 'shuffled' ? [['x-device-id', device]] : [];
    // A browser has no device id: its profile (cookie jar, and any clearance it paid for) is the
    // device a farm reuses for `accountsPerDevice` accounts; scripts carry an x-device-id instead.
    const s = bots.get(d.headers === 'browser' ? `profile-${Math.floor(a / p.accountsPerDevice)}` : `acct-${a}`, src.next());
    const phone = farmPhone(rng, p.phoneBase + a);
    const password = `Qq${rng.alnum(8)}7`;
    const lead = p.leadMin !== undefined ? p.leadMin * 60_000 * rng.between(0.5, 1.5) : 0;
    let t = Math.max(ctx.start, at - lead);
    bots.send(s, t, 'POST', '/api/auth/register', { phone, password }, { extra });
    t = lead > 0 ? at : t + pause();
    const token = ctx.token();
    bots.send(s, t, 'POST', '/api/auth/login', { username: phone, password }, { extra, sim: { issues_token: token } });
    t += pause();
    if (rng.chance(p.precursorShare)) {
      if (s.browser) {
        bots.page(s, t, '/promo', d.precursors === 'complete');
        t += rng.between(300, 900);
      }
      bots.send(s, t, 'GET', '/api/promo/info', undefined, { extra, referer: `https://${host}/promo` });
      t += pause();
    }
    bots.send(s, t, 'POST', '/api/promo/claim', undefined, { extra, authorization: `Bearer ${token}`, referer: `https://${host}/promo` });
  }
}
