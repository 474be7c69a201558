// Random worlds (issue 14, "Robustness is measured, not hoped for"): each world draws its
// population and its attackers from families, so that detection is judged on worlds nobody tuned
// to. `npm run scorecard -- --worlds N [--world-seed-from K]` replays N of them (worlds-run.ts);
// worlds 1–10 are for tuning, the README's table comes from worlds 1001–1020.
//
// A world is a Scenario (scenarios.ts) drawn from its seed alone: same seed → same world → same
// traffic, byte for byte. What it drew is kept in `traits` (the population) and in each
// campaign's `about`, for the report.
//
// Population families: home broadband; the app on a carrier's NAT (sometimes most of the shop:
// app-heavy); offices of tens to hundreds behind one or two addresses, arriving in a rush, some on
// one managed browser build, some with phone numbers from one company plan (a dense block);
// carriers with hundreds to thousands of phones per address, often most on one build (the carrier
// where everyone runs the same Safari); VPN exits in hosting ranges carrying tens to hundreds;
// flash-sale surges; partners' server jobs; uptime and synthetic-login monitors; people new to the
// shop who sign up for the promo (none in a fifth of the worlds, else 5–100% as many as the
// customers who join), on every network above. The shop's number block is sparse (4% registered)
// to dense (20%).
//
// Attacker families (campaigns/index.ts FAMILIES), one campaign each per world: enumeration,
// credential stuffing (or spraying), BOLA (one token or an account farm), promo abuse (account
// farms), probing or unauthenticated calls, scraping, data harvesting through one token (issue 17; drawn last). Each draws: exits (rotating proxies with
// 30–95% single-use addresses, rented servers, fixed residential hosts, mobile proxies at the
// world's carrier NAT, the world's VPN exits), headers (tool, shuffled, an exact real-browser set —
// often the world's popular build — or the app's), precursors (none, a forged cookie, the home
// page, the full page with assets and a person's pause), pacing (a burst of minutes, hours, or one
// attempt per several minutes per address), lists (sequential walks, scattered purchased lists,
// known-only lists), and whether it solves challenges (headless browsers, the reference solver,
// the no-JS fallback) or cannot.

import { POPULAR_BUILDS, type PopularBuild, type Tool } from './clients.ts';
import type { ClientKind } from './format.ts';
import type { CampaignSpec } from './campaigns/index.ts';
import type { Disguise, Pacing, PoolSpec } from './campaigns/common.ts';
import { DEFAULT_MIX, type CustomerGroup, type HumanMix, type MonitorSpec, type PartnerSpec } from './humans.ts';
import { Rng } from './rng.ts';
import type { Scenario } from './scenarios.ts';

/** A campaign as a world drew it: the spec and one line saying what was drawn. */
export type WorldCampaign = CampaignSpec & { about: string };

export interface World extends Scenario {
  readonly seed: number;
  campaigns: WorldCampaign[];
  /** what the population drew, trait → value (the report's world column) */
  readonly traits: Readonly<Record<string, string>>;
}

/** Sessions a world's population is scaled down to (with visitors, partners and monitors besides): keeps 20 worlds within minutes. */
export const MAX_SESSIONS = 3200;
export const WORLD_HOURS = 3;

const TOOLS: readonly Tool[] = ['python-requests', 'go', 'curl', 'axios', 'java'];

const MONITORS: readonly MonitorSpec[] = [
  { name: 'uptimerobot', ua: 'Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)', intervalS: 60, locations: 3, paths: ['/'], login: false },
  { name: 'pingdom', ua: 'Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)', intervalS: 60, locations: 4, paths: ['/', '/api/promo/info'], login: false },
  { name: 'datadog-synthetics', ua: 'Datadog/Synthetics', intervalS: 300, locations: 3, paths: ['/'], login: true },
  { name: 'statuscake', ua: 'StatusCake_Pagespeed_Indev', intervalS: 30, locations: 2, paths: ['/promo'], login: false },
];

const PRECURSORS: Readonly<Record<Disguise['precursors'], string>> = { none: 'no precursors', forged: 'forged cookie', partial: 'home page first', complete: 'full page first' };

/** log-uniform integer in [min, max]: as many worlds with tens as with hundreds. */
function logInt(rng: Rng, min: number, max: number): number {
  return Math.round(Math.exp(rng.between(Math.log(min), Math.log(max))));
}

const pct = (x: number) => `${Math.round(x * 100)}%`;

/** The world of `seed`. Deterministic: the same seed always draws the same world. */
export function drawWorld(seed: number): World {
  const rng = new Rng(seed, 'world');
  const traits: Record<string, string> = {};
  const popular: PopularBuild = rng.pick(POPULAR_BUILDS);
  traits.popular_build = popular;

  // ---- the population
  const groups: CustomerGroup[] = [];
  groups.push({ customer: 'home', users: rng.int(200, 600), ips: 0, network: 0, appShare: 0, mobile: false });
  const appHeavy = rng.chance(0.3);
  groups.push({ customer: 'app', users: appHeavy ? rng.int(600, 1200) : rng.int(100, 400), ips: rng.int(2, 6), network: 0, appShare: 1, mobile: true });
  const offices = rng.int(1, 3);
  for (let i = 0; i < offices; i++) {
    const managed = rng.chance(0.5);
    groups.push({
      customer: 'office', users: logInt(rng, 20, 400), ips: rng.int(1, 2), network: i, appShare: 0.05, mobile: false,
      rush: { atH: rng.between(0, 1), minutes: rng.int(15, 45) },
      skew: managed ? { build: 'chrome-windows', share: rng.between(0.5, 0.95) } : undefined,
      denseNumbers: rng.chance(0.4),
    });
  }
  const carriers = rng.int(1, 2);
  for (let i = 0; i < carriers; i++) {
    const oneBuild = rng.chance(0.6);
    groups.push({
      customer: 'carrier', users: logInt(rng, 100, 2000), ips: rng.int(1, 4), network: i, appShare: rng.between(0.2, 0.7), mobile: true,
      skew: oneBuild ? { build: popular === 'chrome-windows' ? 'safari-ios' : popular, share: rng.between(0.5, 0.9) } : undefined,
      denseNumbers: rng.chance(0.2),
    });
  }
  const vpns = rng.int(0, 2);
  for (let i = 0; i < vpns; i++) groups.push({ customer: 'vpn', users: logInt(rng, 20, 400), ips: rng.int(1, 3), network: i, appShare: 0.1, mobile: false, skew: rng.chance(0.3) ? { build: 'chrome-windows', share: 0.6 } : undefined });
  const total = groups.reduce((n, g) => n + g.users, 0);
  if (total > MAX_SESSIONS) for (const g of groups) g.users = Math.max(10, Math.round((g.users * MAX_SESSIONS) / total));
  const sessions = groups.reduce((n, g) => n + g.users, 0);
  for (const g of groups) {
    const k = `${g.customer}${g.customer === 'home' || g.customer === 'app' ? '' : `_${g.network}`}`;
    const extra = [g.skew ? `${pct(g.skew.share)} ${g.skew.build}` : '', g.denseNumbers ? 'dense numbers' : '', g.rush ? `rush ${g.rush.minutes} min` : ''].filter(Boolean).join(', ');
    traits[k] = g.customer === 'home' ? `${g.users}` : `${g.users} on ${g.ips} IP${g.ips > 1 ? 's' : ''}${extra ? ` (${extra})` : ''}`;
  }

  const density = rng.weighted<[string, number]>([[['sparse', 4000], 1], [['medium', 8000], 1], [['dense', 20_000], 1]]);
  const shopUsers = Math.max(density[1], Math.ceil(sessions * 1.5));
  traits.number_block = `${density[0]} (${shopUsers} of 100,000 registered)`;

  const promoStartH = rng.between(0.5, 1.5);
  const surge = rng.chance(0.5) ? rng.int(3, 15) : undefined;
  const promoShare = rng.between(0.2, 0.6);
  traits.promo = `opens at ${promoStartH.toFixed(1)} h, ${pct(promoShare)} join${surge ? `, flash sale (mean arrival ${surge} min)` : ''}`;
  const appSolverShare = rng.pick([0, 0, 0.3, 0.6]);
  traits.app_solver = pct(appSolverShare);

  const partners: PartnerSpec[] = rng.chance(0.5) ? [{ name: 'shipfast', batchSize: rng.int(10, 50), intervalS: rng.int(60, 300), ips: rng.int(1, 3) }] : [];
  const acme = rng.chance(0.6);
  const monitors = rng.shuffle([...MONITORS]).slice(0, rng.int(0, 3));
  traits.partners = [acme ? 'acme' : '', ...partners.map((p) => p.name)].filter(Boolean).join(', ') || 'none';
  traits.monitors = monitors.map((m) => m.name).join(', ') || 'none';

  const humans: HumanMix = {
    ...DEFAULT_MIX,
    browserSessions: 0, appSessions: 0, officeUsers: 0, cgnatUsers: 0,
    visitors: rng.int(50, 150),
    returningShare: rng.between(0.3, 0.6),
    typoShare: rng.between(0.08, 0.2),
    forgotShare: rng.between(0.02, 0.05),
    promoShare,
    uncleanShare: rng.between(0.03, 0.1),
    promoStartH,
    partner: acme ? { batchSize: 20, intervalS: 120 } : undefined,
    appSolverShare,
    cgnatSwitchShare: rng.between(0, 0.2),
    groups,
    promoSurgeMin: surge,
    partners,
    monitors,
  };
  const demand = Math.round(promoShare * sessions);
  const promoInventory = Math.max(50, Math.round(demand * rng.between(0.4, 1)));
  traits.inventory = `${promoInventory} coupons for ~${demand} human claims`;

  // ---- the attackers
  const has = { carrier: carriers > 0, vpn: vpns > 0 };
  const a = new AttackDraws(rng, popular, has);
  // drawn last, so that adding the family left every earlier family's draws as they were
  const campaigns: WorldCampaign[] = [a.enumeration(), a.stuffing(), a.bola(), a.promo(promoStartH), a.probing(), a.scraping(), a.harvest()];

  // people who sign up for the promo, from a stream of their own (every draw above is as it was):
  // none in some worlds, up to as many as the customers who join
  const later = new Rng(seed, 'world/newcomers');
  humans.newcomers = later.chance(0.2) ? 0 : Math.round(demand * later.between(0.05, 1));
  traits.newcomers = humans.newcomers ? `${humans.newcomers} sign up for the promo` : 'none';

  return {
    name: `world-${seed}`,
    description: Object.entries(traits).map(([k, v]) => `${k}: ${v}`).join('; '),
    hours: WORLD_HOURS,
    shop: { seed: 42, users: shopUsers, promoInventory },
    humans,
    campaigns,
    seed,
    traits,
  };
}

interface Drawn {
  pool: PoolSpec;
  disguise: Disguise;
  tools: Tool[];
  client: ClientKind;
  pacing: Pacing;
  startH: number;
  durationH: number;
  /** what was drawn: the exits, the client, when */
  where: string;
  when: string;
  about: string[];
}

/** The draws every campaign makes (exits, headers, precursors, pacing, solving), then each family's own. */
class AttackDraws {
  constructor(
    private readonly rng: Rng,
    private readonly popular: PopularBuild,
    private readonly has: { carrier: boolean; vpn: boolean },
  ) {}

  private common(opts: { app?: boolean; perIp?: boolean; page?: string } = {}): Drawn {
    const rng = this.rng;
    const about: string[] = [];
    const pacingKind = rng.weighted<'burst' | 'rate' | 'per-ip'>([['burst', 1], ['rate', 2], ['per-ip', opts.perIp === false ? 0 : 1]]);
    const single = rng.between(0.3, 0.95);
    let pool: PoolSpec = rng.weighted<PoolSpec>([
      [{ kind: 'proxies', size: rng.int(20, 300), singleShare: single }, 5],
      [{ kind: 'idc', size: rng.int(1, 8) }, 1.5],
      [{ kind: 'residential', size: rng.int(6, 40) }, 1.5],
      [{ kind: 'carrier', size: rng.int(1, 2), carrier: 0 }, this.has.carrier ? 1 : 0],
      [{ kind: 'vpn', size: 1, provider: 0 }, this.has.vpn ? 1 : 0],
    ]);
    // low and slow is a botnet's game: many fixed hosts, each on its own slow timer
    if (pacingKind === 'per-ip') pool = { kind: 'residential', size: rng.int(15, 60) };
    const where =
      pool.kind === 'proxies' ? `proxies ${pct(pool.singleShare)} single-use`
      : pool.kind === 'carrier' ? 'mobile proxies at the carrier NAT'
      : pool.kind === 'vpn' ? 'the VPN exit'
      : `${pool.size} ${pool.kind === 'idc' ? 'server' : 'residential host'}${pool.size > 1 ? 's' : ''}`;
    const headers = rng.weighted<Disguise['headers']>([['tool', 3.5], ['shuffled', 2.5], ['browser', 3], ['app', opts.app ? 1 : 0]]);
    const precursors = rng.weighted<Disguise['precursors']>([['none', 3.5], ['forged', 1.5], ['partial', 2.5], ['complete', 2.5]]);
    const popularShare = headers === 'browser' ? rng.pick([0, 0.5, 1]) : 0;
    about.push(headers === 'browser' ? `browser headers${popularShare > 0 ? ` (${pct(popularShare)} ${this.popular})` : ''}` : `${headers} headers`, PRECURSORS[precursors]);
    const disguise: Disguise = { headers, precursors, popular: this.popular, popularShare, page: opts.page };
    const client: ClientKind =
      headers === 'browser' ? (rng.chance(0.4) ? 'headless' : 'script')
      : rng.weighted<ClientKind>([['script', 6.5], ['solver', 2.5], ['script-nojs', 1]]);
    if (client !== 'script') about.push(client === 'headless' ? 'solves (headless)' : client === 'solver' ? 'solves (solver)' : 'waits for the no-JS fallback');
    let pacing: Pacing = { kind: 'rate' };
    let startH = rng.between(0.1, 0.8);
    let durationH = rng.between(1, 2.1);
    let when = `over ${durationH.toFixed(1)} h`;
    if (pacingKind === 'burst') {
      durationH = rng.between(0.08, 0.3);
      when = `burst of ${Math.round(durationH * 60)} min`;
    } else if (pacingKind === 'per-ip') {
      const minS = rng.int(60, 400);
      pacing = { kind: 'per-ip', minS, maxS: Math.round(minS * 1.5) };
      startH = rng.between(0, 0.3);
      durationH = WORLD_HOURS - startH;
      when = `one per ${(minS / 60).toFixed(1)}–${((minS * 1.5) / 60).toFixed(1)} min per address`;
    }
    const tools = rng.shuffle([...TOOLS]).slice(0, rng.int(1, 3));
    return { pool, disguise, tools, client, pacing, startH, durationH, where, when, about: [where, ...about, when] };
  }

  enumeration(): WorldCampaign {
    const rng = this.rng;
    const d = this.common();
    const list = rng.weighted<'sequential' | 'scattered' | 'known'>([['sequential', 4], ['scattered', 3], ['known', 3]]);
    const endpoints = rng.pick<Array<'register' | 'password-reset' | 'sms'>>([['register'], ['password-reset'], ['password-reset', 'sms'], ['register', 'password-reset']]);
    const requests = rng.int(500, 2500);
    const step = rng.chance(0.7) ? 1 : rng.int(2, 9);
    d.about.unshift(`${requests} × ${endpoints.join('+')}`, list === 'sequential' ? `sequential walk${step > 1 ? ` (step ${step})` : ''}` : `${list} list`);
    return {
      id: `enum-${list}`, kind: 'enumeration', client: d.client, about: d.about.join(', '),
      params: { startH: d.startH, durationH: d.durationH, endpoints, requests, fromOffset: rng.int(0, 90_000), step, pool: d.pool, tools: d.tools, disguise: d.disguise, list, pacing: d.pacing },
    };
  }

  stuffing(): WorldCampaign {
    const rng = this.rng;
    const d = this.common();
    const spray = rng.chance(0.2) ? rng.pick(['123456', 'password1', 'qwerty123', '888888']) : undefined;
    const known = !spray && rng.chance(0.35);
    const attempts = rng.int(500, 2500);
    const existingShare = known ? 1 : rng.between(0.2, 0.6);
    const endpoint = rng.chance(0.1) ? '/api/v1/login' : '/api/auth/login';
    d.about.unshift(`${attempts} on ${endpoint}`, spray ? `spraying "${spray}"` : known ? 'known-only list' : `leaked list (${pct(existingShare)} exist)`);
    return {
      id: spray ? 'spraying' : known ? 'stuffing-known' : 'stuffing-leak', kind: 'credential-stuffing', client: d.client, about: d.about.join(', '),
      params: { startH: d.startH, durationH: d.durationH, endpoint, attempts, pacing: d.pacing, pool: d.pool, tools: d.tools, existingShare, validShare: rng.between(0.01, 0.05), disguise: d.disguise, spray },
    };
  }

  bola(): WorldCampaign {
    const rng = this.rng;
    const d = this.common();
    const target = rng.pick(['orders', 'profiles'] as const);
    const order = rng.pick(['sequential', 'random'] as const);
    const farm = rng.chance(0.65) ? rng.int(12, 60) : 1;
    const requests = farm > 1 ? Math.min(2000, farm * rng.int(10, 40)) : rng.int(500, 1500);
    d.about.unshift(`${requests} ${target} reads, ${order}`, farm > 1 ? `farm of ${farm} accounts` : 'one token');
    return {
      id: `bola-${target}-${order}`, kind: 'data-traversal', client: d.client, about: d.about.join(', '),
      params: { startH: d.startH, durationH: d.durationH, target, order, requests, pool: d.pool, tools: d.tools, account: 7, disguise: d.disguise, farm, pacing: d.pacing },
    };
  }

  promo(promoStartH: number): WorldCampaign {
    const rng = this.rng;
    const d = this.common({ app: true, perIp: false });
    const accounts = rng.int(100, 500);
    const workers = rng.int(2, 8);
    const intervalS = rng.int(2, 20);
    const accountsPerDevice = rng.chance(0.7) ? 1 : rng.int(3, 6);
    const precursorShare = rng.pick([0, 0.5, 1]);
    const human = rng.chance(0.6);
    const leadMin = rng.chance(0.5) ? rng.int(5, 25) : undefined;
    d.about.unshift(`${accounts} accounts, ${workers} workers every ${intervalS} s`, `${accountsPerDevice === 1 ? 'fresh device per account' : `${accountsPerDevice} accounts per device`}`, `${pct(precursorShare)} load the promo page`, human ? 'human-like pauses' : 'fixed 1 s steps', leadMin ? `accounts made ${leadMin} min ahead` : 'accounts made at the sale');
    return {
      id: 'promo-farm', kind: 'promo-bots', client: d.client, about: d.about.filter((x) => x !== d.when).join(', '),
      params: {
        startH: promoStartH + rng.between(0, 0.1), durationH: WORLD_HOURS, style: d.disguise.headers === 'browser' ? 'browserlike' : 'scripted', accounts, intervalS, workers, accountsPerDevice,
        precursorShare, headlessShare: 0, pool: d.pool, tools: d.tools, phoneBase: 300_000, disguise: d.disguise, pauseS: human ? [2, 20] : [1, 1], leadMin,
      },
    };
  }

  probing(): WorldCampaign {
    const rng = this.rng;
    const d = this.common({ perIp: false });
    const requests = rng.int(100, 600);
    if (rng.chance(0.5)) {
      // scanners send their own headers and never solve
      return { id: 'probe-scanner', kind: 'probing', client: 'script', about: [`${requests} scanner requests`, d.where, d.when].join(', '), params: { startH: d.startH, durationH: d.durationH, requests, pool: d.pool } };
    }
    d.about.unshift(`${requests} unauthenticated calls`);
    return { id: 'unauth-calls', kind: 'unauthenticated', client: d.client, about: d.about.join(', '), params: { startH: d.startH, durationH: d.durationH, requests, pool: d.pool, tools: d.tools, disguise: d.disguise } };
  }

  /** Data harvesting (issue 17): one valid token, a person's pace, a real browser's headers, rotating exits. */
  harvest(): WorldCampaign {
    const rng = this.rng;
    const d = this.common({ perIp: false });
    const target = rng.weighted<'profiles' | 'orders' | 'winners'>([['profiles', 2], ['orders', 2], ['winners', 1]]);
    const requests = rng.int(150, 600);
    const durationH = rng.between(1, 2.5);
    const pageSize = rng.pick([20, 50]);
    const popularShare = rng.pick([0, 0.5, 1]);
    const disguise: Disguise = { ...d.disguise, headers: 'browser', popularShare };
    const client: ClientKind = rng.chance(0.5) ? 'headless' : 'script';
    const about = [
      `${requests} ${target === 'winners' ? `winners pages of ${pageSize}` : `${target} of other users`} in ${durationH.toFixed(1)} h, one token`,
      d.where, `browser headers${popularShare > 0 ? ` (${pct(popularShare)} ${this.popular})` : ''}`, PRECURSORS[disguise.precursors],
      client === 'headless' ? 'solves (headless)' : 'cannot solve',
    ];
    return {
      id: `harvest-${target}`, kind: 'harvest', client, about: about.join(', '),
      params: { startH: rng.between(0.2, WORLD_HOURS - durationH), durationH, target, requests, pageSize, pool: d.pool, tools: d.tools, disguise, pacing: { kind: 'rate' }, account: 9 },
    };
  }

  scraping(): WorldCampaign {
    const rng = this.rng;
    const d = this.common({ perIp: false });
    const intervalS = rng.int(1, 30);
    const jitterMs = rng.chance(0.4) ? 5 : rng.int(200, 3000);
    const durationH = rng.between(1, WORLD_HOURS - 0.2);
    const about = [`every ${intervalS} s ± ${jitterMs} ms for ${durationH.toFixed(1)} h`, ...d.about.filter((x) => x !== d.when)];
    return {
      id: 'scrape-listings', kind: 'scraping', client: d.client, about: about.join(', '),
      params: { startH: rng.between(0, 0.2), durationH, intervalS, jitterMs, pool: d.pool, paths: ['/api/promo/info', '/', '/promo'], disguise: d.disguise },
    };
  }
}

/** Worlds `from` … `from + n - 1`. */
export function drawWorlds(n: number, from = 1): World[] {
  return Array.from({ length: n }, (_, i) => drawWorld(from + i));
}
