// The decide hot path's validator for protobuf-decoded DecideRequests: the same rules as the zod
// schema (wire/schema.ts, which stays the specification and validates JSON), written out for
// speed — zod's generic machinery cost more than the decision itself. Any message it rejects,
// or any field it is unsure of, goes through zod, so errors read the same either way. A test
// checks both agree on accepted and rejected messages.

import { isIP } from 'node:net';
import { parseIPv4 } from '../net/ip.ts';
import {
  CLEARANCES, clip, LIST_LIMITS, MAX_BUDGET_MS, MAX_FINDINGS, MAX_HASH_BYTES, MAX_METHOD, MAX_PATH, MAX_VALUE_HASHES, METHOD, OUTCOME_LIMITS, SENSITIVE_KIND, STRING_LIMITS, WIRE_ACTIONS,
  type DecideRequest, type Mode, type Outcome, type ResponseSample, type SensitiveFinding,
} from './schema.ts';

const MODES: readonly Mode[] = ['INLINE', 'ASYNC', 'MONITOR'];
const L = STRING_LIMITS;

type Decoded = Record<string, unknown>;

/** Thrown-free failure marker: the slow path takes over. */
class Refuse {}
const REFUSE = new Refuse();

// over-long strings and lists are cut, as in the schema (see clip there)
function str(v: unknown, max: number): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw REFUSE;
  return clip(v, max);
}

function hash(v: unknown): Buffer | undefined {
  if (v === undefined || v === null) return undefined;
  // An unset bytes field decodes to the prototype's default, an empty array.
  if (Array.isArray(v) && v.length === 0) return undefined;
  if (!(v instanceof Uint8Array) || v.length > MAX_HASH_BYTES) throw REFUSE;
  if (v.length === 0) return undefined;
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function list(v: unknown, maxItems: number, maxLen: number): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw REFUSE;
  let out = v as string[];
  if (out.length > maxItems) out = out.slice(0, maxItems);
  for (let i = 0; i < out.length; i++) {
    const x: unknown = out[i];
    if (typeof x !== 'string') throw REFUSE;
    if (x.length > maxLen) {
      if (out === v) out = out.slice();
      out[i] = clip(x, maxLen);
    }
  }
  return out;
}

function clientIp(v: unknown): string {
  if (typeof v !== 'string' || v.length > 64) throw REFUSE;
  if (parseIPv4(v) === undefined && isIP(v) !== 6) throw REFUSE;
  return v;
}

function tsMs(v: unknown): number {
  // uint64 decodes to a number, or to a Long when long.js is present (both words unsigned, as in
  // the zod schema: a signed high word turns 2^63 and above negative).
  const raw = v as number | { low: number; high: number } | undefined | null;
  const ts = typeof raw === 'number' ? raw : raw && typeof raw === 'object' ? (raw.high >>> 0) * 4294967296 + (raw.low >>> 0) : 0;
  if (!Number.isInteger(ts) || ts < 0 || ts > Number.MAX_SAFE_INTEGER) throw REFUSE;
  return ts;
}

function budgetMs(v: unknown): number {
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_BUDGET_MS) throw REFUSE;
  return v;
}

/** uint32 fields the gateway computes: absent = 0. */
const uint32 = budgetMs;

function clearanceOf(v: unknown): (typeof CLEARANCES)[number] {
  if (v === undefined || v === null) return 'NONE';
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 3) throw REFUSE;
  return CLEARANCES[v] as (typeof CLEARANCES)[number];
}

/**
 * Returns the validated request, or undefined when the message needs the slow path (zod) —
 * which then either accepts it or produces the field-named error. The result is built as one
 * literal so every request object has the same shape (the engine reads it a lot).
 */
export function fastValidateDecide(m: Decoded): DecideRequest | undefined {
  try {
    const rawMethod = m.method;
    if (typeof rawMethod !== 'string' || !METHOD.test(rawMethod)) return undefined;
    const method = clip(rawMethod, MAX_METHOD);
    const rawPath = m.path;
    if (typeof rawPath !== 'string' || rawPath.length === 0 || rawPath.charCodeAt(0) !== 47) return undefined;
    const path = clip(rawPath, MAX_PATH);
    const modeCode = m.mode;
    if (typeof modeCode !== 'number' || modeCode < 0 || modeCode > 2) return undefined;
    return {
      request_id: str(m.request_id, L.request_id),
      ts_ms: tsMs(m.ts_ms),
      client_ip: clientIp(m.client_ip),
      method,
      host: str(m.host, L.host),
      path,
      query: str(m.query, L.query),
      route_tag: str(m.route_tag, L.route_tag),
      http_version: str(m.http_version, L.http_version),
      tls_protocol: str(m.tls_protocol, L.tls_protocol),
      tls_cipher: str(m.tls_cipher, L.tls_cipher),
      user_agent: str(m.user_agent, L.user_agent),
      accept: str(m.accept, L.accept),
      accept_language: str(m.accept_language, L.accept_language),
      accept_encoding: str(m.accept_encoding, L.accept_encoding),
      referer: str(m.referer, L.referer),
      origin: str(m.origin, L.origin),
      content_type: str(m.content_type, L.content_type),
      sec_fetch_site: str(m.sec_fetch_site, L.sec_fetch_site),
      sec_fetch_mode: str(m.sec_fetch_mode, L.sec_fetch_mode),
      sec_fetch_dest: str(m.sec_fetch_dest, L.sec_fetch_dest),
      sec_fetch_user: str(m.sec_fetch_user, L.sec_fetch_user),
      sec_ch_ua: str(m.sec_ch_ua, L.sec_ch_ua),
      header_names: list(m.header_names, LIST_LIMITS.header_names[0], LIST_LIMITS.header_names[1]),
      cookie_names: list(m.cookie_names, LIST_LIMITS.cookie_names[0], LIST_LIMITS.cookie_names[1]),
      has_authorization: m.has_authorization === true,
      auth_scheme: str(m.auth_scheme, L.auth_scheme),
      session_hash: hash(m.session_hash),
      token_hash: hash(m.token_hash),
      device_hash: hash(m.device_hash),
      identifier: str(m.identifier, L.identifier),
      password_hash: hash(m.password_hash),
      mode: MODES[modeCode] as Mode,
      gateway_id: str(m.gateway_id, L.gateway_id),
      budget_ms: budgetMs(m.budget_ms),
      clearance: clearanceOf(m.clearance),
      clearance_level: uint32(m.clearance_level),
      clearance_age_s: uint32(m.clearance_age_s),
    };
  } catch (err) {
    if (err === REFUSE) return undefined;
    throw err;
  }
}

function finding(f: unknown): SensitiveFinding {
  if (f === null || typeof f !== 'object') throw REFUSE;
  const m = f as Decoded;
  const kind = m.kind;
  if (typeof kind !== 'string' || !SENSITIVE_KIND.test(kind)) throw REFUSE;
  const raw = m.value_hashes;
  const hashes: Buffer[] = [];
  if (raw !== undefined && raw !== null) {
    if (!Array.isArray(raw) || raw.length > MAX_VALUE_HASHES) throw REFUSE;
    for (const h of raw) {
      const b = hash(h);
      if (b) hashes.push(b);
    }
  }
  return { kind, unmasked: uint32(m.unmasked), masked: uint32(m.masked), value_hashes: hashes };
}

/**
 * Issue 17: a protobuf-decoded ResponseSample (Outcome.response) by the schema's rules, or
 * undefined for zod to accept it or name the field it refuses.
 */
export function fastValidateResponseSample(m: Decoded): ResponseSample | undefined {
  try {
    const raw = m.findings;
    const findings: SensitiveFinding[] = [];
    if (raw !== undefined && raw !== null) {
      if (!Array.isArray(raw) || raw.length > MAX_FINDINGS) return undefined;
      for (const f of raw) findings.push(finding(f));
    }
    const truncated = m.truncated;
    if (truncated !== undefined && truncated !== null && typeof truncated !== 'boolean') return undefined;
    return {
      inspected_bytes: uint32(m.inspected_bytes),
      truncated: truncated === true,
      records: uint32(m.records),
      requested_limit: uint32(m.requested_limit),
      findings,
    };
  } catch (err) {
    if (err === REFUSE) return undefined;
    throw err;
  }
}

/** A string field the schema refuses (not cuts) when over-long: absent = ''. */
function bounded(v: unknown, max: number): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string' || v.length > max) throw REFUSE;
  return v;
}

function uint64Field(v: unknown): number {
  return v === undefined || v === null ? 0 : tsMs(v);
}

/**
 * An Outcome by the schema's rules, its own fields checked here and its request and response
 * (validated apart) put in, or undefined for zod to accept the fields or name the one it refuses.
 * Every gateway sends one per request, so this runs as often as decide does.
 */
export function fastValidateOutcomeFields(m: Decoded, request?: DecideRequest, response?: ResponseSample): Outcome | undefined {
  try {
    const status = m.status ?? 0;
    if (typeof status !== 'number' || !Number.isInteger(status) || status < 0 || status > 999) return undefined;
    const upstream = m.upstream_ms ?? 0;
    if (typeof upstream !== 'number' || !Number.isInteger(upstream) || upstream < 0) return undefined;
    const a = m.action ?? 0;
    const action = typeof a === 'number' ? (Number.isInteger(a) ? WIRE_ACTIONS[a] : undefined) : WIRE_ACTIONS.find((x) => x === a);
    if (!action) return undefined;
    const fromCache = m.from_cache ?? false;
    if (typeof fromCache !== 'boolean') return undefined;
    const O = OUTCOME_LIMITS;
    return {
      request_id: bounded(m.request_id, O.request_id),
      ts_ms: uint64Field(m.ts_ms),
      client_ip: bounded(m.client_ip, O.client_ip),
      method: bounded(m.method, O.method),
      path: bounded(m.path, O.path),
      route_tag: bounded(m.route_tag, O.route_tag),
      status,
      auth_result: bounded(m.auth_result, O.auth_result),
      upstream_ms: upstream,
      bytes_sent: uint64Field(m.bytes_sent),
      action,
      fail_open: bounded(m.fail_open, O.fail_open),
      from_cache: fromCache,
      request,
      response,
    };
  } catch (err) {
    if (err === REFUSE) return undefined;
    throw err;
  }
}
