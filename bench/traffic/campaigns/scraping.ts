// Scraping of public listings at machine-regular intervals (inventory monitors, price bots).

import type { GenContext } from '../simulator.ts';
import { BotSessions, source, windowOf, type Disguise, type PoolSpec, type Window } from './common.ts';

export interface ScrapingParams extends Window {
  intervalS: number;
  /** timing jitter, ms (machine-regular: a few ms) */
  jitterMs: number;
  pool: PoolSpec;
  paths: string[];
  /** worlds: a disguised client (common.ts Disguise), one session per exit */
  disguise?: Disguise;
}

export function scraping(ctx: GenContext, p: ScrapingParams): void {
  if (p.disguise) return disguised(ctx, p, p.disguise);
  const rng = ctx.rng;
  const { start, end } = windowOf(ctx, p);
  const src = source(rng, p.pool, ctx.env);
  const ua = rng.pick(['Scrapy/2.11.0 (+https://scrapy.org)', 'python-httpx/0.25.2', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.109 Safari/537.36']);
  // a headless Chrome runs challenge pages like any browser; the libraries cannot
  const client = ua.includes('HeadlessChrome') ? 'headless' : undefined;
  let i = 0;
  for (let t = start; t < end; t += p.intervalS * 1000 + rng.between(-p.jitterMs, p.jitterMs)) {
    const path = p.paths[i++ % p.paths.length]!;
    const headers: Array<[string, string]> = [['host', ctx.env.host], ['user-agent', ua], ['accept', path.startsWith('/api/') ? 'application/json' : 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'], ['accept-language', 'en'], ['accept-encoding', 'gzip, deflate']];
    ctx.emit({ ts: t, ip: src.next(), method: 'GET', path, headers, client });
  }
}

function disguised(ctx: GenContext, p: ScrapingParams, d: Disguise): void {
  const rng = ctx.rng;
  const { start, end } = windowOf(ctx, p);
  const src = source(rng, p.pool, ctx.env);
  const bots = new BotSessions(ctx, rng, d, []);
  let i = 0;
  for (let t = start; t < end; t += p.intervalS * 1000 + rng.between(-p.jitterMs, p.jitterMs)) {
    const path = p.paths[i++ % p.paths.length]!;
    const ip = src.next();
    const s = bots.get(ip, ip);
    if (path.startsWith('/api/')) bots.send(s, t, 'GET', path);
    else if (s.browser) bots.page(s, t, path, false);
    else bots.send(s, t, 'GET', path);
  }
}
