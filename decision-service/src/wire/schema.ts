// zod schemas for the wire messages as the service accepts them (after protobuf or JSON decoding).
// Caps keep a hostile or buggy gateway from making the engine do unbounded work.

import { z } from 'zod';
import { isValidIp } from '../net/ip.ts';

const MODES = ['INLINE', 'ASYNC', 'MONITOR'] as const;
export type Mode = (typeof MODES)[number];

const str = (max: number) => z.string().max(max);

/**
 * bytes arrive as Uint8Array (protobuf; an unset field decodes as an empty one) or base64 text
 * (JSON). Empty means absent.
 */
const bytes = z.unknown().transform((v, ctx): Buffer | undefined => {
  if (v === undefined || v === null) return undefined;
  let b: Buffer;
  if (v instanceof Uint8Array) b = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  else if (Array.isArray(v) && v.length === 0) return undefined;
  else if (typeof v === 'string' && v.length <= 128 && /^[A-Za-z0-9+/_-]*={0,2}$/.test(v)) b = Buffer.from(v, 'base64');
  else {
    ctx.addIssue({ code: 'custom', message: 'expected base64 text of at most 64 bytes' });
    return z.NEVER;
  }
  if (b.length > 64) {
    ctx.addIssue({ code: 'custom', message: 'a hash is at most 64 bytes' });
    return z.NEVER;
  }
  return b.length === 0 ? undefined : b;
});

export const CLEARANCES = ['NONE', 'VALID', 'INVALID', 'EXPIRED'] as const;
export type Clearance = (typeof CLEARANCES)[number];
const clearance = z
  .union([z.enum(CLEARANCES), z.enum(['none', 'valid', 'invalid', 'expired']), z.number().int().min(0).max(3)])
  .transform((c): Clearance => (typeof c === 'number' ? CLEARANCES[c] ?? 'NONE' : (c.toUpperCase() as Clearance)));
/** A uint32 the gateway computed (not client text): bounded, refused when out of range. */
const uint32 = z.number().int().min(0).max(4_294_967_295);

const mode = z
  .union([z.enum(MODES), z.enum(['inline', 'async', 'monitor']), z.number().int().min(0).max(2)])
  .transform((m): Mode => (typeof m === 'number' ? MODES[m] ?? 'INLINE' : (m.toUpperCase() as Mode)));

/**
 * uint64 as a JS number: a number, decimal text (JSON) or a protobufjs Long ({low, high}: two
 * int32 words, read unsigned). Above 2^53 - 1 a number is no longer exact, so larger values are
 * refused rather than rounded (or, read signed, turned negative).
 */
const uint64 = z
  .union([z.number().int().nonnegative(), z.string().regex(/^\d{1,16}$/), z.object({ low: z.number().int(), high: z.number().int() })])
  .transform((v, ctx) => {
    const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : (v.high >>> 0) * 2 ** 32 + (v.low >>> 0);
    if (n > Number.MAX_SAFE_INTEGER) {
      const got = typeof v === 'object' ? String((BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0)) : String(v);
      ctx.addIssue({ code: 'custom', message: `at most ${Number.MAX_SAFE_INTEGER} (2^53 - 1), got ${got}` });
      return z.NEVER;
    }
    return n;
  });

/** Length caps of the DecideRequest string fields: the zod schema and the fast path share them. */
export const STRING_LIMITS = {
  request_id: 128, host: 256, query: 4096, route_tag: 64, http_version: 8, tls_protocol: 32, tls_cipher: 128,
  user_agent: 1024, accept: 1024, accept_language: 256, accept_encoding: 256, referer: 2048, origin: 512,
  content_type: 256, sec_fetch_site: 64, sec_fetch_mode: 64, sec_fetch_dest: 64, sec_fetch_user: 16, sec_ch_ua: 512,
  auth_scheme: 32, identifier: 256, gateway_id: 128,
} as const;
export const LIST_LIMITS = { header_names: [128, 128], cookie_names: [64, 128] } as const; // [items, item length]
export const BYTES_FIELDS = ['session_hash', 'token_hash', 'device_hash', 'password_hash'] as const;
export const MAX_HASH_BYTES = 64;
/** uint32 on the wire. */
export const MAX_BUDGET_MS = 4_294_967_295;

/**
 * Cut, not refused: almost every DecideRequest string is something a client sent (a header, a
 * cookie name, the path), and a refused DecideRequest makes the gateway fail open — so one
 * oversized header would switch Verdict off for that client's request (65 cookies, a 17-byte
 * Sec-Fetch-User, a 129-byte header name, `M-SEARCH`). Over-long values are cut to their limit and
 * decided on; the gateways cut what they can first (gateway-plugin/spec/), this is the backstop.
 */
export const clip = (s: string, max: number): string => (s.length > max ? s.slice(0, max) : s);
const clipped = (max: number) => z.string().transform((s) => clip(s, max));
const clippedList = ([items, len]: readonly [number, number]) => z.array(z.string()).transform((a) => (a.length > items ? a.slice(0, items) : a).map((x) => clip(x, len)));
/** HTTP method tokens as nginx accepts them (upper-case letters, "-" and "_"), cut to 16. */
export const METHOD = /^[A-Z_-]+$/;
export const MAX_METHOD = 16;
export const MAX_PATH = 4096;

const strings = Object.fromEntries(Object.entries(STRING_LIMITS).map(([k, max]) => [k, clipped(max).default('')])) as {
  [K in keyof typeof STRING_LIMITS]: z.ZodDefault<ReturnType<typeof clipped>>;
};

export const decideRequestSchema = z.object({
  ...strings,
  ts_ms: uint64.default(0),
  client_ip: z.string().max(64).refine(isValidIp, 'client_ip must be an IPv4 or IPv6 address'),
  method: z.string().min(1).regex(METHOD, 'method is an upper-case HTTP method').transform((m) => clip(m, MAX_METHOD)),
  path: z.string().min(1).startsWith('/', 'path starts with "/"').transform((p) => clip(p, MAX_PATH)),
  header_names: clippedList(LIST_LIMITS.header_names).default([]),
  cookie_names: clippedList(LIST_LIMITS.cookie_names).default([]),
  has_authorization: z.boolean().default(false),
  session_hash: bytes.optional(),
  token_hash: bytes.optional(),
  device_hash: bytes.optional(),
  password_hash: bytes.optional(),
  mode: mode.default('INLINE'),
  budget_ms: z.number().int().min(0).max(MAX_BUDGET_MS).default(0),
  clearance: clearance.default('NONE'),
  clearance_level: uint32.default(0),
  clearance_age_s: uint32.default(0),
});

export type DecideRequest = z.output<typeof decideRequestSchema>;

/** Issue 17: the kinds the gateway finds without a policy pattern (CONTRACT.md, "Response inspection"). */
export const BUILTIN_SENSITIVE_KINDS = ['cn_mobile', 'cn_id', 'bank_card', 'email'] as const;
/** A sensitive kind's name: a built-in kind or a policy pattern's (findings, patterns, the gateway's check). */
export const SENSITIVE_KIND = /^[a-z][a-z0-9_]{0,31}$/;

/** An operator-defined sensitive kind (the policy's responses.patterns), as gateways get it (OutcomeAck.patterns). */
export interface SensitivePattern {
  readonly name: string;
  readonly regex: string;
  readonly masked_regex?: string;
}

/** At most this many findings per response, and value hashes per finding (the gateway's caps). */
export const MAX_FINDINGS = 16;
export const MAX_VALUE_HASHES = 32;

export const sensitiveFindingSchema = z.object({
  kind: z.string().regex(SENSITIVE_KIND, 'a kind is [a-z][a-z0-9_]{0,31}'),
  unmasked: uint32.default(0),
  masked: uint32.default(0),
  value_hashes: z
    .array(bytes)
    .max(MAX_VALUE_HASHES)
    .default([])
    .transform((a) => a.filter((b): b is Buffer => b !== undefined)),
});
export type SensitiveFinding = z.output<typeof sensitiveFindingSchema>;

export const responseSampleSchema = z.object({
  inspected_bytes: uint32.default(0),
  truncated: z.boolean().default(false),
  records: uint32.default(0),
  requested_limit: uint32.default(0),
  findings: z.array(sensitiveFindingSchema).max(MAX_FINDINGS).default([]),
});
export type ResponseSample = z.output<typeof responseSampleSchema>;

/** Actions in the proto enum's order (Action = 0..3). */
export const WIRE_ACTIONS = ['ALLOW', 'TAG', 'CHALLENGE', 'BLOCK'] as const;

/** An Outcome's string fields: longer is refused, not cut (the gateway never sends longer). */
export const OUTCOME_LIMITS = { request_id: 128, client_ip: 64, method: 16, path: 4096, route_tag: 64, auth_result: 64, fail_open: 32 } as const;
const O = OUTCOME_LIMITS;

export const outcomeSchema = z.object({
  request_id: str(O.request_id).default(''),
  ts_ms: uint64.default(0),
  client_ip: str(O.client_ip).default(''),
  method: str(O.method).default(''),
  path: str(O.path).default(''),
  route_tag: str(O.route_tag).default(''),
  status: z.number().int().min(0).max(999).default(0),
  auth_result: str(O.auth_result).default(''),
  upstream_ms: z.number().int().nonnegative().default(0),
  bytes_sent: uint64.default(0),
  action: z
    .union([z.enum(WIRE_ACTIONS), z.number().int().min(0).max(3)])
    .transform((a) => (typeof a === 'number' ? WIRE_ACTIONS[a] ?? 'ALLOW' : a))
    .default('ALLOW'),
  fail_open: str(O.fail_open).default(''),
  from_cache: z.boolean().default(false),
  request: decideRequestSchema.optional().nullable(),
  response: responseSampleSchema.optional().nullable(),
});

export type Outcome = z.output<typeof outcomeSchema>;

/** The gateway's largest configurable batch (outcome_batch_size). */
export const MAX_OUTCOMES_PER_BATCH = 10_000;
export const gatewayIdSchema = str(128).default('');

export const outcomeBatchSchema = z.object({
  gateway_id: gatewayIdSchema,
  // The hard cap; the configured one (VERDICT_OUTCOMES_MAX_BATCH) is checked before decoding.
  outcomes: z.array(outcomeSchema).max(MAX_OUTCOMES_PER_BATCH).default([]),
  patterns_version: str(64).optional(),
});

export type OutcomeBatch = z.output<typeof outcomeBatchSchema>;
