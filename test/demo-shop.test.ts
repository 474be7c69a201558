import t from 'tap';
import { buildShop, startShop, WINNERS_MAX_PAGE_SIZE, WINNERS_PAGE_SIZE } from '../scripts/demo-shop/app.ts';
import {
  COMMON_PASSWORDS,
  DEFAULT_SEED,
  DEFAULT_USER_COUNT,
  FIRST_ORDER_ID,
  FIRST_USER_ID,
  PHONE_BLOCK,
  makeUsers,
  phoneInBlock,
  type DemoUser,
} from '../scripts/demo-shop/users.ts';

const SMALL = 200;

function firstUser(users: DemoUser[], pred: (u: DemoUser) => boolean = () => true): DemoUser {
  const user = users.find(pred);
  if (user === undefined) throw new Error('no matching seeded user');
  return user;
}

/** An unregistered phone in the block (the block is far larger than the population). */
function unregisteredPhone(users: DemoUser[]): string {
  const taken = new Set(users.map((u) => u.phone));
  for (let i = 0; i < PHONE_BLOCK.size; i++) {
    const phone = phoneInBlock(i);
    if (!taken.has(phone)) return phone;
  }
  throw new Error('block full');
}

async function loginToken(app: ReturnType<typeof buildShop>, user: DemoUser): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: user.username, password: user.password } });
  return (res.json() as { token: string }).token;
}

t.test('population is deterministic per seed and shaped as documented', async (t) => {
  const a = makeUsers(DEFAULT_SEED, DEFAULT_USER_COUNT);
  const b = makeUsers(DEFAULT_SEED, DEFAULT_USER_COUNT);
  // Compare serialised forms: a deep t.same over 5,000 users is needlessly slow in tap.
  const json = JSON.stringify(a);
  t.equal(JSON.stringify(b), json, 'same seed → same data');
  t.not(JSON.stringify(makeUsers(7, SMALL)), JSON.stringify(makeUsers(8, SMALL)), 'different seed → different data');
  t.equal(JSON.stringify(makeUsers()), json, 'defaults are seed 42, 5,000 users');
  t.equal(JSON.stringify(makeUsers(DEFAULT_SEED, SMALL)), JSON.stringify(a.slice(0, SMALL)), 'a smaller count is a prefix');

  t.equal(a.length, 5000);
  t.ok(a.every((u, i) => u.id === FIRST_USER_ID + i), 'ids sequential from 1000');

  const phones = new Set(a.map((u) => u.phone));
  t.equal(phones.size, a.length, 'phones unique');
  t.ok(a.every((u) => /^13800\d{6}$/.test(u.phone)), 'every phone in 13800000000–13800099999');
  t.equal(new Set(a.map((u) => u.username)).size, a.length, 'usernames unique');

  const weak = a.filter((u) => COMMON_PASSWORDS.includes(u.password));
  t.ok(weak.length > 0.15 * a.length && weak.length < 0.25 * a.length, `~20% weak passwords (${weak.length})`);
  t.ok(a.every((u) => u.weak_password === COMMON_PASSWORDS.includes(u.password)), 'weak_password flag matches');

  const orders = a.flatMap((u) => u.orders);
  t.ok(a.every((u) => u.orders.length <= 5), '0–5 orders per user');
  t.ok(a.some((u) => u.orders.length === 0) && a.some((u) => u.orders.length === 5), 'full range of order counts');
  t.ok(orders.every((o, i) => o.id === FIRST_ORDER_ID + i), 'order ids sequential');
  t.ok(orders.every((o) => a[o.user_id - FIRST_USER_ID]?.id === o.user_id), 'orders point at their owner');

  t.throws(() => makeUsers(1, PHONE_BLOCK.size), RangeError, 'refuses to fill the phone block');
  t.throws(() => phoneInBlock(PHONE_BLOCK.size), RangeError);
});

t.test('pages, assets, health', async (t) => {
  const app = buildShop({ users: SMALL });
  t.teardown(() => app.close());
  for (const [url, type] of [
    ['/', 'text/html'],
    ['/promo', 'text/html'],
    ['/static/app.js', 'application/javascript'],
    ['/static/style.css', 'text/css'],
  ] as const) {
    const res = await app.inject({ method: 'GET', url });
    t.equal(res.statusCode, 200, url);
    t.match(res.headers['content-type'], type, `${url} content-type`);
    t.ok(res.body.length > 0);
  }
  const health = await app.inject({ method: 'GET', url: '/healthz' });
  t.equal(health.statusCode, 200);
  const missing = await app.inject({ method: 'GET', url: '/nope' });
  t.equal(missing.statusCode, 404);
  t.same(missing.json(), { error: 'not found' });
});

t.test('login: enumeration oracle, username or phone, JSON or form, v1 endpoint', async (t) => {
  const users = makeUsers(DEFAULT_SEED, SMALL);
  const user = firstUser(users);
  const app = buildShop({ users: SMALL });
  t.teardown(() => app.close());

  for (const url of ['/api/auth/login', '/api/v1/login']) {
    const ok = await app.inject({ method: 'POST', url, payload: { username: user.username, password: user.password } });
    t.equal(ok.statusCode, 200, `${url} success`);
    t.equal(ok.headers['x-auth-result'], 'success');
    const body = ok.json() as { token: string; user_id: number };
    t.equal(body.user_id, user.id);
    t.match(body.token, /^[0-9a-f]{40}$/);

    const byPhone = await app.inject({ method: 'POST', url, payload: { username: user.phone, password: user.password } });
    t.equal(byPhone.statusCode, 200, `${url} accepts a phone as username`);

    const wrong = await app.inject({ method: 'POST', url, payload: { username: user.username, password: 'not-it' } });
    t.equal(wrong.statusCode, 401, `${url} wrong password → 401`);
    t.same(wrong.json(), { error: 'wrong password' });
    t.equal(wrong.headers['x-auth-result'], 'wrong-password');

    const unknown = await app.inject({ method: 'POST', url, payload: { username: unregisteredPhone(users), password: 'x' } });
    t.equal(unknown.statusCode, 404, `${url} unknown user → 404`);
    t.same(unknown.json(), { error: 'user not found' });
    t.equal(unknown.headers['x-auth-result'], 'unknown-user');

    const form = await app.inject({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ username: user.username, password: user.password }).toString(),
    });
    t.equal(form.statusCode, 200, `${url} form body`);

    const bad = await app.inject({ method: 'POST', url, payload: { username: user.username } });
    t.equal(bad.statusCode, 400, `${url} missing password → 400`);
  }

  const garbage = await app.inject({
    method: 'POST', url: '/api/auth/login', headers: { 'content-type': 'application/json' }, payload: '{not json',
  });
  t.equal(garbage.statusCode, 400, 'malformed JSON → 400');
});

t.test('tokens are deterministic per login sequence and distinct per login', async (t) => {
  const user = firstUser(makeUsers(DEFAULT_SEED, SMALL));
  const a = buildShop({ users: SMALL });
  const b = buildShop({ users: SMALL });
  t.teardown(async () => { await a.close(); await b.close(); });
  const a1 = await loginToken(a, user);
  const a2 = await loginToken(a, user);
  const b1 = await loginToken(b, user);
  t.not(a1, a2, 'each login gets a new token');
  t.equal(a1, b1, 'same seed + same login order → same token');
});

t.test('register: 201 then 409 on a registered phone; new account can log in', async (t) => {
  const users = makeUsers(DEFAULT_SEED, SMALL);
  const app = buildShop({ users: SMALL });
  t.teardown(() => app.close());

  const taken = await app.inject({ method: 'POST', url: '/api/auth/register', payload: { phone: firstUser(users).phone, password: 'x1' } });
  t.equal(taken.statusCode, 409);
  t.same(taken.json(), { error: 'phone already registered' });

  const phone = unregisteredPhone(users);
  const created = await app.inject({ method: 'POST', url: '/api/auth/register', payload: { phone, password: 'Secret-9' } });
  t.equal(created.statusCode, 201);
  t.same(created.json(), { user_id: FIRST_USER_ID + SMALL }, 'ids continue after the seeded population');

  const again = await app.inject({ method: 'POST', url: '/api/auth/register', payload: { phone, password: 'Secret-9' } });
  t.equal(again.statusCode, 409);

  const login = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: phone, password: 'Secret-9' } });
  t.equal(login.statusCode, 200);

  const bad = await app.inject({ method: 'POST', url: '/api/auth/register', payload: { phone: '123', password: 'x' } });
  t.equal(bad.statusCode, 400);
});

t.test('password reset oracle and SMS send', async (t) => {
  const users = makeUsers(DEFAULT_SEED, SMALL);
  const app = buildShop({ users: SMALL });
  t.teardown(() => app.close());

  const known = await app.inject({ method: 'POST', url: '/api/auth/password-reset', payload: { phone: firstUser(users).phone } });
  t.equal(known.statusCode, 200);
  t.same(known.json(), { status: 'sent' });
  const unknown = await app.inject({ method: 'POST', url: '/api/auth/password-reset', payload: { phone: unregisteredPhone(users) } });
  t.equal(unknown.statusCode, 404);
  t.same(unknown.json(), { error: 'no such user' });

  for (const phone of [firstUser(users).phone, unregisteredPhone(users)]) {
    const sms = await app.inject({ method: 'POST', url: '/api/sms/send', payload: { phone } });
    t.equal(sms.statusCode, 200, 'SMS goes to any phone');
    t.same(sms.json(), { status: 'sent' });
  }
  const bad = await app.inject({ method: 'POST', url: '/api/sms/send', payload: {} });
  t.equal(bad.statusCode, 400);
});

t.test('profiles and orders: token required, but any token reads any id (BOLA)', async (t) => {
  const users = makeUsers(DEFAULT_SEED, SMALL);
  const app = buildShop({ users: SMALL });
  t.teardown(() => app.close());
  const caller = firstUser(users);
  const victim = firstUser(users, (u) => u.id !== caller.id && u.orders.length > 0);
  const victimOrder = victim.orders[0]!;
  const token = await loginToken(app, caller);
  const auth = { authorization: `Bearer ${token}` };

  for (const url of [`/api/users/${victim.id}/profile`, `/api/orders/${victimOrder.id}`]) {
    t.equal((await app.inject({ method: 'GET', url })).statusCode, 401, `${url} without token`);
    t.equal((await app.inject({ method: 'GET', url, headers: { authorization: 'Bearer nope' } })).statusCode, 401, `${url} unknown token`);
    t.equal((await app.inject({ method: 'GET', url, headers: { authorization: token } })).statusCode, 401, `${url} not a bearer`);
  }

  const profile = await app.inject({ method: 'GET', url: `/api/users/${victim.id}/profile`, headers: auth });
  t.equal(profile.statusCode, 200, "caller reads someone else's profile");
  t.match(profile.json(), { user_id: victim.id, username: victim.username, phone: victim.phone, email: victim.profile.email });
  t.notOk('password' in (profile.json() as object), 'no password in the profile');

  const order = await app.inject({ method: 'GET', url: `/api/orders/${victimOrder.id}`, headers: auth });
  t.equal(order.statusCode, 200, "caller reads someone else's order");
  t.same(order.json(), { ...victimOrder, recipient_name: victim.profile.name, recipient_phone: victim.phone }, "the order carries its owner's name and unmasked mobile number");

  t.equal((await app.inject({ method: 'GET', url: '/api/users/999/profile', headers: auth })).statusCode, 404);
  t.equal((await app.inject({ method: 'GET', url: `/api/users/${FIRST_USER_ID + SMALL}/profile`, headers: auth })).statusCode, 404);
  t.equal((await app.inject({ method: 'GET', url: '/api/users/abc/profile', headers: auth })).statusCode, 404);
  t.equal((await app.inject({ method: 'GET', url: '/api/orders/1', headers: auth })).statusCode, 404);
});

t.test('promo: token required, one claim per account, inventory exhausts', async (t) => {
  const users = makeUsers(DEFAULT_SEED, SMALL);
  const app = buildShop({ users: SMALL, promoInventory: 3 });
  t.teardown(() => app.close());

  const info = await app.inject({ method: 'GET', url: '/api/promo/info' });
  t.equal(info.statusCode, 200);
  t.match(info.json(), { inventory: 3, remaining: 3 });

  t.equal((await app.inject({ method: 'POST', url: '/api/promo/claim' })).statusCode, 401, 'claim needs a token');

  const tokens: string[] = [];
  for (const user of users.slice(0, 4)) tokens.push(await loginToken(app, user));
  const claim = (token: string) =>
    app.inject({ method: 'POST', url: '/api/promo/claim', headers: { authorization: `Bearer ${token}` } });

  const first = await claim(tokens[0]!);
  t.equal(first.statusCode, 200);
  t.match(first.json(), { coupon: 'PROMO-000001', user_id: users[0]!.id, remaining: 2 });

  const second = await claim(tokens[0]!);
  t.equal(second.statusCode, 409, 'second claim by the same account');
  t.match(second.json(), { error: 'already claimed' });

  // A fresh login of the same account is still the same account.
  const relogin = await claim(await loginToken(app, users[0]!));
  t.equal(relogin.statusCode, 409);

  t.equal((await claim(tokens[1]!)).statusCode, 200);
  t.equal((await claim(tokens[2]!)).statusCode, 200);
  const soldOut = await claim(tokens[3]!);
  t.equal(soldOut.statusCode, 410);
  t.same(soldOut.json(), { error: 'sold out' });

  const stats = await app.inject({ method: 'GET', url: '/api/promo/stats' });
  t.equal(stats.statusCode, 200);
  t.same(stats.json(), {
    inventory: 3,
    claimed: 3,
    remaining: 0,
    claims: [
      { coupon: 'PROMO-000001', user_id: users[0]!.id },
      { coupon: 'PROMO-000002', user_id: users[1]!.id },
      { coupon: 'PROMO-000003', user_id: users[2]!.id },
    ],
  });
  t.match((await app.inject({ method: 'GET', url: '/api/promo/info' })).json(), { remaining: 0 });
});

t.test('promo defaults to 1,000 coupons', async (t) => {
  const app = buildShop({ users: SMALL });
  t.teardown(() => app.close());
  t.match((await app.inject({ method: 'GET', url: '/api/promo/info' })).json(), { inventory: 1000, remaining: 1000 });
});

t.test('misconfiguration: internal admin route and actuator are open', async (t) => {
  const app = buildShop({ users: SMALL });
  t.teardown(() => app.close());
  const admin = await app.inject({ method: 'GET', url: '/internal/admin/users' });
  t.equal(admin.statusCode, 200, 'no check of any kind');
  t.same(admin.json(), { count: SMALL });

  const env = await app.inject({ method: 'GET', url: '/actuator/env' });
  t.equal(env.statusCode, 200);
  t.match(env.body, /DB_PASSWORD/);
  t.match(env.body, /not-a-real-secret/);
});

t.test('startShop listens on a real socket and closes', async (t) => {
  const shop = await startShop({ port: 0, users: SMALL });
  t.match(shop.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const res = await fetch(`${shop.url}/healthz`);
  t.equal(res.status, 200);
  await shop.close();
  await t.rejects(fetch(`${shop.url}/healthz`), 'closed');
});

t.test('promo winners (issue 17 leak): no token, real names, delivery addresses and unmasked phones the page masks; oversized pages honoured', async (t) => {
  const users = makeUsers(DEFAULT_SEED, DEFAULT_USER_COUNT);
  const app = buildShop({});
  t.teardown(() => app.close());
  const byPhone = new Map(users.map((u) => [u.phone, u]));
  const first = await app.inject({ method: 'GET', url: '/api/promo/winners' });
  t.equal(first.statusCode, 200, 'no token needed');
  const body = first.json() as { total: number; size: number; winners: Array<{ name: string; phone: string; delivery_address: string; city: string }> };
  t.equal(body.size, WINNERS_PAGE_SIZE);
  t.equal(body.winners.length, WINNERS_PAGE_SIZE);
  for (const w of body.winners) {
    t.match(w.phone, /^1\d{10}$/, 'unmasked mobile number');
    const u = byPhone.get(w.phone);
    t.ok(u && u.profile.name === w.name, "a real customer's name and number");
    t.ok(w.delivery_address.length > 0);
  }
  const big = (await app.inject({ method: 'GET', url: '/api/promo/winners?size=100000&page=0' })).json() as typeof body;
  t.equal(big.winners.length, Math.min(WINNERS_MAX_PAGE_SIZE, big.total), 'page size far beyond what the page shows');
  t.ok(big.total >= 100, `${big.total} winners`);
  const again = (await app.inject({ method: 'GET', url: '/api/promo/winners?page=1' })).json() as typeof body;
  t.notSame(again.winners[0], body.winners[0], 'pages differ');
  const page = await app.inject({ method: 'GET', url: '/promo' });
  t.match(page.body, /id="winners"/, 'the promo page lists the winners');
  const js = await app.inject({ method: 'GET', url: '/static/app.js' });
  t.match(js.body, /"\*\*\*\*"/, 'the front-end masks the phones the API sends in full');
});
