// A varied, realistic request mix for the benchmark (the demo shop's routes, DESIGN §6): many
// users with their own IPs (some behind shared carrier NAT), browsers and mobile apps with their
// real header sets, tokens, sessions, devices, logins with phones and e-mails. Deterministic
// (seeded), so every case and every round sends exactly the same requests.
//
// The same requests come out two ways: as HTTP requests for wrk in front of nginx, and as
// DecideRequests (what the gateway would send: the reference builder behind the demo locations)
// for loading the decision service alone.
import type { WrkRequest } from './wrk.ts';
import { mulberry32 } from '../../scripts/demo-shop/users.ts';
import { buildDecideRequest } from '../../decision-service/src/gateway/request-builder.ts';
import type { DecideRequest } from '../../decision-service/src/wire/schema.ts';
import { DEMO_LOCATIONS, gatewayOptions, locationFor } from '../traffic/to-request.ts';

export const BENCH_HOST = 'shop.example';

interface ClientKind {
  name: string;
  browser: boolean;
  headers: Record<string, string>;
}

const CLIENTS: readonly ClientKind[] = [
  {
    name: 'chrome', browser: true, headers: {
      'sec-ch-ua': '"Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"',
      'user-agent': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
      accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8',
      'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document',
      'accept-encoding': 'gzip, deflate, br', 'accept-language': 'en-US,en;q=0.9',
    },
  },
  {
    name: 'firefox', browser: true, headers: {
      'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
      accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
      'accept-language': 'de-DE,de;q=0.8,en-US;q=0.5,en;q=0.3', 'accept-encoding': 'gzip, deflate, br',
      'sec-fetch-dest': 'document', 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'none',
    },
  },
  {
    name: 'safari-ios', browser: true, headers: {
      accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
      'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
      'accept-language': 'zh-CN,zh-Hans;q=0.9', 'accept-encoding': 'gzip, deflate, br',
    },
  },
  {
    name: 'android-app', browser: false, headers: {
      'user-agent': 'ShopApp/5.12.1 (Android 14; Pixel 7) okhttp/4.12.0',
      accept: 'application/json', 'accept-encoding': 'gzip',
    },
  },
  {
    name: 'ios-app', browser: false, headers: {
      'user-agent': 'ShopApp/5.12.0 CFNetwork/1494.0.7 Darwin/23.4.0',
      accept: 'application/json', 'accept-language': 'en-GB,en;q=0.9', 'accept-encoding': 'gzip, deflate, br',
    },
  },
];

interface User {
  ip: string;
  client: ClientKind;
  token: string;
  sid: string;
  device: string;
  phone: string;
  email: string;
  id: number;
}

function makeUsers(rand: () => number, n: number): User[] {
  const users: User[] = [];
  // a few carrier-NAT addresses shared by many users, the rest spread over many /24s
  const cgnat = Array.from({ length: 8 }, (_, i) => `100.64.${i}.${1 + Math.floor(rand() * 250)}`);
  for (let i = 0; i < n; i++) {
    const shared = rand() < 0.15;
    const ip = shared
      ? (cgnat[Math.floor(rand() * cgnat.length)] ?? '100.64.0.1')
      : `${[23, 37, 81, 92, 151, 176, 185, 203][i % 8]}.${Math.floor(rand() * 256)}.${Math.floor(rand() * 256)}.${1 + Math.floor(rand() * 254)}`;
    users.push({
      ip,
      client: CLIENTS[Math.floor(rand() * CLIENTS.length)] ?? CLIENTS[0]!,
      token: `tok_${(rand() * 1e16).toString(36)}${i}`,
      sid: `s${(rand() * 1e16).toString(36)}${i}`,
      device: `dev-${(rand() * 1e12).toString(36)}-${i}`,
      phone: `138${String(10_000_000 + Math.floor(rand() * 89_999_999))}`,
      email: `user${i}@mail${i % 17}.example`,
      id: 100_000 + i,
    });
  }
  return users;
}

/** One request of the mix: the HTTP request and the client address nginx takes from X-Forwarded-For. */
export interface MixRequest {
  http: WrkRequest;
  clientIp: string;
}

interface Route {
  method: string;
  path: string;
  query?: string;
  body?: string;
  /** sends the user's bearer token */
  auth: boolean;
}

type RouteGen = (u: User, rand: () => number) => Route;

// weights: static 35%, pages 15%, object APIs 27%, promo 13%, identity 7%, other 3%
const ROUTES: ReadonlyArray<[number, RouteGen]> = [
  [30, (_u, r) => ({ method: 'GET', path: ['/static/app.js', '/static/app.css', '/static/logo.svg', '/static/vendor.js'][Math.floor(r() * 4)] ?? '/static/app.js', auth: false })],
  [5, () => ({ method: 'GET', path: '/favicon.ico', auth: false })],
  [10, () => ({ method: 'GET', path: '/', auth: false })],
  [5, () => ({ method: 'GET', path: '/promo', auth: false })],
  [15, (u) => ({ method: 'GET', path: `/api/users/${u.id}/profile`, auth: true })],
  [12, (u, r) => ({ method: 'GET', path: `/api/orders/${u.id * 10 + Math.floor(r() * 10)}`, auth: true })],
  [8, () => ({ method: 'GET', path: '/api/promo/info', auth: false })],
  [3, () => ({ method: 'POST', path: '/api/promo/claim', body: '{"campaign":"spring"}', auth: true })],
  [2, () => ({ method: 'GET', path: '/api/promo/stats', auth: false })],
  [5, (u, r) => {
    const id = r() < 0.5 ? u.phone : u.email;
    const pw = `pw-${u.id}-${r() < 0.9 ? 'right' : 'typo'}`;
    return { method: 'POST', path: '/api/auth/login', body: JSON.stringify({ username: id, password: pw }), auth: false };
  }],
  [2, (u) => ({ method: 'POST', path: '/api/sms/send', body: JSON.stringify({ phone: u.phone }), auth: false })],
  [3, (_u, r) => ({ method: 'GET', path: '/api/products', auth: true, query: `page=${1 + Math.floor(r() * 20)}` })],
];

const PROMO_INFO: RouteGen = () => ({ method: 'GET', path: '/api/promo/info', auth: false });

/**
 * `count` requests from `users` users, deterministic for a seed. The default 2,000 requests from
 * 3,000 users, replayed thousands of times a second, are the *attack mix*: every user comes back
 * many times a second, as a bot would, and Verdict stops a growing share of it. `humanMix` is the
 * one to measure what Verdict costs on traffic it allows.
 */
export function requestMix(count = 2000, seed = 42, users = 3000, oneClaimEach = false): MixRequest[] {
  const rand = mulberry32(seed);
  const pop = makeUsers(rand, users);
  const claimed = new Set<number>();
  const total = ROUTES.reduce((s, [w]) => s + w, 0);
  const out: MixRequest[] = [];
  for (let i = 0; i < count; i++) {
    const u = pop[Math.floor(rand() * pop.length)] ?? pop[0]!;
    let pick = rand() * total;
    let gen = ROUTES[0]![1];
    for (const [w, g] of ROUTES) {
      if (pick < w) { gen = g; break; }
      pick -= w;
    }
    let r = gen(u, rand);
    // a person claims a coupon once; a second claim reads the promo instead
    if (oneClaimEach && r.path === '/api/promo/claim') {
      if (claimed.has(u.id)) r = PROMO_INFO(u, rand);
      else claimed.add(u.id);
    }
    // wrk.format adds Host and Content-Length only when these exact keys are absent
    const headers: Record<string, string> = { Host: BENCH_HOST, ...u.client.headers, 'x-forwarded-for': u.ip };
    if (u.client.browser) headers.cookie = `sid=${u.sid}; theme=dark`;
    else headers['x-device-id'] = u.device;
    if (r.auth) headers.authorization = `Bearer ${u.token}`;
    if (r.body !== undefined) headers['content-type'] = 'application/json';
    out.push({
      http: { method: r.method, path: r.query ? `${r.path}?${r.query}` : r.path, headers, ...(r.body !== undefined ? { body: r.body } : {}) },
      clientIp: u.ip,
    });
  }
  return out;
}

/**
 * The all-human mix the throughput cases send (issue 15): 60,000 requests from 60,000 people, each
 * claiming at most once, so that within a 10 s round at the inline path's rate a person comes back
 * about once, as on a real site. Its blocked and challenged share is reported with every case and
 * should be ~0%.
 */
export function humanMix(): MixRequest[] {
  return requestMix(60_000, 7, 60_000, true);
}

// every request decided inline (the service alone has no locations to skip or defer), no
// deadline (the same encoded bodies are sent again and again)
const GATEWAY = gatewayOptions({ gatewayId: 'bench/1' });

/**
 * The DecideRequest the Lua gateway would send for a mix request, with the settings of the demo
 * location it falls into. The headers are taken in the order written here, Content-Length last
 * (wrk.format adds it; the order wrk really sends is that of a Lua table).
 */
export function toDecideRequest(m: MixRequest, i: number): DecideRequest {
  const { method, path: target, headers, body } = m.http;
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const loc = locationFor(path, DEMO_LOCATIONS);
  const raw: Array<[string, string]> = Object.entries(headers);
  if (body !== undefined) raw.push(['Content-Length', String(Buffer.byteLength(body))]);
  return buildDecideRequest({
    requestId: `bench-${i.toString(16).padStart(8, '0')}`,
    tsMs: 0,
    clientIp: m.clientIp,
    method,
    host: BENCH_HOST,
    path,
    query: q < 0 ? '' : target.slice(q + 1),
    httpVersion: '1.1',
    headers: raw,
    body,
    gatewayId: GATEWAY.gatewayId,
  }, { ...GATEWAY, mode: 'inline', routeTag: loc?.routeTag ?? '', identityFields: loc?.identityFields ?? [] });
}
