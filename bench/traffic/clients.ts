// Client fingerprints (User-Agent, header sets in each client's real order) and IP pools for the
// simulator. IPs are data only, never contacted: documentation ranges (RFC 5737) for offices and
// partners, realistic-looking public ranges for consumers, carriers, cloud servers and proxies.
// None falls in the default policy's internal ranges (10/8, 172.16/12, 192.168/16).

import type { Rng } from './rng.ts';

export type Headers = Array<[string, string]>;

// ------------------------------------------------------------------ browsers

export type BrowserFamily = 'chrome' | 'firefox' | 'safari' | 'legacy';

export interface Browser {
  readonly family: BrowserFamily;
  readonly ua: string;
  /** Chromium only */
  readonly secChUa?: string;
  readonly platform?: string;
  readonly mobile: boolean;
  /** undefined: this client sends no Accept-Language (unclean humans, some bots) */
  readonly acceptLanguage: string | undefined;
}

const CHROME_VERSIONS = ['119', '120', '121', '122'] as const;
const LANGS = ['zh-CN,zh;q=0.9,en;q=0.8', 'zh-CN,zh;q=0.9', 'en-US,en;q=0.9', 'zh-CN,zh-TW;q=0.9,en-US;q=0.8,en;q=0.7', 'en-GB,en;q=0.9,zh-CN;q=0.8'] as const;

export function chromeBrowser(rng: Rng, opts: { mobile?: boolean; headless?: boolean } = {}): Browser {
  const v = rng.pick(CHROME_VERSIONS);
  const mobile = opts.mobile ?? false;
  const os = mobile
    ? rng.pick(['Linux; Android 13; SM-S908B', 'Linux; Android 14; Pixel 7', 'Linux; Android 12; M2012K11AC'])
    : rng.pick(['Windows NT 10.0; Win64; x64', 'Macintosh; Intel Mac OS X 10_15_7', 'X11; Linux x86_64']);
  const product = opts.headless ? 'HeadlessChrome' : 'Chrome';
  const brand = opts.headless ? 'HeadlessChrome' : 'Google Chrome';
  return {
    family: 'chrome',
    ua: `Mozilla/5.0 (${os}) AppleWebKit/537.36 (KHTML, like Gecko) ${product}/${v}.0.0.0 ${mobile ? 'Mobile ' : ''}Safari/537.36`,
    secChUa: `"Not_A Brand";v="8", "Chromium";v="${v}", "${brand}";v="${v}"`,
    platform: mobile ? '"Android"' : os.startsWith('Windows') ? '"Windows"' : os.startsWith('Mac') ? '"macOS"' : '"Linux"',
    mobile,
    acceptLanguage: rng.pick(LANGS),
  };
}

export function firefoxBrowser(rng: Rng): Browser {
  const v = rng.pick(['120.0', '121.0', '122.0']);
  const os = rng.pick(['Windows NT 10.0; Win64; x64', 'Macintosh; Intel Mac OS X 10.15', 'X11; Ubuntu; Linux x86_64']);
  return { family: 'firefox', ua: `Mozilla/5.0 (${os}; rv:${v}) Gecko/20100101 Firefox/${v}`, mobile: false, acceptLanguage: rng.pick(LANGS) };
}

export function safariBrowser(rng: Rng): Browser {
  const iphone = rng.chance(0.6);
  const ua = iphone
    ? `Mozilla/5.0 (iPhone; CPU iPhone OS 17_${rng.int(0, 2)} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.${rng.int(0, 2)} Mobile/15E148 Safari/604.1`
    : `Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.${rng.int(0, 2)} Safari/605.1.15`;
  return { family: 'safari', ua, mobile: iphone, acceptLanguage: rng.pick(LANGS) };
}

/** Old, "unclean" browsers real people still use: no Sec-Fetch-*, no client hints. */
export function legacyBrowser(rng: Rng): Browser {
  const ua = rng.pick([
    'Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko',
    'Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/49.0.2623.112 Safari/537.36',
    'Mozilla/5.0 (Linux; U; Android 4.4.2; zh-cn; GT-I9500 Build/KOT49H) AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 Mobile Safari/534.30',
  ]);
  return { family: 'legacy', ua, mobile: ua.includes('Android'), acceptLanguage: rng.chance(0.7) ? 'zh-CN' : undefined };
}

/** A browser as the population has them (Chrome-heavy), optionally "unclean". */
export function humanBrowser(rng: Rng, opts: { mobile?: boolean; uncleanShare?: number } = {}): Browser {
  const unclean = rng.chance(opts.uncleanShare ?? 0.08);
  if (unclean && rng.chance(0.5)) return legacyBrowser(rng);
  let b: Browser;
  if (opts.mobile) b = rng.chance(0.55) ? chromeBrowser(rng, { mobile: true }) : safariBrowser(rng);
  else b = rng.weighted<() => Browser>([[() => chromeBrowser(rng), 65], [() => firefoxBrowser(rng), 15], [() => safariBrowser(rng), 20]])();
  return unclean ? { ...b, acceptLanguage: undefined } : b;
}

/**
 * The builds a population can be skewed to: one exact browser (User-Agent, client hints,
 * Accept-Language) that most of a carrier's phones or an office's managed desktops run, so that
 * thousands of people send the same header set.
 */
export const POPULAR_BUILDS = ['safari-ios', 'chrome-android', 'chrome-windows'] as const;
export type PopularBuild = (typeof POPULAR_BUILDS)[number];

export function popularBrowser(build: PopularBuild): Browser {
  switch (build) {
    case 'safari-ios':
      return { family: 'safari', ua: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1', mobile: true, acceptLanguage: 'zh-CN,zh-Hans;q=0.9' };
    case 'chrome-android':
      return { family: 'chrome', ua: 'Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36', secChUa: '"Not_A Brand";v="8", "Chromium";v="120", "Google Chrome";v="120"', platform: '"Android"', mobile: true, acceptLanguage: 'zh-CN,zh;q=0.9' };
    case 'chrome-windows':
      return { family: 'chrome', ua: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36', secChUa: '"Not_A Brand";v="8", "Chromium";v="120", "Google Chrome";v="120"', platform: '"Windows"', mobile: false, acceptLanguage: 'zh-CN,zh;q=0.9,en;q=0.8' };
  }
}

export interface RequestShape {
  /** navigation (document), subresource (script/style), or fetch (XHR from the page) */
  kind: 'document' | 'script' | 'style' | 'fetch';
  host: string;
  referer?: string;
  origin?: string;
  cookie?: string;
  authorization?: string;
  /** fetch bodies */
  contentType?: string;
  contentLength?: number;
  sameOrigin?: boolean;
}

const ACCEPT_DOC: Record<BrowserFamily, string> = {
  chrome: 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7',
  firefox: 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8',
  safari: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  legacy: 'text/html, application/xhtml+xml, */*',
};

/** The headers a browser sends, in its order (HTTP/1.1 names, lower-cased as nginx logs them). */
export function browserHeaders(b: Browser, r: RequestShape): Headers {
  const accept =
    r.kind === 'document' ? ACCEPT_DOC[b.family]
    : r.kind === 'style' ? 'text/css,*/*;q=0.1'
    : r.kind === 'script' ? '*/*'
    : r.contentType ? 'application/json, text/plain, */*' : '*/*';
  const dest = r.kind === 'document' ? 'document' : r.kind === 'fetch' ? 'empty' : r.kind;
  const mode = r.kind === 'document' ? 'navigate' : r.kind === 'fetch' ? 'cors' : 'no-cors';
  const site = r.kind === 'document' ? (r.referer ? 'same-origin' : 'none') : 'same-origin';
  const enc = b.family === 'legacy' ? 'gzip, deflate' : 'gzip, deflate, br';
  const v: Record<string, string | undefined> = {
    host: r.host,
    connection: 'keep-alive',
    'content-length': r.contentLength !== undefined ? String(r.contentLength) : undefined,
    'sec-ch-ua': b.secChUa,
    'sec-ch-ua-mobile': b.secChUa ? (b.mobile ? '?1' : '?0') : undefined,
    'sec-ch-ua-platform': b.secChUa ? b.platform : undefined,
    'upgrade-insecure-requests': r.kind === 'document' && b.family !== 'legacy' ? '1' : undefined,
    'user-agent': b.ua,
    authorization: r.authorization,
    'content-type': r.contentType,
    accept,
    origin: r.kind === 'fetch' && r.contentType ? r.origin : undefined,
    'sec-fetch-site': b.family !== 'legacy' ? site : undefined,
    'sec-fetch-mode': b.family !== 'legacy' ? mode : undefined,
    'sec-fetch-user': b.family !== 'legacy' && r.kind === 'document' ? '?1' : undefined,
    'sec-fetch-dest': b.family !== 'legacy' ? dest : undefined,
    referer: r.referer,
    'accept-encoding': enc,
    'accept-language': b.acceptLanguage,
    cookie: r.cookie,
  };
  const order = ORDERS[b.family][r.kind === 'document' ? 0 : 1];
  const out: Headers = [];
  for (const name of order) {
    const value = v[name];
    if (value !== undefined) out.push([name, value]);
  }
  return out;
}

// Real header orders per family: [navigation, fetch/subresource].
const ORDERS: Record<BrowserFamily, [readonly string[], readonly string[]]> = {
  chrome: [
    ['host', 'connection', 'sec-ch-ua', 'sec-ch-ua-mobile', 'sec-ch-ua-platform', 'upgrade-insecure-requests', 'user-agent', 'accept', 'sec-fetch-site', 'sec-fetch-mode', 'sec-fetch-user', 'sec-fetch-dest', 'referer', 'accept-encoding', 'accept-language', 'cookie'],
    ['host', 'connection', 'content-length', 'sec-ch-ua-platform', 'authorization', 'user-agent', 'sec-ch-ua', 'content-type', 'sec-ch-ua-mobile', 'accept', 'origin', 'sec-fetch-site', 'sec-fetch-mode', 'sec-fetch-dest', 'referer', 'accept-encoding', 'accept-language', 'cookie'],
  ],
  firefox: [
    ['host', 'user-agent', 'accept', 'accept-language', 'accept-encoding', 'connection', 'referer', 'cookie', 'upgrade-insecure-requests', 'sec-fetch-dest', 'sec-fetch-mode', 'sec-fetch-site', 'sec-fetch-user'],
    ['host', 'user-agent', 'accept', 'accept-language', 'accept-encoding', 'referer', 'content-type', 'authorization', 'content-length', 'origin', 'connection', 'cookie', 'sec-fetch-dest', 'sec-fetch-mode', 'sec-fetch-site'],
  ],
  safari: [
    ['host', 'accept', 'sec-fetch-site', 'cookie', 'sec-fetch-dest', 'accept-language', 'sec-fetch-mode', 'user-agent', 'referer', 'accept-encoding', 'connection'],
    ['host', 'content-type', 'accept', 'authorization', 'sec-fetch-site', 'origin', 'sec-fetch-dest', 'cookie', 'content-length', 'accept-language', 'sec-fetch-mode', 'user-agent', 'referer', 'accept-encoding', 'connection'],
  ],
  legacy: [
    ['accept', 'referer', 'accept-language', 'user-agent', 'accept-encoding', 'host', 'connection', 'cookie'],
    ['accept', 'content-type', 'authorization', 'referer', 'accept-language', 'accept-encoding', 'user-agent', 'host', 'content-length', 'connection', 'cookie'],
  ],
};

// ------------------------------------------------------------------ the mobile app

export interface AppClient {
  readonly ua: string;
  readonly deviceId: string;
  readonly android: boolean;
  readonly acceptLanguage: string | undefined;
}

export function appClient(rng: Rng): AppClient {
  const android = rng.chance(0.6);
  const ver = rng.pick(['5.2.1', '5.2.0', '5.1.7', '5.3.0']);
  const ua = android
    ? rng.chance(0.5)
      ? `ShopApp/${ver} (Android ${rng.pick(['12', '13', '14'])}; ${rng.pick(['SM-G991B', 'Pixel 7', 'M2102J20SG', 'V2118A'])})`
      : 'okhttp/4.12.0'
    : `ShopApp/${ver} (iPhone; iOS ${rng.pick(['16.6', '17.1', '17.2'])}; Scale/3.00)`;
  return { ua, deviceId: rng.uuid(), android, acceptLanguage: rng.chance(0.9) ? rng.pick(LANGS).split(',')[0] : undefined };
}

export function appHeaders(c: AppClient, r: { host: string; authorization?: string; contentType?: string; contentLength?: number }): Headers {
  const h: Headers = [];
  const add = (n: string, v: string | undefined) => { if (v !== undefined) h.push([n, v]); };
  if (c.android) {
    add('host', r.host);
    add('authorization', r.authorization);
    add('x-device-id', c.deviceId);
    add('x-app-version', c.ua.startsWith('ShopApp/') ? c.ua.slice(8, 13) : '5.2.1');
    add('accept-language', c.acceptLanguage);
    add('content-type', r.contentType);
    add('content-length', r.contentLength !== undefined ? String(r.contentLength) : undefined);
    add('accept-encoding', 'gzip');
    add('user-agent', c.ua);
    add('connection', 'Keep-Alive');
  } else {
    add('host', r.host);
    add('content-type', r.contentType);
    add('accept', 'application/json');
    add('authorization', r.authorization);
    add('x-device-id', c.deviceId);
    add('accept-language', c.acceptLanguage);
    add('accept-encoding', 'gzip, deflate, br');
    add('content-length', r.contentLength !== undefined ? String(r.contentLength) : undefined);
    add('user-agent', c.ua);
    add('connection', 'keep-alive');
  }
  return h;
}

// ------------------------------------------------------------------ attack tooling

export type Tool = 'python-requests' | 'go' | 'curl' | 'axios' | 'java' | 'spoofed-browser' | 'shuffled';

const TOOL_UA: Record<Exclude<Tool, 'spoofed-browser' | 'shuffled'>, readonly string[]> = {
  'python-requests': ['python-requests/2.31.0', 'python-requests/2.28.2', 'python-requests/2.32.3'],
  go: ['Go-http-client/1.1'],
  curl: ['curl/8.4.0', 'curl/7.81.0', 'curl/8.5.0'],
  axios: ['axios/1.6.2', 'axios/1.7.7', 'node-fetch/1.0 (+https://github.com/bitinn/node-fetch)'],
  java: ['Java/17.0.2', 'Apache-HttpClient/4.5.14 (Java/17.0.9)', 'okhttp/3.14.9'],
};

const SPOOF_UA = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0',
  'Mozilla/5.0 (Linux; Android 13; SM-S908B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36',
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36',
];

/** One User-Agent a tool sends (a browser's, for the spoofing ones). */
export function toolUa(rng: Rng, tool: Tool): string {
  return rng.pick(tool === 'spoofed-browser' || tool === 'shuffled' ? SPOOF_UA : TOOL_UA[tool]);
}

/**
 * Headers of an HTTP library: its own order, its UA — or a browser UA pasted over the library's
 * header set ('spoofed-browser'), or a randomised order ('shuffled') as evasion kits do.
 */
export function toolHeaders(rng: Rng, tool: Tool, r: { host: string; authorization?: string; contentType?: string; contentLength?: number; extra?: Headers; ua?: string }): Headers {
  const len = r.contentLength !== undefined ? String(r.contentLength) : undefined;
  // without `ua`, each request names one of the tool's versions (per request: a crude UA rotation)
  const pick = (list: readonly string[]): string => r.ua ?? rng.pick(list);
  const h: Array<[string, string | undefined]> = [];
  switch (tool) {
    case 'python-requests':
    case 'spoofed-browser':
    case 'shuffled':
      h.push(['host', r.host], ['user-agent', pick(tool === 'python-requests' ? TOOL_UA['python-requests'] : SPOOF_UA)], ['accept-encoding', 'gzip, deflate'], ['accept', '*/*'], ['connection', 'keep-alive']);
      if (tool !== 'python-requests' && rng.chance(0.5)) h.push(['accept-language', rng.pick(LANGS)]);
      h.push(['authorization', r.authorization], ['content-length', len], ['content-type', r.contentType]);
      break;
    case 'go':
      h.push(['host', r.host], ['user-agent', pick(TOOL_UA.go)], ['content-length', len], ['authorization', r.authorization], ['content-type', r.contentType], ['accept-encoding', 'gzip']);
      break;
    case 'curl':
      h.push(['host', r.host], ['user-agent', pick(TOOL_UA.curl)], ['accept', '*/*'], ['authorization', r.authorization], ['content-type', r.contentType], ['content-length', len]);
      break;
    case 'axios':
      h.push(['accept', 'application/json, text/plain, */*'], ['content-type', r.contentType], ['authorization', r.authorization], ['user-agent', pick(TOOL_UA.axios)], ['content-length', len], ['accept-encoding', 'gzip, compress, deflate, br'], ['host', r.host], ['connection', 'close']);
      break;
    case 'java':
      h.push(['content-type', r.contentType], ['authorization', r.authorization], ['user-agent', pick(TOOL_UA.java)], ['host', r.host], ['accept', 'text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2'], ['connection', 'keep-alive'], ['content-length', len]);
      break;
  }
  for (const e of r.extra ?? []) h.push(e);
  const out = h.filter((x): x is [string, string] => x[1] !== undefined);
  if (tool === 'shuffled') {
    const host = out.shift()!;
    rng.shuffle(out);
    out.unshift(host);
  }
  return out;
}

// ------------------------------------------------------------------ IP pools

// Consumer broadband /8s (China Telecom / Unicom / Mobile style allocations and a few others).
const RESIDENTIAL_A = [36, 39, 42, 49, 58, 59, 60, 61, 101, 106, 110, 111, 112, 113, 114, 115, 116, 118, 120, 121, 122, 123, 124, 125, 171, 175, 180, 182, 183, 218, 219, 220, 221, 222, 223] as const;

export function residentialIp(rng: Rng): string {
  return `${rng.pick(RESIDENTIAL_A)}.${rng.int(0, 255)}.${rng.int(0, 255)}.${rng.int(1, 254)}`;
}

/** Cloud / IDC ranges attackers rent servers in (Alibaba, Tencent, Vultr, DigitalOcean, OVH style). */
const IDC_PREFIXES = ['47.96', '47.98', '47.100', '119.28', '129.226', '45.76', '45.32', '139.59', '167.99', '51.68'] as const;

export function idcIp(rng: Rng): string {
  return `${rng.pick(IDC_PREFIXES)}.${rng.int(0, 255)}.${rng.int(1, 254)}`;
}

/** Carrier-grade NAT egress addresses: many phones share each. */
export function carrierNatIps(rng: Rng, n: number): string[] {
  const base = rng.pick(['117.136', '223.104', '111.30', '112.97']);
  const c = rng.int(0, 250);
  return Array.from({ length: n }, (_, i) => `${base}.${c + (i % 4)}.${rng.int(2, 250)}`);
}

/** A VPN provider's exits: addresses of one hosting /24 (its customers, and whoever else rents it, come out there). */
export function vpnExitIps(rng: Rng, n: number): string[] {
  const base = `${rng.pick(IDC_PREFIXES)}.${rng.int(0, 255)}`;
  const first = rng.int(2, 200);
  return Array.from({ length: n }, (_, i) => `${base}.${first + i * 3}`);
}

/** An office behind a NAT: a couple of public addresses in one /24 (TEST-NET-3). */
export function officeNatIps(n: number, offset = 10): string[] {
  return Array.from({ length: n }, (_, i) => `203.0.113.${offset + i}`);
}

/** A rotating proxy pool: `singleShare` of its exits are used for exactly one request. */
export class ProxyPool {
  private readonly sticky: string[];

  constructor(private readonly rng: Rng, stickySize: number, private readonly singleShare: number, private readonly kind: 'residential' | 'idc' = 'residential') {
    this.sticky = Array.from({ length: stickySize }, () => this.fresh());
  }

  private fresh(): string {
    return this.kind === 'idc' ? idcIp(this.rng) : residentialIp(this.rng);
  }

  /**
   * Next exit. `singleShare` is the share of requests sent from a fresh, never-reused address;
   * the rest come from the sticky pool. With enough requests per sticky exit, the share of IPs
   * that sent exactly one request is far above singleShare.
   */
  next(): string {
    return this.rng.chance(this.singleShare) ? this.fresh() : this.rng.pick(this.sticky);
  }
}
