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

const mode = z
  .union([z.enum(MODES), z.enum(['inline', 'async', 'monitor']), z.number().int().min(0).max(2)])
  .transform((m): Mode => (typeof m === 'number' ? MODES[m] ?? 'INLINE' : (m.toUpperCase() as Mode)));

const uint64 = z
  .union([z.number().int().nonnegative(), z.string().regex(/^\d{1,16}$/), z.object({ low: z.number(), high: z.number() })])
  .transform((v) => (typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : v.high * 2 ** 32 + (v.low >>> 0)));

export const decideRequestSchema = z.object({
  request_id: str(128).default(''),
  ts_ms: uint64.default(0),
  client_ip: z.string().max(64).refine(isValidIp, 'client_ip must be an IPv4 or IPv6 address'),
  method: z.string().min(1).max(16).regex(/^[A-Z]+$/, 'method is an upper-case HTTP method'),
  host: str(256).default(''),
  path: z.string().min(1).max(4096).startsWith('/', 'path starts with "/"'),
  query: str(4096).default(''),
  route_tag: str(64).default(''),
  http_version: str(8).default(''),
  tls_protocol: str(32).default(''),
  tls_cipher: str(128).default(''),
  user_agent: str(1024).default(''),
  accept: str(1024).default(''),
  accept_language: str(256).default(''),
  accept_encoding: str(256).default(''),
  referer: str(2048).default(''),
  origin: str(512).default(''),
  content_type: str(256).default(''),
  sec_fetch_site: str(64).default(''),
  sec_fetch_mode: str(64).default(''),
  sec_fetch_dest: str(64).default(''),
  sec_fetch_user: str(16).default(''),
  sec_ch_ua: str(512).default(''),
  header_names: z.array(str(128)).max(128).default([]),
  cookie_names: z.array(str(128)).max(64).default([]),
  has_authorization: z.boolean().default(false),
  auth_scheme: str(32).default(''),
  session_hash: bytes.optional(),
  token_hash: bytes.optional(),
  device_hash: bytes.optional(),
  identifier: str(256).default(''),
  password_hash: bytes.optional(),
  mode: mode.default('INLINE'),
  gateway_id: str(128).default(''),
});

export type DecideRequest = z.output<typeof decideRequestSchema>;

export const outcomeSchema = z.object({
  request_id: str(128).default(''),
  ts_ms: uint64.default(0),
  client_ip: z.string().max(64).default(''),
  method: str(16).default(''),
  path: str(4096).default(''),
  route_tag: str(64).default(''),
  status: z.number().int().min(0).max(999).default(0),
  auth_result: str(64).default(''),
  upstream_ms: z.number().int().nonnegative().default(0),
  bytes_sent: uint64.default(0),
  action: z
    .union([z.enum(['ALLOW', 'TAG', 'CHALLENGE', 'BLOCK']), z.number().int().min(0).max(3)])
    .transform((a) => (typeof a === 'number' ? (['ALLOW', 'TAG', 'CHALLENGE', 'BLOCK'] as const)[a] ?? 'ALLOW' : a))
    .default('ALLOW'),
  fail_open: str(32).default(''),
  from_cache: z.boolean().default(false),
  request: decideRequestSchema.optional().nullable(),
});

export type Outcome = z.output<typeof outcomeSchema>;

export const outcomeBatchSchema = z.object({
  gateway_id: str(128).default(''),
  outcomes: z.array(outcomeSchema).max(5000).default([]),
});

export type OutcomeBatch = z.output<typeof outcomeBatchSchema>;
