// Proven clients and collateral-aware enforcement (issue 14, DESIGN §4 "Punish evidence, not
// shared keys"): for each rule, the attack it must still stop and the people it must not hurt.

import t from 'tap';
import { VirtualClock } from '../../../decision-service/src/engine/clock.ts';
import { clientKey, Engine } from '../../../decision-service/src/engine/engine.ts';
import { extractFeatures } from '../../../decision-service/src/engine/features.ts';
import { PROOF, Proofs } from '../../../decision-service/src/engine/proven.ts';
import { MemoryStore } from '../../../decision-service/src/state/memory-store.ts';
import type { Decision } from '../../../decision-service/src/engine/engine.ts';
import type { Outcome } from '../../../decision-service/src/wire/schema.ts';
import { signal, type Signal, type SignalSubject } from '../../../decision-service/src/engine/signal.ts';
import { BASE_ROUTES, policy, request } from '../../helpers/policy.ts';

const KEY = Buffer.alloc(32, 3);
/** One popular browser build: every customer of the office below sends exactly these headers. */
const CHROME = {
  user_agent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  accept_language: 'en-US,en;q=0.9',
  accept_encoding: 'gzip, deflate, br',
  sec_ch_ua: '"Chromium";v="124", "Google Chrome";v="124"',
  sec_fetch_mode: 'cors',
  sec_fetch_site: 'same-origin',
  header_names: ['host', 'user-agent', 'accept', 'accept-language', 'accept-encoding', 'sec-ch-ua', 'sec-fetch-mode', 'sec-fetch-site', 'content-type', 'cookie'],
};
const SCRIPT = { user_agent: 'python-requests/2.31', header_names: ['host', 'user-agent', 'accept-encoding', 'accept', 'connection', 'content-type'] };
const ROUTES = [...BASE_ROUTES, { name: 'reset', class: 'identity' as const, methods: ['POST' as const], path: '/api/auth/password-reset' }, { name: 'register', class: 'identity' as const, methods: ['POST' as const], path: '/api/auth/register' }];
const NAT = '203.0.113.10';

function setup(overrides: Parameters<typeof policy>[0] = {}) {
  const clock = new VirtualClock(1_763_800_000_000);
  const p = policy({ routes: ROUTES, ...overrides });
  const store = new MemoryStore({ maxKeys: 50_000 });
  const engine = new Engine({ policy: p, store, clock, identifierKey: KEY });
  let n = 0;
  /** Decides, reports the upstream's answer (when given) and moves the clock on by `gapMs`. */
  const send = (fields: Record<string, unknown>, status?: number, gapMs = 1000): Decision => {
    const id = `r${++n}`;
    const d = engine.decide(request({ request_id: id, ...fields }));
    // a stopped request never reaches the site: the gateway answers it
    const answered = d.action === 'BLOCK' ? 403 : d.action === 'CHALLENGE' ? 429 : status;
    if (answered !== undefined) engine.observe({ request_id: id, status: answered, auth_result: '', action: d.action } as Outcome);
    clock.advance(gapMs);
    return d;
  };
  return { engine, clock, send, store, policy: p };
}

const session = (name: string) => ({ session_hash: Buffer.from(`session-${name}`) });
const token = (name: string) => ({ token_hash: Buffer.from(`token-${name}`), has_authorization: true });
const login = (identifier: string, pw: string, extra: Record<string, unknown> = {}) => ({
  method: 'POST', path: '/api/auth/login', identifier, password_hash: Buffer.from(pw), ...extra,
});
const stopped = (d: Decision) => d.action === 'BLOCK' || d.action === 'CHALLENGE';
/** A browser's first page: the site sets its session cookie there (provenance.ts: an issued session). */
const home = (send: ReturnType<typeof setup>['send'], me: Record<string, unknown>) => send({ ...me, path: '/' }, 200, 2000);
/** Deterministic irregular gaps: people are not metronomes. */
const gap = (i: number) => 2000 + ((i * 7919) % 23) * 450;

/** A detector that says exactly what the request asks for (query "code:score:subject", comma-separated). */
const probe = () => ({
  name: 'probe',
  inspect(f: { req: { query: string } }, out: Signal[]) {
    for (const part of f.req.query.split(',').filter(Boolean)) {
      const [code, score, about] = part.split(':');
      out.push(signal(`t.${code}`, Number(score), false, undefined, about as SignalSubject));
    }
  },
});

/** 40 customers, one office NAT address and one browser build; a quarter mistype once first. */
function officeMorning(send: ReturnType<typeof setup>['send']) {
  const all: Array<{ who: number; step: string; d: Decision }> = [];
  for (let i = 0; i < 40; i++) {
    const me = { client_ip: NAT, ...CHROME, ...session(`office-${i}`) };
    const user = `user${i}@corp.example`;
    all.push({ who: i, step: 'home', d: send({ ...me, path: '/' }, 200, gap(i)) });
    if (i % 4 === 0) all.push({ who: i, step: 'typo', d: send({ ...me, ...login(user, 'wrong') }, 401, gap(i + 1)) });
    all.push({ who: i, step: 'login', d: send({ ...me, ...login(user, 'right') }, 200, gap(i + 2)) });
    all.push({ who: i, step: 'promo-info', d: send({ ...me, ...token(`office-${i}`), path: '/api/promo/info' }, 200, gap(i + 3)) });
    all.push({ who: i, step: 'claim', d: send({ ...me, ...token(`office-${i}`), method: 'POST', path: '/api/promo/claim' }, 200, gap(i + 4)) });
  }
  return all;
}

t.test('40 customers behind one NAT address and one browser build, some with typos: none blocked, none challenged', async (t) => {
  const { send } = setup();
  const all = officeMorning(send);
  t.same(all.filter((x) => x.d.action === 'BLOCK').map((x) => `${x.who}:${x.step}:${x.d.reasons}`), [], 'nobody blocked');
  t.same(all.filter((x) => x.d.action === 'CHALLENGE').map((x) => `${x.who}:${x.step}:${x.d.reasons}`), [], 'nobody challenged');
  t.notOk(all.some((x) => x.d.cache_key.startsWith('ip:') || x.d.cache_key.startsWith('subnet:')), 'the shared address is never a gateway cache key');
});

/**
 * The demo shop's real flow (test/e2e/crowd.test.ts): no cookie and no device id before the login,
 * the account token only after it. 40 customers, one office address and one browser build; a
 * quarter mistype once first.
 */
function officeFirstVisit(send: ReturnType<typeof setup>['send'], prefix = 'desk') {
  const all: Array<{ who: number; step: string; d: Decision }> = [];
  for (let i = 0; i < 40; i++) {
    const me = { client_ip: NAT, ...CHROME };
    const user = `${prefix}${i}@corp.example`;
    all.push({ who: i, step: 'home', d: send({ ...me, path: '/' }, 200, gap(i)) });
    if (i % 4 === 0) all.push({ who: i, step: 'typo', d: send({ ...me, ...login(user, 'wrong') }, 401, gap(i + 1)) });
    all.push({ who: i, step: 'login', d: send({ ...me, ...login(user, 'right') }, 200, gap(i + 2)) });
    all.push({ who: i, step: 'promo-info', d: send({ ...me, path: '/api/promo/info' }, 200, gap(i + 3)) });
    all.push({ who: i, step: 'claim', d: send({ ...me, ...token(`${prefix}-${i}`), method: 'POST', path: '/api/promo/claim' }, 200, gap(i + 4)) });
  }
  return all;
}

t.test('the same office on a first visit (no session, no device id: the demo shop\'s flow): the accounts that log in are its population', async (t) => {
  const { send } = setup();
  const all = officeFirstVisit(send);
  t.same(all.filter((x) => x.d.action === 'BLOCK').map((x) => `${x.who}:${x.step}:${x.d.reasons}`), [], 'nobody blocked');
  t.same(all.filter((x) => x.d.action === 'CHALLENGE').map((x) => `${x.who}:${x.step}:${x.d.reasons}`), [], 'nobody challenged');
  t.notOk(all.some((x) => x.d.cache_key.startsWith('ip:') || x.d.cache_key.startsWith('subnet:')), 'the shared address is never a gateway cache key');
});

t.test('...a crew of one address and one build, its logins failing, is still stopped: its own failures are no population', async (t) => {
  const { send } = setup();
  const crew: Decision[] = [];
  // a crew with the office build's exact headers, its own address, no cookies, a leaked list
  for (let i = 0; i < 60; i++) crew.push(send({ client_ip: '198.51.100.77', ...CHROME, ...login(`victim${i}@mail.example`, `leaked${i}`) }, i % 3 === 0 ? 404 : 401, 1500));
  const first = crew.findIndex(stopped) + 1;
  t.ok(first > 0 && first <= 20, `stopped from request ${first}`);
  t.ok(crew.slice(first).every((d) => d.action === 'BLOCK'), 'and blocked from then on: nobody proven is behind its address');
});

t.test('...a crew whose stuffing succeeds on a few accounts behind one address: the hits do not make its address a crowd', async (t) => {
  const { send } = setup();
  const crew: Decision[] = [];
  for (let i = 0; i < 60; i++) {
    // the first accounts of the list work (reused passwords), before anything could be seen
    crew.push(send({ client_ip: '198.51.100.78', ...CHROME, ...login(`reused${i}@mail.example`, `leaked${i}`) }, i < 3 || i % 10 === 9 ? 200 : 401, 1500));
  }
  const first = crew.findIndex(stopped) + 1;
  t.ok(first > 0 && first <= 20, `stopped from request ${first}`);
  const after = crew.slice(first);
  // more than one account logged in there, so the address is never blocked on its own evidence;
  // but most accounts tried there failed (contested): its unproven requests are all challenged
  t.ok(after.filter(stopped).length >= after.length * 0.95, `stopped from then on (${after.filter(stopped).length} of ${after.length})`);
  t.notOk(crew.some((d) => d.cache_key.startsWith('ip:')), 'never cached on the address');
});

t.test('...the same office without the rules: its customers are stopped (what issue 14 reported)', async (t) => {
  const { send } = setup({ proven: { enabled: false } });
  const all = officeMorning(send);
  t.ok(all.filter((x) => stopped(x.d)).length >= 10, `${all.filter((x) => stopped(x.d)).length} requests stopped`);
});

t.test('a stuffing crew on that same address, without logins of its own, is stopped; the customers are not', async (t) => {
  const { send } = setup();
  officeMorning(send);
  let first = 0;
  const crew: Decision[] = [];
  for (let i = 0; i < 60; i++) {
    const d = send({ client_ip: NAT, ...SCRIPT, ...login(`victim${i}@mail.example`, `leaked${i}`) }, i % 3 === 0 ? 404 : 401, 1500);
    crew.push(d);
    if (!first && stopped(d)) first = i + 1;
  }
  t.notOk(crew.some((d) => d.cache_key.startsWith('ip:') || d.cache_key.startsWith('subnet:')), 'never cached on the shared address');
  t.ok(first > 0 && first <= 20, `stopped from request ${first}`);
  t.ok(crew.slice(first).every(stopped), 'and every request after');
  // a customer of the office, logged in earlier, carries on during the attack
  const me = { client_ip: NAT, ...CHROME, ...session('office-7'), ...token('office-7') };
  t.equal(send({ ...me, path: '/api/promo/info' }, 200).action, 'ALLOW');
  t.equal(send({ ...me, ...login('user7@corp.example', 'right') }, 200).action, 'ALLOW', 'even a new login to their own account');
  // a new colleague arriving now, with a session of their own: not answerable for the crew
  const newcomer = { client_ip: NAT, ...CHROME, ...session('office-new') };
  send({ ...newcomer, path: '/' }, 200, 5000);
  const d = send({ ...newcomer, ...login('new@corp.example', 'right') }, 200);
  t.not(d.action, 'BLOCK');
  t.not(d.action, 'CHALLENGE', `the newcomer's login: ${d.reasons}`);
});

/** Failed logins from rotating addresses and tools, each password once: a global failure spike. */
function spike(send: ReturnType<typeof setup>['send'], n = 80) {
  for (let i = 0; i < n; i++) {
    const tool = { ...CHROME, header_names: [...CHROME.header_names, `x-tool-${i}`] };
    send({ client_ip: `198.51.${100 + (i % 50)}.${i % 200}`, ...tool, ...login(`spike${i}@mail.example`, `x${i}`) }, 401, 1000);
  }
}

t.test('a proven session during a global login failure spike is not challenged; an unknown client is scrutinised', async (t) => {
  // the global alarm alone: the spike's crew cannot pay challenges here, so with
  // cs.unknown_login_wave on (rotation-evidence.test.ts) its challenged attempts would end the spike
  const { send } = setup({ thresholds: { identity: { tag: 30, challenge: 40, block: 85 } }, detectors: { credential_stuffing: { unknown_wave_score: 0 } } });
  // the customer logged in yesterday's way: earlier today, successfully
  const me = { client_ip: '192.0.2.44', ...CHROME, ...session('alice') };
  send({ ...me, path: '/' }, 200);
  send({ ...me, ...login('alice@mail.example', 'right') }, 200, 60_000);
  for (let i = 0; i < 20; i++) {
    const warm = { client_ip: `192.0.2.${i}`, ...CHROME, ...session(`warm${i}`) };
    home(send, warm);
    send({ ...warm, ...login(`warm${i}@mail.example`, 'right') }, 200, 3000);
  }
  spike(send);
  const unknown = send({ client_ip: '192.0.2.99', ...CHROME, ...login('bob@mail.example', 'x') });
  t.ok(unknown.reasons.includes('cs.global_failure_spike'), `the spike raises an unknown client's score: ${unknown.reasons}`);
  t.equal(unknown.action, 'CHALLENGE', 'at most a challenge: the alarm is global, not evidence on the client');
  const proven = send({ ...me, ...login('alice@mail.example', 'right') }, 200);
  t.notOk(proven.reasons.includes('cs.global_failure_spike'), 'the proven session is exempt');
  t.notOk(stopped(proven), `${proven.action} ${proven.reasons}`);
});

// Scorecard worlds 5012 and 5013: a synthetic monitor logs in to its test account every 15
// minutes from a fixed address without cookies, and Verdict starts cold in the middle of a
// stuffing wave. Its first check is one more login without a history; its returns to the one
// account it names are a history of their own. A crew's address that names account after account
// never is.
t.test('a monitor returning to its one account during a stuffing wave has a history of its own; a crew address naming many does not', async (t) => {
  const { send, clock } = setup();
  const MONITOR = { client_ip: '192.0.2.80', user_agent: 'Datadog/Synthetics', header_names: ['host', 'user-agent', 'accept', 'content-type'] };
  const wave = (n: number, from: number) => {
    for (let i = 0; i < n; i++) {
      const tool = { ...CHROME, header_names: [...CHROME.header_names, `x-tool-${from + i}`] };
      send({ client_ip: `198.51.${100 + ((from + i) % 50)}.${(from + i) % 200}`, ...tool, ...login(`spike${from + i}@mail.example`, `x${from + i}`) }, 401, 5000);
    }
  };
  wave(60, 0);
  const first = send({ ...MONITOR, ...login('synthetic@shop.example', 'right') }, 200);
  t.ok(first.reasons.includes('cs.unknown_login_wave'), `its first check is one more login without a history: ${first.action} ${first.reasons}`);
  const checks = [];
  for (let k = 0; k < 6; k++) {
    clock.advance(15 * 60_000 - 60 * 5000);
    wave(60, 100 + 60 * k);
    checks.push(send({ ...MONITOR, ...login('synthetic@shop.example', 'right') }, 200));
  }
  for (const [k, d] of checks.entries()) {
    t.notOk(d.reasons.includes('cs.unknown_login_wave') || d.reasons.includes('cs.no_precursor'), `check ${k + 2}: not in the no-history slice (${d.action} ${d.reasons})`);
    t.notOk(stopped(d), `check ${k + 2} goes through: ${d.action} ${d.reasons}`);
  }
  // a crew address it keeps, naming a new account every 15 minutes
  const crew = { client_ip: '203.0.113.81', ...CHROME };
  let last: Decision | undefined;
  for (let k = 0; k < 4; k++) {
    last = send({ ...crew, ...login(`victim${k}@mail.example`, `leak${k}`) }, 401);
    clock.advance(15 * 60_000);
  }
  wave(40, 1000);
  last = send({ ...crew, ...login('victim9@mail.example', 'leak9') }, 401);
  t.ok(last.reasons.includes('cs.no_precursor'), `a crew address naming many accounts has no such history: ${last.action} ${last.reasons}`);
});

t.test('a phone-number walk raises scrutiny of unproven requests only', async (t) => {
  const { send } = setup();
  const me = { client_ip: '192.0.2.45', ...CHROME, ...session('carol') };
  home(send, me);
  send({ ...me, ...login('13800138999', 'right') }, 200);
  for (let i = 0; i < 40; i++) send({ client_ip: `198.51.100.${i}`, ...SCRIPT, method: 'POST', path: '/api/auth/password-reset', identifier: `138001${String(38000 + i)}` }, 404, 500);
  const walker = send({ client_ip: '198.51.100.201', ...CHROME, method: 'POST', path: '/api/auth/password-reset', identifier: '13800138077' }, 404);
  t.ok(walker.reasons.includes('enum.number_locality'));
  t.equal(walker.action, 'CHALLENGE', 'a global alarm alone challenges, never blocks');
  t.equal(walker.cache_key, '');
  const proven = send({ ...me, method: 'POST', path: '/api/auth/password-reset', identifier: '13800138999' }, 200);
  t.notOk(proven.reasons.includes('enum.number_locality'), `the proven customer is exempt: ${proven.reasons}`);
  t.equal(proven.action, 'ALLOW');
});

// Scorecard world 3018: a carrier hands out numbers in dense blocks, and its customers log in by
// phone number during a flash sale. Their logins succeed: no walk. A list walked through the login
// route fails on number after number.
t.test('phone-number locality: customers logging in to their own numbers are no walk; failed logins through a block are', async (t) => {
  const { send } = setup();
  for (let i = 0; i < 40; i++) {
    const me = { client_ip: NAT, ...CHROME, ...session(`sale${i}`) };
    home(send, me);
    const d = send({ ...me, ...login(`139001${String(20000 + i * 3)}`, 'right') }, 200, 500);
    t.notOk(d.reasons.includes('enum.number_locality'), `customer ${i + 1}: ${d.action} ${d.reasons}`);
  }
  let fired = 0;
  for (let i = 0; i < 40; i++) {
    // a new address and a shuffled header set each time: only the numbers give it away
    const g = { client_ip: `198.51.100.${i + 1}`, ...CHROME, header_names: [...CHROME.header_names, `x-r${i}`] };
    if (send({ ...g, ...login(`137001${String(50000 + i)}`, `guess${i}`) }, 404, 500).reasons.includes('enum.number_locality')) fired++;
  }
  t.ok(fired > 20, `a walk of failed logins through one block is seen (${fired} of 40)`);
});

t.test('a header set shared by many proven browsers is never a block key; with the crew\'s own evidence it adds to a challenge', async (t) => {
  const { send } = setup();
  // 30 proven customers with the build, each from home
  for (let i = 0; i < 30; i++) {
    const me = { client_ip: `192.0.2.${i + 1}`, ...CHROME, ...session(`home-${i}`) };
    send({ ...me, path: '/' }, 200, 2000);
    send({ ...me, ...login(`home${i}@mail.example`, 'right') }, 200, gap(i));
  }
  // a crew copying the build exactly, one residential exit per attempt, no cookies
  const crew: Decision[] = [];
  for (let i = 0; i < 80; i++) crew.push(send({ client_ip: `100.64.${i >> 4}.${i + 1}`, ...CHROME, ...login(`leak${i}@mail.example`, `pw${i}`) }, 401, 2000));
  const toolFired = crew.filter((d) => d.reasons.includes('cs.failure_rate.tool'));
  t.ok(toolFired.length > 0, 'the header set\'s failure rate fires');
  t.ok(toolFired.every((d) => d.action !== 'BLOCK'), 'never a block on the header set (and the crew\'s own evidence is weak)');
  t.ok(toolFired.every((d) => d.action === 'CHALLENGE'), 'next to the crew\'s own evidence (no session, no history): challenged');
  t.ok(crew.every((d) => d.cache_key === ''), 'never cached');
  // the people with that build during the attack
  const proven = send({ client_ip: '192.0.2.3', ...CHROME, ...session('home-2'), ...login('home2@mail.example', 'right') }, 200);
  t.same([proven.action, proven.reasons], ['ALLOW', []], 'a proven customer: nothing');
  const fresh = { client_ip: '192.0.2.200', ...CHROME, ...session('first-visit') };
  send({ ...fresh, path: '/' }, 200, 3000);
  const first = send({ ...fresh, ...login('newbie@mail.example', 'right') }, 200);
  t.notOk(first.reasons.includes('cs.failure_rate.tool'), `an unproven customer with a session and no evidence of its own is not answerable for the build: ${first.reasons}`);
  t.not(first.action, 'CHALLENGE');
});

t.test('with shared_needs_own_score 0, shared evidence alone challenges unproven requests, still never blocks', async (t) => {
  const { send } = setup({ proven: { shared_needs_own_score: 0 } });
  for (let i = 0; i < 10; i++) {
    const me = { client_ip: `192.0.2.${i + 1}`, ...CHROME, ...session(`h${i}`) };
    home(send, me);
    send({ ...me, ...login(`h${i}@mail.example`, 'right') }, 200, 2000);
  }
  // a crew that loads the home page before each attempt: nothing of its own to show
  const crew: Decision[] = [];
  for (let i = 0; i < 80; i++) {
    const c = { client_ip: `100.64.0.${i + 1}`, ...CHROME, ...session(`c${i}`) };
    home(send, c);
    crew.push(send({ ...c, ...login(`leak${i}@mail.example`, `pw${i}`) }, 401, 2000));
  }
  t.ok(crew.some((d) => d.action === 'CHALLENGE' && d.reasons.includes('cs.failure_rate.tool')));
  t.notOk(crew.some((d) => d.action === 'BLOCK'));
});

t.test('an account under attack: unproven logins to it are challenged, the addresses are not blocked, its proven owner passes', async (t) => {
  const { send } = setup();
  const owner = { client_ip: '192.0.2.60', ...CHROME, ...session('dave') };
  home(send, owner);
  send({ ...owner, ...login('dave@mail.example', 'right') }, 200, 60_000);
  // one try each from many addresses, all at dave's account, each after loading the home page
  const guess = (i: number) => {
    const g = { client_ip: `100.64.1.${i + 1}`, ...CHROME, ...session(`x${i}`) };
    home(send, g);
    return send({ ...g, ...login('dave@mail.example', `guess${i}`) }, 401, 3000);
  };
  for (let i = 0; i < 8; i++) guess(i);
  const attacker = guess(99);
  t.ok(attacker.reasons.includes('cs.failure_rate.identifier'));
  t.equal(attacker.action, 'CHALLENGE');
  t.equal(attacker.cache_key, '', 'nothing cached for the account\'s sake');
  const d = send({ ...owner, ...login('dave@mail.example', 'right') }, 200);
  t.notOk(d.reasons.includes('cs.failure_rate.identifier'), 'the owner\'s proven session is exempt');
  t.notOk(stopped(d));
  const other = send({ ...owner, ...login('eve@mail.example', 'x') }, 401);
  t.notOk(other.reasons.includes('cs.failure_rate.identifier'), 'another account is not under attack');
});

// A scraper with an HTTP library's headers polling from a VPN exit that also carries customers
// with their browsers (scorecard world 3002: cached on `ip`, it had six of them blocked): its
// verdict is cached on its client key (the address with its own headers), which the customers'
// browsers do not match; and a client key proven clients share (a copied build behind a carrier
// NAT) is never cached, nor acted on alone.
t.test('a machine-regular poller is cached on its client key, not on the address the customers share', async (t) => {
  const { send, clock } = setup({ detectors: { automation: { cache: { key: 'client', ttl_s: 120 } } } });
  const poller = { client_ip: NAT, ...SCRIPT, path: '/' };
  let d: Decision | undefined;
  for (let i = 0; i < 12; i++) {
    d = send(poller);
    clock.advance(2000);
  }
  t.ok(d && d.reasons.includes('bot.regular_timing'), `the poller is seen: ${d?.action} ${d?.reasons.join(',')}`);
  t.equal(d?.cache_key, clientKey(request(poller)), 'cached on the client key');
  t.not(clientKey(request({ client_ip: NAT, ...CHROME })), d?.cache_key, 'a browser behind the same address has another key');
  t.not(clientKey(request({ client_ip: '192.0.2.99', ...SCRIPT })), d?.cache_key, 'the same tool elsewhere has another key');

  // a poller copying the browser build that proven customers of that address use: the key is theirs too
  const shared = setup({ detectors: { automation: { cache: { key: 'client', ttl_s: 120 } } } });
  for (let i = 0; i < 3; i++) {
    const me = { client_ip: NAT, ...CHROME, ...session(`s${i}`) };
    home(shared.send, me);
    shared.send({ ...me, ...login(`s${i}@corp.example`, 'right') }, 200);
  }
  const copier = { client_ip: NAT, ...CHROME, path: '/' };
  let last: Decision | undefined;
  for (let i = 0; i < 12; i++) {
    last = shared.send(copier);
    shared.clock.advance(2000);
  }
  t.equal(last?.cache_key, '', 'a client key proven clients share is never cached');
  t.notOk(last && stopped(last), `its timing is the shared key's evidence, which never acts alone: ${last?.action}`);
});

t.test('the narrowest key: a shared address is never a gateway cache key, the session is', async (t) => {
  const { send } = setup({ detectors: { sensitive_path: { cache: { key: 'ip', ttl_s: 300 }, cache_after: 2 } } });
  const lone = () => send({ client_ip: '192.0.2.70', ...SCRIPT, path: '/.env' }, 404);
  lone();
  t.equal(lone().cache_key, 'ip:192.0.2.70', 'an address nobody proven uses: cached as the policy says');
  for (let i = 0; i < 3; i++) {
    const me = { client_ip: NAT, ...CHROME, ...session(`p${i}`) };
    home(send, me);
    send({ ...me, ...login(`p${i}@corp.example`, 'right') }, 200);
  }
  const probe = (i: number, extra: Record<string, unknown> = {}) => send({ client_ip: NAT, ...SCRIPT, path: `/.git/config${i}`, ...extra }, 404);
  probe(1);
  const d = probe(2);
  t.equal(d.action, 'BLOCK', 'the probe itself is still blocked: the evidence is in the request');
  t.equal(d.cache_key, '', 'but the address of three proven customers is not cached');
  t.match(probe(3, session('scanner')).cache_key, /^session:/, 'the narrowest key the request carries instead');
});

t.test('abuse since: a proven session that starts walking other accounts\' objects loses its proof', async (t) => {
  const { send, store, policy: p, clock } = setup();
  const proofOf = (fields: Record<string, unknown>) => {
    const req = request(fields);
    return new Proofs(store).of(extractFeatures(req, p, clock.now(), KEY), req, p.doc.proven);
  };
  const me = { client_ip: '192.0.2.80', ...CHROME, ...session('mallory') };
  home(send, me);
  send({ ...me, ...login('mallory@mail.example', 'right') }, 200);
  t.equal(proofOf({ ...me, ...token('mallory') }), PROOF.login, 'proven by its login');
  let walked = false;
  for (let i = 0; i < 60; i++) walked = send({ ...me, ...token('mallory'), path: `/api/orders/${10_000 + i}` }, 200, 500).action === 'BLOCK' || walked;
  t.ok(walked, 'the walk is blocked: evidence on its own session and token');
  t.equal(proofOf(me), PROOF.none, 'the session is no longer proven');
  t.equal(proofOf(token('mallory')), PROOF.none, 'nor its token');
  send({ ...me, ...login('mallory@mail.example', 'right') }, 200);
  t.equal(proofOf(me), PROOF.none, 'and logging in again does not restore it while the abuse is remembered');
});

t.test('what proves a request (Proofs)', async (t) => {
  const clock = new VirtualClock(1_763_800_000_000);
  const p = policy({ routes: ROUTES, proven: { device_clean_after_s: 3600 } });
  const pv = p.doc.proven;
  const store = new MemoryStore({ maxKeys: 10_000 });
  const proofs = new Proofs(store);
  const features = (fields: Record<string, unknown>) => {
    const req = request(fields);
    return { f: extractFeatures(req, p, clock.now(), KEY), req };
  };
  const of = (fields: Record<string, unknown>) => {
    const { f, req } = features(fields);
    return proofs.of(f, req, pv);
  };
  const ok = (fields: Record<string, unknown>, status = 200) => proofs.observe({ status, auth_result: '' } as Outcome, features(fields).f, pv);

  t.equal(of({ ...session('s1') }), PROOF.none, 'a session alone proves nothing');
  ok({ ...session('s1'), ...login('a@x.example', 'pw') }, 401);
  t.equal(of({ ...session('s1') }), PROOF.none, 'nor a failed login');
  ok({ ...session('s1'), ...login('a@x.example', 'pw') });
  t.equal(of({ ...session('s1') }), PROOF.login, 'a successful login proves its session');
  t.equal(of({ ...session('s1'), ...token('t1') }), PROOF.login);
  t.equal(of({ ...token('t1') }), PROOF.login, '...and the account token it carried since');
  t.equal(of({ ...session('s1'), ...login('a@x.example', 'pw') }), PROOF.login, 'a new login to the same account');
  t.equal(of({ ...session('s1'), ...login('b@x.example', 'pw') }), PROOF.none, 'not a login to another account');

  ok({ ...session('s2'), method: 'POST', path: '/api/auth/register', identifier: 'farm1@x.example', password_hash: Buffer.from('p') }, 201);
  ok({ ...session('s2'), ...login('farm1@x.example', 'p') });
  t.equal(of({ ...session('s2') }), PROOF.none, 'a login to an account created minutes ago proves nothing');
  clock.advance(pv.young_account_s * 1000 + 1);
  ok({ ...session('s2'), ...login('farm1@x.example', 'p') });
  t.equal(of({ ...session('s2') }), PROOF.login, '...once the account is older');

  proofs.abused(features({ ...session('s1') }).f, pv);
  t.equal(of({ ...session('s1') }), PROOF.none, 'abuse voids the proof');
  ok({ ...session('s1'), ...login('a@x.example', 'pw') });
  t.equal(of({ ...session('s1') }), PROOF.none, 'and a new login does not restore it while the abuse is remembered');

  t.equal(of({ device_hash: Buffer.from('phone-1') }), PROOF.none, 'a device seen for the first time');
  clock.advance(1800_000);
  t.equal(of({ device_hash: Buffer.from('phone-1') }), PROOF.none, 'half an hour later');
  clock.advance(1800_001);
  t.equal(of({ device_hash: Buffer.from('phone-1') }), PROOF.device, 'an hour (device_clean_after_s) later, with no abuse: a clean history');

  t.equal(of({ clearance: 'VALID', clearance_level: 16 }), PROOF.clearance, 'a valid clearance');
  t.equal(of({ clearance: 'INVALID' }), PROOF.none);
});

t.test('populations: a key is shared once more than shared_after proven clients are seen behind it', async (t) => {
  const { send } = setup({ proven: { shared_after: 3 }, detectors: { sensitive_path: { cache: { key: 'ip', ttl_s: 300 }, cache_after: 1 } } });
  const probe = () => send({ client_ip: NAT, ...SCRIPT, path: '/.env' }, 404);
  const customer = (i: number) => {
    const me = { client_ip: NAT, ...CHROME, ...session(`q${i}`) };
    home(send, me);
    send({ ...me, ...login(`q${i}@corp.example`, 'right') }, 200);
  };
  for (let i = 0; i < 3; i++) customer(i);
  t.equal(probe().cache_key, `ip:${NAT}`, 'three proven clients: not yet shared');
  customer(3);
  t.equal(probe().cache_key, '', 'four: shared');
});

t.test('a clearance exempts from global alarms only: shared evidence still asks a challenge it must have paid', async (t) => {
  const { send } = setup();
  for (let i = 0; i < 10; i++) {
    const me = { client_ip: `192.0.2.${i + 1}`, ...CHROME, ...session(`h${i}`) };
    home(send, me);
    send({ ...me, ...login(`h${i}@mail.example`, 'right') }, 200, 2000);
  }
  spike(send);
  for (let i = 0; i < 60; i++) send({ client_ip: `100.64.2.${i + 1}`, ...CHROME, ...login(`leak${i}@mail.example`, `pw${i}`) }, 401, 1000);
  const plain = send({ client_ip: '100.64.9.9', ...CHROME, ...login('z@mail.example', 'x1') }, 401);
  const cleared = send({ client_ip: '100.64.9.10', ...CHROME, clearance: 'VALID', clearance_level: 16, ...login('y@mail.example', 'x2') }, 401);
  t.ok(plain.reasons.includes('cs.global_failure_spike') && plain.reasons.includes('cs.failure_rate.tool'), `uncleared: both (${plain.reasons})`);
  t.notOk(cleared.reasons.includes('cs.global_failure_spike'), 'cleared: no global alarm');
  t.ok(cleared.reasons.includes('cs.failure_rate.tool'), `cleared: the header set's evidence still counts (${cleared.reasons})`);
});

t.test('proven.enabled false: the detectors act on any key, as before issue 14', async (t) => {
  const { send } = setup({ proven: { enabled: false }, detectors: { sensitive_path: { cache: { key: 'ip', ttl_s: 300 }, cache_after: 1 } } });
  for (let i = 0; i < 3; i++) {
    const me = { client_ip: NAT, ...CHROME, ...session(`q${i}`) };
    home(send, me);
    send({ ...me, ...login(`q${i}@corp.example`, 'right') }, 200);
  }
  t.equal(send({ client_ip: NAT, ...SCRIPT, path: '/.env' }, 404).cache_key, `ip:${NAT}`);
});

t.test('a synthetic-login monitor (no cookies, every check a new visit) on a header set a stuffing crew uses: its own account\'s logins pass; the crew\'s other accounts do not', async (t) => {
  const { send } = setup();
  const monitor = (_k: number) => ({ client_ip: '198.18.5.10', ...SCRIPT, user_agent: 'Datadog/Synthetics' });
  // the monitor logs in to its test account every five minutes
  const first = send({ ...monitor(0), ...login('synthetic@ops.example', 'pw') }, 200, 1000);
  t.not(first.action, 'BLOCK');
  // a crew with the same tool's headers, rotating addresses, each attempt a new account
  const crew: Decision[] = [];
  const checks: Decision[] = [];
  for (let i = 0; i < 200; i++) {
    crew.push(send({ client_ip: `100.64.${i >> 6}.${i % 64}`, ...SCRIPT, ...login(`leak${i}@mail.example`, `pw${i}`) }, 401, 1500));
    if (i % 40 === 39) checks.push(send({ ...monitor(i), ...login('synthetic@ops.example', 'pw') }, 200, 1000));
  }
  t.ok(crew.slice(50).filter(stopped).length >= 140, `the crew is stopped (${crew.slice(50).filter(stopped).length} of its last 150)`);
  t.same(checks.filter(stopped).map((d) => `${d.action} ${d.reasons}`), [], 'the monitor\'s checks: none stopped');
  // from the monitor's own address and tool, other accounts are not its owner's
  const other = send({ ...monitor(999), ...login('victim@mail.example', 'x') }, 401);
  t.ok(stopped(other), `another account from the monitor's client is judged like the crew's: ${other.action} ${other.reasons}`);

  // without the rule the monitor's checks are challenged with the crew
  const off = setup({ proven: { client_account_proves: false, build_account_proves: false } });
  off.send({ ...monitor(0), ...login('synthetic@ops.example', 'pw') }, 200, 1000);
  const offChecks: Decision[] = [];
  for (let i = 0; i < 200; i++) {
    off.send({ client_ip: `100.64.${i >> 6}.${i % 64}`, ...SCRIPT, ...login(`leak${i}@mail.example`, `pw${i}`) }, 401, 1500);
    if (i % 40 === 39) offChecks.push(off.send({ ...monitor(i), ...login('synthetic@ops.example', 'pw') }, 200, 1000));
  }
  t.ok(offChecks.some(stopped), `with client_account_proves and build_account_proves false: ${offChecks.filter(stopped).length} of ${offChecks.length} checks stopped`);
});

t.test('a synthetic-login monitor checking from several addresses in turn: its account with its own tool is proven at an address it never logged in from; a crew copying a crowd\'s browser build gets no such proof', async (t) => {
  const run = (overrides: Parameters<typeof policy>[0]) => {
    const { send } = setup(overrides);
    const monitor = (ip: string) => ({ client_ip: ip, ...SCRIPT, user_agent: 'Datadog/Synthetics' });
    // checks from two hosting addresses, then a crew on the same header set fails logins everywhere
    send({ ...monitor('198.18.5.10'), ...login('synthetic@ops.example', 'pw') }, 200, 1000);
    send({ ...monitor('198.18.9.20'), ...login('synthetic@ops.example', 'pw') }, 200, 1000);
    for (let i = 0; i < 150; i++) send({ client_ip: `100.64.${i >> 6}.${i % 64}`, ...SCRIPT, ...login(`leak${i}@mail.example`, `pw${i}`) }, 401, 1500);
    // the third location's first check, in the middle of the crew's wave
    return { check: send({ ...monitor('198.18.77.30'), ...login('synthetic@ops.example', 'pw') }, 200), other: send({ ...monitor('198.18.77.31'), ...login('victim@mail.example', 'x') }, 401), send };
  };
  const on = run({});
  t.notOk(stopped(on.check), `the third address's check passes: ${on.check.action} ${on.check.reasons}`);
  t.ok(stopped(on.other), `another account with the monitor's tool is not its owner's: ${on.other.action} ${on.other.reasons}`);
  const off = run({ proven: { build_account_proves: false } });
  t.ok(stopped(off.check), `with build_account_proves false the check is stopped with the crew: ${off.check.action} ${off.check.reasons}`);

  // A popular build many proven customers share lends no proof: a crew with that build, from a
  // new address, trying an account whose owner logged in with it, is judged as any other login.
  const { send } = setup();
  for (let i = 0; i < 4; i++) send({ client_ip: `192.0.2.${i + 1}`, ...CHROME, ...session(`c${i}`), ...login(`customer${i}@mail.example`, 'pw') }, 200, 2000);
  const crew: Decision[] = [];
  for (let i = 0; i < 120; i++) crew.push(send({ client_ip: `100.65.${i >> 6}.${i % 64}`, ...CHROME, ...login(i === 119 ? 'customer0@mail.example' : `leak${i}@mail.example`, 'guess') }, 401, 1500));
  t.ok(stopped(crew[119]!), `the crew's try at a proven customer's account on a crowd's build: ${crew[119]!.action} ${crew[119]!.reasons}`);
});

t.test('header_mismatch: a header set unlike its User-Agent\'s browser is refuted where proven customers send that build exactly so; a spoofed build nobody proven sends still shows it', async (t) => {
  // an old Android browser: no client hints, no fetch metadata, no Accept-Language (some real ones)
  const OLD = { user_agent: 'Mozilla/5.0 (Linux; U; Android 4.4.2; zh-cn; GT-I9500 Build/KOT49H) AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 Mobile Safari/534.30', accept_encoding: 'gzip, deflate', header_names: ['host', 'user-agent', 'accept', 'accept-encoding', 'content-type', 'cookie'] };
  const run = (overrides: Parameters<typeof policy>[0]) => {
    const { send } = setup(overrides);
    // two customers on that phone log in from their homes
    for (let i = 0; i < 2; i++) {
      home(send, { client_ip: `192.0.2.${i + 1}`, ...OLD, ...session(`old${i}`) });
      send({ client_ip: `192.0.2.${i + 1}`, ...OLD, ...session(`old${i}`), ...login(`owner${i}@mail.example`, 'pw') }, 200, 2000);
    }
    home(send, { client_ip: '192.0.2.9', ...OLD, ...session('third') });
    return send({ client_ip: '192.0.2.9', ...OLD, ...session('third'), ...login('third@mail.example', 'pw') }, 200);
  };
  const third = run({});
  t.notOk(third.reasons.includes('cs.header_mismatch'), `a third customer on that phone: ${third.reasons.join(',') || 'none'}`);
  t.ok(run({ proven: { crowd_build_refutes_mismatch: false } }).reasons.includes('cs.header_mismatch'), 'with crowd_build_refutes_mismatch false it fires, as before');
  // a Chrome User-Agent without the client hints every modern Chrome sends: nobody proven sends it
  const { send } = setup();
  for (let i = 0; i < 2; i++) send({ client_ip: `192.0.2.${i + 1}`, ...CHROME, ...session(`c${i}`), ...login(`c${i}@mail.example`, 'pw') }, 200, 2000);
  const spoof = send({ client_ip: '100.64.1.1', user_agent: CHROME.user_agent, header_names: ['host', 'user-agent', 'accept', 'content-type'], ...login('leak@mail.example', 'x') }, 401);
  t.ok(spoof.reasons.includes('cs.header_mismatch'), `spoofed: ${spoof.reasons.join(',')}`);
});

t.test('a crowd\'s key never adds to a block: a customer who hops accounts behind the office address is challenged; a request whose own evidence blocks is blocked', async (t) => {
  const run = (overrides: Parameters<typeof policy>[0]) => {
    const clock = new VirtualClock(1_763_800_000_000);
    const engine = new Engine({ policy: policy({ routes: ROUTES, ...overrides }), store: new MemoryStore({ maxKeys: 10_000 }), clock, identifierKey: KEY, detectors: [probe as never] });
    let n = 0;
    // two colleagues log in from the office: its address is a crowd's
    for (const who of ['c1', 'c2']) {
      const id = `l${++n}`;
      engine.decide(request({ request_id: id, client_ip: NAT, ...CHROME, ...session(who), ...login(`${who}@corp.example`, 'pw') }));
      engine.observe({ request_id: id, status: 200, auth_result: '', action: 'ALLOW' } as Outcome);
      clock.advance(1000);
    }
    return (query: string) => engine.decide(request({ request_id: `q${++n}`, client_ip: NAT, ...CHROME, query }));
  };
  const decide = run({});
  const hopper = decide('fanout:95:client,hop:40:session');
  t.same([hopper.action, hopper.reasons], ['CHALLENGE', ['t.fanout', 't.hop']], 'own evidence 40 next to the crowd key\'s 95: a challenge, not a block');
  t.equal(decide('own:85:request,fanout:95:client').action, 'BLOCK', 'own evidence at the block threshold by itself: a block');
  t.equal(decide('g:95:global,hop:40:session').action, 'BLOCK', 'a global alarm next to own evidence of block_needs_own_score: still a block (alarms are not a crowd\'s key)');
  t.equal(run({ proven: { crowd_never_blocks: false } })('fanout:95:client,hop:40:session').action, 'BLOCK', 'with crowd_never_blocks false: a block, as before');
});

t.test('an address range is not the request\'s own: /24 evidence alone challenges, next to the request\'s own evidence it blocks', async (t) => {
  const run = (overrides: Parameters<typeof policy>[0]) => {
    const clock = new VirtualClock(1_763_800_000_000);
    const engine = new Engine({ policy: policy({ routes: ROUTES, ...overrides }), store: new MemoryStore({ maxKeys: 10_000 }), clock, identifierKey: KEY, detectors: [probe as never] });
    let n = 0;
    // a VPN exit's customer on a hosting /24 where a crew fails logins: no proven client there yet
    return (query: string) => engine.decide(request({ request_id: `q${++n}`, client_ip: '167.99.181.204', ...CHROME, query }));
  };
  const decide = run({});
  t.same([decide('range:95:subnet').action, decide('range:95:subnet').reasons], ['CHALLENGE', ['t.range']], 'the range\'s failures alone: a challenge a person can pass');
  t.equal(decide('range:95:subnet,mine:40:ip').action, 'BLOCK', 'with the address\'s own failures (block_needs_own_score): a block');
  t.equal(decide('range:95:subnet,walk:40:session').action, 'BLOCK', 'with the session\'s own evidence: a block');
  t.equal(decide('mine:95:ip').action, 'BLOCK', 'the address\'s own evidence alone: a block, as before');
  t.equal(run({ proven: { range_needs_own: false } })('range:95:subnet').action, 'BLOCK', 'with range_needs_own false: a block, as before');
});

t.test('abuse marks come from the request\'s own evidence: a customer challenged for what others did behind its address and build becomes proven by its login', async (t) => {
  const clock = new VirtualClock(1_763_800_000_000);
  const p = policy({ routes: ROUTES });
  const store = new MemoryStore({ maxKeys: 10_000 });
  const engine = new Engine({ policy: p, store, clock, identifierKey: KEY, detectors: [probe as never] });
  let n = 0;
  const send = (fields: Record<string, unknown>, status: number): Decision => {
    const id = `r${++n}`;
    const d = engine.decide(request({ request_id: id, ...fields }));
    engine.observe({ request_id: id, status: stopped(d) ? 429 : status, auth_result: '', action: d.action } as Outcome);
    clock.advance(2000);
    return d;
  };
  const proofOf = (fields: Record<string, unknown>) => {
    const req = request(fields);
    return new Proofs(store).of(extractFeatures(req, p, clock.now(), KEY), req, p.doc.proven);
  };
  const paid = { clearance: 'VALID', clearance_level: 20 };
  // A carrier NAT's first customer (nobody proven behind the address + build yet): a crew's
  // fan-out on that key challenges the login; the browser pays, and the login goes through.
  const me = { client_ip: NAT, ...CHROME, ...session('first-customer') };
  const first = send({ ...me, ...login('me@mail.example', 'right'), query: 'fanout:75:client' }, 200);
  t.equal(first.action, 'CHALLENGE', 'challenged for the evidence on its address + build (own: nobody proven shares that key yet)');
  t.notOk(stopped(send({ ...me, ...login('me@mail.example', 'right'), query: 'fanout:75:client', ...paid }, 200)), 'the paid login passes');
  t.equal(proofOf(me), PROOF.login, 'and proves the session: what others did behind its address marked no abuse of its own');
  // the same with evidence on its own session: the login is abuse, and proves nothing
  const hopper = { client_ip: NAT, ...CHROME, ...session('hopper') };
  t.equal(send({ ...hopper, ...login('x@mail.example', 'pw'), query: 'hop:75:session' }, 200).action, 'CHALLENGE');
  t.notOk(stopped(send({ ...hopper, ...login('x@mail.example', 'pw'), query: 'hop:75:session', ...paid }, 200)), 'the paid login passes too');
  t.equal(proofOf(hopper), PROOF.none, 'but its own evidence voided the proof');
});
