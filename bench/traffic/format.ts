// The traffic file format: JSON Lines, one request per line (README.md, "Traffic format").
// This schema is the contract for simulator output, replay input and the nginx log_format in
// gateway-plugin/nginx/verdict-traffic-log.conf; keep it backwards compatible.

import { isIP } from 'node:net';
import { z } from 'zod';

const HEADER = z.tuple([z.string().min(1).max(256), z.string().max(16_384)]);

const ts = z.union([
  z.number().int().nonnegative(),
  z
    .string()
    .min(1)
    .transform((s, ctx) => {
      // nginx $msec is "1763800000.123" (seconds); anything else must be an ISO date
      if (/^\d{9,11}(\.\d{1,3})?$/.test(s)) return Math.round(Number(s) * 1000);
      const ms = Date.parse(s);
      if (Number.isNaN(ms)) {
        ctx.addIssue({ code: 'custom', message: 'expected epoch milliseconds or an ISO 8601 date' });
        return z.NEVER;
      }
      return ms;
    }),
], { error: 'expected epoch milliseconds, nginx $msec seconds or an ISO 8601 date' });

const status = z.union([
  z.number().int().min(0).max(999),
  // nginx writes $status as text in a JSON log_format
  z.string().regex(/^\d{1,3}$/, 'expected an HTTP status').transform(Number),
], { error: 'expected an HTTP status (100-999)' });

/**
 * What a client does with a proof-of-work challenge (challenge-clients.ts models each):
 *  browser       a person's browser: runs the interstitial's solver, or the site's front-end does;
 *  browser-nojs  a browser too old for the solver script: only the page's no-JS fallback;
 *  app           a mobile app without the reference solver: cannot pass;
 *  app-solver    a mobile app that ships the reference solver;
 *  script        an HTTP library (curl, python-requests, a partner's job): cannot pass;
 *  script-nojs   a bot script that takes the interstitial's no-JS fallback: asks for the page,
 *                waits, answers — no work, where the fallback is offered;
 *  headless      a bot driving a (headless) browser: solves, paying CPU;
 *  solver        a bot script with the reference solver built in: solves, paying CPU.
 */
export const CLIENT_KINDS = ['browser', 'browser-nojs', 'app', 'app-solver', 'script', 'script-nojs', 'headless', 'solver'] as const;
export type ClientKind = (typeof CLIENT_KINDS)[number];

/**
 * Who a person is, by where and how they reach the shop (the scorecard's per-customer-type table):
 *  home     broadband at home, one address per household (and anonymous visitors);
 *  app      the mobile app;
 *  office   behind an office NAT: tens to hundreds of colleagues on one or two addresses;
 *  carrier  behind a carrier-grade NAT: hundreds to thousands of phones per address;
 *  vpn      through a VPN exit in a hosting range, shared with strangers;
 *  partner  a partner's server-to-server job (API key + token);
 *  monitor  an uptime or synthetic-transaction monitor the shop pays for.
 */
export const CUSTOMER_TYPES = ['home', 'app', 'office', 'carrier', 'vpn', 'partner', 'monitor'] as const;
export type CustomerType = (typeof CUSTOMER_TYPES)[number];

/** Simulator annotations: never seen by the engine; replay reads them (the demo shop's sessions, what a client does when challenged). */
const sim = z
  .object({
    /** The bearer token later lines use for the session this (login) request opens on success. */
    issues_token: z.string().min(1).max(256).optional(),
    /** This line's bearer token is a session opened before the file starts, owned by this username. */
    token_user: z.string().min(1).max(256).optional(),
    /** What the client does when challenged (challenge-clients.ts); absent: judged from the label and User-Agent. */
    client: z.enum(CLIENT_KINDS).optional(),
    /** The cookie jar this line's client holds (a browser profile, a bot worker), within its label. */
    actor: z.string().min(1).max(128).optional(),
    /** The person's customer type (CUSTOMER_TYPES), for the per-customer-type table. */
    customer: z.enum(CUSTOMER_TYPES).optional(),
  })
  .strict();

export const trafficLineSchema = z.object({
  ts,
  ip: z.string().refine((v) => isIP(v) !== 0, 'expected an IPv4 or IPv6 address'),
  method: z.string().regex(/^[A-Z]{1,16}$/, 'expected an upper-case HTTP method'),
  host: z.string().max(256).default(''),
  path: z.string().min(1).max(4096).startsWith('/', 'path starts with "/"'),
  query: z.string().max(8192).default(''),
  headers: z.array(HEADER).max(256).default([]),
  body: z.union([z.record(z.string(), z.unknown()), z.null()]).optional(),
  status: z.union([status, z.null(), z.literal('')]).optional(),
  label: z
    .string()
    .regex(/^(human|attack):[^\s]{1,128}$/, 'expected "human:<user-id>" or "attack:<campaign-id>"')
    .optional(),
  sim: sim.optional(),
  /** the raw request body as nginx logs it ($request_body); parsed into `body` when JSON or a form */
  body_raw: z.string().max(65_536).optional(),
});

export type TrafficLineInput = z.input<typeof trafficLineSchema>;

/** A parsed traffic line: ts in epoch ms, defaults applied, header names lower-cased. */
export interface TrafficLine {
  ts: number;
  ip: string;
  method: string;
  host: string;
  path: string;
  query: string;
  headers: Array<[string, string]>;
  body?: Record<string, unknown>;
  status?: number;
  label?: string;
  sim?: { issues_token?: string; token_user?: string; client?: ClientKind; actor?: string; customer?: CustomerType };
}

export class TrafficFormatError extends Error {
  constructor(
    readonly line: number,
    readonly field: string,
    message: string,
  ) {
    super(`line ${line}: ${field}: ${message}`);
    this.name = 'TrafficFormatError';
  }
}

/** Validates one decoded JSON value; `lineNo` (1-based) names the line in errors. */
export function parseTrafficValue(value: unknown, lineNo: number): TrafficLine {
  const r = trafficLineSchema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = issue && issue.path.length > 0 ? issue.path.join('.') : '(line)';
    throw new TrafficFormatError(lineNo, field, issue?.message ?? 'invalid');
  }
  const v = r.data;
  const line: TrafficLine = {
    ts: v.ts,
    ip: v.ip,
    method: v.method,
    host: v.host,
    path: v.path,
    query: v.query,
    // a log_format writes every listed header; an empty value means the client did not send it
    headers: v.headers.filter(([, h]) => h !== '').map(([n, h]) => [n.toLowerCase(), h]),
  };
  if (v.body) line.body = v.body;
  else if (v.body_raw) {
    const body = parseRawBody(v.body_raw);
    if (body) line.body = body;
  }
  if (typeof v.status === 'number' && v.status > 0) line.status = v.status;
  if (v.label !== undefined) line.label = v.label;
  if (v.sim !== undefined) line.sim = v.sim;
  return line;
}

function parseRawBody(raw: string): Record<string, unknown> | undefined {
  const t = raw.trim();
  if (t.startsWith('{')) {
    try {
      const v: unknown = JSON.parse(t);
      return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  }
  if (/^[^=&\s]+=/.test(t)) return Object.fromEntries(new URLSearchParams(t));
  return undefined;
}

/** Parses one text line (1-based `lineNo` for errors). */
export function parseTrafficLine(text: string, lineNo: number): TrafficLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new TrafficFormatError(lineNo, '(json)', (err as Error).message);
  }
  return parseTrafficValue(value, lineNo);
}

/** Parses a whole JSON Lines text; blank lines are skipped (still counted for line numbers). */
export function parseTrafficText(text: string): TrafficLine[] {
  const out: TrafficLine[] = [];
  const rows = text.split('\n');
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!.trim();
    if (row === '') continue;
    out.push(parseTrafficLine(row, i + 1));
  }
  return out;
}

/** One line of JSON text with a stable key order (the simulator's byte-for-byte output). */
export function formatTrafficLine(line: TrafficLine): string {
  const o: Record<string, unknown> = {
    ts: line.ts,
    ip: line.ip,
    method: line.method,
    host: line.host,
    path: line.path,
    query: line.query,
    headers: line.headers,
  };
  if (line.body !== undefined) o.body = line.body;
  if (line.status !== undefined) o.status = line.status;
  if (line.label !== undefined) o.label = line.label;
  if (line.sim !== undefined) o.sim = line.sim;
  return JSON.stringify(o);
}

/** The first value of a header (names are lower-case), or undefined. */
export function headerValue(line: TrafficLine, name: string): string | undefined {
  for (const [n, v] of line.headers) if (n === name) return v;
  return undefined;
}

/**
 * A human line's customer type: its `sim.customer`, else what its label says (the partner's and
 * monitors' jobs, anonymous visitors at home), else undefined (held-out traffic without annotations).
 */
export function customerOf(line: TrafficLine): CustomerType | undefined {
  if (line.sim?.customer) return line.sim.customer;
  const label = line.label ?? '';
  if (label.startsWith('human:partner-')) return 'partner';
  if (label.startsWith('human:monitor-')) return 'monitor';
  if (label.startsWith('human:visitor-')) return 'home';
  return undefined;
}

export function labelKind(label: string | undefined): 'human' | 'attack' | undefined {
  if (!label) return undefined;
  return label.startsWith('attack:') ? 'attack' : label.startsWith('human:') ? 'human' : undefined;
}
