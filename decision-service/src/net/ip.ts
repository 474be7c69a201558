// IP parsing, CIDR matching and the subnet key (/24 for IPv4, /64 for IPv6).
// Addresses are kept as bigint-free number pairs for speed: IPv4 as one uint32, IPv6 as four.

import { isIP } from 'node:net';

export interface Cidr {
  readonly family: 4 | 6;
  readonly words: readonly number[]; // network address, 1 word for v4, 4 for v6
  readonly bits: number;
  readonly text: string;
}

export function parseIPv4(ip: string): number | undefined {
  // Hand-rolled: this runs on every decision (internal ranges, subnet key).
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return undefined;
      n = n * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return undefined;
    } else {
      return undefined;
    }
  }
  if (dots !== 3 || digits === 0) return undefined;
  return (n * 256 + part) >>> 0;
}

/** Expands an IPv6 address into 8 16-bit groups; undefined when malformed. */
export function parseIPv6Groups(ip: string): number[] | undefined {
  if (isIP(ip) !== 6) return undefined;
  let text = ip;
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseIPv4(tail);
    if (v4 === undefined) return undefined;
    text = `${text.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = text.split('::');
  const head = halves[0] ? halves[0].split(':') : [];
  const rest = halves.length > 1 && halves[1] ? halves[1].split(':') : [];
  const fill = 8 - head.length - rest.length;
  if (fill < 0 || (halves.length === 1 && fill !== 0)) return undefined;
  const groups = [...head, ...new Array<string>(fill).fill('0'), ...rest].map((g) => parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

function wordsOf(ip: string): { family: 4 | 6; words: number[] } | undefined {
  const v4 = parseIPv4(ip);
  if (v4 !== undefined) return { family: 4, words: [v4] };
  const g = parseIPv6Groups(ip);
  if (!g) return undefined;
  const words: number[] = [];
  for (let i = 0; i < 8; i += 2) words.push((((g[i] ?? 0) << 16) | (g[i + 1] ?? 0)) >>> 0);
  return { family: 6, words };
}

function mask(bits: number): number {
  if (bits <= 0) return 0;
  if (bits >= 32) return 0xffffffff;
  return (0xffffffff << (32 - bits)) >>> 0;
}

/** Parses "a.b.c.d/n", "x::/n" or a bare address; returns undefined when malformed. */
export function parseCidr(text: string): Cidr | undefined {
  const [addr, len, extra] = text.trim().split('/');
  if (addr === undefined || extra !== undefined) return undefined;
  const parsed = wordsOf(addr);
  if (!parsed) return undefined;
  const max = parsed.family === 4 ? 32 : 128;
  const bits = len === undefined ? max : Number(len);
  if (!Number.isInteger(bits) || bits < 0 || bits > max || (len !== undefined && !/^\d+$/.test(len))) return undefined;
  const words = parsed.words.map((w, i) => (w & mask(bits - i * 32)) >>> 0);
  return Object.freeze({ family: parsed.family, words: Object.freeze(words), bits, text: text.trim() });
}

/** A compiled set of CIDRs answering "does this IP fall in any of them". */
export class CidrSet {
  private readonly v4: Cidr[];
  private readonly v6: Cidr[];

  constructor(cidrs: readonly Cidr[]) {
    this.v4 = cidrs.filter((c) => c.family === 4);
    this.v6 = cidrs.filter((c) => c.family === 6);
  }

  get size(): number {
    return this.v4.length + this.v6.length;
  }

  has(ip: string): boolean {
    if (this.size === 0) return false;
    const parsed = wordsOf(ip);
    if (!parsed) return false;
    const list = parsed.family === 4 ? this.v4 : this.v6;
    outer: for (const c of list) {
      for (let i = 0; i < c.words.length; i++) {
        const m = mask(c.bits - i * 32);
        if ((((parsed.words[i] ?? 0) & m) >>> 0) !== c.words[i]) continue outer;
      }
      return true;
    }
    return false;
  }
}

/**
 * The subnet key of an address, the same string the gateway computes for its verdict cache:
 * IPv4 "a.b.c.0/24"; IPv6 first four groups in lower-case hex without leading zeros + "::/64".
 */
export function subnetOf(ip: string): string {
  const v4 = parseIPv4(ip);
  if (v4 !== undefined) return `${v4 >>> 24}.${(v4 >>> 16) & 255}.${(v4 >>> 8) & 255}.0/24`;
  const g = parseIPv6Groups(ip);
  if (!g) return ip;
  return `${g.slice(0, 4).map((x) => x.toString(16)).join(':')}::/64`;
}

export function isValidIp(ip: string): boolean {
  return isIP(ip) !== 0;
}
