// A varied, realistic request mix for the benchmark (the demo shop's routes, DESIGN §6): many
// users with their own IPs (some behind shared carrier NAT), browsers and mobile apps with their
// real header sets, tokens, sessions, devices, logins with phones and e-mails. Deterministic
// (seeded), so every case and every round sends exactly the same requests.
//
// The same requests come out two ways: as HTTP requests for wrk in front of nginx, and as
// DecideRequests (what the gateway would send) for loading the decision service alone.
import type { WrkRequest } from './wrk.ts';
import { mulberry32 } from '../../scripts/demo-shop/users.ts';
import { hmacSha1 } from '../traffic/to-request.ts';

export const BENCH_HOST = 'shop.example';
const HMAC_KEY = 'verdict-test-hmac-key-0123456789';


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

/** One request of the mix with what the gateway would know about it. */
export interface MixRequest {
  http: WrkRequest;
  clientIp: string;
  routeTag: string;
  identifier: string;
  password: string;
  sid: string;
  token: string;
  device: string;
  browser: boolean;
}

type RouteGen = (u: User, rand: () => number) => Omit<MixRequest, 'clientIp' | 'sid' | 'device' | 'browser' | 'http'> & { method: string; path: string; body?: string; auth: boolean };

// weights: static 35%, pages 15%, object APIs 27%, promo 13%, identity 7%, other 3%
const ROUTES: ReadonlyArray<[number, RouteGen]> = [
  [30, (_u, r) => ({ method: 'GET', path: ['/static/app.js', '/static/app.css', '/static/logo.svg', '/static/vendor.js'][Math.floor(r() * 4)] ?? '/static/app.js', auth: false, routeTag: '', identifier: '', password: '', token: '' })],
  [5, () => ({ method: 'GET', path: '/favicon.ico', auth: false, routeTag: '', identifier: '', password: '', token: '' })],
  [10, () => ({ method: 'GET', path: '/', auth: false, routeTag: '', identifier: '', password: '', token: '' })],
  [5, () => ({ method: 'GET', path: '/promo', auth: false, routeTag: '', identifier: '', password: '', token: '' })],
  [15, (u) => ({ method: 'GET', path: `/api/users/${u.id}/profile`, auth: true, routeTag: '', identifier: '', password: '', token: u.token })],
  [12, (u, r) => ({ method: 'GET', path: `/api/orders/${u.id * 10 + Math.floor(r() * 10)}`, auth: true, routeTag: '', identifier: '', password: '', token: u.token })],
  [8, () => ({ method: 'GET', path: '/api/promo/info', auth: false, routeTag: 'promo', identifier: '', password: '', token: '' })],
  [3, (u) => ({ method: 'POST', path: '/api/promo/claim', body: '{"campaign":"spring"}', auth: true, routeTag: 'promo', identifier: '', password: '', token: u.token })],
  [2, () => ({ method: 'GET', path: '/api/promo/stats', auth: false, routeTag: 'promo', identifier: '', password: '', token: '' })],
  [5, (u, r) => {
    const id = r() < 0.5 ? u.phone : u.email;
    const pw = `pw-${u.id}-${r() < 0.9 ? 'right' : 'typo'}`;
    return { method: 'POST', path: '/api/auth/login', body: JSON.stringify({ username: id, password: pw }), auth: false, routeTag: 'auth', identifier: id, password: pw, token: '' };
  }],
  [2, (u) => ({ method: 'POST', path: '/api/sms/send', body: JSON.stringify({ phone: u.phone }), auth: false, routeTag: 'sms', identifier: u.phone, password: '', token: '' })],
  [3, (u, r) => ({ method: 'GET', path: '/api/products', auth: true, routeTag: '', identifier: '', password: '', token: u.token, query: `page=${1 + Math.floor(r() * 20)}` })],
];

/** `count` requests from `users` users, deterministic for a seed. */
export function requestMix(count = 2000, seed = 42, users = 3000): MixRequest[] {
  const rand = mulberry32(seed);
  const pop = makeUsers(rand, users);
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
    const r = gen(u, rand) as ReturnType<RouteGen> & { query?: string };
    // wrk.format adds Host and Content-Length only when these exact keys are absent
    const headers: Record<string, string> = { Host: BENCH_HOST, ...u.client.headers, 'x-forwarded-for': u.ip };
    if (u.client.browser) headers.cookie = `sid=${u.sid}; theme=dark`;
    else headers['x-device-id'] = u.device;
    if (r.auth) headers.authorization = `Bearer ${u.token}`;
    if (r.body !== undefined) headers['content-type'] = 'application/json';
    out.push({
      http: { method: r.method, path: r.query ? `${r.path}?${r.query}` : r.path, headers, ...(r.body !== undefined ? { body: r.body } : {}) },
      clientIp: u.ip,
      routeTag: r.routeTag,
      identifier: r.identifier,
      password: r.password,
      sid: u.client.browser ? u.sid : '',
      token: r.auth ? u.token : '',
      device: u.client.browser ? '' : u.device,
      browser: u.client.browser,
    });
  }
  return out;
}

const hmac = (v: string) => (v ? hmacSha1(HMAC_KEY, v) : undefined);

/** The DecideRequest (proto field names) the Lua gateway would send for a mix request. */
export function toDecideRequest(m: MixRequest, i: number): Record<string, unknown> {
  const h = m.http.headers;
  const q = m.http.path.indexOf('?');
  const names = Object.keys(h).filter((k) => k !== 'x-forwarded-for').map((k) => k.toLowerCase());
  return {
    request_id: `bench-${i.toString(16).padStart(8, '0')}`,
    client_ip: m.clientIp,
    method: m.http.method,
    host: BENCH_HOST,
    path: q < 0 ? m.http.path : m.http.path.slice(0, q),
    query: q < 0 ? '' : m.http.path.slice(q + 1),
    route_tag: m.routeTag,
    http_version: '1.1',
    user_agent: h['user-agent'] ?? '',
    accept: h.accept ?? '',
    accept_language: h['accept-language'] ?? '',
    accept_encoding: h['accept-encoding'] ?? '',
    content_type: h['content-type'] ?? '',
    sec_fetch_site: h['sec-fetch-site'] ?? '',
    sec_fetch_mode: h['sec-fetch-mode'] ?? '',
    sec_fetch_dest: h['sec-fetch-dest'] ?? '',
    sec_ch_ua: h['sec-ch-ua'] ?? '',
    header_names: names,
    cookie_names: m.sid ? ['sid', 'theme'] : [],
    has_authorization: m.token !== '',
    auth_scheme: m.token ? 'bearer' : '',
    session_hash: hmac(m.sid),
    token_hash: hmac(m.token),
    device_hash: hmac(m.device),
    identifier: m.identifier,
    password_hash: hmac(m.password),
    mode: 0,
    gateway_id: 'bench/1',
  };
}
