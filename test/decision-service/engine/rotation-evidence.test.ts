// Evidence that rotating addresses and copying browsers cannot hide (issue 14, point 4), and the
// rate model on shared keys (point 3): each signal fires on its attack and stays quiet (or at
// most tags) on the human look-alike.

import t from 'tap';
import { VirtualClock } from '../../../decision-service/src/engine/clock.ts';
import { Engine } from '../../../decision-service/src/engine/engine.ts';
import { MemoryStore } from '../../../decision-service/src/state/memory-store.ts';
import type { Outcome } from '../../../decision-service/src/wire/schema.ts';
import { BASE_ROUTES, policy, request } from '../../helpers/policy.ts';

const CHROME = {
  user_agent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  accept_language: 'en-US,en;q=0.9',
  sec_ch_ua: '"Chromium";v="120"',
  sec_fetch_mode: 'cors',
  header_names: ['host', 'user-agent', 'accept', 'accept-language', 'sec-ch-ua', 'sec-fetch-mode', 'content-type'],
};
const APP = { user_agent: 'ShopApp/5.2 (Android 14)', header_names: ['host', 'user-agent', 'accept', 'x-device-id', 'content-type'] };

const ROUTES = [
  ...BASE_ROUTES,
  { name: 'register', class: 'identity' as const, methods: ['POST' as const], path: '/api/auth/register' },
  { name: 'reset', class: 'identity' as const, methods: ['POST' as const], path: '/api/auth/password-reset' },
  { name: 'sms', class: 'identity' as const, methods: ['POST' as const], path: '/api/sms/send' },
  { name: 'promo-page', class: 'public' as const, methods: ['GET' as const], path: '/promo' },
  { name: 'profile', class: 'object' as const, methods: ['GET' as const], path: '/api/users/{id}/profile' },
];

function setup() {
  const clock = new VirtualClock(1_763_800_000_000);
  const engine = new Engine({ policy: policy({ routes: ROUTES }), store: new MemoryStore({ maxKeys: 50_000 }), clock, identifierKey: Buffer.alloc(32, 1) });
  let n = 0;
  /** Decides, reports the outcome (when a status is given), then lets `gapMs` pass. */
  const send = (fields: Record<string, unknown>, status?: number, gapMs = 1000) => {
    const id = `r${++n}`;
    const d = engine.decide(request({ request_id: id, ...fields }));
    if (status !== undefined) engine.observe({ request_id: id, status, auth_result: '', action: d.action } as Outcome);
    clock.advance(gapMs);
    return d;
  };
  /** A client that solves every challenge: a challenged request is sent again with the clearance it paid for. */
  const solving = (fields: Record<string, unknown>, status: number, gapMs = 1000) => {
    const id = `r${++n}`;
    let d = engine.decide(request({ request_id: id, ...fields }));
    if (d.action === 'CHALLENGE') d = engine.decide(request({ request_id: id, ...fields, clearance: 'VALID', clearance_level: d.challenge_difficulty }));
    engine.observe({ request_id: id, status, auth_result: '', action: d.action } as Outcome);
    clock.advance(gapMs);
    return d;
  };
  /** A request Verdict refused, whatever it decides now: the gateway reports its 403 as a block. */
  const refused = (fields: Record<string, unknown>, gapMs = 1000) => {
    const id = `r${++n}`;
    engine.decide(request({ request_id: id, ...fields }));
    engine.observe({ request_id: id, status: 403, auth_result: '', action: 'BLOCK' } as Outcome);
    clock.advance(gapMs);
  };
  return { clock, send, solving, refused };
}

const login = (identifier: string, pw: string) => ({ method: 'POST', path: '/api/auth/login', identifier, password_hash: Buffer.from(pw) });
const stopped = (a: string) => a === 'CHALLENGE' || a === 'BLOCK';

t.test('session.never_issued: a made-up session cookie posted straight away', async (t) => {
  const { send } = setup();
  const bot = send({ ...CHROME, client_ip: '203.0.113.10', session_hash: Buffer.from('forged-1'), ...login('alice', 'x') }, 401);
  t.ok(bot.reasons.includes('session.never_issued'), `bot: ${bot.reasons.join(',')}`);
  t.ok(bot.reasons.includes('cs.no_precursor'), 'a forged cookie is no history');
  const again = send({ ...CHROME, client_ip: '203.0.113.11', session_hash: Buffer.from('forged-1'), ...login('bob', 'y') }, 401);
  t.ok(again.reasons.includes('session.never_issued'), 'stays unissued on the next attempt');

  // the person: loads the page (which sets the cookie), then logs in with it
  send({ ...CHROME, client_ip: '192.0.2.10' });
  const human = send({ ...CHROME, client_ip: '192.0.2.10', session_hash: Buffer.from('real-1'), ...login('carol', 'right') }, 200);
  t.notOk(human.reasons.includes('session.never_issued'), `human: ${human.reasons.join(',')}`);
  t.equal(human.action, 'ALLOW');
  // a returning person: the old cookie comes with the page; later the phone hops to another address
  send({ ...CHROME, client_ip: '192.0.2.20', session_hash: Buffer.from('old-1') });
  const hopped = send({ ...CHROME, client_ip: '100.64.9.9', session_hash: Buffer.from('old-1'), ...login('dave', 'right') }, 200);
  t.notOk(hopped.reasons.includes('session.never_issued'), 'a session the site served a page to is issued wherever it goes');
  // the look-alike that does fire: a cookie-less page load long ago, a login much later — at most a tag
  const late = send({ ...CHROME, client_ip: '192.0.2.30', session_hash: Buffer.from('late-1'), ...login('erin', 'right') }, 200);
  t.notOk(stopped(late.action), `never stopped by it alone: ${late.action} ${late.reasons.join(',')}`);
});

t.test('promo: hollow precursors, first action claim, devices first seen at the sale, fresh account by session', async (t) => {
  const { send, clock } = setup();
  // a farm account: register + login with a fresh device and cookie, page and info, claim within a second
  const dev = { ...APP, client_ip: '198.18.0.7', device_hash: Buffer.from('dev-new'), session_hash: Buffer.from('farm-s') };
  send({ ...dev, method: 'POST', path: '/api/auth/register', identifier: '13900000001', password_hash: Buffer.from('p') }, 201);
  send({ ...dev, ...login('13900000001', 'p') }, 200);
  send({ ...dev, path: '/api/promo/info' }, 200, 400);
  const claim = send({ ...dev, client_ip: '198.18.0.8', method: 'POST', path: '/api/promo/claim', has_authorization: true, token_hash: Buffer.from('farm-token') });
  for (const code of ['promo.hollow_precursor', 'promo.first_action_claim', 'promo.new_device', 'promo.fresh_account']) {
    t.ok(claim.reasons.includes(code), `${code} in ${claim.reasons.join(',')}`);
  }
  t.ok(stopped(claim.action), `the farm claim is stopped: ${claim.action}`);

  // a customer on the app: device from last week, reads the account, then the offer, claims after reading
  const app = { ...APP, client_ip: '100.64.1.1', device_hash: Buffer.from('dev-old') };
  send({ ...app, path: '/api/promo/info' });
  clock.advance(7 * 86_400_000 - 3_600_000);
  send({ ...app, path: '/api/promo/info' });
  send({ ...app, ...login('13800000002', 'right') }, 200, 3000);
  send({ ...app, path: '/api/users/42/profile', has_authorization: true, token_hash: Buffer.from('cust-token') }, 200, 20_000);
  send({ ...app, path: '/api/promo/info', has_authorization: true, token_hash: Buffer.from('cust-token') }, 200, 9000);
  const human = send({ ...app, method: 'POST', path: '/api/promo/claim', has_authorization: true, token_hash: Buffer.from('cust-token') });
  for (const code of ['promo.hollow_precursor', 'promo.first_action_claim', 'promo.new_device', 'promo.fresh_account']) t.notOk(human.reasons.includes(code), `human: no ${code}`);
  t.equal(human.action, 'ALLOW', human.reasons.join(','));

  // look-alikes that do fire, never enough alone: a person who installed the app for the sale and
  // claims right after logging in on the promo screen
  const fresh = { ...APP, client_ip: '100.64.1.2', device_hash: Buffer.from('dev-installed-today') };
  send({ ...fresh, path: '/api/promo/info' }, 200, 30_000);
  send({ ...fresh, ...login('13800000003', 'right') }, 200, 8000);
  const eager = send({ ...fresh, method: 'POST', path: '/api/promo/claim', has_authorization: true, token_hash: Buffer.from('eager-token') });
  t.ok(eager.reasons.includes('promo.first_action_claim') && eager.reasons.includes('promo.new_device'), eager.reasons.join(','));
  t.notOk(stopped(eager.action), `the eager customer is not stopped: ${eager.action} ${eager.score}`);
});

t.test('enum.unknown_identifier_surge: a leaked list over single-use addresses and a real browser', async (t) => {
  const { send } = setup();
  // a normal hour: people log in to accounts that exist, some mistype the password
  for (let i = 0; i < 60; i++) {
    send({ ...CHROME, client_ip: `192.0.${i}.1` });
    const d = send({ ...CHROME, client_ip: `192.0.${i}.1`, session_hash: Buffer.from(`h${i}`), ...login(`user${i}`, 'pw') }, i % 7 === 0 ? 401 : 200, 20_000);
    t.notOk(d.reasons.includes('enum.unknown_identifier_surge'), `quiet hour ${i}`);
  }
  // the crew: every attempt from a new address, the home page first, 70% of the names do not exist
  let first = 0;
  for (let i = 0; i < 80; i++) {
    const ip = `198.51.${100 + (i % 50)}.${i}`;
    send({ ...CHROME, client_ip: ip }, undefined, 500);
    const d = send({ ...CHROME, client_ip: ip, session_hash: Buffer.from(`c${i}`), ...login(`leaked${i}`, 'x') }, i % 10 < 7 ? 404 : 401, 1500);
    if (!first && d.reasons.includes('enum.unknown_identifier_surge')) first = i + 1;
  }
  t.ok(first > 0 && first <= 40, `the surge is seen at attempt ${first}`);
});

t.test('bola.young_not_found_surge: an account farm, each token reading a few random ids', async (t) => {
  const { send } = setup();
  // customers: a token from yesterday reading its own orders all along
  const old = { ...CHROME, client_ip: '192.0.2.50', has_authorization: true, token_hash: Buffer.from('old-token') };
  send({ ...old, path: '/api/orders/500100' }, 200, 86_400_000);
  // young customers: log in, read their own orders
  for (let i = 0; i < 30; i++) {
    const c = { ...CHROME, client_ip: `192.0.3.${i}`, has_authorization: true, token_hash: Buffer.from(`young-${i}`) };
    for (const o of [500200 + 3 * i, 500201 + 3 * i]) {
      const d = send({ ...c, path: `/api/orders/${o}` }, 200, 3000);
      t.notOk(d.reasons.includes('bola.young_not_found_surge'), `young customer ${i}`);
    }
  }
  // the farm: 40 fresh tokens, each reading six random ids, most of which do not exist
  let first = 0;
  for (let a = 0; a < 40; a++) {
    const c = { ...CHROME, client_ip: `198.18.${a}.9`, has_authorization: true, token_hash: Buffer.from(`farm-${a}`) };
    for (let k = 0; k < 6; k++) {
      const d = send({ ...c, path: `/api/orders/${900000 + a * 97 + k * 13}` }, (a + k) % 4 === 0 ? 200 : 404, 500);
      if (!first && d.reasons.includes('bola.young_not_found_surge')) first = a * 6 + k + 1;
    }
  }
  t.ok(first > 0 && first <= 60, `the surge is seen at read ${first}`);
  // during the surge: the customer whose token is a day old reads an order that is gone
  const d = send({ ...old, path: '/api/orders/123' }, 404);
  t.notOk(d.reasons.includes('bola.young_not_found_surge'), 'an old token is not young');
});

t.test('rate model: a carrier address with customers at the usual typo rate vs a crew on it', async (t) => {
  const { send } = setup();
  // 200 customers behind one address, each with their own phone (one app build), 15% mistype once
  let flagged = 0;
  for (let i = 0; i < 200; i++) {
    const c = { ...APP, client_ip: '100.64.0.1', device_hash: Buffer.from(`phone-${i}`) };
    if (i % 7 === 0) send({ ...c, ...login(`cust${i}`, 'typo') }, 401, 500);
    const d = send({ ...c, ...login(`cust${i}`, 'right') }, 200, 1500);
    if (d.reasons.some((r) => r.startsWith('cs.failure_rate.ip') || r.startsWith('cs.failure_rate.subnet'))) flagged++;
  }
  t.equal(flagged, 0, 'the shared address never fires');
  // a crew from the same address: 90% failures
  let fired = 0;
  for (let i = 0; i < 120; i++) {
    const d = send({ ...APP, user_agent: 'okhttp/4.9.0', client_ip: '100.64.0.1', ...login(`victim${i}`, 'leak') }, i % 10 === 0 ? 200 : 401, 500);
    if (d.reasons.some((r) => r.startsWith('cs.failure_rate'))) fired++;
  }
  t.ok(fired > 60, `the crew's failure share fires (${fired} of 120)`);
});

t.test('cs.account_hopping: a browser profile that fails on one account and moves down its list', async (t) => {
  const { send } = setup();
  // the crew's worker: loads the page, then one account after another with the same cookie, each from a new exit
  send({ ...CHROME, client_ip: '198.51.100.1' });
  const first = send({ ...CHROME, client_ip: '198.51.100.1', session_hash: Buffer.from('w1'), ...login('leak-a', 'x') }, 401);
  t.notOk(first.reasons.includes('cs.account_hopping'), 'the first attempt is a person\'s first attempt');
  const second = send({ ...CHROME, client_ip: '198.51.101.2', session_hash: Buffer.from('w1'), ...login('leak-b', 'x') }, 401);
  t.ok(second.reasons.includes('cs.account_hopping'), `second account: ${second.reasons.join(',')}`);
  // a person retrying their own account, typos and all
  send({ ...CHROME, client_ip: '192.0.2.60' });
  for (const pw of ['Typo1', 'typo2', 'right']) {
    const d = send({ ...CHROME, client_ip: '192.0.2.60', session_hash: Buffer.from('p1'), ...login('frank', pw) }, pw === 'right' ? 200 : 401);
    t.notOk(d.reasons.includes('cs.account_hopping'), `retry ${pw}`);
  }
  // a family on one laptop: one account, then the other, no failure
  send({ ...CHROME, client_ip: '192.0.2.61' });
  send({ ...CHROME, client_ip: '192.0.2.61', session_hash: Buffer.from('fam'), ...login('gina', 'right') }, 200);
  const other = send({ ...CHROME, client_ip: '192.0.2.61', session_hash: Buffer.from('fam'), ...login('hugo', 'right') }, 200);
  t.notOk(other.reasons.includes('cs.account_hopping'), 'two accounts without a failure');
  // the same family with a typo first: the look-alike that fires, never stopped by it
  const typo = send({ ...CHROME, client_ip: '192.0.2.61', session_hash: Buffer.from('fam2'), ...login('gina', 'wrong') }, 401);
  t.notOk(typo.reasons.includes('cs.account_hopping'));
  const hop = send({ ...CHROME, client_ip: '192.0.2.61', session_hash: Buffer.from('fam2'), ...login('hugo', 'right') }, 200);
  t.ok(hop.reasons.includes('cs.account_hopping'));
  t.notOk(stopped(hop.action), `at most a tag alone: ${hop.action} ${hop.reasons.join(',')}`);
});

t.test('cs.account_hopping: a person who mistypes, resets by phone and logs in by username names one account at login', async (t) => {
  const { send } = setup();
  const person = { ...CHROME, client_ip: '192.0.2.70', session_hash: Buffer.from('forgetful') };
  send({ ...CHROME, client_ip: '192.0.2.70' });
  const seen: string[] = [];
  const steps: Array<[Record<string, unknown>, number]> = [
    [login('ines_p', 'Right?'), 401],
    [login('ines_p', 'right!'), 401],
    [{ method: 'POST', path: '/api/auth/password-reset', identifier: '13800138070' }, 200],
    [{ method: 'POST', path: '/api/sms/send', identifier: '13800138070' }, 200],
    [login('ines_p', 'right'), 200],
  ];
  for (const [step, status] of steps) seen.push(...send({ ...person, ...step }, status).reasons);
  t.notOk(seen.includes('cs.account_hopping'), `the person's steps: ${[...new Set(seen)].join(', ') || 'nothing'}`);
  // the worker: the same session, a failure, then another account at login
  const worker = { ...CHROME, session_hash: Buffer.from('w9') };
  send({ ...CHROME, client_ip: '198.51.100.9' });
  send({ ...worker, client_ip: '198.51.100.9', ...login('leak-1', 'x') }, 401);
  const second = send({ ...worker, client_ip: '198.51.101.9', ...login('leak-2', 'x') }, 401);
  t.ok(second.reasons.includes('cs.account_hopping'), `the worker's second account: ${second.reasons.join(', ')}`);
});

t.test('a crew at a carrier address with the carrier\'s popular build: its customers are judged by their own slice', async (t) => {
  const { send } = setup();
  const SAFARI = { user_agent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1', accept_language: 'en-US', header_names: ['host', 'user-agent', 'accept', 'accept-language', 'content-type', 'cookie'] };
  const ip = '100.64.7.7';
  let humansStopped = 0;
  let crewStopped = 0;
  for (let i = 0; i < 60; i++) {
    // the crew: one cookie per worker, each worker going down the list (page first, like a person)
    const w = i % 3;
    if (i < 3) send({ ...SAFARI, client_ip: ip });
    const c = send({ ...SAFARI, client_ip: ip, session_hash: Buffer.from(`crew-${w}`), ...login(`leak${i}`, 'x') }, 401, 200);
    if (i >= 20 && stopped(c.action)) crewStopped++;
    // a customer now and then: the page, a typo, the right password
    if (i % 4 === 0) {
      send({ ...SAFARI, client_ip: ip }, undefined, 200);
      const s = { ...SAFARI, client_ip: ip, session_hash: Buffer.from(`cust-${i}`) };
      const a = send({ ...s, ...login(`cust${i}`, 'typo') }, 401, 300);
      const b = send({ ...s, ...login(`cust${i}`, 'right') }, 200, 300);
      if (stopped(a.action)) humansStopped++;
      if (stopped(b.action)) humansStopped++;
    }
  }
  t.equal(humansStopped, 0, 'no customer stopped');
  t.ok(crewStopped >= 30, `the crew is stopped (${crewStopped} of its last 40)`);
});

t.test('slow window: a low-and-slow crew host naming one account every five minutes; a person over the same hours is not', async (t) => {
  const { send } = setup();
  // a botnet host: one browser profile (its page-issued session), one password reset every 5 min
  const host = { ...CHROME, client_ip: '203.0.113.77', session_hash: Buffer.from('host-77') };
  send({ ...host, path: '/' });
  const resets: string[] = [];
  for (let i = 0; i < 24; i++) {
    const d = send({ ...host, method: 'POST', path: '/api/auth/password-reset', identifier: `1390000${String(1000 + i * 37)}` }, 200, 300_000);
    resets.push(d.action);
  }
  // the ten-minute window never sees more than two accounts
  t.equal(resets.slice(0, 5).filter(stopped).length, 0, 'the first five are not evidence');
  t.ok(resets.slice(8).every(stopped), `stopped once the slow window holds 8 accounts: ${resets.join(',')}`);
  t.equal(resets[resets.length - 1], 'BLOCK', 'blocked once it holds 16');

  // a stuffing host: one failed login every 5 min (a known-only list: every account exists)
  const crew = { ...CHROME, client_ip: '203.0.113.78', session_hash: Buffer.from('host-78') };
  send({ ...crew, path: '/' });
  let last = '';
  const reasons = new Set<string>();
  for (let i = 0; i < 24; i++) {
    const d = send({ ...crew, ...login(`user${i}`, `leaked${i}`) }, 401, 300_000);
    last = d.action;
    d.reasons.forEach((r) => reasons.add(r));
  }
  t.ok(reasons.has('cs.slow_failure_rate.session') || reasons.has('cs.slow_failure_rate.client'), [...reasons].join(','));
  t.equal(last, 'BLOCK');

  // a person over the same three hours: username and phone, two typos, a reset, then in
  const me = { ...CHROME, client_ip: '192.0.2.77', session_hash: Buffer.from('person-77') };
  send({ ...me, path: '/' }, 200, 1_800_000);
  const mine = [
    send({ ...me, ...login('frank', 'wrong1') }, 401, 1_800_000),
    send({ ...me, ...login('13812345678', 'wrong2') }, 401, 1_800_000),
    send({ ...me, method: 'POST', path: '/api/auth/password-reset', identifier: '13812345678' }, 200, 1_800_000),
    send({ ...me, ...login('frank', 'right') }, 200, 1_800_000),
  ];
  t.equal(mine.filter((d) => stopped(d.action)).length, 0, mine.map((d) => `${d.action} ${d.reasons.join(',')}`).join(' | '));

  // an app's customers behind one carrier address over an afternoon: one build, each phone its own
  // device id, a login every 15 minutes (one in five mistyped first): 12 accounts on the client key
  const app = { ...APP, client_ip: '100.64.30.30' };
  const theirs: string[] = [];
  for (let u = 0; u < 12; u++) {
    const phone = { ...app, device_hash: Buffer.from(`phone-${u}`) };
    if (u % 5 === 0) theirs.push(send({ ...phone, ...login(`1381234${String(1000 + u)}`, 'typo') }, 401, 20_000).action);
    theirs.push(send({ ...phone, ...login(`1381234${String(1000 + u)}`, 'right') }, 200, 900_000).action);
  }
  t.equal(theirs.filter(stopped).length, 0, `an app's customers behind one address: ${theirs.join(',')}`);
});

t.test('bola: an account farm behind one address, each token under every bar; a carrier NAT of customers reading their own orders is not', async (t) => {
  const { send } = setup();
  // the farm: 20 fresh tokens behind one server address and one browser build, 8 random ids each
  const farm = { ...CHROME, client_ip: '198.51.100.200' };
  const actions: string[] = [];
  const reasons = new Set<string>();
  for (let a = 0; a < 20; a++) {
    for (let i = 0; i < 8; i++) {
      const d = send({ ...farm, path: `/api/orders/${500_000 + ((a * 7919 + i * 104_729) % 90_000)}`, has_authorization: true, token_hash: Buffer.from(`farm-${a}`) }, 200, 2000);
      actions.push(d.action);
      d.reasons.forEach((r) => reasons.add(r));
    }
  }
  t.ok(reasons.has('bola.object_fanout.client'), [...reasons].join(','));
  t.ok(actions.slice(-40).every(stopped), `the farm's last 40 reads stopped: ${actions.slice(-40).join(',')}`);

  // customers behind one carrier address on one build: each logs in, reads its profile and two orders
  const nat = { ...CHROME, client_ip: '100.64.7.7' };
  let stops = 0;
  for (let u = 0; u < 60; u++) {
    const token = { has_authorization: true, token_hash: Buffer.from(`cust-${u}`) };
    send({ ...nat, session_hash: Buffer.from(`cs-${u}`), ...login(`cust${u}`, 'right') }, 200, 500);
    for (let i = 0; i < 2; i++) {
      const d = send({ ...nat, ...token, path: `/api/orders/${700_000 + u * 10 + i}` }, 200, 1500);
      if (d.action === 'BLOCK') stops++;
    }
  }
  t.equal(stops, 0, 'none of the customers blocked');
});

t.test('bola: customers whose tokens predate the service (a restart, long-lived app tokens) behind one carrier address read their own data unchallenged', async (t) => {
  const { send } = setup();
  // nobody logs in while the service watches: every token is unknown to it, none proven
  const nat = { ...CHROME, client_ip: '100.64.9.9' };
  const stops: string[] = [];
  for (let u = 0; u < 80; u++) {
    const token = { has_authorization: true, token_hash: Buffer.from(`old-${u}`) };
    for (const path of [`/api/users/${900 + u}/profile`, `/api/orders/${800_000 + u * 10}`, `/api/orders/${800_000 + u * 10 + 1}`]) {
      const d = send({ ...nat, ...token, path }, 200, 700);
      if (stopped(d.action)) stops.push(`${u} ${path}: ${d.action} ${d.reasons.join(',')}`);
    }
  }
  t.same(stops, [], 'each reads its own profile and two orders: 240 objects behind one client key, 3 per reader');
  // the farm behind that same address and build, each token reading a dozen others' profiles
  const reasons = new Set<string>();
  let last = '';
  for (let a = 0; a < 12; a++) {
    for (let i = 0; i < 12; i++) {
      const d = send({ ...nat, path: `/api/users/${5000 + ((a * 7919 + i * 104_729) % 90_000)}/profile`, has_authorization: true, token_hash: Buffer.from(`farm-${a}`) }, 200, 700);
      d.reasons.forEach((r) => reasons.add(r));
      last = d.action;
    }
  }
  t.ok(reasons.has('bola.object_fanout.client'), `what each token reads beyond its own few is fan-out: ${[...reasons].join(',')}`);
  t.ok(stopped(last), `the farm is stopped by its end (${last})`);
});

t.test('promo: an account farm behind a handful of residential exits, a fresh device and profile per account, the promo page read first', async (t) => {
  const { send } = setup();
  // a phone per account (its own model and device id), three exits; accounts made minutes ahead
  const who = (a: number) => ({
    user_agent: `ShopApp/5.2 (Android ${10 + (a % 5)}; SM-A${100 + a})`, header_names: APP.header_names,
    client_ip: `203.0.113.${100 + (a % 3)}`, device_hash: Buffer.from(`farm-dev-${a}`), session_hash: Buffer.from(`farm-s-${a}`),
  });
  const phone = (a: number) => `1390100${String(1000 + a)}`;
  for (let a = 0; a < 30; a++) send({ ...who(a), method: 'POST', path: '/api/auth/register', identifier: phone(a), password_hash: Buffer.from('p') }, 201, 7_000 + (a % 4) * 1_500);
  const actions: string[] = [];
  const reasons = new Set<string>();
  for (let a = 0; a < 30; a++) {
    // a person's pauses: log in, read the promo page and its info, then claim
    send({ ...who(a), ...login(phone(a), 'p') }, 200, 9_000 + (a % 5) * 2_000);
    send({ ...who(a), path: '/promo' }, 200, 14_000 + (a % 3) * 3_000);
    send({ ...who(a), path: '/api/promo/info' }, 200, 6_000 + (a % 4) * 2_500);
    const claim = send({ ...who(a), method: 'POST', path: '/api/promo/claim', has_authorization: true, token_hash: Buffer.from(`farm-token-${a}`) }, 200, 5_000);
    actions.push(claim.action);
    claim.reasons.forEach((r) => reasons.add(r));
  }
  t.equal(actions[0], 'CHALLENGE', `one such claim alone is a challenge (a headless browser solves it): ${actions[0]}`);
  t.ok(reasons.has('promo.fresh_claims.ip'), [...reasons].join(','));
  t.ok(actions.slice(-10).every((a) => a === 'BLOCK'), `the farm's claims blocked once its exits carry a few: ${actions.join(',')}`);
});

t.test('a proven customer answers for its own keys, not for a crew behind the same address and build', async (t) => {
  const { send } = setup();
  const nat = { ...CHROME, client_ip: '100.64.44.44' };
  // the customer: page, login (a proven session), an hour of shopping
  const me = { ...nat, session_hash: Buffer.from('customer-s') };
  send({ ...me, path: '/' }, 200, 5000);
  send({ ...me, ...login('grace', 'right') }, 200, 600_000);
  // a farm on the same carrier NAT and browser build registers accounts meanwhile
  for (let a = 0; a < 3; a++) send({ ...nat, session_hash: Buffer.from(`crew-${a}`), method: 'POST', path: '/api/auth/register', identifier: `1390200${String(1000 + a)}`, password_hash: Buffer.from('p') }, 201, 20_000);
  send({ ...me, path: '/promo', has_authorization: true, token_hash: Buffer.from('grace-token') }, 200, 20_000);
  const claim = send({ ...me, method: 'POST', path: '/api/promo/claim', has_authorization: true, token_hash: Buffer.from('grace-token') }, 200);
  t.notOk(stopped(claim.action), `the customer's claim: ${claim.action} ${claim.reasons.join(',')}`);
  // the crew's own claim from there is still judged
  const crew = send({ ...nat, session_hash: Buffer.from('crew-0'), method: 'POST', path: '/api/promo/claim', has_authorization: true, token_hash: Buffer.from('crew-token') });
  t.ok(stopped(crew.action), `the crew's: ${crew.action} ${crew.reasons.join(',')}`);
});

t.test('enum.automation_client: an HTTP library naming accounts on a reset route; logins keep cs.automation_client', async (t) => {
  const { send } = setup();
  const lib = { user_agent: 'python-requests/2.31.0', header_names: ['host', 'user-agent', 'accept-encoding', 'accept', 'connection', 'content-type'] };
  const reset = send({ ...lib, client_ip: '203.0.113.90', method: 'POST', path: '/api/auth/password-reset', identifier: '13900001234' }, 200);
  t.ok(reset.reasons.includes('enum.automation_client'), reset.reasons.join(','));
  const lg = send({ ...lib, client_ip: '203.0.113.91', ...login('henry', 'x') }, 401);
  t.ok(lg.reasons.includes('cs.automation_client'), lg.reasons.join(','));
  t.notOk(lg.reasons.includes('enum.automation_client'), 'counted once on a login');
  const person = send({ ...CHROME, client_ip: '192.0.2.91', method: 'POST', path: '/api/auth/password-reset', identifier: '13900005678' }, 200);
  t.notOk(person.reasons.includes('enum.automation_client'), 'a browser');
});

t.test('bola: reading each object twice (a reload, or sent again after a solved challenge) does not reset a sequential walk', async (t) => {
  const { send } = setup();
  const walker = { ...CHROME, client_ip: '203.0.113.120', has_authorization: true, token_hash: Buffer.from('walker') };
  let last = '';
  for (let i = 0; i < 12; i++) {
    for (let k = 0; k < 2; k++) last = send({ ...walker, path: `/api/orders/${600_000 + i}` }, 200, 20_000).action;
  }
  t.equal(last, 'BLOCK', `a walk of 12 ids, each read twice: ${last}`);
});

t.test('bola: a slow walker, one id every six minutes, is still a walker; a customer reading their orders over hours is not', async (t) => {
  const { send } = setup();
  const walker = { ...CHROME, client_ip: '203.0.113.121', has_authorization: true, token_hash: Buffer.from('slow-walker') };
  const actions: string[] = [];
  for (let i = 0; i < 14; i++) actions.push(send({ ...walker, path: `/api/orders/${610_000 + i}` }, 200, 360_000).action);
  t.equal(actions[actions.length - 1], 'BLOCK', actions.join(','));
  const me = { ...CHROME, client_ip: '192.0.2.121', has_authorization: true, token_hash: Buffer.from('customer-orders') };
  const mine = [620_013, 620_577, 621_940, 620_013, 622_301].map((id) => send({ ...me, path: `/api/orders/${id}` }, 200, 1_800_000).action);
  t.notOk(mine.some(stopped), mine.join(','));
});

t.test('bola.foreign_objects: a farm token reading others\' profiles one every few minutes from a new address each time; a customer reading their own all day is not', async (t) => {
  const clock = new VirtualClock(1_763_800_000_000);
  const owned = ROUTES.map((r) => (r.name === 'profile' ? { ...r, objects_per_token: 3 } : r));
  const engine = new Engine({ policy: policy({ routes: owned }), store: new MemoryStore({ maxKeys: 50_000 }), clock, identifierKey: Buffer.alloc(32, 1) });
  let n = 0;
  const send = (fields: Record<string, unknown>, gapMs: number) => {
    const id = `r${++n}`;
    const d = engine.decide(request({ request_id: id, ...fields }));
    engine.observe({ request_id: id, status: 200, auth_result: '', action: d.action } as Outcome);
    clock.advance(gapMs);
    return d;
  };
  // each token: 8 random profiles, 4-6 minutes apart (under every 10-minute fan-out bar), a fresh
  // residential address and a copied browser each time
  const farm: string[][] = [];
  for (let a = 0; a < 3; a++) {
    const reads: string[] = [];
    for (let i = 0; i < 8; i++) {
      const d = send({ ...CHROME, client_ip: `198.18.${a}.${i + 1}`, has_authorization: true, token_hash: Buffer.from(`farm-${a}`), path: `/api/users/${10_000 + ((a * 7919 + i * 104_729) % 90_000)}/profile` }, 240_000 + 10_000 * i);
      reads.push(`${d.action}:${d.reasons.join('+')}`);
    }
    farm.push(reads);
  }
  for (const reads of farm) {
    t.ok(reads.slice(0, 3).every((r) => r.startsWith('ALLOW')), `a token's first 3 are as good as anyone's: ${reads.join(' ')}`);
    t.ok(reads[3]!.startsWith('CHALLENGE') && reads[3]!.includes('bola.foreign_objects.principal'), `the 4th is challenged: ${reads[3]}`);
    t.ok(reads.slice(5).every((r) => r.startsWith('BLOCK')), `from the 6th on, blocked: ${reads.join(' ')}`);
  }
  // a customer opening their own profile twenty times over a day, from home, the office and a phone
  const mine: string[] = [];
  for (let i = 0; i < 20; i++) {
    const d = send({ ...CHROME, client_ip: `192.0.2.${(i % 3) + 1}`, has_authorization: true, token_hash: Buffer.from('customer-1'), path: '/api/users/4242/profile' }, 3_600_000);
    mine.push(d.action);
  }
  t.ok(mine.every((a) => a === 'ALLOW'), `the customer: ${mine.join(',')}`);
  // a partner's API key reads others' profiles by design: api_key_multiplier times the limit
  const partner: string[] = [];
  for (let i = 0; i < 40; i++) {
    const d = send({ user_agent: 'Acme-Sync/2.3', header_names: ['host', 'user-agent', 'x-api-key'], client_ip: '203.0.113.50', has_authorization: true, token_hash: Buffer.from('partner-1'), path: `/api/users/${20_000 + i}/profile` }, 5000);
    partner.push(d.action);
  }
  t.notOk(partner.some((a) => a === 'BLOCK' || a === 'CHALLENGE'), `a partner's 40 reads: ${partner.join(',')}`);
});

t.test('routes[].objects_per_token is refused off an object route with an {id}', async (t) => {
  t.throws(() => policy({ routes: [...BASE_ROUTES, { name: 'home2', class: 'public' as const, path: '/x', objects_per_token: 3 }] }), /objects_per_token/);
});

t.test('cs.unknown_login_wave: a crew with no history of its own (no cookie, no device id) that pays every challenge is blocked; people in the same wave are not', async (t) => {
  const { send, solving } = setup();
  // people logging in before and during the wave: a browser that loaded the page (which set its
  // session), an app with its device id; one in four mistypes first
  let people = 0;
  const person = (stops: string[]) => {
    const u = people++;
    const ip = `192.0.2.${(u % 200) + 1}`;
    if (u % 2 === 0) {
      send({ ...CHROME, client_ip: ip, path: '/' }, 200, 300);
      const me = { ...CHROME, client_ip: ip, session_hash: Buffer.from(`person-${u}`) };
      if (u % 4 === 0) stops.push(send({ ...me, ...login(`user${u}`, 'typo') }, 401, 5000).action);
      stops.push(send({ ...me, ...login(`user${u}`, 'right') }, 200, 300).action);
    } else {
      const me = { ...APP, client_ip: ip, device_hash: Buffer.from(`phone-${u}`) };
      if (u % 4 === 1) stops.push(send({ ...me, ...login(`1390000${String(1000 + u)}`, 'typo') }, 401, 5000).action);
      stops.push(send({ ...me, ...login(`1390000${String(1000 + u)}`, 'right') }, 200, 300).action);
    }
  };
  const before: string[] = [];
  for (let i = 0; i < 40; i++) person(before);
  // the crew: a copied browser, a fresh residential address per attempt, no cookie, no device id,
  // one known account after another with a leaked (wrong) password; it solves every challenge, so
  // only a block stops it
  const crew: Array<{ action: string; reasons: string[] }> = [];
  const during: string[] = [];
  for (let i = 0; i < 120; i++) {
    const d = solving({ ...CHROME, client_ip: `198.18.${i >> 8}.${i & 255}`, ...login(`victim${i}`, `leaked-${i}`) }, 401, 2000);
    crew.push(d);
    if (i % 3 === 0) person(during);
  }
  const first = crew.findIndex((d) => d.reasons.includes('cs.unknown_login_wave'));
  t.ok(first >= 0 && first <= 20, `the wave is named by attempt ${first + 1}`);
  const after = crew.slice(first + 10);
  const blocked = after.filter((d) => d.action === 'BLOCK').length;
  t.ok(blocked / after.length >= 0.95, `from ten attempts later on, ${blocked} of ${after.length} blocked`);
  t.same(before.filter(stopped), [], 'people before the wave');
  t.same(during.filter(stopped), [], `people during the wave (${during.length} logins): ${during.join(',')}`);
});

t.test('enum.not_found on a sign-up: a known list tried on the registration route answers "already registered" (409), far above what people get', async (t) => {
  const { send } = setup();
  const register = (identifier: string) => ({ method: 'POST', path: '/api/auth/register', identifier, password_hash: Buffer.from('new-pw') });
  // people signing up: new accounts (201); now and then one who already has an account (409)
  const people: string[] = [];
  for (let i = 0; i < 60; i++) {
    const ip = `192.0.${i}.7`;
    send({ ...CHROME, client_ip: ip, path: '/' }, 200, 300);
    people.push(send({ ...CHROME, client_ip: ip, session_hash: Buffer.from(`signup-${i}`), ...register(`1370000${String(1000 + i)}`) }, i % 15 === 0 ? 409 : 201, 20_000).action);
  }
  t.same(people.filter(stopped), [], 'people signing up');
  // the crew: one browser profile per exit, the page first, a list of numbers that all have accounts
  const reasons = new Set<string>();
  let first = -1;
  for (let i = 0; i < 60; i++) {
    const ip = `198.51.${100 + (i % 8)}.${i}`;
    send({ ...CHROME, client_ip: ip, path: '/' }, 200, 300);
    const d = send({ ...CHROME, client_ip: ip, session_hash: Buffer.from(`crew-${i % 8}`), ...register(`1360000${String(1000 + i)}`) }, 409, 3000);
    d.reasons.forEach((r) => reasons.add(r));
    if (first < 0 && d.reasons.some((r) => r.startsWith('enum.not_found.'))) first = i + 1;
  }
  t.ok(first > 0 && first <= 20, `the registered answers are evidence from attempt ${first}: ${[...reasons].join(',')}`);
});

t.test('enum.automation_wave: HTTP libraries naming account after account site-wide over rotating addresses; a synthetic monitor naming its test account is not', async (t) => {
  const { send, solving } = setup();
  const headerSets = [
    { user_agent: 'python-requests/2.31.0', header_names: ['host', 'user-agent', 'accept-encoding', 'accept', 'connection', 'content-type'] },
    { user_agent: 'Go-http-client/1.1', header_names: ['host', 'user-agent', 'content-length', 'content-type', 'accept-encoding'] },
    { user_agent: 'curl/8.5.0', header_names: ['host', 'user-agent', 'accept', 'content-type'] },
  ];
  // a monitor logs in with its test account every minute for two hours
  const monitor: string[] = [];
  for (let i = 0; i < 120; i++) {
    monitor.push(send({ ...headerSets[0], client_ip: '203.0.113.200', ...login('synthetic-check', 'right') }, 200, 60_000).action);
  }
  t.equal(monitor.filter((a) => a === 'BLOCK').length, 0, 'the monitor is never blocked');
  // the crew: a reset for a known number from a new address and one of three libraries each time,
  // paying any challenge
  const crew: string[] = [];
  for (let i = 0; i < 120; i++) {
    const d = solving({ ...headerSets[i % 3], client_ip: `198.18.${i >> 6}.${i & 63}`, method: 'POST', path: '/api/auth/password-reset', identifier: `1350000${String(1000 + i)}` }, 200, 4000);
    crew.push(`${d.action}:${d.reasons.includes('enum.automation_wave') ? 'wave' : ''}`);
  }
  const first = crew.findIndex((c) => c.endsWith('wave'));
  t.ok(first >= 0 && first <= 25, `the wave is named at attempt ${first + 1}`);
  const late = crew.slice(70);
  t.ok(late.every((c) => c.startsWith('BLOCK')), `blocked once it is 60 accounts wide: ${late.join(' ')}`);
});

t.test('authz.rejected_token: a token the site keeps answering 401 is stopped at the gateway; one rejected once (expired, then renewed) is not', async (t) => {
  const { send } = setup();
  const reads: string[] = [];
  for (let i = 0; i < 12; i++) {
    const d = send({ ...CHROME, client_ip: `198.18.1.${i + 1}`, has_authorization: true, token_hash: Buffer.from('never-issued'), path: `/api/orders/${500_000 + i * 37}` }, 401, 20_000);
    reads.push(`${d.action}${d.reasons.includes('authz.rejected_token') ? ':rejected' : ''}`);
  }
  t.same(reads.slice(0, 5), ['ALLOW', 'ALLOW', 'ALLOW', 'ALLOW', 'ALLOW'], 'the site answers the first five itself');
  t.ok(reads.slice(5, 11).every((r) => r === 'BLOCK:rejected'), `then blocked while its 401s are within the window: ${reads.join(' ')}`);
  // a customer whose token expired: one 401, a new login, the new token works
  const old = send({ ...CHROME, client_ip: '192.0.2.60', has_authorization: true, token_hash: Buffer.from('expired-1'), path: '/api/orders/700001' }, 401, 2000);
  send({ ...CHROME, client_ip: '192.0.2.60', session_hash: Buffer.from('cust-60'), ...login('cust60', 'right') }, 200, 1000);
  const renewed = [1, 2, 3].map((i) => send({ ...CHROME, client_ip: '192.0.2.60', has_authorization: true, token_hash: Buffer.from('renewed-1'), path: `/api/orders/70000${i}` }, 200, 5000).action);
  t.equal(old.action, 'ALLOW');
  t.same(renewed, ['ALLOW', 'ALLOW', 'ALLOW'], 'the renewed token reads on');
  // the site's sign-in backend fails for a few minutes and answers 401 to everyone: a customer's
  // token that worked before is not refused here once the site recovers
  const me = { ...CHROME, client_ip: '192.0.2.61', has_authorization: true, token_hash: Buffer.from('working-1') };
  send({ ...me, path: '/api/orders/700101' }, 200, 5000);
  for (let i = 0; i < 8; i++) send({ ...me, path: `/api/orders/70010${i}` }, 401, 20_000);
  const after = [1, 2, 3].map(() => send({ ...me, path: '/api/orders/700101' }, 200, 5000).action);
  t.same(after, ['ALLOW', 'ALLOW', 'ALLOW'], 'after the outage, the customer reads on');
  // a token that reads for an hour (the "accepted" mark is renewed once half its 10 minutes are
  // gone, not written on every answer), then meets the same outage: still not refused after it
  const long = { ...CHROME, client_ip: '192.0.2.62', has_authorization: true, token_hash: Buffer.from('working-2') };
  for (let i = 0; i < 60; i++) send({ ...long, path: '/api/orders/700201' }, 200, 60_000);
  for (let i = 0; i < 8; i++) send({ ...long, path: '/api/orders/700201' }, 401, 20_000);
  t.equal(send({ ...long, path: '/api/orders/700201' }, 200, 5000).action, 'ALLOW', 'an hour-old customer token reads on after the outage');
});

t.test('cs.failure_rate.tool: a farm with a fresh device per account whose sign-ups were blocked does not get the app\'s customers challenged', async (t) => {
  const { send, refused } = setup();
  const app = (u: string) => ({ ...APP, device_hash: Buffer.from(u) });
  const register = (identifier: string) => ({ method: 'POST', path: '/api/auth/register', identifier, password_hash: Buffer.from('farm-pw') });
  // the farm: the app's own headers, a fresh device per account, sign-ups Verdict refused (as
  // enum.automation_wave or the promo rules would): the gateway reports each as a 403 block
  for (let i = 0; i < 40; i++) refused({ ...app(`farm-dev-${i}`), client_ip: `198.18.9.${i + 1}`, ...register(`1340000${String(1000 + i)}`) }, 3000);
  // the app's customers log in after it, each on their own phone; one in four mistypes first
  const theirs: string[] = [];
  for (let u = 0; u < 20; u++) {
    const me = { ...app(`phone-${u}`), client_ip: `100.64.3.${u + 1}` };
    if (u % 4 === 0) theirs.push(send({ ...me, ...login(`1330000${String(1000 + u)}`, 'typo') }, 401, 5000).action);
    theirs.push(send({ ...me, ...login(`1330000${String(1000 + u)}`, 'right') }, 200, 5000).action);
  }
  t.same(theirs.filter(stopped), [], `the app's customers: ${theirs.join(',')}`);
});

t.test('promo.accounts_per_session: a farm claiming for account after account through one browser profile over rotating exits; a couple sharing a laptop is not', async (t) => {
  const { send } = setup();
  const claimFrom = (session: string, ip: string, a: string) => {
    send({ ...CHROME, client_ip: ip, session_hash: Buffer.from(session), path: '/promo' }, 200, 20_000);
    send({ ...CHROME, client_ip: ip, session_hash: Buffer.from(session), path: '/api/promo/info' }, 200, 15_000);
    return send({ ...CHROME, client_ip: ip, session_hash: Buffer.from(session), method: 'POST', path: '/api/promo/claim', has_authorization: true, token_hash: Buffer.from(a) }, 200, 30_000);
  };
  // the couple: one laptop at home, his account then hers
  const couple = [claimFrom('laptop-1', '192.0.2.30', 'him'), claimFrom('laptop-1', '192.0.2.30', 'her')];
  t.notOk(couple.some((d) => d.reasons.includes('promo.accounts_per_session')), couple.map((d) => d.reasons.join('+')).join(' | '));
  t.notOk(couple.some((d) => stopped(d.action)), 'neither stopped');
  // the farm: one browser profile (and the clearance in its jar), a new exit per account
  const farm = Array.from({ length: 6 }, (_, a) => claimFrom('farm-profile', `198.18.20.${a + 1}`, `farm-acct-${a}`));
  t.notOk(farm[1]!.reasons.includes('promo.accounts_per_session'), 'two accounts are a couple');
  t.ok(farm[2]!.reasons.includes('promo.accounts_per_session'), `the third account is not: ${farm[2]!.reasons.join('+')}`);
  t.ok(farm.slice(4).every((d) => d.action === 'BLOCK'), `from the fifth on, blocked: ${farm.map((d) => d.action).join(',')}`);
});

t.test('enum.unknown_wave: resets for a scattered list with no history of their own (no cookie, no device id) over single-use addresses; people resetting from the page are not', async (t) => {
  const { send, solving } = setup();
  const reset = (identifier: string) => ({ method: 'POST', path: '/api/auth/password-reset', identifier });
  // people forgetting their password now and then: the page first (it sets their session)
  const people: string[] = [];
  const person = (u: number) => {
    const ip = `192.0.2.${(u % 200) + 1}`;
    send({ ...CHROME, client_ip: ip, path: '/' }, 200, 2000);
    // their numbers scattered over the carriers' ranges, as a shop's customers' are
    const number = `13${String(100_000_000 + ((u * 7_919_731) % 900_000_000)).slice(0, 9)}`;
    const pd = send({ ...CHROME, client_ip: ip, session_hash: Buffer.from(`forgot-${u}`), ...reset(number) }, u % 10 === 0 ? 404 : 200, 3000);
    people.push(`${pd.action}:${pd.reasons.join('+')}`);
  };
  for (let u = 0; u < 30; u++) person(u);
  // the crew: a copied browser, a fresh address each time, no cookie; 80% of its numbers have no account
  const crew: Array<{ action: string; reasons: string[] }> = [];
  for (let i = 0; i < 100; i++) {
    crew.push(solving({ ...CHROME, client_ip: `198.18.7.${i + 1}`, ...reset(`1310000${String(3000 + i * 37)}`) }, i % 5 === 0 ? 200 : 404, 2000));
    if (i % 4 === 0) person(100 + i);
  }
  const first = crew.findIndex((d) => d.reasons.includes('enum.unknown_wave'));
  t.ok(first >= 0 && first <= 20, `the wave is named at attempt ${first + 1}`);
  t.ok(crew.slice(first + 10).every((d) => d.reasons.includes('enum.unknown_wave')), 'and stays on every attempt after');
  // the wave is not theirs: at most the route's alarms (a leaked list is being tried) ask them for
  // a challenge, as before it
  t.same(people.filter((p) => p.includes('enum.unknown_wave') || p.startsWith('BLOCK')), [], `people resetting from the page (${people.length}): ${people.join(',')}`);
});

t.test('promo.fresh_account: an account signed up through one browser profile and exit, logged in and claimed through another, is a fresh account\'s claim; an old account on a new phone is not', async (t) => {
  const { send } = setup();
  const claim = { method: 'POST', path: '/api/promo/claim' };
  // the farm: sign-up from one exit and cookie jar...
  send({ ...CHROME, client_ip: '198.18.20.1', session_hash: Buffer.from('signup-jar'), path: '/' }, 200, 5000);
  send({ ...CHROME, client_ip: '198.18.20.1', session_hash: Buffer.from('signup-jar'), method: 'POST', path: '/api/auth/register', identifier: '13900001111', password_hash: Buffer.from('farm') }, 201, 5000);
  // ...ten minutes later the login and the claim from another exit and jar
  const other = { ...CHROME, client_ip: '198.18.21.7', session_hash: Buffer.from('claim-jar') };
  send({ ...other, path: '/' }, 200, 600_000);
  send({ ...other, ...login('13900001111', 'farm') }, 200, 3000);
  const farm = send({ ...other, token_hash: Buffer.from('farm-token'), has_authorization: true, ...claim }, 200, 3000);
  t.ok(farm.reasons.includes('promo.fresh_account'), `the claim of an account made ten minutes ago elsewhere: ${farm.reasons.join(',')}`);
  // a customer whose account is months old logs in on a new phone and claims
  const phone = { ...APP, client_ip: '100.64.9.9', device_hash: Buffer.from('new-phone') };
  send({ ...phone, ...login('13900002222', 'mine') }, 200, 3000);
  const human = send({ ...phone, token_hash: Buffer.from('human-token'), has_authorization: true, ...claim }, 200, 3000);
  t.notOk(human.reasons.includes('promo.fresh_account'), `an old account: ${human.reasons.join(',') || 'none'}`);
  // made 45 minutes ahead of the sale: still fresh (it is still too young for its login to prove it)
  const ahead = { ...CHROME, client_ip: '198.18.23.3', session_hash: Buffer.from('ahead-jar') };
  send({ ...ahead, method: 'POST', path: '/api/auth/register', identifier: '13900003333', password_hash: Buffer.from('farm') }, 201, 2_700_000);
  send({ ...ahead, ...login('13900003333', 'farm') }, 200, 3000);
  const aged = send({ ...ahead, token_hash: Buffer.from('farm-token-3'), has_authorization: true, ...claim }, 200, 3000);
  t.ok(aged.reasons.includes('promo.fresh_account'), `an account made 45 minutes ahead: ${aged.reasons.join(',')}`);
  // and the farm's account once it is past fresh_account_s (an hour) logs in again elsewhere: not fresh
  const later = { ...CHROME, client_ip: '198.18.22.9', session_hash: Buffer.from('later-jar') };
  send({ ...later, ...login('13900001111', 'farm') }, 200, 3_700_000);
  const old = send({ ...later, token_hash: Buffer.from('farm-token-2'), has_authorization: true, ...claim }, 200, 3000);
  t.notOk(old.reasons.includes('promo.fresh_account'), `past the window: ${old.reasons.join(',') || 'none'}`);
});

t.test('promo newness alone: a newcomer who signs up for the sale and claims is tagged, not challenged; the same newness next to a farm\'s behaviour acts', async (t) => {
  const { send } = setup();
  const claim = { method: 'POST', path: '/api/promo/claim', has_authorization: true };
  // a person new to the shop, on a new phone behind a carrier NAT: the promo screen, signs up, logs in, reads the offer, claims
  const app = { ...APP, client_ip: '100.64.7.7', device_hash: Buffer.from('installed-for-the-sale') };
  send({ ...app, path: '/api/promo/info' }, 200, 40_000);
  send({ ...app, method: 'POST', path: '/api/auth/register', identifier: '13512345678', password_hash: Buffer.from('new') }, 201, 2000);
  send({ ...app, ...login('13512345678', 'new') }, 200, 1500);
  send({ ...app, path: '/api/promo/info', has_authorization: true, token_hash: Buffer.from('new-token') }, 200, 6000);
  const newcomer = send({ ...app, ...claim, token_hash: Buffer.from('new-token') });
  t.ok(newcomer.reasons.includes('promo.fresh_account') && newcomer.reasons.includes('promo.new_device'), `its newness is on record: ${newcomer.reasons.join(',')}`);
  t.equal(newcomer.action, 'TAG', `tagged, not stopped: ${newcomer.action} ${newcomer.score}`);
  // a farm account: the same newness, and its first request with the new token is the claim
  const farm = { ...APP, client_ip: '100.64.7.8', device_hash: Buffer.from('farm-device-1') };
  send({ ...farm, path: '/api/promo/info' }, 200, 40_000);
  send({ ...farm, method: 'POST', path: '/api/auth/register', identifier: '13900007777', password_hash: Buffer.from('farm') }, 201, 2000);
  send({ ...farm, ...login('13900007777', 'farm') }, 200, 6000);
  const bot = send({ ...farm, ...claim, token_hash: Buffer.from('farm-token-7') });
  t.ok(bot.reasons.includes('promo.first_action_claim'), bot.reasons.join(','));
  t.ok(stopped(bot.action), `the farm's claim is stopped: ${bot.action} ${bot.score}`);
});

t.test('promo.header_mismatch counts with newness, under the cap: a newcomer on an old phone is tagged; the same phone\'s farm behaviour acts', async (t) => {
  const { send } = setup();
  // an old Android browser: no client hints, no fetch metadata, no Accept-Language
  const OLD = { user_agent: 'Mozilla/5.0 (Linux; U; Android 4.4.2; zh-cn; GT-I9500 Build/KOT49H) AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 Mobile Safari/534.30', header_names: ['host', 'user-agent', 'accept', 'accept-encoding', 'content-type', 'cookie'] };
  const me = { ...OLD, client_ip: '198.51.100.30', session_hash: Buffer.from('old-phone') };
  send({ ...me, path: '/' }, 200, 5000);
  send({ ...me, method: 'POST', path: '/api/auth/register', identifier: '13512340000', password_hash: Buffer.from('new') }, 201, 2000);
  send({ ...me, ...login('13512340000', 'new') }, 200, 1500);
  send({ ...me, path: '/promo' }, 200, 1000);
  send({ ...me, path: '/api/promo/info', has_authorization: true, token_hash: Buffer.from('old-token') }, 200, 15_000);
  const claim = send({ ...me, method: 'POST', path: '/api/promo/claim', has_authorization: true, token_hash: Buffer.from('old-token') });
  t.ok(claim.reasons.includes('promo.header_mismatch') && claim.reasons.includes('promo.fresh_account'), claim.reasons.join(','));
  t.equal(claim.action, 'TAG', `a newcomer on an old phone: ${claim.action} ${claim.score}`);
  // the same phone's headers on a claim with no page before it: a farm's behaviour lifts the cap
  const farm = { ...OLD, client_ip: '198.51.100.31', session_hash: Buffer.from('farm-profile') };
  send({ ...farm, path: '/' }, 200, 2000);
  send({ ...farm, method: 'POST', path: '/api/auth/register', identifier: '13900001111', password_hash: Buffer.from('f') }, 201, 2000);
  send({ ...farm, ...login('13900001111', 'f') }, 200, 1000);
  const bot = send({ ...farm, method: 'POST', path: '/api/promo/claim', has_authorization: true, token_hash: Buffer.from('farm-token') });
  t.ok(bot.reasons.includes('promo.no_precursor'), bot.reasons.join(','));
  t.ok(stopped(bot.action), `the farm's claim: ${bot.action} ${bot.score}`);
});

t.test('capNewness: newness signals alone combine to at most the cap, in proportion; any farm signal leaves them be', async (t) => {
  const { capNewness } = await import('../../../decision-service/src/engine/detectors/promo-abuse.ts');
  const sig = (code: string, score: number) => ({ code, score, monitor: false, cache: undefined });
  const combined = (xs: Array<{ score: number }>) => 100 * (1 - xs.reduce((m, s) => m * (1 - s.score / 100), 1));
  const alone = [sig('cs.other', 40), sig('promo.fresh_account', 65), sig('promo.new_device', 25)];
  capNewness(alone, 1, 50);
  t.ok(Math.abs(combined(alone.slice(1)) - 50) < 1e-9, `combined ${combined(alone.slice(1))}`);
  t.equal(alone[0]!.score, 40, 'signals before `first` (other detectors) untouched');
  t.ok(alone[1]!.score > alone[2]!.score, 'each keeps its share of the evidence');
  const farm = [sig('promo.fresh_account', 65), sig('promo.first_action_claim', 35)];
  capNewness(farm, 0, 50);
  t.same(farm.map((s) => s.score), [65, 35], 'a farm behaviour: as they were');
  const weak = [sig('promo.new_device', 25)];
  capNewness(weak, 0, 50);
  t.equal(weak[0]!.score, 25, 'under the cap: as it was');
});

t.test('promo.hollow_precursor is the claim\'s own: a colleague\'s page load behind the same office NAT a second ago does not make a person\'s read hollow', async (t) => {
  const { send } = setup();
  const office = { ...CHROME, client_ip: '203.0.113.50' };
  const me = { ...office, session_hash: Buffer.from('my-browser') };
  send({ ...me, path: '/promo' }, 200, 1000);
  send({ ...me, path: '/api/promo/info', has_authorization: true, token_hash: Buffer.from('my-token') }, 200, 20_000);
  // a colleague with the same managed browser opens the promo page a second before my claim
  send({ ...office, session_hash: Buffer.from('colleague'), path: '/promo' }, 200, 500);
  const mine = send({ ...me, method: 'POST', path: '/api/promo/claim', has_authorization: true, token_hash: Buffer.from('my-token') }, undefined, 500);
  t.notOk(mine.reasons.includes('promo.hollow_precursor'), `read 21 s ago in my own session: ${mine.reasons.join(',') || 'none'}`);
  // the colleague claims a second after their own page load: hollow
  const theirs = send({ ...office, session_hash: Buffer.from('colleague'), method: 'POST', path: '/api/promo/claim', has_authorization: true, token_hash: Buffer.from('their-token') });
  t.ok(theirs.reasons.includes('promo.hollow_precursor'), `a second after their own page: ${theirs.reasons.join(',')}`);
});
