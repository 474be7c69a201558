// read_identity() of request.lua: on identity routes, the submitted identifier and the keyed
// hash of the submitted password, from a JSON (lua-cjson) or urlencoded (ngx.decode_args) body.

import { jsonDepth } from '../http/json-body.ts';
import { decodeFormArgs } from './form-args.ts';
import { keyedHash } from './keyed-hash.ts';
import type { GatewaySettings } from './settings.ts';

/** request.lua's MAX_IDENTIFIER: identifier bytes sent. */
export const MAX_IDENTIFIER_BYTES = 256;
/** lua-cjson's decode_max_depth default. */
const CJSON_MAX_DEPTH = 1000;
/** ngx.decode_args(body, 32) */
const FORM_MAX_ARGS = 32;

export interface Identity {
  /** '' when none */
  identifier: string;
  passwordHash: Buffer | undefined;
}

/** What read_identity() needs from the request. */
export interface IdentityInput {
  readonly method: string;
  /** the DecideRequest's content_type (the first Content-Type value, capped) */
  readonly contentType: string;
  /** the first Content-Length value ($http_content_length), if any */
  readonly contentLength: string | undefined;
  /** the body as read into memory */
  readonly body: Uint8Array | undefined;
}

/**
 * LuaJIT's string.format("%.0f", v) for what lua-cjson decodes a JSON number to: halves round
 * away from zero (as toFixed), -0 keeps its sign, and large values print every digit.
 */
export function luaIntegerText(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  if (Object.is(v, -0)) return '-0';
  return Math.abs(v) < 1e21 ? v.toFixed(0) : BigInt(v).toString();
}

/**
 * lua-cjson's view of a body: undefined where it fails to decode it. JSON.parse differs from it
 * in two ways handled here: lua-cjson refuses \u escapes that leave a lone surrogate and nesting
 * deeper than 1000. (It also accepts NaN, Infinity and hex numbers, which JSON.parse refuses:
 * such a body yields no identifier here, while Lua reads one.)
 */
function cjsonDecode(text: string): unknown {
  if (jsonDepth(text, CJSON_MAX_DEPTH) > CJSON_MAX_DEPTH) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  // a lone surrogate can only come from an escape (UTF-8 text cannot carry one)
  if (text.includes('\\u') && !wellFormed(v)) return undefined;
  return v;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function wellFormed(v: unknown): boolean {
  if (typeof v === 'string') return !LONE_SURROGATE.test(v);
  if (v === null || typeof v !== 'object') return true;
  if (Array.isArray(v)) return v.every(wellFormed);
  for (const [k, x] of Object.entries(v)) if (LONE_SURROGATE.test(k) || !wellFormed(x)) return false;
  return true;
}

/**
 * The identifier (the first identity field holding a non-empty string, or a number) and the
 * password hash (the password field holding a non-empty string), or undefined when the body is
 * not read: not POST/PUT/PATCH, over body_max_bytes (by Content-Length or in fact), empty, or
 * neither JSON (a Content-Type containing "json") nor a form (containing
 * "application/x-www-form-urlencoded"), or not decodable.
 */
export function readIdentity(
  input: IdentityInput,
  settings: Pick<GatewaySettings, 'identityFields' | 'passwordField' | 'bodyMaxBytes' | 'hmacKey'>,
): Identity | undefined {
  const { method, contentType: ct, body } = input;
  const { identityFields: fields, passwordField, bodyMaxBytes: max, hmacKey: key } = settings;
  if (method !== 'POST' && method !== 'PUT' && method !== 'PATCH') return undefined;
  // Lua's tonumber(): NaN (no or no numeric Content-Length) compares false
  if (Number(input.contentLength ?? Number.NaN) > max) return undefined;
  if (body === undefined || body.length === 0 || body.length > max) return undefined;
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const out: Identity = { identifier: '', passwordHash: undefined };
  if (ct.includes('json')) {
    // JSON strings come out as text: hashed as its UTF-8 (the bytes sent, unless they were not UTF-8)
    const args = cjsonDecode(bytes.toString());
    if (args === null || typeof args !== 'object') return undefined;
    // a top-level array is a table too, but has none of these keys
    const get = (k: string): unknown => (!Array.isArray(args) && Object.hasOwn(args, k) ? (args as Record<string, unknown>)[k] : undefined);
    for (const f of fields) {
      const v = get(f);
      const s = typeof v === 'number' ? luaIntegerText(v) : v;
      if (typeof s === 'string' && s !== '') {
        out.identifier = Buffer.byteLength(s) > MAX_IDENTIFIER_BYTES ? Buffer.from(s).subarray(0, MAX_IDENTIFIER_BYTES).toString() : s;
        break;
      }
    }
    const pw = get(passwordField);
    if (typeof pw === 'string' && pw !== '') out.passwordHash = keyedHash(key, pw);
    return out;
  }
  if (ct.includes('application/x-www-form-urlencoded')) {
    const args = decodeFormArgs(bytes, FORM_MAX_ARGS);
    const get = (k: string) => args.get(Buffer.from(k).toString('latin1'));
    for (const f of fields) {
      const v = get(f);
      if (Buffer.isBuffer(v) && v.length > 0) {
        out.identifier = v.subarray(0, MAX_IDENTIFIER_BYTES).toString();
        break;
      }
    }
    const pw = get(passwordField);
    if (Buffer.isBuffer(pw) && pw.length > 0) out.passwordHash = keyedHash(key, pw);
    return out;
  }
  return undefined;
}
