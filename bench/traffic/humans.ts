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
//
// Every person's lines carry their customer type (sim.customer: home, app, office, carrier, vpn,
// partner, monitor). Worlds (worlds.ts) add populations beyond the default mix: `groups` of any
// size behind shared addresses of any kind, skewed to one browser build or living in one dense
// block of phone numbers; flash-sale surges; more partners; uptime and synthetic-login monitors;
// newcomers who sign up for the promo (`human:new-N`, after everything else, from their own stream).

import type { DemoUser } from '../../scripts/demo-shop/users.ts';
import {
  appClient,
  appHeaders,
  browserHeaders,
  carrierNatIps,
  humanBrowser,
  idcIp,
  officeNatIps,
  popularBrowser,
  residentialIp,
  type AppClient,
  type Browser,
  type PopularBuild,
} from './clients.ts';
import type { CustomerType } from './format.ts';
import { Rng } from './rng.ts';
import { carrierPool, GenContext, jsonLength, vpnPool } from './simulator.ts';

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
  /** populations beyond the fields above (worlds.ts), generated after them */
  groups?: readonly CustomerGroup[];
  /** flash sale: promo participants arrive this many minutes after the promo opens on average (exponential), instead of spread over the scenario */
  promoSurgeMin?: number;
  /** partners' jobs besides `partner` (which is Acme's) */
  partners?: readonly PartnerSpec[];
  monitors?: readonly MonitorSpec[];
  /**
   * People new to the shop who come for the promo: they sign up when it opens (arriving as its
   * participants do), log in with the new account and claim, on the networks of the population
   * (home, or any group's offices, carrier NATs, VPN exits, in proportion to its size). The claim
   * of an account minutes old, on a carrier NAT a farm may share, is what a farm's looks like.
   */
  newcomers?: number;
}

/**
 * People who share a network (worlds.ts): `users` sessions of one customer type.
 *  home    — each session its own residential address (`ips` unused);
 *  app     — the mobile app on a carrier's NAT (`ips` addresses of carrier `network`);
 *  office  — `ips` addresses of one office (office `network`);
 *  carrier — `ips` carrier-NAT addresses of carrier `network` (simulator.ts carrierPool: mobile
 *            proxies of campaigns with pool `{ kind: 'carrier', carrier: network }` exit there);
 *  vpn     — `ips` exits of VPN provider `network` in a hosting range (simulator.ts vpnPool).
 */
export interface CustomerGroup {
  customer: Exclude<CustomerType, 'partner' | 'monitor'>;
  users: number;
  ips: number;
  /** which office / carrier / VPN provider of the world (0, 1, …) */
  network: number;
  /** share of the group's sessions in the mobile app (the rest in a browser); 'app' groups: all */
  appShare: number;
  /** phones (mobile browsers) rather than desktops */
  mobile: boolean;
  /** arrive within `minutes` from `atH` hours (a morning rush, a shift change) instead of spread over the scenario */
  rush?: { atH: number; minutes: number };
  /** this share of the group's browsers are one exact build (clients.ts POPULAR_BUILDS) */
  skew?: { build: PopularBuild; share: number };
  /** the group's people have phone numbers close together (a company plan, one carrier's new block) */
  denseNumbers?: boolean;
}

/** A partner's job: batches of `batchSize` order lookups at ~10/s every `intervalS`, from `ips` hosting addresses. */
export interface PartnerSpec {
  name: string;
  batchSize: number;
  intervalS: number;
  ips: number;
}

/**
 * An uptime monitor: every `intervalS` (± 15 ms) from each of `locations` hosting addresses in
 * turn, GETs `paths`; a synthetic-transaction monitor (`login`) also logs in with its test account
 * and opens the profile, each check a fresh session.
 */
export interface MonitorSpec {
  name: string;
  ua: string;
  intervalS: number;
  locations: number;
  paths: readonly string[];
  login: boolean;
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
    readonly customer: CustomerType,
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
    this.ctx.emit({ ts: this.t, ip: this.ip, method: 'GET', path, headers: browserHeaders(c.b, { kind: 'document', host, referer, cookie: c.cookie }), label: this.label, customer: this.customer });
    // a site sets its session cookie on the first page; the browser sends it from then on
    if (!c.cookie) c.cookie = `sid=${this.rng.alnum(32)}; _ga=GA1.1.${this.rng.int(1e8, 1e9 - 1)}.${Math.floor(this.t / 1000)}`;
    const ref = `https://${host}${path}`;
    for (const [asset, kind] of [['/static/style.css', 'style'], ['/static/app.js', 'script']] as const) {
      this.t += this.rng.between(20, 250);
      this.ctx.emit({ ts: this.t, ip: this.ip, method: 'GET', path: asset, headers: browserHeaders(c.b, { kind, host, referer: ref, cookie: c.cookie }), label: this.label, customer: this.customer });
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
    this.ctx.emit({ ts: this.t, ip: this.ip, method, path, headers, body, sim: opts.sim ?? this.sim(), label: this.label, client, customer: this.customer });
  }

  /** Sign up with a new phone number, then log in with the new account (the app and the site do both at once). */
  signup(phone: string, password: string): void {
    this.api('POST', '/api/auth/register', { phone, password });
    this.wait(0.5, 3);
    const token = this.ctx.token();
    this.api('POST', '/api/auth/login', { username: phone, password }, { sim: { issues_token: token } });
    this.token = token;
    this.tokenUser = undefined;
    this.wait(0.3, 2);
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
    // the page's script lists last campaign's winners too (the shop's leaky endpoint: everyone
    // receives the same unmasked phones); no draw, so the rest of the visit is as it was
    if (this.client.kind === 'browser') {
      this.t += 40;
      this.api('GET', '/api/promo/winners', undefined, { referer: `https://${host}/promo` });
    }
    this.wait(3, 25);
    if (this.token) this.api('POST', '/api/promo/claim', undefined, { referer: `https://${host}/promo` });
  }

  /** The app's promo screen: the offer, a read, the claim. */
  appPromo(): void {
    this.api('GET', '/api/promo/info');
    this.wait(2, 15);
    this.api('POST', '/api/promo/claim');
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

/** Where and how one population's sessions happen: the draws of `session`, in its order. */
interface Placement {
  readonly customer: CustomerType;
  /** the next person (default: the shuffled population) */
  readonly take?: () => DemoUser | undefined;
  /** when a session that is not a promo visit starts */
  arrive(): number;
  ip(): string;
  /** in the app (else a browser) */
  app(): boolean;
  browser(): Browser;
  /** addresses a phone may move to after the login (carrier NAT) */
  readonly switchPool: readonly string[] | undefined;
}

/**
 * All human traffic of a scenario. Users are drawn without replacement from the shop's
 * population (one person, one visit), labelled `human:<user id>`; anonymous visitors
 * `human:visitor-<n>`; partners `human:partner-<name>`; monitors `human:monitor-<name>`.
 */
export function generateHumans(ctx: GenContext, mix: HumanMix): void {
  const rng = ctx.rng;
  const users = rng.shuffle([...ctx.env.users.keys()]).map((i) => ctx.env.users[i]!);
  const taken = new Set<DemoUser>();
  let nextUser = 0;
  const takeUser = (): DemoUser | undefined => {
    while (nextUser < users.length && taken.has(users[nextUser]!)) nextUser++;
    const u = users[nextUser++];
    if (u) taken.add(u);
    return u;
  };
  const span = ctx.env.durationMs;
  const promoStart = ctx.start + mix.promoStartH * 3_600_000;
  const office = officeNatIps(mix.officeIps);
  const cgnat = mix.sharedCarrierNat ? carrierPool(ctx.env, mix.cgnatIps) : carrierNatIps(rng, mix.cgnatIps);
  // draws for what clients do when challenged, apart from the traffic's own stream
  const side = new Rng(ctx.env.seed, `${ctx.name}/clients`);
  const uniform = () => ctx.start + rng.float() * span;

  // a flash sale: most participants come in the first minutes after the promo opens
  const promoArrival = (r: Rng): number => {
    const room = (ctx.end - promoStart) * 0.8;
    if (mix.promoSurgeMin === undefined) return promoStart + r.float() * room;
    return promoStart + Math.min(room, r.exp(mix.promoSurgeMin * 60_000));
  };

  const session = (p: Placement, r: Rng = rng): void => {
    const user = (p.take ?? takeUser)();
    if (!user) return;
    const promo = r.chance(mix.promoShare);
    const start = promo ? promoArrival(r) : p.arrive();
    const ip = p.ip();
    const useApp = p.app();
    const client: Client = useApp
      ? { kind: 'app', c: appClient(r), solver: side.chance(mix.appSolverShare ?? 0) }
      : { kind: 'browser', b: p.browser(), cookie: undefined };
    const v = new Visit(ctx, user, ip, client, start, `human:${user.id}`, p.customer);
    const returning = r.chance(mix.returningShare);
    if (returning) {
      // a session from an earlier day: cookie and token already there
      if (client.kind === 'browser') client.cookie = `sid=${r.alnum(32)}; _ga=GA1.1.${r.int(1e8, 1e9 - 1)}.${Math.floor((start - 86_400_000 * r.int(1, 20)) / 1000)}`;
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
      const typos = r.chance(mix.typoShare) ? r.int(1, 3) : 0;
      const forgot = r.chance(mix.forgotShare);
      v.login(typos, forgot);
    }
    if (p.switchPool && p.switchPool.length > 1 && side.chance(mix.cgnatSwitchShare ?? 0)) {
      const others = p.switchPool.filter((a) => a !== v.ip);
      v.ip = side.pick(others);
    }
    v.myAccount();
    v.wait(5, 60);
    if (promo) {
      if (client.kind === 'browser') v.promo();
      else v.appPromo();
    }
  };

  const browser = (mobile: boolean) => () => humanBrowser(rng, { mobile, uncleanShare: mix.uncleanShare });
  const home: Placement = { customer: 'home', arrive: uniform, ip: () => residentialIp(rng), app: () => false, browser: browser(false), switchPool: undefined };
  // offices arrive in a morning rush (first 30 minutes): many logins from two addresses at once
  const officeP: Placement = { customer: 'office', arrive: () => ctx.start + rng.float() * 1_800_000, ip: () => rng.pick(office), app: () => false, browser: browser(false), switchPool: undefined };
  const cgnatP: Placement = { customer: 'carrier', arrive: uniform, ip: () => rng.pick(cgnat), app: () => rng.chance(0.5), browser: browser(true), switchPool: cgnat };
  const appP: Placement = { customer: 'app', arrive: uniform, ip: () => rng.pick(cgnat), app: () => true, browser: browser(true), switchPool: cgnat };
  for (let i = 0; i < mix.browserSessions; i++) session(home);
  for (let i = 0; i < mix.officeUsers; i++) session(officeP);
  for (let i = 0; i < mix.cgnatUsers; i++) session(cgnatP);
  for (let i = 0; i < mix.appSessions; i++) session(appP);

  for (let i = 0; i < mix.visitors; i++) {
    const client: Client = { kind: 'browser', b: humanBrowser(rng, { uncleanShare: mix.uncleanShare }), cookie: undefined };
    const v = new Visit(ctx, undefined, residentialIp(rng), client, ctx.start + rng.float() * span, `human:visitor-${i + 1}`, 'home');
    v.page('/');
    v.wait(3, 40);
    if (rng.chance(0.6)) {
      v.page('/promo', `https://${ctx.env.host}/`);
      v.api('GET', '/api/promo/info', undefined, { referer: `https://${ctx.env.host}/promo` });
    }
  }

  if (mix.partner) partner(ctx, rng, { name: 'acme', ...mix.partner }, takeUser(), ['198.51.100.20', '198.51.100.21']);

  // the populations of worlds (worlds.ts): each group draws from its own stream, after the default mix
  for (const [gi, g] of (mix.groups ?? []).entries()) {
    const grng = new Rng(ctx.env.seed, `${ctx.name}/group-${gi}`);
    const place = groupPlacement(ctx, grng, g, mix, takeUser, taken);
    for (let i = 0; i < g.users; i++) session(place, grng);
  }
  for (const p of mix.partners ?? []) {
    const prng = new Rng(ctx.env.seed, `${ctx.name}/partner-${p.name}`);
    partner(ctx, prng, p, takeUser(), Array.from({ length: Math.max(1, p.ips) }, () => idcIp(prng)));
  }
  for (const m of mix.monitors ?? []) monitor(ctx, m, m.login ? takeUser() : undefined);

  // newcomers last, from their own stream: every line above is as it was without them
  if (mix.newcomers) {
    const nrng = new Rng(ctx.env.seed, `${ctx.name}/newcomers`);
    const places: Array<[Placement, number]> = [[home, Math.max(1, mix.browserSessions)], [cgnatP, mix.cgnatUsers], [officeP, mix.officeUsers], [appP, mix.appSessions]];
    for (const [gi, g] of (mix.groups ?? []).entries()) {
      const own = new Rng(ctx.env.seed, `${ctx.name}/newcomers-group-${gi}`);
      places.push([groupPlacement(ctx, own, { ...g, denseNumbers: false }, mix, () => undefined, taken), g.users]);
    }
    const peopled = places.filter(([, w]) => w > 0);
    const used = new Set(ctx.env.users.map((u) => u.phone));
    for (let i = 0; i < mix.newcomers; i++) newcomer(ctx, nrng, nrng.weighted(peopled), promoArrival(nrng), i + 1, used, mix, side);
  }
}

/**
 * One person new to the shop, come for the promo: a browser lands on the promo page, reads it,
 * signs up and claims; the app opens on its home screen (the promo), signs up, reads the promo
 * and claims. Their number is one nobody registered, anywhere in the mobile blocks.
 */
function newcomer(ctx: GenContext, rng: Rng, p: Placement, start: number, n: number, used: Set<string>, mix: HumanMix, side: Rng): void {
  const client: Client = p.app()
    ? { kind: 'app', c: appClient(rng), solver: side.chance(mix.appSolverShare ?? 0) }
    : { kind: 'browser', b: p.browser(), cookie: undefined };
  const v = new Visit(ctx, undefined, p.ip(), client, start, `human:new-${n}`, p.customer);
  let phone: string;
  do phone = `1${rng.pick(['35', '37', '50', '52', '58', '77', '86', '88'])}${String(rng.int(0, 99_999_999)).padStart(8, '0')}`;
  while (used.has(phone));
  used.add(phone);
  const password = `${rng.alnum(rng.int(6, 10))}${rng.int(0, 99)}`;
  const host = ctx.env.host;
  if (client.kind === 'browser') {
    v.page('/promo', rng.chance(0.5) ? `https://${host}/` : undefined);
    v.t += rng.between(100, 600);
    v.api('GET', '/api/promo/info', undefined, { referer: `https://${host}/promo` });
    v.wait(10, 90); // decides to join, fills in the sign-up form
    v.signup(phone, password);
    v.promo();
  } else {
    v.api('GET', '/api/promo/info');
    v.wait(10, 90);
    v.signup(phone, password);
    v.appPromo();
  }
}

/**
 * A world's group: its network's addresses and, for dense numbers, its people (the free users of
 * one window of the phone block, in number order), drawn once; then its sessions' draws.
 */
function groupPlacement(ctx: GenContext, rng: Rng, g: CustomerGroup, mix: HumanMix, takeUser: () => DemoUser | undefined, taken: Set<DemoUser>): Placement {
  const ips =
    g.customer === 'office' ? officeIps(ctx, g.network, g.ips)
    : g.customer === 'carrier' || g.customer === 'app' ? carrierPool(ctx.env, Math.max(1, g.ips), g.network)
    : g.customer === 'vpn' ? vpnPool(ctx.env, Math.max(1, g.ips), g.network)
    : [];
  let take = takeUser;
  if (g.denseNumbers) {
    const byPhone = [...ctx.env.users].sort((a, b) => (a.phone < b.phone ? -1 : a.phone > b.phone ? 1 : 0));
    const from = rng.int(0, Math.max(0, byPhone.length - g.users * 2));
    const dense = byPhone.slice(from).filter((u) => !taken.has(u)).slice(0, g.users);
    for (const u of dense) taken.add(u);
    let next = 0;
    take = () => dense[next++];
  }
  const startAt = g.rush ? ctx.start + g.rush.atH * 3_600_000 : ctx.start;
  const window = g.rush ? g.rush.minutes * 60_000 : ctx.env.durationMs;
  return {
    customer: g.customer,
    take,
    arrive: () => startAt + rng.float() * window,
    ip: () => (ips.length > 0 ? rng.pick(ips) : residentialIp(rng)),
    app: () => g.customer === 'app' || rng.chance(g.appShare),
    browser: () => (g.skew && rng.chance(g.skew.share) ? popularBrowser(g.skew.build) : humanBrowser(rng, { mobile: g.mobile, uncleanShare: mix.uncleanShare })),
    switchPool: g.customer === 'carrier' || g.customer === 'app' ? ips : undefined,
  };
}

/** An office's NAT addresses: office 0 in TEST-NET-3 (beside the default mix's office), others in business /24s of their own. */
function officeIps(ctx: GenContext, office: number, n: number): string[] {
  if (office === 0) return officeNatIps(Math.max(1, n), 40);
  const r = new Rng(ctx.env.seed, `office-nat/${office}`);
  const base = `${r.pick([58, 61, 114, 116, 180, 218])}.${r.int(0, 255)}.${r.int(0, 255)}`;
  return Array.from({ length: Math.max(1, n) }, (_, k) => `${base}.${10 + k}`);
}

/** A partner's order-sync job: every interval, a batch of order lookups at ~10/s, API key + token. */
function partner(ctx: GenContext, rng: Rng, p: { name: string; batchSize: number; intervalS: number }, account: DemoUser | undefined, ips: readonly string[]): void {
  if (!account) return;
  const apiKey = `pk_live_${rng.alnum(32)}`;
  const token = ctx.token();
  const orderIds = ctx.env.users.flatMap((u) => u.orders.map((o) => o.id));
  const ua = p.name === 'acme' ? 'AcmeLogistics-OrderSync/2.3 (+https://partner.example/bot)' : `${p.name[0]!.toUpperCase()}${p.name.slice(1)}-Integration/1.${p.batchSize % 10} (+https://${p.name}.example/)`;
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
          ['user-agent', ua],
          ['accept', 'application/json'],
          ['authorization', `Bearer ${token}`],
          ['x-api-key', apiKey],
          ['accept-encoding', 'gzip'],
          ['connection', 'keep-alive'],
        ],
        sim: { token_user: account.username },
        label: `human:partner-${p.name}`,
        client: 'script',
        customer: 'partner',
      });
      bt += rng.between(80, 120);
    }
  }
}

/** An uptime (or synthetic-login) monitor: machine-regular checks from a few hosting addresses. */
function monitor(ctx: GenContext, m: MonitorSpec, account: DemoUser | undefined): void {
  const rng = new Rng(ctx.env.seed, `${ctx.name}/monitor-${m.name}`);
  const ips = Array.from({ length: Math.max(1, m.locations) }, () => idcIp(rng));
  const host = ctx.env.host;
  const label = `human:monitor-${m.name}`;
  const headers = (accept: string, extra: Array<[string, string]> = []): Array<[string, string]> => [['host', host], ['user-agent', m.ua], ['accept', accept], ...extra, ['accept-encoding', 'gzip'], ['connection', 'close']];
  let k = 0;
  for (let t = ctx.start + rng.between(0, m.intervalS * 1000); t < ctx.end; t += m.intervalS * 1000 + rng.between(-15, 15)) {
    const ip = ips[k++ % ips.length]!;
    let ct = t;
    for (const path of m.paths) {
      ctx.emit({ ts: ct, ip, method: 'GET', path, headers: headers(path.startsWith('/api/') ? 'application/json' : 'text/html,*/*'), label, client: 'script', customer: 'monitor' });
      ct += rng.between(40, 160);
    }
    if (m.login && account) {
      const token = ctx.token();
      const body = { username: account.username, password: account.password };
      ctx.emit({ ts: ct, ip, method: 'POST', path: '/api/auth/login', headers: headers('application/json', [['content-type', 'application/json'], ['content-length', String(jsonLength(body))]]), body, sim: { issues_token: token }, label, client: 'script', customer: 'monitor' });
      ct += rng.between(150, 400);
      ctx.emit({ ts: ct, ip, method: 'GET', path: `/api/users/${account.id}/profile`, headers: headers('application/json', [['authorization', `Bearer ${token}`]]), label, client: 'script', customer: 'monitor' });
    }
  }
}
