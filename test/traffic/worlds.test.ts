// Random worlds (issue 14): the generator is deterministic per seed and draws every family it
// promises; the report's worst / median arithmetic; customer types and proven people in the score.
import { createHash } from 'node:crypto';
import t from 'tap';
import { FAMILIES, FAMILY_OF } from '../../bench/traffic/campaigns/index.ts';
import { formatTrafficLine, type TrafficLine } from '../../bench/traffic/format.ts';
import { ScoreBuilder, type CampaignScore, type GuardScore } from '../../bench/traffic/report.ts';
import type { LineResult } from '../../bench/traffic/replay.ts';
import { generateScenario } from '../../bench/traffic/scenarios.ts';
import { drawWorld, drawWorlds, MAX_SESSIONS, type WorldCampaign } from '../../bench/traffic/worlds.ts';
import { aggregate, familyOutcome, laterDetection, lessStopped, spread, type WorldResult } from '../../bench/traffic/worlds-report.ts';

const digest = (lines: TrafficLine[]) => createHash('sha256').update(lines.map(formatTrafficLine).join('\n')).digest('hex');

t.test('a world is drawn from its seed alone: same seed, same world and same bytes; another seed, another world', async (t) => {
  t.same(drawWorld(7), drawWorld(7));
  t.not(JSON.stringify(drawWorld(8)), JSON.stringify(drawWorld(7)));
  const w = drawWorld(1003);
  t.equal(digest(generateScenario(w, w.seed)), digest(generateScenario(drawWorld(1003), 1003)), 'traffic byte for byte');
});

t.test('every world has every campaign family; across worlds every promised draw shows up', async (t) => {
  const worlds = drawWorlds(40, 1);
  const seen = new Map<string, Set<string>>();
  const see = (k: string, v: unknown) => {
    let s = seen.get(k);
    if (!s) seen.set(k, (s = new Set()));
    s.add(String(v));
  };
  for (const w of worlds) {
    t.same(new Set(w.campaigns.map((c) => FAMILY_OF[c.kind])), new Set(FAMILIES), `${w.name}: one campaign per family`);
    t.equal(new Set(w.campaigns.map((c) => c.id)).size, w.campaigns.length, `${w.name}: campaign ids unique`);
    const groups = w.humans.groups ?? [];
    t.ok(groups.reduce((n, g) => n + g.users, 0) <= MAX_SESSIONS + groups.length * 10, `${w.name}: population within the budget`);
    for (const g of groups) {
      see('customer', g.customer);
      if (g.skew) see('skew', g.skew.build);
      if (g.denseNumbers) see('dense', g.customer);
      if (g.customer !== 'home' && g.customer !== 'app') see('per-address', g.users / g.ips >= 500 ? 'hundreds+' : g.users / g.ips < 60 ? 'tens' : 'mid');
    }
    see('surge', w.humans.promoSurgeMin !== undefined);
    see('monitors', (w.humans.monitors ?? []).length > 0);
    see('partners', (w.humans.partners ?? []).length > 0 || w.humans.partner !== undefined);
    see('block', w.traits.number_block!.split(' ')[0]);
    for (const c of w.campaigns as WorldCampaign[]) {
      const p = c.params as { pool?: { kind: string; singleShare?: number }; disguise?: { headers: string; precursors: string }; pacing?: { kind: string }; list?: string; farm?: number; durationH: number };
      if (p.pool) see('pool', p.pool.kind);
      if (p.pool?.singleShare !== undefined) {
        t.ok(p.pool.singleShare >= 0.3 && p.pool.singleShare <= 0.95, 'single-use share 30–95%');
        see('single-use', p.pool.singleShare >= 0.8 ? 'high' : p.pool.singleShare <= 0.45 ? 'low' : 'mid');
      }
      if (p.disguise) {
        see('headers', p.disguise.headers);
        see('precursors', p.disguise.precursors);
      }
      if (p.pacing) see('pacing', p.pacing.kind === 'rate' && p.durationH < 0.5 ? 'burst' : p.pacing.kind);
      if (c.kind === 'enumeration') see('list', p.list);
      if (c.kind === 'data-traversal') see('bola', (p.farm ?? 1) > 1 ? 'farm' : 'one token');
      see('client', c.client);
    }
  }
  const want: Record<string, string[]> = {
    customer: ['home', 'app', 'office', 'carrier', 'vpn'],
    skew: ['safari-ios', 'chrome-windows'],
    'per-address': ['tens', 'hundreds+'],
    surge: ['true', 'false'],
    monitors: ['true'],
    partners: ['true'],
    block: ['sparse', 'medium', 'dense'],
    pool: ['proxies', 'idc', 'residential', 'carrier', 'vpn'],
    'single-use': ['low', 'high'],
    headers: ['tool', 'shuffled', 'browser', 'app'],
    precursors: ['none', 'forged', 'partial', 'complete'],
    pacing: ['burst', 'rate', 'per-ip'],
    list: ['sequential', 'scattered', 'known'],
    bola: ['farm', 'one token'],
    client: ['script', 'headless', 'solver', 'script-nojs'],
  };
  for (const [k, vs] of Object.entries(want)) for (const v of vs) t.ok(seen.get(k)?.has(v), `${k}: ${v} drawn in 40 worlds`);
});

t.test("a world's traffic: every person labelled with a customer type; disguised bots look as drawn", async (t) => {
  // a world whose attackers exit at the VPN its customers use, if one of the first worlds has it
  const w = drawWorlds(60, 1).find((x) => x.campaigns.some((c) => (c.params as { pool?: { kind: string } }).pool?.kind === 'vpn'));
  t.ok(w, 'some world sends a campaign through the VPN exit');
  const lines = generateScenario(w!, w!.seed);
  const humans = lines.filter((l) => l.label?.startsWith('human:'));
  t.equal(humans.filter((l) => !l.sim?.customer).length, 0, 'every human line names its customer type');
  const vpnHumans = new Set(humans.filter((l) => l.sim?.customer === 'vpn').map((l) => l.ip));
  const viaVpn = w!.campaigns.find((c) => (c.params as { pool?: { kind: string } }).pool?.kind === 'vpn')!;
  const botIps = new Set(lines.filter((l) => l.label === `attack:${viaVpn.id}`).map((l) => l.ip));
  t.ok([...botIps].every((ip) => vpnHumans.has(ip)), 'the campaign exits where the VPN customers do');
  for (const c of w!.campaigns) t.ok(lines.some((l) => l.label === `attack:${c.id}`), `${c.id} present`);

  // people new to the shop sign up for the promo, log in with the new number and claim
  const nw = drawWorlds(10, 1).find((x) => (x.humans.newcomers ?? 0) > 0)!;
  t.ok(nw, 'some world has newcomers');
  const nl = generateScenario(nw, nw.seed).filter((l) => l.label?.startsWith('human:new-'));
  const signedUp = new Set(nl.filter((l) => l.path === '/api/auth/register').map((l) => l.label));
  t.ok(signedUp.size > nw.humans.newcomers! / 2, `${signedUp.size} of ${nw.humans.newcomers} newcomers sign up within the window`);
  const one = nl.filter((l) => l.label === [...signedUp][0]);
  const order = one.filter((l) => l.method === 'POST').map((l) => l.path);
  t.same(order.slice(0, 2), ['/api/auth/register', '/api/auth/login'], `sign-up, then the login: ${order.join(' ')}`);
  const phone = (l: TrafficLine | undefined) => String(l?.body?.phone ?? '');
  t.match(phone(one.find((l) => l.path === '/api/auth/register')), /^1\d{10}$/, 'an 11-digit mobile number');
  t.ok(nl.every((l) => l.sim?.customer), 'newcomers carry their customer type');

  // a browser-header campaign copying the popular build sends exactly the humans' header set
  const copy = drawWorlds(60, 1).flatMap((x) => x.campaigns.map((c) => [x, c] as const)).find(([, c]) => {
    const d = (c.params as { disguise?: { headers: string; popularShare?: number } }).disguise;
    return c.kind === 'credential-stuffing' && d?.headers === 'browser' && d.popularShare === 1;
  });
  t.ok(copy, 'some stuffing crew copies the popular build');
  const [cw, cc] = copy!;
  const cl = generateScenario(cw, cw.seed);
  const names = (l: TrafficLine) => l.headers.map(([n]) => n).join(',');
  const ua = (l: TrafficLine) => l.headers.find(([n]) => n === 'user-agent')?.[1];
  const botLogin = cl.find((l) => l.label === `attack:${cc.id}` && l.method === 'POST')!;
  const twin = cl.find((l) => l.label?.startsWith('human:') && l.method === 'POST' && l.path === '/api/auth/login' && ua(l) === ua(botLogin) && names(l).replace(',authorization', '') === names(botLogin));
  t.ok(twin, 'a person logs in with the very same User-Agent and header names');
});

t.test('spread: worst and median (rank ⌊N/2⌋ from the best) of the worlds', async (t) => {
  const xs = [3, 9, 1, 7, 5].map((v, i) => ({ world: i + 1, v }));
  const s = spread(xs, (a, b) => a.v - b.v);
  t.equal(s.worst.v, 9);
  t.equal(s.median.v, 5, 'odd N: the middle');
  const even = spread([1, 2, 3, 4].map((v) => ({ v })), (a, b) => a.v - b.v);
  t.equal(even.median.v, 3, 'even N: the worse of the two middle worlds');
  t.equal(spread([{ v: 4 }], (a, b) => a.v - b.v).median.v, 4);
  t.throws(() => spread([], () => 0));
  const det = (d: number | null) => ({ detected_at: d });
  t.equal(spread([det(5), det(null), det(40)], laterDetection).worst.detected_at, null, 'never detected is the worst');
  t.equal(spread([det(5), det(null), det(40)], laterDetection).median.detected_at, 40);
  t.equal(spread([{ stopped_after: 0.99 }, { stopped_after: 0.5 }, { stopped_after: 0.97 }], lessStopped).worst.stopped_after, 0.5, 'less stopped is worse');
});

function campaign(id: string, requests: number, detected: number | null, after: number): CampaignScore {
  return {
    id, requests, blocked: 0, challenged: 0, first_detection_at: detected, blocked_after_detection: after, reasons: {}, allowed: 0, first_detection_s: detected === null ? null : 1,
    scenario: 'w', passed: 0, stopped: 0, stopped_after_detection: after, solves: 0, hashes: 0, solve_s: 0, clearance: {},
  };
}

function guard(campaigns: CampaignScore[], h: { requests: number; blocked: number; challenged: number; stopped: number }, promo: { inventory: number; to_bots: number }, provenChallenged = 0): GuardScore {
  return {
    campaigns,
    humans: { ...h, users: 10, users_affected: 0, challenged_passed: 0, users_stopped: h.stopped > 0 ? 1 : 0, solves: 0, solve_s: 0, stopped_by: {} },
    promo: { ...promo, to_humans: 0 },
    humans_by_scenario: {},
    humans_by_customer: { office: { requests: h.requests, blocked: h.blocked, challenged: h.challenged, stopped: h.stopped, users: 10, users_stopped: h.stopped > 0 ? 1 : 0 } },
    humans_proven: { requests: 5, blocked: 0, challenged: provenChallenged, stopped: 0, users_affected: provenChallenged > 0 ? 1 : 0 },
  };
}

t.test("the report: a family's world result is its worst campaign; worst and median over worlds; the bars", async (t) => {
  const fam = [
    { id: 'enum-a', kind: 'enumeration', family: 'enumeration' as const, client: 'script', about: 'a' },
    { id: 'spraying', kind: 'credential-stuffing', family: 'credential-stuffing' as const, client: 'script', about: 'b' },
    { id: 'stuffing-leak', kind: 'credential-stuffing', family: 'credential-stuffing' as const, client: 'script', about: 'c' },
  ];
  const world = (seed: number, enumAt: number | null, sprayAt: number, stuffAt: number, humans: { blocked: number; challenged: number }, toBots: number): WorldResult => ({
    seed, name: `world-${seed}`, traits: {}, campaigns: fam, lines: 1000, wall_s: 1, cpu_s: 1, human_reasons: { 'x.y': seed },
    verdict: guard([campaign('enum-a', 100, enumAt, 0.99), campaign('spraying', 100, sprayAt, 0.96), campaign('stuffing-leak', 100, stuffAt, 0.9)], { requests: 1000, ...humans, stopped: humans.blocked }, { inventory: 100, to_bots: toBots }, seed === 3 ? 2 : 0),
    baseline: guard([campaign('enum-a', 100, null, 0), campaign('spraying', 100, null, 0), campaign('stuffing-leak', 100, 50, 0.1)], { requests: 1000, blocked: 0, challenged: 0, stopped: 0 }, { inventory: 100, to_bots: 60 }),
  });
  const results = [world(1, 3, 10, 4, { blocked: 0, challenged: 0 }, 1), world(2, 30, 2, 2, { blocked: 2, challenged: 1 }, 9), world(3, null, 5, 5, { blocked: 0, challenged: 5 }, 3)];

  const stuffing1 = familyOutcome(results[0]!, 'credential-stuffing', 'verdict')!;
  t.equal(stuffing1.campaign, 'spraying', 'the later-detected campaign is the family result');
  t.equal(familyOutcome(results[2]!, 'credential-stuffing', 'verdict')!.campaign, 'stuffing-leak', 'same detection: the less stopped one');

  const r = aggregate('p', results);
  t.equal(r.families.enumeration.detected_at.worst.detected_at, null);
  t.equal(r.families.enumeration.detected_at.worst.world, 3);
  t.equal(r.families.enumeration.detected_at.median.detected_at, 30);
  t.equal(r.families['credential-stuffing'].detected_at.worst.detected_at, 10);
  t.equal(r.families['credential-stuffing'].detected_at.median.detected_at, 5);
  t.equal(r.families['credential-stuffing'].stopped_after.worst.stopped_after, 0.9);
  t.equal(r.families.enumeration.stopped_after.worst.stopped_after, 0, 'never detected: nothing stopped after');
  t.equal(r.families['credential-stuffing'].baseline_detected_at.worst.detected_at, null);
  t.equal(r.humans.blocked.worst.blocked, 2);
  t.equal(r.humans.blocked.worst.world, 2);
  t.equal(r.humans.challenged_share.worst.challenged_share, 0.005);
  t.equal(r.humans.challenged_share.median.challenged_share, 0.001);
  t.equal(r.humans.proven_challenged.worst.proven_challenged, 2);
  t.equal(r.promo.bot_share.worst.bot_share, 0.09);
  t.equal(r.promo.bot_share.median.bot_share, 0.03);
  t.equal(r.promo.baseline_bot_share.worst.bot_share, 0.6);
  t.same(r.customers.office, { requests: 3000, blocked: 2, challenged: 6, stopped: 2, users: 30, users_stopped: 1, worst_world: 2, worst_stopped_share: 0.002 });
  t.same(r.human_reasons, { 'x.y': 6 });
  t.equal(r.targets['enumeration: detected within 20 requests'], false);
  t.equal(r.targets['credential-stuffing: detected within 20 requests'], true);
  t.equal(r.targets['credential-stuffing: ≥ 95% stopped after detection'], false);
  t.equal(r.targets['humans: 0 blocked'], false);
  t.equal(r.targets['promo: bots < 5% of the inventory'], false);
});

t.test('the score counts humans by customer type, and proven people (after their own login, or with a session)', async (t) => {
  const T = 1763800000000;
  const l = (label: string, customer: 'office' | 'home' | undefined, path: string, extra: Partial<TrafficLine> = {}): TrafficLine => ({
    ts: T, ip: '203.0.113.40', method: 'GET', host: 'shop.example', path, query: '', headers: [], label, ...(customer ? { sim: { customer } } : {}), ...extra,
  });
  const lines: TrafficLine[] = [
    l('human:1', 'office', '/'),
    l('human:1', 'office', '/api/auth/login', { method: 'POST', sim: { customer: 'office', issues_token: 'a' } }),
    l('human:1', 'office', '/api/users/1/profile'),
    l('human:2', 'office', '/api/users/2/profile', { sim: { customer: 'office', token_user: 'bob' } }),
    l('human:3', 'home', '/'),
    l('human:partner-acme', undefined, '/api/orders/5'),
    l('attack:x', undefined, '/api/orders/6'),
  ];
  const res = (action: 'ALLOW' | 'BLOCK' | 'CHALLENGE', status: number, passed = false): LineResult => ({
    action, source: 'service', reasons: [], routeClass: '', clearance: 'NONE', challenge: undefined, status, finalAction: passed ? 'ALLOW' : action, passed, solves: 0, hashes: 0, solveS: 0, why: undefined, client: undefined,
  });
  const results = [res('ALLOW', 200), res('ALLOW', 200), res('CHALLENGE', 429, true), res('BLOCK', 403), res('CHALLENGE', 429), res('ALLOW', 200), res('BLOCK', 403)];
  const b = new ScoreBuilder();
  b.add('s', lines, results);
  const g = b.result();
  t.same(Object.keys(g.humans_by_customer), ['home', 'office', 'partner'], 'in the table order; the partner known by its label');
  t.same(g.humans_by_customer.office, { requests: 4, blocked: 1, challenged: 1, stopped: 1, users: 2, users_stopped: 1 });
  t.same(g.humans_by_customer.home, { requests: 1, blocked: 0, challenged: 1, stopped: 1, users: 1, users_stopped: 1 });
  t.same(g.humans_proven, { requests: 2, blocked: 1, challenged: 1, stopped: 1, users_affected: 2 }, 'the profile after the login, and the session from before; not the login itself');
});
