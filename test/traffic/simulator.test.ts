import { createHash } from 'node:crypto';
import t from 'tap';
import { formatTrafficLine, parseTrafficLine } from '../../bench/traffic/format.ts';
import { generateScenario, scenarioByName, SCENARIOS } from '../../bench/traffic/scenarios.ts';

const bytes = (name: string, seed: number) => generateScenario(scenarioByName(name)!, seed).map(formatTrafficLine).join('\n');
const digest = (s: string) => createHash('sha256').update(s).digest('hex');

t.test('same seed → same bytes; another seed → different bytes', async (t) => {
  for (const name of ['promo-rush', 'enumeration']) {
    const a = bytes(name, 7);
    t.equal(digest(bytes(name, 7)), digest(a), `${name}: deterministic`);
    t.not(digest(bytes(name, 8)), digest(a), `${name}: seed matters`);
  }
});

t.test('every line is valid traffic format, in time order, labelled; every listed campaign is present', async (t) => {
  for (const s of SCENARIOS) {
    const lines = generateScenario(s, 1);
    let last = 0;
    let bad = 0;
    const labels = new Set<string>();
    for (const [i, l] of lines.entries()) {
      if (l.ts < last) bad++;
      last = l.ts;
      labels.add(l.label ?? '');
      if (i % 50 === 0) t.same(parseTrafficLine(formatTrafficLine(l), i + 1), l);
    }
    t.equal(bad, 0, `${s.name}: sorted by time`);
    for (const c of s.campaigns) t.ok(labels.has(`attack:${c.id}`), `${s.name}: ${c.id} present`);
    t.ok([...labels].some((l) => l.startsWith('human:')), `${s.name}: humans present`);
    const span = (lines[lines.length - 1]!.ts - lines[0]!.ts) / 3_600_000;
    t.ok(span > s.hours * 0.9, `${s.name}: spans ~${s.hours} h (${span.toFixed(2)})`);
  }
});

t.test('realism checks the issue asks for', async (t) => {
  const enumLines = generateScenario(scenarioByName('enumeration')!, 1).filter((l) => l.label === 'attack:enum-reset-sms-proxies');
  const perIp = new Map<string, number>();
  for (const l of enumLines) perIp.set(l.ip, (perIp.get(l.ip) ?? 0) + 1);
  const single = [...perIp.values()].filter((n) => n === 1).length / perIp.size;
  t.ok(single >= 0.35, `rotating-proxy enumeration: ${(single * 100).toFixed(1)}% of IPs sent one request`);

  const slow = generateScenario(scenarioByName('stuffing')!, 1).filter((l) => l.label === 'attack:stuffing-low-slow');
  const byIp = new Map<string, number[]>();
  for (const l of slow) byIp.set(l.ip, [...(byIp.get(l.ip) ?? []), l.ts]);
  const gaps = [...byIp.values()].flatMap((ts) => ts.slice(1).map((x, i) => (x - ts[i]!) / 1000));
  t.ok(Math.min(...gaps) >= 180 && Math.max(...gaps) <= 240, 'low-and-slow: one attempt per 3–4 minutes per IP');

  const humans = generateScenario(scenarioByName('promo-rush')!, 1).filter((l) => l.label?.startsWith('human:'));
  const office = new Set(humans.filter((l) => l.ip.startsWith('203.0.113.')).map((l) => l.label));
  t.ok(office.size >= 100, `office NAT: ${office.size} users behind 203.0.113.x`);
  t.ok(humans.some((l) => l.headers.some(([n]) => n === 'x-device-id')), 'app users send a device id');
  t.ok(humans.some((l) => l.headers.some(([n]) => n === 'x-api-key')), 'the partner sends an API key');
  t.ok(humans.some((l) => l.path === '/static/app.js'), 'browsers load assets');
  t.ok(humans.some((l) => l.headers.some(([n, v]) => n === 'user-agent' && v.includes('Trident'))), 'some old browsers');
});

t.test('worlds where challenges matter: declared clients, crews that rotate, carrier NAT shared with mobile proxies', async (t) => {
  const crews = generateScenario(scenarioByName('solver-crews')!, 1);
  const of = (id: string) => crews.filter((l) => l.label === `attack:${id}`);
  t.ok(generateScenario(scenarioByName('stuffing')!, 1).filter((l) => l.label?.startsWith('attack:')).every((l) => l.sim?.client === 'script'), 'tool campaigns declare script');
  const rotating = of('stuffing-headless-rotating');
  t.ok(rotating.every((l) => l.sim?.client === 'headless' && l.sim.actor), 'a browser crew: headless, one jar per worker profile');
  const logins = rotating.filter((l) => l.method === 'POST');
  const w0 = logins.filter((l) => l.sim!.actor!.startsWith('w0.'));
  t.equal(new Set(w0.map((l) => l.ip)).size > w0.length * 0.9, true, 'a new exit (almost always) every attempt');
  t.equal(new Set(w0.slice(0, 10).map((l) => l.sim!.actor)).size, 1, 'one profile for 10 attempts');
  t.not(w0[10]!.sim!.actor, w0[9]!.sim!.actor, 'then a fresh profile');
  const pages = rotating.filter((l) => l.method === 'GET' && l.path === '/');
  t.equal(pages.length, logins.length, 'each attempt loads the page first');
  const sticky = of('stuffing-headless-sticky');
  t.equal(new Set(sticky.map((l) => l.ip)).size <= 6, true, 'sticky exits');
  t.ok(of('promo-bots-solver').every((l) => l.sim?.client === 'solver'));
  const oneAccount = of('promo-bots-solver').filter((l) => l.sim?.actor === 'acct-0');
  t.equal(new Set(oneAccount.map((l) => l.headers.find(([n]) => n === 'user-agent')?.[1])).size, 1, 'a solver bot keeps one User-Agent per account');

  const carrier = generateScenario(scenarioByName('carrier-nat')!, 1);
  const proxyIps = new Set(carrier.filter((l) => l.label === 'attack:stuffing-mobile-proxies').map((l) => l.ip));
  const humanIps = new Set(carrier.filter((l) => l.label?.startsWith('human:')).map((l) => l.ip));
  t.equal(proxyIps.size, 4);
  t.ok([...proxyIps].every((ip) => humanIps.has(ip)), 'mobile proxies exit at the addresses real phones use');
  const apps = new Map<string, string>();
  for (const l of carrier) if (l.sim?.client === 'app' || l.sim?.client === 'app-solver') apps.set(l.label!, l.sim.client);
  const solverShare = [...apps.values()].filter((k) => k === 'app-solver').length / apps.size;
  t.ok(solverShare > 0.5 && solverShare < 0.7, `app users with a solver build: ${(solverShare * 100).toFixed(0)}% (world: 60%)`);
  const movers = new Map<string, Set<string>>();
  for (const l of carrier) if (l.label?.startsWith('human:') && l.ip.startsWith(carrier.find((x) => x.label === 'attack:stuffing-mobile-proxies')!.ip.split('.').slice(0, 2).join('.'))) {
    const s = movers.get(l.label) ?? new Set();
    s.add(l.ip);
    movers.set(l.label, s);
  }
  const moved = [...movers.values()].filter((s) => s.size > 1).length / movers.size;
  t.ok(moved > 0.08 && moved < 0.2, `phones that change address mid-visit: ${(moved * 100).toFixed(0)}% (world: 15%, those who got that far)`);
  t.equal(generateScenario(scenarioByName('promo-rush')!, 1).filter((l) => l.sim?.client === 'app-solver').length, 0, 'worlds without a solver build: no app-solver');
});
