// The demo shop: a sample upstream API that Verdict protects in `npm run demo`, the e2e tests
// and the traffic simulator. It is NOT part of Verdict. Its flaws are deliberate (see README.md):
// do not fix them here — Verdict is what is supposed to stop the abuse.

import { createHmac } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { DEFAULT_SEED, DEFAULT_USER_COUNT, FIRST_USER_ID, makeUsers, type DemoOrder, type DemoUser } from './users.ts';

export const DEFAULT_PROMO_INVENTORY = 1_000;
export const DEFAULT_PORT = 8081;
export const DEFAULT_HOST = '127.0.0.1';

export interface ShopOptions {
  /** Population seed; the simulator uses the same one to reproduce the users. */
  seed?: number;
  /** Number of seeded users. */
  users?: number;
  /** Coupons in the promo campaign. */
  promoInventory?: number;
  /** pino request logging; off by default so benchmarks measure Verdict, not the shop's logs. */
  logger?: boolean;
}

export interface StartShopOptions extends ShopOptions {
  /** 0 picks a free port (tests). */
  port?: number;
  host?: string;
}

export interface RunningShop {
  app: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

interface PromoClaim {
  coupon: string;
  user_id: number;
  seq: number;
}

const PHONE_RE = /^\d{11}$/;
/** Every WINNER_EVERY-th seeded user won last campaign's draw (at most WINNERS of them). */
const WINNER_EVERY = 5;
const WINNERS = 2000;
/** The winners list's page size when none is asked; the largest it honours (the flaw: far more than a page shows). */
export const WINNERS_PAGE_SIZE = 20;
export const WINNERS_MAX_PAGE_SIZE = 500;
const ID_RE = /^\d{1,12}$/;

const INDEX_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>Demo Shop</title>
<link rel="stylesheet" href="/static/style.css"></head>
<body><h1>Demo Shop</h1>
<form id="login"><input name="username" placeholder="username or phone">
<input name="password" type="password" placeholder="password"><button>Log in</button></form>
<p><a href="/promo">Today's promo</a></p>
<script src="/static/app.js"></script></body></html>
`;

const CLEARED_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Cleared</title><link rel="stylesheet" href="/static/style.css"></head>
<body><h1>You are through</h1>
<p>This page sits behind a route that always asks for a Verdict clearance. Your browser solved the
proof of work once; the <code>verdict_clearance</code> cookie (bound to your network and browser)
now lets it in without another challenge until it expires. Reload: no challenge.</p>
<p><a href="/">Back to the shop</a></p></body></html>`;

const PROMO_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>Demo Shop — Promo</title>
<link rel="stylesheet" href="/static/style.css"></head>
<body><h1>Spring red envelopes</h1><p id="remaining">Loading…</p>
<button id="claim">Claim my coupon</button>
<h2>Last campaign's winners</h2><ul id="winners"></ul>
<script src="/static/app.js"></script></body></html>
`;

const APP_JS = `"use strict";
(function () {
  var el = document.getElementById("remaining");
  if (el) fetch("/api/promo/info").then(function (r) { return r.json(); })
    .then(function (p) { el.textContent = p.remaining + " coupons left"; });
  // The page masks the winners' phones; the API behind it sends them in full (the leak on show).
  var list = document.getElementById("winners");
  if (list) fetch("/api/promo/winners").then(function (r) { return r.json(); })
    .then(function (w) { w.winners.forEach(function (x) {
      var li = document.createElement("li");
      li.textContent = x.name + " (" + x.city + ") " + x.phone.slice(0, 3) + "****" + x.phone.slice(7);
      list.appendChild(li); }); });
  var form = document.getElementById("login");
  if (form) form.addEventListener("submit", function (e) {
    e.preventDefault();
    fetch("/api/auth/login", { method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: form.username.value, password: form.password.value }) })
      .then(function (r) { return r.json(); })
      .then(function (b) { if (b.token) sessionStorage.setItem("token", b.token); });
  });
  var claim = document.getElementById("claim");
  if (claim) claim.addEventListener("click", function () {
    fetch("/api/promo/claim", { method: "POST",
      headers: { authorization: "Bearer " + sessionStorage.getItem("token") } });
  });
})();
`;

const STYLE_CSS = `body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto}
button{padding:.4rem 1rem}
`;

// Spring Boot actuator shape; every value is fake. Leaking DB_PASSWORD is the flaw on show.
const ACTUATOR_ENV = Object.freeze({
  activeProfiles: ['prod'],
  propertySources: [
    {
      name: 'systemEnvironment',
      properties: {
        DB_HOST: { value: 'db.shop.internal' },
        DB_USER: { value: 'shop' },
        DB_PASSWORD: { value: 'demo-not-a-real-secret-Sh0p!2024' },
        JWT_SECRET: { value: 'demo-not-a-real-jwt-secret' },
        SPRING_PROFILES_ACTIVE: { value: 'prod' },
      },
    },
  ],
});

/** A string field of a parsed JSON or form body, or undefined. */
function field(body: unknown, key: string): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const value = (body as Record<string, unknown>)[key];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

function badRequest(reply: FastifyReply, message: string): FastifyReply {
  return reply.code(400).send({ error: message });
}

/** Last campaign's winners: every WINNER_EVERY-th seeded user, at most WINNERS (fixed per seed; the simulator reads it too). */
export function promoWinners(users: readonly DemoUser[]): DemoUser[] {
  return users.filter((u) => (u.id - FIRST_USER_ID) % WINNER_EVERY === 2).slice(0, WINNERS);
}

/** Build the shop with its seeded population. Nothing listens until the caller does. */
export function buildShop(opts: ShopOptions = {}): FastifyInstance {
  const seed = opts.seed ?? DEFAULT_SEED;
  const inventory = opts.promoInventory ?? DEFAULT_PROMO_INVENTORY;

  const app = Fastify({
    logger: opts.logger
      ? { level: 'info', redact: ['req.headers.authorization', 'req.headers.cookie'] }
      : false,
  });

  // ---- state: all in memory, per instance ----
  const byId = new Map<number, DemoUser>();
  const byLogin = new Map<string, DemoUser>(); // username and phone both map to the user
  const byPhone = new Map<string, DemoUser>();
  const orders = new Map<number, DemoOrder>();
  const tokens = new Map<string, number>(); // token → user id
  const claimsByUser = new Map<number, PromoClaim>();
  const claims: PromoClaim[] = [];
  let nextUserId = FIRST_USER_ID;
  let tokenCounter = 0;
  // Deterministic per (seed, login order), but not guessable from the user id alone.
  const tokenKey = `verdict-demo-shop:${seed}`;

  function addUser(user: DemoUser): void {
    byId.set(user.id, user);
    byLogin.set(user.username, user);
    byLogin.set(user.phone, user);
    byPhone.set(user.phone, user);
    for (const order of user.orders) orders.set(order.id, order);
    nextUserId = Math.max(nextUserId, user.id + 1);
  }
  for (const user of makeUsers(seed, opts.users ?? DEFAULT_USER_COUNT)) addUser(user);
  let winnerList: DemoUser[] | undefined;
  const winners = (): DemoUser[] => (winnerList ??= promoWinners([...byId.values()]));

  function issueToken(userId: number): string {
    tokenCounter += 1;
    const token = createHmac('sha256', tokenKey).update(`${userId}:${tokenCounter}`).digest('hex').slice(0, 40);
    tokens.set(token, userId);
    return token;
  }

  /** The caller's user id from `Authorization: Bearer <token>`, or undefined. */
  function bearerUser(request: FastifyRequest): number | undefined {
    const header = request.headers.authorization;
    if (header === undefined || !header.startsWith('Bearer ')) return undefined;
    return tokens.get(header.slice(7).trim());
  }

  // ---- parsers and catch-alls ----
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });
  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: 'not found' }));
  app.setErrorHandler((error: { statusCode?: number; message?: string }, request, reply) => {
    const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) request.log.error(error);
    return reply.code(status).send({ error: status === 500 ? 'internal error' : (error.message ?? 'bad request') });
  });

  // ---- pages and assets ----
  app.get('/', (_request, reply) => reply.type('text/html; charset=utf-8').send(INDEX_HTML));
  app.get('/promo', (_request, reply) => reply.type('text/html; charset=utf-8').send(PROMO_HTML));
  // behind the demo's always-challenged route (scripts/demo.ts): what a person sees after the solve
  app.get('/challenge-demo', (_request, reply) => reply.type('text/html; charset=utf-8').send(CLEARED_HTML));
  app.get('/static/app.js', (_request, reply) =>
    reply.type('application/javascript; charset=utf-8').header('cache-control', 'public, max-age=300').send(APP_JS));
  app.get('/static/style.css', (_request, reply) =>
    reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=300').send(STYLE_CSS));
  app.get('/healthz', () => ({ status: 'ok' }));

  // ---- identity ----
  // Flaw: distinct 404 / 401 answers tell an attacker which accounts exist.
  const login = (request: FastifyRequest, reply: FastifyReply) => {
    const username = field(request.body, 'username');
    const password = field(request.body, 'password');
    if (username === undefined || password === undefined) return badRequest(reply, 'username and password required');
    const user = byLogin.get(username);
    if (user === undefined) {
      return reply.code(404).header('x-auth-result', 'unknown-user').send({ error: 'user not found' });
    }
    if (user.password !== password) {
      return reply.code(401).header('x-auth-result', 'wrong-password').send({ error: 'wrong password' });
    }
    return reply.code(200).header('x-auth-result', 'success').send({ token: issueToken(user.id), user_id: user.id });
  };
  app.post('/api/auth/login', login);
  // Flaw: the forgotten v1 endpoint, same oracle, never got the new endpoint's protections.
  app.post('/api/v1/login', login);

  // Flaw: 409 confirms the phone is registered.
  app.post('/api/auth/register', (request, reply) => {
    const phone = field(request.body, 'phone');
    const password = field(request.body, 'password');
    if (phone === undefined || !PHONE_RE.test(phone) || password === undefined) {
      return badRequest(reply, 'phone (11 digits) and password required');
    }
    if (byPhone.has(phone)) return reply.code(409).send({ error: 'phone already registered' });
    const id = nextUserId;
    addUser({
      id,
      username: `user${id}`,
      phone,
      password,
      weak_password: false,
      profile: { name: `User ${id}`, email: `user${id}@example.com`, city: 'Unknown', birth_year: 2000, member_since: new Date().toISOString(), tier: 'basic' },
      orders: [],
    });
    return reply.code(201).send({ user_id: id });
  });

  // Flaw: 404 confirms the phone is not registered.
  app.post('/api/auth/password-reset', (request, reply) => {
    const phone = field(request.body, 'phone');
    if (phone === undefined) return badRequest(reply, 'phone required');
    if (!byPhone.has(phone)) return reply.code(404).send({ error: 'no such user' });
    return { status: 'sent' };
  });

  // Flaw: no limit per phone or per caller (SMS bombing, cost).
  app.post('/api/sms/send', (request, reply) => {
    const phone = field(request.body, 'phone');
    if (phone === undefined || !PHONE_RE.test(phone)) return badRequest(reply, 'phone (11 digits) required');
    return { status: 'sent' };
  });

  // ---- data: authenticated, but never checks the caller owns the object (BOLA) ----
  app.get<{ Params: { id: string } }>('/api/users/:id/profile', (request, reply) => {
    if (bearerUser(request) === undefined) return reply.code(401).send({ error: 'unauthorized' });
    const user = ID_RE.test(request.params.id) ? byId.get(Number(request.params.id)) : undefined;
    if (user === undefined) return reply.code(404).send({ error: 'user not found' });
    return {
      user_id: user.id,
      username: user.username,
      phone: user.phone,
      ...user.profile,
      order_ids: user.orders.map((o) => o.id),
    };
  });

  app.get<{ Params: { id: string } }>('/api/orders/:id', (request, reply) => {
    if (bearerUser(request) === undefined) return reply.code(401).send({ error: 'unauthorized' });
    const order = ID_RE.test(request.params.id) ? orders.get(Number(request.params.id)) : undefined;
    if (order === undefined) return reply.code(404).send({ error: 'order not found' });
    // the courier's contact: the owner's name and mobile number, unmasked
    const owner = byId.get(order.user_id);
    return { ...order, recipient_name: owner?.profile.name ?? '', recipient_phone: owner?.phone ?? '' };
  });

  // ---- promo campaign ----
  // Flaw: one claim per *account*, and accounts are free to register: bots farm the inventory.
  app.get('/api/promo/info', () => ({
    campaign: 'spring-red-envelopes',
    inventory: inventory,
    remaining: inventory - claims.length,
    limit_per_account: 1,
  }));

  app.post('/api/promo/claim', (request, reply) => {
    const userId = bearerUser(request);
    if (userId === undefined) return reply.code(401).send({ error: 'unauthorized' });
    const previous = claimsByUser.get(userId);
    if (previous !== undefined) return reply.code(409).send({ error: 'already claimed', coupon: previous.coupon });
    if (claims.length >= inventory) return reply.code(410).send({ error: 'sold out' });
    const seq = claims.length + 1;
    const claim: PromoClaim = { coupon: `PROMO-${String(seq).padStart(6, '0')}`, user_id: userId, seq };
    claims.push(claim);
    claimsByUser.set(userId, claim);
    return { coupon: claim.coupon, user_id: userId, remaining: inventory - claims.length };
  });

  // Flaw (issue 17): the promo page shows last campaign's winners with masked phones, but this API
  // behind it sends real names, delivery addresses and UNMASKED mobile numbers, to anyone, and
  // honours page sizes far beyond what the page shows.
  app.get<{ Querystring: { page?: string; size?: string } }>('/api/promo/winners', (request) => {
    const page = Math.max(0, Number.parseInt(request.query.page ?? '0', 10) || 0);
    const size = Math.min(WINNERS_MAX_PAGE_SIZE, Math.max(1, Number.parseInt(request.query.size ?? '', 10) || WINNERS_PAGE_SIZE));
    const all = winners();
    return {
      campaign: 'new-year-lucky-draw',
      page,
      size,
      total: all.length,
      winners: all.slice(page * size, (page + 1) * size).map((u) => ({
        name: u.profile.name,
        city: u.profile.city,
        delivery_address: u.orders[0]?.shipping_address ?? u.profile.city,
        phone: u.phone,
        prize: 'red envelope 88 CNY',
      })),
    };
  });

  // Demo-only scoreboard: the simulator reads who got the coupons (bots vs humans).
  app.get('/api/promo/stats', () => ({
    inventory,
    claimed: claims.length,
    remaining: inventory - claims.length,
    claims: claims.map((c) => ({ coupon: c.coupon, user_id: c.user_id })),
  }));

  // ---- misconfiguration ----
  // Flaw: meant to be reachable from the internal network only; the shop itself never checks.
  app.get('/internal/admin/users', () => ({ count: byId.size }));
  // Flaw: management endpoint left exposed, leaking (fake) secrets.
  app.get('/actuator/env', () => ACTUATOR_ENV);

  return app;
}

/** Build the shop and listen; `port: 0` picks a free port. */
export async function startShop(opts: StartShopOptions = {}): Promise<RunningShop> {
  const { port = DEFAULT_PORT, host = DEFAULT_HOST, ...shopOpts } = opts;
  const app = buildShop(shopOpts);
  await app.listen({ port, host });
  const address = app.server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    app,
    url: `http://${urlHost}:${address.port}`,
    close: () => app.close(),
  };
}
