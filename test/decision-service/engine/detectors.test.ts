// Each detector: fires on the pattern it exists for, stays quiet on the human version of it.

import t from 'tap';
import { VirtualClock } from '../../../decision-service/src/engine/clock.ts';
import { Engine, targetKey } from '../../../decision-service/src/engine/engine.ts';
import { MemoryStore } from '../../../decision-service/src/state/memory-store.ts';
import type { Outcome } from '../../../decision-service/src/wire/schema.ts';
import { policy, request } from '../../helpers/policy.ts';

const CHROME = {
  user_agent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  accept_language: 'en-US,en;q=0.9',
  sec_ch_ua: '"Chromium";v="120"',
  sec_fetch_mode: 'cors',
  header_names: ['host', 'user-agent', 'accept', 'accept-language', 'sec-ch-ua', 'sec-fetch-mode', 'content-type'],
};
const SCRIPT = { user_agent: 'python-requests/2.31', header_names: ['host', 'user-agent', 'accept-encoding', 'accept', 'connection', 'content-type'] };

function setup(overrides: Parameters<typeof policy>[0] = {}) {
  const clock = new VirtualClock(1_763_800_000_000);
  const engine = new Engine({ policy: policy(overrides), store: new MemoryStore({ maxKeys: 10_000 }), clock, identifierKey: Buffer.alloc(32, 1) });
  let n = 0;
  const send = (fields: Record<string, unknown>, status?: number, authResult = '') => {
    const id = `r${++n}`;
    const d = engine.decide(request({ request_id: id, ...fields }));
    if (status !== undefined) engine.observe({ request_id: id, status, auth_result: authResult } as Outcome);
    clock.advance(1000);
    return d;
  };
  return { engine, clock, send };
}

const login = (identifier: string, pw: string, extra: Record<string, unknown> = {}) => ({
  method: 'POST', path: '/api/auth/login', identifier, password_hash: Buffer.from(pw), ...extra,
});

t.test('injection in the query is blocked; normal queries are not', async (t) => {
  const { send } = setup();
  for (const q of ["id=1'%20OR%20'1'='1", 'q=1 UNION SELECT password FROM users', 'x=<script>alert(1)</script>', 'h=${jndi:ldap://x/a}', 'c=;cat /etc/hosts']) {
    t.ok(send({ query: q }).reasons.includes('probe.injection'), q);
  }
  for (const q of ['q=shoes&page=2', 'sort=price,desc', 'name=O%27Brien']) t.notOk(send({ query: q }).reasons.includes('probe.injection'), q);
});

t.test('missing credentials: a route names what authenticates it; a session cookie is none on a bearer-token API', async (t) => {
  const { send } = setup({ routes: [
    { name: 'order', class: 'object', path: '/api/orders/{id}', credentials: ['authorization', 'api_key'] },
    { name: 'cart', class: 'object', path: '/api/cart/{id}' },
  ] });
  const session = { session_hash: Buffer.from('a-session-the-home-page-set') };
  // bearer-token route: the page's session cookie alone is missing credentials (blocked: object routes block at 80)
  const cookieOnly = send({ ...CHROME, path: '/api/orders/7', ...session });
  t.ok(cookieOnly.reasons.includes('authz.missing_credentials'), 'session cookie only');
  t.equal(cookieOnly.action, 'BLOCK');
  t.notOk(send({ ...CHROME, path: '/api/orders/7', ...session, has_authorization: true, token_hash: Buffer.from('t') }).reasons.includes('authz.missing_credentials'), 'bearer token');
  t.notOk(send({ ...CHROME, path: '/api/orders/7', token_hash: Buffer.from('k'), header_names: ['host', 'x-api-key'] }).reasons.includes('authz.missing_credentials'), 'API key');
  t.ok(send({ ...CHROME, path: '/api/orders/7' }).reasons.includes('authz.missing_credentials'), 'nothing at all');
  // a route that does not say: any credential, the session cookie included
  t.notOk(send({ ...CHROME, path: '/api/cart/7', ...session }).reasons.includes('authz.missing_credentials'), 'cookie session route');
  t.ok(send({ ...CHROME, path: '/api/cart/7' }).reasons.includes('authz.missing_credentials'));
});

t.test('shadow and zombie routes are tagged', async (t) => {
  const { send } = setup({ routes: [
    { name: 'home', class: 'public', path: '/' },
    { name: 'old', class: 'public', path: '/api/v0/**', deprecated: true },
  ] });
  t.ok(send({ path: '/api/v0/items' }).reasons.includes('authz.zombie_route'));
  t.ok(send({ path: '/undeclared', has_authorization: true }).reasons.includes('authz.shadow_route'));
  t.same(send({ path: '/' }).reasons, []);
});

t.test('enumeration: one client walking identifiers is stopped within 20 requests', async (t) => {
  const { send } = setup();
  let first = 0;
  for (let i = 0; i < 40; i++) {
    const d = send({ ...SCRIPT, client_ip: '203.0.113.5', method: 'POST', path: '/api/auth/login', identifier: `138000${String(10000 + i)}`, password_hash: Buffer.from('x') }, 404);
    if (!first && d.action !== 'ALLOW' && d.action !== 'TAG') first = i + 1;
  }
  t.ok(first > 0 && first <= 20, `detected at request ${first}`);
});

t.test('enumeration: a number walk over single-use rotating IPs is seen by locality', async (t) => {
  const { send } = setup();
  let first = 0;
  for (let i = 0; i < 40; i++) {
    const d = send({ ...CHROME, client_ip: `198.18.${i}.${(i * 7) % 250}`, method: 'POST', path: '/api/auth/login', identifier: `13800${String(20000 + i).padStart(6, '0')}` }, 404);
    if (!first && (d.action === 'CHALLENGE' || d.action === 'BLOCK')) first = i + 1;
    if (first) t.ok(d.reasons.some((r) => r.startsWith('enum.')), 'reason names enumeration');
  }
  t.ok(first > 0 && first <= 20, `detected at request ${first}`);
});

t.test('enumeration: a CGNAT address with many different humans is not flagged', async (t) => {
  const { send } = setup();
  for (let i = 0; i < 12; i++) {
    // each loads the page (which sets the session cookie), then logs in
    send({ ...CHROME, user_agent: `${CHROME.user_agent} v${i % 5}`, client_ip: '100.64.0.1' });
    const d = send({ ...CHROME, user_agent: `${CHROME.user_agent} v${i % 5}`, client_ip: '100.64.0.1', session_hash: Buffer.from(`s${i}`), ...login(`user${i * 977}`, `pw${i}`) }, 200);
    t.equal(d.action, 'ALLOW', `user ${i}`);
  }
});

t.test('credential stuffing: failures per client, then per identifier challenge for its owner', async (t) => {
  const { send } = setup();
  let first = 0;
  for (let i = 0; i < 30; i++) {
    const d = send({ ...SCRIPT, client_ip: '203.0.113.9', ...login(`victim${i}`, `leaked${i}`) }, 401);
    if (!first && (d.action === 'CHALLENGE' || d.action === 'BLOCK')) first = i + 1;
  }
  t.ok(first > 0 && first <= 20, `fast stuffing detected at ${first}`);

  const s2 = setup();
  for (let i = 0; i < 5; i++) s2.send({ ...SCRIPT, client_ip: `198.51.${i}.1`, ...login('alice', `guess${i}`) }, 401);
  s2.send({ ...CHROME, client_ip: '192.0.2.44' }); // the login page
  const owner = s2.send({ ...CHROME, client_ip: '192.0.2.44', session_hash: Buffer.from('alice-session'), ...login('alice', 'right') });
  t.equal(owner.action, 'CHALLENGE', 'the owner is challenged, not blocked');
  t.ok(owner.reasons.includes('cs.failure_rate.identifier'));
});

t.test('credential stuffing: spraying one password across accounts', async (t) => {
  const { send } = setup();
  let last;
  for (let i = 0; i < 10; i++) last = send({ ...CHROME, client_ip: `198.18.1.${i}`, ...login(`acct${i}`, 'Summer2026!') }, 401);
  t.ok(last?.reasons.includes('cs.password_spray'));
});

t.test('credential stuffing: a human typo then success stays allowed', async (t) => {
  const { send } = setup();
  const human = { ...CHROME, client_ip: '192.0.2.10', session_hash: Buffer.from('s1') };
  t.equal(send({ ...CHROME, client_ip: '192.0.2.10' }).action, 'ALLOW', 'the page that sets the session cookie');
  t.equal(send({ ...human, ...login('bob', 'bob-typo') }, 401).action, 'ALLOW');
  t.equal(send({ ...human, ...login('bob', 'bob-typo2') }, 401).action, 'ALLOW');
  t.equal(send({ ...human, ...login('bob', 'bob-right') }, 200).action, 'ALLOW');
});

t.test('traversal: a sequential id walk with one token is blocked; a user reading own orders is not', async (t) => {
  const { send } = setup();
  const token = Buffer.from('one-valid-token');
  let first = 0;
  for (let i = 0; i < 30; i++) {
    const d = send({ ...SCRIPT, client_ip: '203.0.113.77', path: `/api/orders/${500000 + i}`, has_authorization: true, token_hash: token }, 200);
    if (!first && d.action === 'BLOCK') first = i + 1;
  }
  t.ok(first > 0 && first <= 20, `walk blocked at ${first}`);
  const user = { ...CHROME, client_ip: '192.0.2.20', has_authorization: true, token_hash: Buffer.from('user-token') };
  for (const id of [500100, 500101, 500102, 500103, 500104, 500101]) t.equal(send({ ...user, path: `/api/orders/${id}` }, 200).action, 'ALLOW');
});

t.test('promo: a scripted claimer without precursors is stopped; a human after the promo page is not', async (t) => {
  const { send, clock } = setup();
  const bot = send({ ...SCRIPT, client_ip: '203.0.113.50', method: 'POST', path: '/api/promo/claim', has_authorization: true, token_hash: Buffer.from('bot1') });
  t.ok(bot.action === 'CHALLENGE' || bot.action === 'BLOCK', `bot ${bot.action} ${bot.reasons.join(',')}`);
  const human = { ...CHROME, client_ip: '192.0.2.30', has_authorization: true, token_hash: Buffer.from('h1') };
  send({ ...human, path: '/api/promo/info' });
  clock.advance(6000); // reads the offer
  t.equal(send({ ...human, method: 'POST', path: '/api/promo/claim' }).action, 'ALLOW');
});

t.test('promo: one device claiming for many accounts', async (t) => {
  const { send } = setup();
  const device = Buffer.from('device-farm-1');
  let last;
  for (let i = 0; i < 6; i++) {
    const c = { ...CHROME, client_ip: `198.18.9.${i}`, device_hash: device, has_authorization: true, token_hash: Buffer.from(`acct${i}`) };
    send({ ...c, path: '/api/promo/info' });
    last = send({ ...c, method: 'POST', path: '/api/promo/claim' });
  }
  t.ok(last?.action === 'BLOCK' || last?.action === 'CHALLENGE', `${last?.action} ${last?.reasons.join(',')}`);
});

t.test('automation: machine-regular polling of public pages; irregular humans pass', async (t) => {
  const { send, clock } = setup();
  let flagged = false;
  for (let i = 0; i < 12; i++) {
    const d = send({ ...SCRIPT, client_ip: '203.0.113.90', path: '/' });
    clock.advance(4000);
    flagged ||= d.reasons.includes('bot.regular_timing');
  }
  t.ok(flagged);
  const gaps = [3000, 41000, 7000, 120000, 2000, 15000, 60000, 9000, 33000, 4000];
  for (const g of gaps) {
    t.notOk(send({ ...CHROME, client_ip: '192.0.2.91', path: '/' }).reasons.includes('bot.regular_timing'));
    clock.advance(g);
  }
});

t.test('automation: ten regular requests with a popular browser build do not mark the build (issue 11 attack)', async (t) => {
  const { send, clock } = setup();
  const flaggedIps: string[] = [];
  for (let i = 0; i < 10; i++) {
    const ip = `203.0.113.${100 + (i % 3)}`;
    if (send({ ...CHROME, client_ip: ip, path: '/' }).reasons.includes('bot.regular_timing')) flaggedIps.push(ip);
    clock.advance(1000);
  }
  t.ok(flaggedIps.length > 0, `the regular stream itself is seen (${flaggedIps.join(', ')})`);
  clock.advance(60_000);
  // other people with the same build, from their own addresses, minutes later
  for (let i = 0; i < 20; i++) {
    const d = send({ ...CHROME, client_ip: `198.51.100.${i + 1}`, path: '/' });
    t.notOk(d.reasons.includes('bot.regular_timing'), `customer ${i + 1}: ${d.action} ${d.reasons.join(',')}`);
    clock.advance(7000 + ((i * 7919) % 23000));
  }
  // the poller's own addresses stay marked
  const again = send({ ...CHROME, client_ip: flaggedIps[0], path: '/' });
  t.ok(again.reasons.includes('bot.regular_timing'), `the poller is remembered: ${again.action} ${again.reasons.join(',')}`);
});

t.test('canary enforcement: a share of clients enforced, the rest observed', async (t) => {
  const { send } = setup({ detectors: { missing_credentials: { canary_percent: 50 } } });
  let enforced = 0;
  let observed = 0;
  for (let i = 0; i < 200; i++) {
    const d = send({ client_ip: `198.51.100.${i % 250}`, user_agent: `ua${i}`, path: '/api/orders/1' });
    if (d.action === 'BLOCK') enforced++;
    else if (d.dry_run) observed++;
  }
  t.equal(enforced + observed, 200);
  t.ok(enforced > 60 && enforced < 140, `enforced ${enforced} of 200`);
});

t.test('sensitive probes: each blocked, the address cached at the gateway only after cache_after probes', async (t) => {
  const { send } = setup({ detectors: { sensitive_path: { cache: { key: 'ip', ttl_s: 300 }, cache_after: 3 } } });
  const probes = ['/.env', '/.git/config', '/backup.sql', '/wp-login.php'].map((path) => send({ client_ip: '203.0.113.66', path }));
  t.same(probes.map((d) => d.action), ['BLOCK', 'BLOCK', 'BLOCK', 'BLOCK']);
  // before that, the probed URL itself is refused for whoever asks for it (target key)
  t.same(probes.map((d) => d.cache_key), [targetKey('/.env', ''), targetKey('/.git/config', ''), 'ip:203.0.113.66', 'ip:203.0.113.66']);
});

// Issue 14: a partner's order sync reads hundreds of orders every few minutes, all of them found;
// a fresh token reading random ids (BOLA) starts at once and guesses.
const PARTNER = { user_agent: 'AcmeLogistics-OrderSync/2.3', header_names: ['host', 'user-agent', 'accept', 'authorization', 'x-api-key', 'accept-encoding'], has_authorization: true };

t.test('traversal: a partner principal with a clean history and found orders syncs at volume; a fresh API-key token walking at once is stopped', async (t) => {
  const { send, clock } = setup();
  const partner = { ...PARTNER, client_ip: '198.51.100.20', token_hash: Buffer.from('partner-token'), api_key_hash: Buffer.from('pk_live_acme') };
  let stopped = 0;
  let seen = 0;
  // a batch of 50 found orders every minute for an hour: 500 distinct orders per 10 minutes
  for (let b = 0; b < 60; b++) {
    for (let i = 0; i < 50; i++) {
      const d = send({ ...partner, path: `/api/orders/${500000 + ((b * 50 + i) * 7919) % 9000}` }, 200);
      seen++;
      if (d.action === 'BLOCK' || d.action === 'CHALLENGE') stopped++;
      clock.advance(-900); // send() moves 1 s; the batch runs at ~10/s
    }
    clock.advance(60_000 - 5_000);
  }
  t.equal(stopped, 0, `the partner's ${seen} reads: none stopped`);
  // without the rule (established_after_s 0) the same sync is stopped
  const { send: sendOff, clock: clockOff } = setup({ detectors: { traversal: { established_after_s: 0 } } });
  let offStopped = 0;
  for (let b = 0; b < 20; b++) {
    for (let i = 0; i < 50; i++) {
      const d = sendOff({ ...partner, path: `/api/orders/${500000 + ((b * 50 + i) * 7919) % 9000}` }, 200);
      if (d.action === 'BLOCK' || d.action === 'CHALLENGE') offStopped++;
      clockOff.advance(-900);
    }
    clockOff.advance(60_000 - 5_000);
  }
  t.ok(offStopped > 0, `without established principals the sync is stopped (${offStopped} of 1000)`);

  // a token first seen now reading twice that from its first minute (an API key is a header anyone can send)
  const { send: send2, clock: clock2 } = setup();
  const walker = { ...PARTNER, client_ip: '203.0.113.120', token_hash: Buffer.from('fresh-token'), api_key_hash: Buffer.from('pk_live_made_up') };
  let first = 0;
  let n = 0;
  for (let b = 0; b < 20 && !first; b++) {
    for (let i = 0; i < 100; i++) {
      n++;
      const d = send2({ ...walker, path: `/api/orders/${500000 + ((b * 50 + i) * 7919) % 9000}` }, 200);
      if (!first && (d.action === 'BLOCK' || d.action === 'CHALLENGE')) first = n;
      clock2.advance(-900);
    }
    clock2.advance(60_000 - 5_000);
  }
  t.ok(first > 0 && first <= 500, `a fresh token reading 100 orders a minute from its first minute is stopped (at read ${first})`);
  // ...and stays unestablished once its walk was seen, however long it waits
  clock2.advance(3_600_000);
  let later = 0;
  for (let i = 0; i < 400; i++) {
    const d = send2({ ...walker, path: `/api/orders/${510000 + i * 3}` }, 200);
    if (d.action === 'BLOCK' || d.action === 'CHALLENGE') later++;
    clock2.advance(-900);
  }
  t.ok(later > 0, `an hour later it is still judged as a walker (${later} of 400 stopped)`);
});

t.test('traversal: an aged token whose reads mostly miss, or walk ids, is not let through', async (t) => {
  const { send, clock } = setup();
  const token = { ...SCRIPT, client_ip: '203.0.113.121', has_authorization: true, token_hash: Buffer.from('aged-token') };
  send({ ...token, path: '/api/orders/500001' }, 200);
  clock.advance(3_600_000); // first seen an hour ago
  let stopped = 0;
  for (let i = 0; i < 400; i++) {
    const d = send({ ...token, path: `/api/orders/${600000 + i * 37}` }, i % 3 === 0 ? 200 : 404);
    if (d.action === 'BLOCK' || d.action === 'CHALLENGE') stopped++;
    clock.advance(4000);
  }
  t.ok(stopped > 300, `guessing ids, a read every 5 s: ${stopped} of 400 stopped`);
  // its look-alike: an aged token reading found orders at that pace, a few dozen a window
  const reader = { ...SCRIPT, client_ip: '203.0.113.122', has_authorization: true, token_hash: Buffer.from('aged-reader') };
  send({ ...reader, path: '/api/orders/500001' }, 200);
  clock.advance(3_600_000);
  let readerStopped = 0;
  for (let i = 0; i < 400; i++) {
    const d = send({ ...reader, path: `/api/orders/${500000 + i}` }, 200);
    if (d.action === 'BLOCK' || d.action === 'CHALLENGE') readerStopped++;
    clock.advance(4000);
  }
  t.ok(readerStopped > 300, `...but an id walk is a walk however old the token (${readerStopped} of 400 stopped: bola.sequential_walk)`);
});

t.test('automation: an uptime check polling every minute from three fixed addresses is not a bot; a poller rotating addresses at that pace is', async (t) => {
  const { send, clock } = setup();
  const MONITOR = { user_agent: 'Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)', header_names: ['host', 'user-agent', 'accept', 'accept-encoding', 'connection'] };
  let flagged = 0;
  for (let i = 0; i < 120; i++) {
    if (send({ ...MONITOR, client_ip: `198.18.0.${10 + (i % 3)}`, path: '/' }).reasons.includes('bot.regular_timing')) flagged++;
    clock.advance(59_000 + (i % 2 ? 10 : -10));
  }
  t.equal(flagged, 0, 'two hours of checks, none flagged');
  // a check every 20 s from two locations in turn: each address calls every 40 s
  const { send: sendPair, clock: clockPair } = setup();
  let pairFlagged = 0;
  for (let i = 0; i < 200; i++) {
    if (sendPair({ ...MONITOR, client_ip: `198.18.1.${10 + (i % 2)}`, path: '/promo' }).reasons.includes('bot.regular_timing')) pairFlagged++;
    clockPair.advance(19_000 + (i % 2 ? 10 : -10));
  }
  t.equal(pairFlagged, 0, 'a build stream every 20 s from two fixed addresses: none flagged');
  const { send: sendOff, clock: clockOff } = setup({ detectors: { automation: { monitor_min_gap_s: 0 } } });
  let offFlagged = 0;
  for (let i = 0; i < 120; i++) {
    if (sendOff({ ...MONITOR, client_ip: `198.18.0.${10 + (i % 3)}`, path: '/' }).reasons.includes('bot.regular_timing')) offFlagged++;
    clockOff.advance(59_000 + (i % 2 ? 10 : -10));
  }
  t.ok(offFlagged > 50, `with monitor_min_gap_s 0 the checks are flagged (${offFlagged} of 120)`);

  const { send: send2, clock: clock2 } = setup();
  let rotated = 0;
  for (let i = 0; i < 120; i++) {
    if (send2({ ...SCRIPT, client_ip: `100.64.${i >> 6}.${i % 64}`, path: '/api/promo/info' }).reasons.includes('bot.regular_timing')) rotated++;
    clock2.advance(59_000 + (i % 2 ? 10 : -10));
  }
  t.ok(rotated > 50, `the same pace from a new address each time is a rotating poller (${rotated} of 120 flagged)`);

  const { send: send3, clock: clock3 } = setup();
  let fast = 0;
  for (let i = 0; i < 40; i++) {
    if (send3({ ...MONITOR, client_ip: '198.18.0.10', path: '/' }).reasons.includes('bot.regular_timing')) fast++;
    clock3.advance(4000);
  }
  t.ok(fast > 20, `a fixed address polling every 5 s is a bot whatever it calls itself (${fast} of 40 flagged)`);
  // ...and stays one while the gateway answers it from the cache: the service then sees it only
  // every cache TTL (120 s), an uptime check's pace, for hours
  let cachedFlagged = 0;
  for (let i = 0; i < 60; i++) {
    clock3.advance(119_000);
    if (send3({ ...MONITOR, client_ip: '198.18.0.10', path: '/' }).reasons.includes('bot.regular_timing')) cachedFlagged++;
  }
  t.equal(cachedFlagged, 60, 'two hours behind the gateway cache: still flagged on every request that reaches the service');
});
