// Human populations: the people Verdict must not hurt (DESIGN §4 "Humans must not pay for this").
// Browser users load the page and its assets before calling APIs; app users send a device id and
// a non-browser User-Agent; offices and carriers put hundreds of people behind a few addresses;
// people mistype passwords (1–3 failures, then success), forget them (reset + SMS), come back
// with a session, join the promo (page → info → one claim); a partner syncs orders
// server-to-server with an API key at a steady, high rate. Some clients are "unclean" (old
// browsers, no Accept-Language).
//
// When challenged (challenge-clients.ts): browsers solve (old ones only through the no-JS
// fallback); app users only when their app build ships the reference solver (`appSolverShare`,
// sim.client app-solver / app); the partner's job never (sim.client script).

import type { DemoUser } from '../../scripts/demo-shop/users.ts';
import {
  appClient,
  appHeaders,
  browserHeaders,
  carrierNatIps,
  humanBrowser,
  officeNatIps,
  residentialIp,
  type AppClient,
  type Browser,
} from './clients.ts';
import { Rng } from './rng.ts';
import { carrierPool, GenContext, jsonLength } from './simulator.ts';

export interface HumanMix {
  /** browser sessions from home broadband (one IP each) */
  browserSessions: number;
  /** app sessions on mobile data (carrier NAT) */
  appSessions: number;
  /** browser users in one office behind `officeIps` addresses */
  officeUsers: number;
  officeIps: number;
  /** phones behind a carrier's NAT: browser + app users on `cgnatIps` addresses */
  cgnatUsers: number;
  cgnatIps: number;
  /** anonymous visitors who only browse public pages */
  visitors: number;
  /** shares of sessions (independent draws) */
  returningShare: number;
  typoShare: number;
  forgotShare: number;
  promoShare: number;
  uncleanShare: number;
  /** when the promo opens (hours from the start); promo participants come after it */
  promoStartH: number;
  /** partner integration: batches of order lookups, or undefined for none */
  partner?: { batchSize: number; intervalS: number };
  /** share of app users whose app build ships the reference solver (absent: none yet) */
  appSolverShare?: number;
  /** share of carrier-NAT visits whose public address changes after the login (the carrier moves the flow, the phone hops networks) */
  cgnatSwitchShare?: number;
  /** carrier-NAT addresses from the world's shared carrier pool (simulator.ts carrierPool), where mobile-proxy campaigns also exit */
  sharedCarrierNat?: boolean;
}

export const DEFAULT_MIX: HumanMix = {
  browserSessions: 400,
  appSessions: 250,
  officeUsers: 250,
  officeIps: 2,
  cgnatUsers: 600,
  cgnatIps: 2,
  visitors: 120,
  returningShare: 0.45,
  typoShare: 0.12,
  forgotShare: 0.03,
  promoShare: 0.25,
  uncleanShare: 0.08,
  promoStartH: 0,
  partner: { batchSize: 20, intervalS: 120 },
};

type Client = { kind: 'browser'; b: Browser; cookie: string | undefined } | { kind: 'app'; c: AppClient; solver: boolean };

/** One person's visit: keeps the clock, the client and the session. */
class Visit {
  t: number;
  token: string | undefined;
  tokenUser: string | undefined;

  constructor(
    private readonly ctx: GenContext,
    readonly user: DemoUser | undefined,
    public ip: string,
    readonly client: Client,
    start: number,
    readonly label: string,
  ) {
    this.t = start;
  }

  get rng(): Rng {
    return this.ctx.rng;
  }

  wait(minS: number, maxS: number): void {
    this.t += this.rng.between(minS, maxS) * 1000;
  }

  private sim(): { token_user: string } | undefined {
    return this.tokenUser && this.token ? { token_user: this.tokenUser } : undefined;
  }

  page(path: string, referer?: string): void {
    const c = this.client;
    if (c.kind !== 'browser') return;
    const host = this.ctx.env.host;
    this.ctx.emit({ ts: this.t, ip: this.ip, method: 'GET', path, headers: browserHeaders(c.b, { kind: 'document', host, referer, cookie: c.cookie }), label: this.label });
    // a site sets its session cookie on the first page; the browser sends it from then on
    if (!c.cookie) c.cookie = `sid=${this.rng.alnum(32)}; _ga=GA1.1.${this.rng.int(1e8, 1e9 - 1)}.${Math.floor(this.t / 1000)}`;
    const ref = `https://${host}${path}`;
    for (const [asset, kind] of [['/static/style.css', 'style'], ['/static/app.js', 'script']] as const) {
      this.t += this.rng.between(20, 250);
      this.ctx.emit({ ts: this.t, ip: this.ip, method: 'GET', path: asset, headers: browserHeaders(c.b, { kind, host, referer: ref, cookie: c.cookie }), label: this.label });
    }
  }

  api(method: string, path: string, body?: Record<string, unknown>, opts: { referer?: string; sim?: { issues_token: string } } = {}): void {
    const host = this.ctx.env.host;
    const authorization = this.token ? `Bearer ${this.token}` : undefined;
    const contentType = body ? 'application/json' : undefined;
    const contentLength = body ? jsonLength(body) : undefined;
    const c = this.client;
    const headers =
      c.kind === 'browser'
        ? browserHeaders(c.b, { kind: 'fetch', host, referer: opts.referer ?? `https://${host}/`, origin: `https://${host}`, cookie: c.cookie, authorization, contentType, contentLength })
        : appHeaders(c.c, { host, authorization, contentType, contentLength });
    const client = c.kind === 'app' ? (c.solver ? 'app-solver' : 'app') : undefined;
    this.ctx.emit({ ts: this.t, ip: this.ip, method, path, headers, body, sim: opts.sim ?? this.sim(), label: this.label, client });
  }

  /** Log in: `typos` wrong passwords first; `forgot` = reset + SMS before the final attempt. */
  login(typos: number, forgot: boolean): void {
    const u = this.user!;
    const username = this.client.kind === 'app' || this.rng.chance(0.5) ? u.phone : u.username;
    for (let i = 0; i < typos; i++) {
      this.api('POST', '/api/auth/login', { username, password: typo(this.rng, u.password) });
      this.wait(4, 18);
    }
    if (forgot) {
      this.api('POST', '/api/auth/password-reset', { phone: u.phone });
      this.wait(1, 4);
      this.api('POST', '/api/sms/send', { phone: u.phone });
      this.wait(30, 120); // reads the SMS, comes back
    }
    const token = this.ctx.token();
    this.api('POST', '/api/auth/login', { username, password: u.password }, { sim: { issues_token: token } });
    this.token = token;
    this.tokenUser = undefined;
    this.wait(0.3, 2);
  }

  myAccount(): void {
    const u = this.user!;
    this.api('GET', `/api/users/${u.id}/profile`);
    for (const o of u.orders.slice(0, this.rng.int(0, 2))) {
      this.wait(2, 25);
      this.api('GET', `/api/orders/${o.id}`);
    }
  }

  promo(): void {
    const host = this.ctx.env.host;
    this.page('/promo', `https://${host}/`);
    this.t += this.rng.between(100, 600);
    this.api('GET', '/api/promo/info', undefined, { referer: `https://${host}/promo` });
    this.wait(3, 25);
    if (this.token) this.api('POST', '/api/promo/claim', undefined, { referer: `https://${host}/promo` });
  }
}

/** A mistyped password: a slip of one character, a missing character, or caps lock. */
function typo(rng: Rng, pw: string): string {
  const r = rng.int(0, 2);
  if (r === 0) return pw.slice(0, -1);
  if (r === 1) return pw.toUpperCase() === pw ? `${pw}1` : pw.toUpperCase();
  const i = rng.int(0, pw.length - 1);
  return `${pw.slice(0, i)}${String.fromCharCode(pw.charCodeAt(i) + 1)}${pw.slice(i + 1)}`;
}

/**
 * All human traffic of a scenario. Users are drawn without replacement from the shop's
 * population (one person, one visit), labelled `human:<user id>`; anonymous visitors
 * `human:visitor-<n>`; the partner `human:partner-<name>`.
 */
export function generateHumans(ctx: GenContext, mix: HumanMix): void {
  const rng = ctx.rng;
  const users = rng.shuffle([...ctx.env.users.keys()]).map((i) => ctx.env.users[i]!);
  let nextUser = 0;
  const takeUser = (): DemoUser | undefined => users[nextUser++];
  const span = ctx.env.durationMs;
  const promoStart = ctx.start + mix.promoStartH * 3_600_000;
  const office = officeNatIps(mix.officeIps);
  const cgnat = mix.sharedCarrierNat ? carrierPool(ctx.env, mix.cgnatIps) : carrierNatIps(rng, mix.cgnatIps);
  // draws for what clients do when challenged, apart from the traffic's own stream
  const side = new Rng(ctx.env.seed, `${ctx.name}/clients`);

  const session = (where: 'home' | 'office' | 'cgnat' | 'app'): void => {
    const user = takeUser();
    if (!user) return;
    const promo = rng.chance(mix.promoShare);
    // offices arrive in a morning rush (first 30 minutes): many logins from two addresses at once
    const start = promo ? promoStart + rng.float() * (ctx.end - promoStart) * 0.8 : where === 'office' ? ctx.start + rng.float() * 1_800_000 : ctx.start + rng.float() * span;
    const ip = where === 'home' ? residentialIp(rng) : where === 'office' ? rng.pick(office) : where === 'cgnat' || where === 'app' ? rng.pick(cgnat) : residentialIp(rng);
    const useApp = where === 'app' || (where === 'cgnat' && rng.chance(0.5));
    const client: Client = useApp
      ? { kind: 'app', c: appClient(rng), solver: side.chance(mix.appSolverShare ?? 0) }
      : { kind: 'browser', b: humanBrowser(rng, { mobile: where === 'cgnat', uncleanShare: mix.uncleanShare }), cookie: undefined };
    const v = new Visit(ctx, user, ip, client, start, `human:${user.id}`);
    const returning = rng.chance(mix.returningShare);
    if (returning) {
      // a session from an earlier day: cookie and token already there
      if (client.kind === 'browser') client.cookie = `sid=${rng.alnum(32)}; _ga=GA1.1.${rng.int(1e8, 1e9 - 1)}.${Math.floor((start - 86_400_000 * rng.int(1, 20)) / 1000)}`;
      v.token = ctx.token();
      v.tokenUser = user.username;
    }
    if (client.kind === 'browser') {
      v.page('/');
      v.wait(2, 30);
    } else {
      v.api('GET', '/api/promo/info'); // the app's home screen
      v.wait(1, 6);
    }
    if (!returning) {
      const typos = rng.chance(mix.typoShare) ? rng.int(1, 3) : 0;
      const forgot = rng.chance(mix.forgotShare);
      v.login(typos, forgot);
    }
    if ((where === 'cgnat' || where === 'app') && cgnat.length > 1 && side.chance(mix.cgnatSwitchShare ?? 0)) {
      const others = cgnat.filter((a) => a !== v.ip);
      v.ip = side.pick(others);
    }
    v.myAccount();
    v.wait(5, 60);
    if (promo) {
      if (client.kind === 'browser') v.promo();
      else {
        v.api('GET', '/api/promo/info');
        v.wait(2, 15);
        v.api('POST', '/api/promo/claim');
      }
    }
  };

  for (let i = 0; i < mix.browserSessions; i++) session('home');
  for (let i = 0; i < mix.officeUsers; i++) session('office');
  for (let i = 0; i < mix.cgnatUsers; i++) session('cgnat');
  for (let i = 0; i < mix.appSessions; i++) session('app');

  for (let i = 0; i < mix.visitors; i++) {
    const client: Client = { kind: 'browser', b: humanBrowser(rng, { uncleanShare: mix.uncleanShare }), cookie: undefined };
    const v = new Visit(ctx, undefined, residentialIp(rng), client, ctx.start + rng.float() * span, `human:visitor-${i + 1}`);
    v.page('/');
    v.wait(3, 40);
    if (rng.chance(0.6)) {
      v.page('/promo', `https://${ctx.env.host}/`);
      v.api('GET', '/api/promo/info', undefined, { referer: `https://${ctx.env.host}/promo` });
    }
  }

  if (mix.partner) partner(ctx, mix.partner, takeUser());
}

/** A partner's order-sync job: every interval, a batch of order lookups at ~10/s, API key + token. */
function partner(ctx: GenContext, p: { batchSize: number; intervalS: number }, account: DemoUser | undefined): void {
  if (!account) return;
  const rng = ctx.rng;
  const ips = ['198.51.100.20', '198.51.100.21'];
  const apiKey = `pk_live_${rng.alnum(32)}`;
  const token = ctx.token();
  const orderIds = ctx.env.users.flatMap((u) => u.orders.map((o) => o.id));
  for (let t = ctx.start + rng.between(0, p.intervalS * 1000); t < ctx.end; t += p.intervalS * 1000) {
    const ip = rng.pick(ips);
    let bt = t;
    for (let i = 0; i < p.batchSize; i++) {
      const id = rng.pick(orderIds);
      ctx.emit({
        ts: bt,
        ip,
        method: 'GET',
        path: `/api/orders/${id}`,
        headers: [
          ['host', ctx.env.host],
          ['user-agent', 'AcmeLogistics-OrderSync/2.3 (+https://partner.example/bot)'],
          ['accept', 'application/json'],
          ['authorization', `Bearer ${token}`],
          ['x-api-key', apiKey],
          ['accept-encoding', 'gzip'],
          ['connection', 'keep-alive'],
        ],
        sim: { token_user: account.username },
        label: 'human:partner-acme',
        client: 'script',
      });
      bt += rng.between(80, 120);
    }
  }
}
