// Seeded input generators for fuzzing the decision service (test/fuzz/, scripts/fuzz.ts).
//
// Every input is a pure function of (seed, transport, index): case 1234 of seed 7 is the same
// bytes on every machine and can be regenerated alone (`npm run fuzz -- --seed 7 --http 1234`).
// Inputs start from valid DecideRequests / OutcomeBatches (the shapes the gateways send, values
// at and past the schema's limits) and are then mutated with knowledge of the structure: one
// field's type or value broken, protobuf fields dropped / duplicated / re-typed / re-ordered,
// unknown fields, truncation, bit flips, random bytes, deep JSON, huge strings, wrong content
// types. Each input carries what the service must do with it (`expect`) and, when one field was
// broken on purpose, that field's name: a 400 INVALID_FIELD answer must name it.

import protobuf from 'protobufjs';
import { Rng } from '../../bench/traffic/rng.ts';
import { DecideRequestType, OutcomeBatchType } from '../../decision-service/src/wire/codec.ts';
import { FRAME, frame } from '../../decision-service/src/wire/frame-server.ts';
import { LIST_LIMITS, STRING_LIMITS } from '../../decision-service/src/wire/schema.ts';
import { paddedVarint, readFields, tag, varint, writeField, writeFields, WT, type WireField } from './fuzz-proto.ts';

/** ok: must be decided (200 / VERDICT); bad: must be refused (4xx / ERROR); any: either, never a 5xx. */
export type Expect = 'ok' | 'bad' | 'any';

export interface Payload {
  kind: string;
  body: Buffer;
  expect: Expect;
  /** The one field broken on purpose (zod path, e.g. "outcomes.2.status"). */
  field?: string;
  /** request_id of a valid DecideRequest: the verdict must carry it. */
  requestId?: string;
  /** outcomes in a valid OutcomeBatch: the ack must accept exactly these. */
  accepted?: number;
}

export interface HttpCase extends Omit<Payload, 'body'> {
  transport: 'http';
  index: number;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
  /** Send this many bytes per write with chunked transfer encoding instead of Content-Length. */
  chunked?: number;
  /** What the answer must be when ok: the encoding Accept asked for. */
  answerEncoding?: 'json' | 'protobuf';
  /** Bytes written as they are on a fresh connection (malformed HTTP); method/path unused. */
  raw?: Buffer;
}

export interface FrameAnswer {
  /** Frame types the server may answer with for this frame. */
  types: number[];
  label: string;
  requestId?: string;
  accepted?: number;
}

/** One connection: phases of writes, each followed by waiting for exactly its answers. */
export interface FrameSession {
  transport: 'frames';
  index: number;
  kind: string;
  phases: Array<{ writes: Buffer[]; answers: FrameAnswer[] }>;
  /**
   * Written after the last phase: a stream the server cannot resynchronise from. `pipelined`:
   * in the same write as the last phase's frames, whose answers must still all come first.
   */
  tail?: { kind: 'fatal' | 'garbage' | 'partial'; bytes: Buffer; pipelined?: boolean };
}

export interface GenOptions {
  /** Largest "huge" input (bytes); above the service's body limit some inputs are refused with 413. */
  hugeBytes: number;
}

export const DEFAULT_GEN: GenOptions = { hugeBytes: 1 << 20 };

/** Addresses the fuzzer never sends: the before/after probes use them, with no state from the run. */
export const PROBE_IPS = { before: '203.0.113.7', after: '198.18.0.7' } as const;

// ---------------------------------------------------------------------------------------------
// values

const ROUTES = [
  '/', '/promo', '/api/auth/login', '/api/v1/login', '/api/auth/register', '/api/auth/password-reset', '/api/sms/send',
  '/api/users/{n}/profile', '/api/orders/{n}', '/api/promo/info', '/api/promo/claim', '/internal/admin/users',
  '/actuator/env', '/.env', '/.git/config', '/backup.sql', '/swagger-ui.html', '/static/app.js', '/favicon.ico',
];
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'CONNECT', 'TRACE', 'PROPFIND'];
const UAS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
  'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0', 'curl/8.5.0', 'python-requests/2.31',
  'okhttp/4.12.0', 'ShopApp/3.2 (iPhone; iOS 17.4)', '', 'Go-http-client/1.1', 'sqlmap/1.8',
];
const QUERIES = [
  'a=1', "id=1' or '1'='1", 'q=%3cscript%3ealert(1)', 'x=${jndi:ldap://e/a}', 'p=%E0%A4%A', 'u=union+select+1', '%',
  'cmd=;cat /etc/passwd', 't={{7*7}}', 'a=%ZZ&b=%', 'x=' + '%'.repeat(50),
];
const HEADER_NAMES = [
  'host', 'user-agent', 'accept', 'accept-language', 'accept-encoding', 'content-type', 'content-length', 'cookie',
  'authorization', 'referer', 'origin', 'sec-fetch-site', 'sec-fetch-mode', 'sec-ch-ua', 'x-api-key', 'x-device-id',
];
// Characters valid text may hold. Lone surrogates are not among them: protobuf strings are UTF-8,
// which cannot carry them (a decoder turns each into U+FFFD); JSON mutations send them.
const WEIRD = ['\u0000', '\u0007', '\u007f', '\u00e9', '\u4e2d', '\ud83d\ude00', '\ufeff', '\u202e', '"', '\\', '%', '\n'];

function str(r: Rng, max: number): string {
  const len = r.weighted<number>([[0, 1], [r.int(1, Math.min(max, 12)), 6], [r.int(1, max), 2], [max, 1]]);
  switch (r.int(0, 5)) {
    case 0: {
      let s = '';
      for (let i = 0; i < len; i++) s += r.chance(0.15) ? r.pick(WEIRD) : r.alnum(1);
      s = s.slice(0, max);
      // a cut surrogate pair would leave a lone surrogate (see WEIRD)
      return /[\ud800-\udbff]$/.test(s) ? s.slice(0, -1) : s;
    }
    case 1: {
      let s = '';
      for (let i = 0; i < len; i++) s += String.fromCharCode(r.int(32, 126));
      return s;
    }
    default:
      return r.alnum(len);
  }
}

function ipv4(r: Rng): string {
  for (;;) {
    const a = r.int(1, 223);
    const b = r.int(0, 255);
    const c = r.int(0, 255);
    if ((a === 203 && b === 0 && c === 113) || (a === 198 && (b === 18 || b === 19))) continue;
    return `${a}.${b}.${c}.${r.int(0, 255)}`;
  }
}

function ip(r: Rng): string {
  switch (r.int(0, 9)) {
    case 0: return `2001:db8:${r.hex(4)}::${r.hex(r.int(1, 4))}`;
    case 1: return r.pick(['::1', '::', '::ffff:192.0.2.1', '64:ff9b::192.0.2.33', 'fe80::1%eth0', '2001:db8::a:b:c:d:e', '1:2:3:4:5:6:7:8']);
    case 2: return `::ffff:${ipv4(r)}`;
    case 3: return r.pick(['10.0.0.1', '127.0.0.1', '0.0.0.0', '255.255.255.255', '192.168.1.1']);
    default: return ipv4(r);
  }
}

function routePath(r: Rng): string {
  if (r.chance(0.12)) {
    // boundary lengths and odd characters (all still start with "/")
    const p = `/${str(r, r.int(1, 300))}`;
    return r.chance(0.2) ? `/${'a'.repeat(4095)}` : p;
  }
  const base = r.pick(ROUTES).replace('{n}', String(r.weighted<number>([[r.int(1, 5000), 5], [r.int(0, 2 ** 31), 1], [-1, 1]])));
  return r.chance(0.1) ? `${base}/${r.pick(['..', '%2e%2e', '//', '%00', '\u4e2d', ';x=1'])}` : base;
}

function names(r: Rng, maxItems: number, maxLen: number, pool: readonly string[]): string[] {
  const n = r.weighted<number>([[0, 2], [r.int(1, 20), 6], [maxItems, 1]]);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(r.chance(0.8) ? r.pick(pool) : str(r, maxLen) || 'x');
  return out;
}

function hash(r: Rng): Buffer {
  const n = r.pick([16, 20, 32, 64, r.int(1, 64)]);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = r.int(0, 255);
  return b;
}

function bytes(r: Rng, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = r.int(0, 255);
  return b;
}

/** A valid DecideRequest as a protobufjs-ready object (bytes as Buffers, mode as its number). */
export function validDecide(r: Rng, requestId: string): Record<string, unknown> {
  const m: Record<string, unknown> = { request_id: requestId, client_ip: ip(r), method: r.chance(0.9) ? r.pick(METHODS) : 'A'.repeat(r.int(1, 16)), path: routePath(r) };
  const L = STRING_LIMITS;
  if (r.chance(0.7)) m.ts_ms = r.pick([1763800000000 + r.int(0, 1e9), 0, 1, Number.MAX_SAFE_INTEGER, 2 ** 32]);
  if (r.chance(0.6)) m.host = r.chance(0.8) ? 'shop.example.com' : str(r, L.host);
  if (r.chance(0.4)) m.query = r.chance(0.6) ? r.pick(QUERIES) : str(r, L.query);
  if (r.chance(0.3)) m.route_tag = r.chance(0.5) ? r.pick(['login', 'register', 'sms', 'promo']) : str(r, L.route_tag);
  if (r.chance(0.5)) m.http_version = r.pick(['1.0', '1.1', '2.0', '3.0', str(r, L.http_version)]);
  if (r.chance(0.3)) m.tls_protocol = r.pick(['TLSv1.3', 'TLSv1.2', str(r, L.tls_protocol)]);
  if (r.chance(0.3)) m.tls_cipher = r.pick(['TLS_AES_128_GCM_SHA256', str(r, L.tls_cipher)]);
  if (r.chance(0.8)) m.user_agent = r.chance(0.8) ? r.pick(UAS) : str(r, L.user_agent);
  for (const f of ['accept', 'accept_language', 'accept_encoding', 'referer', 'origin', 'content_type', 'sec_fetch_site', 'sec_fetch_mode', 'sec_fetch_dest', 'sec_fetch_user', 'sec_ch_ua'] as const) {
    if (r.chance(0.35)) m[f] = str(r, L[f]);
  }
  if (r.chance(0.7)) m.header_names = names(r, LIST_LIMITS.header_names[0], LIST_LIMITS.header_names[1], HEADER_NAMES);
  if (r.chance(0.4)) m.cookie_names = names(r, LIST_LIMITS.cookie_names[0], LIST_LIMITS.cookie_names[1], ['sid', 'csrftoken', '_ga', 'verdict_clearance']);
  if (r.chance(0.4)) m.has_authorization = r.chance(0.7);
  if (r.chance(0.3)) m.auth_scheme = r.pick(['bearer', 'basic', str(r, L.auth_scheme)]);
  for (const f of ['session_hash', 'token_hash', 'device_hash', 'password_hash']) if (r.chance(0.3)) m[f] = hash(r);
  if (r.chance(0.3)) m.identifier = r.pick([`138${r.int(10000000, 99999999)}`, `+86138${r.int(10000000, 99999999)}`, `u${r.int(0, 1e6)}@example.com`, str(r, L.identifier)]);
  if (r.chance(0.6)) m.mode = r.int(0, 2);
  if (r.chance(0.4)) m.gateway_id = r.chance(0.7) ? `gw-${r.int(1, 8)}` : str(r, L.gateway_id);
  // past the limits: cut by the service, never refused (what a client sends must not switch Verdict off)
  if (r.chance(0.05)) {
    // (not request_id: the answer must name the request it decided)
    const f = r.pick(Object.keys(L).filter((k) => k !== 'request_id')) as keyof typeof L;
    m[f] = 'x'.repeat(L[f] + r.int(1, 64));
  }
  if (r.chance(0.03)) m.header_names = Array.from({ length: LIST_LIMITS.header_names[0] + r.int(1, 50) }, (_, i) => `h${i}`);
  if (r.chance(0.03)) m.cookie_names = ['ok', 'y'.repeat(LIST_LIMITS.cookie_names[1] + r.int(1, 100))];
  if (r.chance(0.02)) m.method = r.pick(['M-SEARCH', 'A'.repeat(17), 'VERSION_CONTROL']);
  if (r.chance(0.02)) m.path = `/${'a'.repeat(4096)}`;
  return m;
}

function validOutcomes(r: Rng, idBase: string): Record<string, unknown> {
  const n = r.weighted<number>([[0, 1], [r.int(1, 8), 6], [r.int(9, 100), 1]]);
  const outcomes: Array<Record<string, unknown>> = [];
  for (let i = 0; i < n; i++) {
    const o: Record<string, unknown> = { request_id: `${idBase}-o${i}`, status: r.pick([200, 201, 204, 401, 403, 404, 409, 429, 500, 0, 999]) };
    if (r.chance(0.6)) o.ts_ms = 1763800000000 + r.int(0, 1e9);
    if (r.chance(0.6)) o.client_ip = r.chance(0.9) ? ip(r) : str(r, 64);
    if (r.chance(0.5)) o.method = r.pick(METHODS);
    if (r.chance(0.6)) o.path = routePath(r);
    if (r.chance(0.3)) o.route_tag = r.pick(['login', 'promo', '']);
    if (r.chance(0.3)) o.auth_result = r.pick(['ok', 'no_such_user', 'bad_password', str(r, 64)]);
    if (r.chance(0.5)) o.upstream_ms = r.pick([0, 3, 250, 2 ** 32 - 1]);
    if (r.chance(0.3)) o.bytes_sent = r.pick([0, 512, Number.MAX_SAFE_INTEGER]);
    if (r.chance(0.4)) o.action = r.int(0, 3);
    if (r.chance(0.3)) o.fail_open = r.pick(['timeout', 'refused', 'bad response', 'breaker open', '']);
    if (r.chance(0.2)) o.from_cache = true;
    if (r.chance(0.25)) o.request = { ...validDecide(r, `${idBase}-r${i}`), mode: 1 };
    outcomes.push(o);
  }
  const b: Record<string, unknown> = { outcomes };
  if (r.chance(0.7)) b.gateway_id = `gw-${r.int(1, 8)}`;
  return b;
}

const OutcomeType = OutcomeBatchType.lookupType('verdict.v1.Outcome');
const encDecide = (m: Record<string, unknown>) => Buffer.from(DecideRequestType.encode(DecideRequestType.fromObject(m)).finish());
const encOutcomes = (m: Record<string, unknown>) => Buffer.from(OutcomeBatchType.encode(OutcomeBatchType.fromObject(m)).finish());

/** The same message as the JSON contract spells it: bytes as base64, enums as names or numbers. */
function toJson(r: Rng, v: unknown, key = ''): unknown {
  if (Buffer.isBuffer(v)) return r.chance(0.8) ? v.toString('base64') : v.toString('base64url');
  if (Array.isArray(v)) return v.map((x) => toJson(r, x));
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = toJson(r, x, k);
    return o;
  }
  if (key === 'mode' && typeof v === 'number' && r.chance(0.7)) {
    const name = ['INLINE', 'ASYNC', 'MONITOR'][v] ?? 'INLINE';
    return r.chance(0.8) ? name : name.toLowerCase();
  }
  if (key === 'action' && typeof v === 'number' && r.chance(0.7)) return ['ALLOW', 'TAG', 'CHALLENGE', 'BLOCK'][v];
  if (key === 'ts_ms' && typeof v === 'number' && r.chance(0.3) && String(v).length <= 16) return String(v);
  return v;
}

// ---------------------------------------------------------------------------------------------
// semantic breakage: one field gets a value the schema refuses (the answer must name the field)

const REQUIRED = ['client_ip', 'method', 'path'] as const;

/** A uint64 as protobufjs takes it (a Long's two words, unsigned): exact beyond 2^53. */
function u64(v: bigint): { low: number; high: number; unsigned: true } {
  return { low: Number(v & 0xffffffffn) | 0, high: Number(v >> 32n) | 0, unsigned: true };
}

function badDecideValue(r: Rng, o: GenOptions): [string, unknown] {
  const L = STRING_LIMITS;
  switch (r.int(0, 9)) {
    // (over-long strings and lists are not bad: the service cuts them to their limits, see
    // validDecide; a refusal would make the gateway fail open)
    case 0: return ['method', r.pick(['get', 'G E T', 'POST\r\n', '', 'GET1'])];
    case 1: return ['path', r.pick(['', 'api/auth/login', '*', 'http://x/'])];
    case 2: return ['client_ip', r.pick(['', '1.2.3', '999.1.1.1', 'localhost', '1.2.3.4 ', '::ffff:1.2.3.256', 'a'.repeat(65), '1.2.3.4/24'])];
    case 3: return ['client_ip', r.pick(['1.2.3.4.5', '::g', '1.2.3.-4'])];
    case 4: return ['path', r.pick(['a/b', ' /', '\\x'])];
    case 5: return [r.pick(['session_hash', 'token_hash', 'device_hash', 'password_hash']), Buffer.alloc(r.int(65, 300), 7)];
    case 6: return ['mode', r.pick([3, 7, 255, 2 ** 31 - 1, -1])];
    // past 2^53 - 1 (once read negative from 2^63 on); in JSON the same {low, high} object
    case 7: return ['ts_ms', u64(r.pick([2n ** 53n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 53n + BigInt(r.int(1, 1e9))]))];
    default: return [r.pick(REQUIRED), undefined];
  }
}

/** A JSON value of the wrong type (or a right type with an odd value) for any field. */
function confusedValue(r: Rng): unknown {
  return r.pick<unknown>([
    null, true, false, 0, -1, 1.5, -0, 1e308, -1e308, 2 ** 53, 2 ** 64, '', 'x', '-1', '1e3', '0x10', [], [1, 2], [null], {}, { a: 1 }, { low: 1, high: -1 },
    { $gt: '' }, 'A'.repeat(5000), ['a', 1, null], 'ASYNC', 'inline', 3, '\u0000',
  ]);
}

// ---------------------------------------------------------------------------------------------
// protobuf mutations on the wire-field list

function hugeString(r: Rng, o: GenOptions): string {
  return 'z'.repeat(r.int(Math.min(100_000, o.hugeBytes), o.hugeBytes));
}

const NUMERIC = new Set(['uint64', 'uint32', 'int32', 'bool']);

/** Generic mutation of an encoded `msg`; `required` names the fields whose absence is an error. */
function wireMutate(r: Rng, valid: Buffer, msg: protobuf.Type, o: GenOptions, required: Record<number, string> = {}): Payload {
  const fields = readFields(valid);
  const names: Record<number, string> = {};
  const repeated = new Set<number>();
  const numeric: number[] = [];
  for (const f of msg.fieldsArray) {
    names[f.id] = f.name;
    if (f.repeated) repeated.add(f.id);
    else if (NUMERIC.has(f.type) || f.resolve().resolvedType instanceof protobuf.Enum) numeric.push(f.id);
  }
  const pickIdx = () => r.int(0, Math.max(0, fields.length - 1));
  const op = r.weighted<string>([
    ['unknown', 4], ['budget', msg === DecideRequestType ? 2 : 0], ['reorder', 2], ['dup', 2], ['drop', 2], ['wiretype', 4],
    ['varint', numeric.length ? 3 : 0], ['len', 3], ['truncate', 4], ['bitflip', 6], ['splice', 1], ['random', 3], ['zeros', 1],
    ['empty', 1], ['badwt', 1], ['field0', 1], ['huge-unknown', 1], ['group', 1],
  ]);
  const kind = `${msg.name}.pb.${op}`;
  switch (op) {
    case 'unknown': {
      const out = [...fields];
      // the first number the message does not declare (DecideRequest grows: 36-38 are clearance)
      const first = Math.max(...msg.fieldsArray.map((f) => f.id)) + 1;
      for (let k = r.int(1, 5); k > 0; k--) {
        const no = r.pick([first, r.int(first + 1, 500), 1000, 19_000, 2 ** 29 - 1, r.int(first, 2 ** 29 - 1)]);
        const wt = r.pick([WT.VARINT, WT.I64, WT.LEN, WT.I32]);
        const value = wt === WT.VARINT ? varint(r.pick<number | bigint>([0, 1, r.int(0, 2 ** 31), 2n ** 64n - 1n])) : wt === WT.I64 ? bytes(r, 8) : wt === WT.I32 ? bytes(r, 4) : bytes(r, r.int(0, 200));
        out.splice(r.int(0, out.length), 0, { no, wt, value });
      }
      return { kind, body: writeFields(out), expect: 'ok' };
    }
    case 'budget': {
      // field 35: unknown today, DecideRequest.budget_ms once the deadline work lands
      const v = r.pick<number | bigint>([0, 1, 5, 35, 1000, 2 ** 32 - 1, 2n ** 64n - 1n]);
      const f: WireField = r.chance(0.8) ? { no: 35, wt: WT.VARINT, value: varint(v) } : { no: 35, wt: WT.LEN, value: bytes(r, r.int(0, 10)) };
      const out = [...fields];
      out.splice(r.int(0, out.length), 0, f);
      return { kind, body: writeFields(out), expect: 'any' };
    }
    case 'reorder':
      return { kind, body: writeFields(r.shuffle([...fields])), expect: 'ok' };
    case 'dup': {
      const f = fields[pickIdx()];
      if (!f) return { kind, body: valid, expect: 'ok' };
      return { kind, body: writeFields([...fields, f]), expect: repeated.has(f.no) ? 'any' : 'ok' };
    }
    case 'drop': {
      const i = pickIdx();
      const f = fields[i];
      const req = f ? required[f.no] : undefined;
      return { kind, body: writeFields(fields.filter((_, k) => k !== i)), expect: req ? 'bad' : 'ok', field: req };
    }
    case 'wiretype': {
      const i = pickIdx();
      const f = fields[i];
      if (!f) return { kind, body: valid, expect: 'ok' };
      const wt = r.pick([WT.VARINT, WT.I64, WT.LEN, WT.I32].filter((w) => w !== f.wt));
      const value = wt === WT.VARINT ? varint(r.int(0, 2 ** 31)) : wt === WT.I64 ? bytes(r, 8) : wt === WT.I32 ? bytes(r, 4) : bytes(r, r.int(0, 40));
      const out = [...fields];
      out[i] = { no: f.no, wt, value };
      // no field named: the re-typed bytes shift how the fields after it are read
      return { kind, body: writeFields(out), expect: 'any' };
    }
    case 'varint': {
      // extreme numbers: 2^64-1 (-1 as int64), 2^63, 2^53+1, 10-byte padded, 11-byte (malformed)
      const no = r.pick(numeric);
      const v = r.pick<Buffer>([varint(2n ** 64n - 1n), varint(2n ** 63n), varint(2n ** 53n + 1n), paddedVarint(1, 10), paddedVarint(1, 11), varint(2n ** 32n), varint(2n ** 31n)]);
      const out = fields.filter((f) => f.no !== no);
      out.splice(r.int(0, out.length), 0, { no, wt: WT.VARINT, value: v });
      // Malformed lengths misalign what follows, so no one field is to blame: 11 bytes (a varint has
      // at most 10), and 6-9 bytes in a 32-bit field (protobufjs then assumes 10 and skips ahead).
      const wide = msg.fields[names[no] ?? '']?.type === 'uint64';
      return { kind: `${kind}-${names[no]}`, body: writeFields(out), expect: 'any', field: v.length > 10 || (!wide && v.length > 5) ? undefined : names[no] };
    }
    case 'len': {
      const lenFields = fields.map((f, k) => [f, k] as const).filter(([f]) => f.wt === WT.LEN);
      if (lenFields.length === 0) return { kind, body: valid, expect: 'ok' };
      const [f, k] = r.pick(lenFields);
      const claimed = Math.max(0, f.value.length + r.pick([-1, 1, r.int(2, 1000), 2 ** 31 - 1, -f.value.length]));
      const before = writeFields(fields.slice(0, k));
      const after = writeFields(fields.slice(k + 1));
      return { kind, body: Buffer.concat([before, tag(f.no, WT.LEN), varint(claimed), f.value, after]), expect: 'any' };
    }
    case 'truncate':
      return { kind, body: valid.subarray(0, r.int(0, Math.max(0, valid.length - 1))), expect: 'any' };
    case 'bitflip': {
      const b = Buffer.from(valid);
      for (let k = r.int(1, 8); k > 0 && b.length > 0; k--) {
        const i = r.int(0, b.length - 1);
        b[i] = (b[i] ?? 0) ^ (1 << r.int(0, 7));
      }
      return { kind, body: b, expect: 'any' };
    }
    case 'splice':
      // two messages back to back merge in protobuf (lists concatenate, scalars: last wins)
      return { kind, body: Buffer.concat([valid, valid.subarray(r.int(0, valid.length))]), expect: 'any' };
    case 'random':
      return { kind, body: bytes(r, r.weighted<number>([[r.int(1, 16), 3], [r.int(17, 512), 3], [r.int(513, 20_000), 1]])), expect: 'any' };
    case 'zeros':
      return { kind, body: Buffer.alloc(r.int(1, 64), r.pick([0, 0xff, 0x80])), expect: 'any' };
    case 'empty': {
      const missing = Object.values(required)[0];
      return { kind, body: Buffer.alloc(0), expect: missing ? 'bad' : 'ok', field: missing };
    }
    case 'badwt':
      // wire types 6 and 7 do not exist (protobufjs reads a known field by its declared type
      // whatever the wire type says, so only an unknown field number is sure to be refused)
      return { kind, body: Buffer.concat([valid, tag(r.int(1, 40), r.pick([6, 7])), bytes(r, r.int(0, 8))]), expect: 'any' };
    case 'field0':
      return { kind, body: Buffer.concat([tag(0, r.pick([WT.VARINT, WT.LEN])), varint(1), Buffer.from('a'), valid]), expect: 'any' };
    case 'huge-unknown': {
      const f = { no: r.int(40, 1000), wt: WT.LEN, value: Buffer.from(hugeString(r, o)) };
      return { kind, body: Buffer.concat([valid, writeField(f)]), expect: 'any' };
    }
    case 'group': {
      // an unknown group (start .. end), nested, sometimes unterminated
      const no = r.int(40, 100);
      const inner = writeFields([{ no: 1, wt: WT.VARINT, value: varint(5) }]);
      const depth = r.pick([1, 2, 50, 5000]);
      const open = Buffer.concat(Array.from({ length: depth }, () => tag(no, WT.SGROUP)));
      const close = Buffer.concat(Array.from({ length: r.chance(0.8) ? depth : depth - 1 }, () => tag(no, WT.EGROUP)));
      return { kind, body: Buffer.concat([valid, open, inner, close]), expect: 'any' };
    }
  }
  return { kind, body: valid, expect: 'any' };
}

/** request_id a decoder reads from these bytes (the last field 1), for mutations that stay valid. */
function requestIdOf(body: Buffer): string {
  let id = '';
  for (const f of readFields(body)) if (f.no === 1 && f.wt === WT.LEN) id = f.value.toString('utf8');
  return id;
}

const countOutcomes = (body: Buffer) => readFields(body).filter((f) => f.no === 2).length;

// ---------------------------------------------------------------------------------------------
// payload generators (transport-independent)

export function decidePb(r: Rng, id: string, o: GenOptions): Payload {
  const m = validDecide(r, id);
  const mode = r.weighted<string>([['valid', 3], ['semantic', 2], ['wire', 5]]);
  if (mode === 'valid') return { kind: 'decide.pb.valid', body: encDecide(m), expect: 'ok', requestId: id };
  if (mode === 'semantic') {
    const [field, value] = badDecideValue(r, o);
    if (value === undefined) delete m[field];
    else m[field] = value;
    return { kind: 'decide.pb.bad-field', body: encDecide(m), expect: 'bad', field };
  }
  const p = wireMutate(r, encDecide(m), DecideRequestType, o, { 3: 'client_ip', 4: 'method', 6: 'path' });
  return p.expect === 'ok' ? { ...p, requestId: requestIdOf(p.body) } : p;
}

export function outcomesPb(r: Rng, id: string, o: GenOptions): Payload {
  const b = validOutcomes(r, id);
  const outcomes = b.outcomes as Array<Record<string, unknown>>;
  const mode = r.weighted<string>([['valid', 3], ['semantic', 2], ['wire', 4], ['nested', 3]]);
  if (mode === 'valid') return { kind: 'outcomes.pb.valid', body: encOutcomes(b), expect: 'ok', accepted: outcomes.length };
  if (mode === 'semantic' || (mode === 'nested' && outcomes.length === 0)) {
    if (outcomes.length === 0 || r.chance(0.1)) {
      const many = Array.from({ length: 5001 + r.int(0, 100) }, () => ({}));
      return { kind: 'outcomes.pb.too-many', body: encOutcomes({ outcomes: many }), expect: 'bad', field: 'outcomes' };
    }
    const k = r.int(0, outcomes.length - 1);
    const out = outcomes[k] as Record<string, unknown>;
    if (r.chance(0.5)) {
      const [field, value] = badDecideValue(r, o);
      const req = (out.request as Record<string, unknown> | undefined) ?? validDecide(r, `${id}-x`);
      if (value === undefined) delete req[field];
      else req[field] = value;
      out.request = req;
      return { kind: 'outcomes.pb.bad-request', body: encOutcomes(b), expect: 'bad', field: `outcomes.${k}.request.${field}` };
    }
    const [field, value] = r.pick<[string, unknown]>([['status', r.int(1000, 2 ** 32 - 1)], ['action', r.pick([4, 99, -1])], ['method', 'x'.repeat(17)], ['path', 'p'.repeat(4097)], ['client_ip', 'c'.repeat(65)]]);
    out[field] = value;
    return { kind: 'outcomes.pb.bad-field', body: encOutcomes(b), expect: 'bad', field: `outcomes.${k}.${field}` };
  }
  if (mode === 'nested') {
    // mutate the bytes of one Outcome (or its DecideRequest) inside the batch
    const fields = readFields(encOutcomes(b));
    const idx = fields.map((f, k) => [f, k] as const).filter(([f]) => f.no === 2);
    const [f, k] = r.pick(idx);
    // the Outcome itself, or the DecideRequest inside it
    const inRequest = readFields(f.value).find((x) => x.no === 14);
    const inner = inRequest && r.chance(0.5)
      ? wireMutate(r, inRequest.value, DecideRequestType, o)
      : wireMutate(r, f.value, OutcomeType, o);
    let value = inner.body;
    if (inner.kind.startsWith('DecideRequest')) value = writeFields([...readFields(f.value).filter((x) => x.no !== 14), { no: 14, wt: WT.LEN, value: inner.body }]);
    const out = [...fields];
    out[k] = { no: 2, wt: WT.LEN, value };
    return { kind: `OutcomeBatch.nested.${inner.kind}`, body: writeFields(out), expect: 'any' };
  }
  const p = wireMutate(r, encOutcomes(b), OutcomeBatchType, o);
  return p.expect === 'ok' ? { ...p, accepted: countOutcomes(p.body) } : p;
}

function deepJson(r: Rng, depth: number): string {
  const [open, close] = r.pick([['[', ']'], ['{"a":', '}']] as const);
  return `${open.repeat(depth)}${r.pick(['1', 'null', '"x"', '[]'])}${close.repeat(depth)}`;
}

function jsonText(r: Rng, value: unknown, mutateText: boolean): [string, string] {
  let text = JSON.stringify(value);
  if (!mutateText) return [text, ''];
  const op = r.pick(['truncate', 'trailing', 'bom', 'bitflip', 'dupkey', 'infinity', 'lone-surrogate', 'comments', 'nan']);
  switch (op) {
    case 'truncate': text = text.slice(0, r.int(0, Math.max(0, text.length - 1))); break;
    case 'trailing': text += r.pick(['}', ',', ' x', '\u0000', '{}']); break;
    case 'bom': text = `\ufeff${text}`; break;
    case 'bitflip': {
      const b = Buffer.from(text);
      for (let k = r.int(1, 4); k > 0; k--) {
        const i = r.int(0, b.length - 1);
        b[i] = (b[i] ?? 0) ^ (1 << r.int(0, 7));
      }
      return [b.toString('latin1'), op];
    }
    case 'dupkey': {
      // JSON.parse keeps the last of duplicate keys
      const dup = `"client_ip":${r.pick(['1', '"x"', 'null', '"1.2.3.4"'])}`;
      text = r.chance(0.5) ? text.replace(/^\{/, `{${dup},`) : text.replace(/\}$/, `,${dup}}`);
      break;
    }
    case 'infinity': text = text.replace(/\}$/, `,"ts_ms":${r.pick(['1e999', '-1e999', '1e308', '-0', '0.5e1'])}}`); break;
    case 'lone-surrogate': text = text.replace(/^\{/, `{"request_id":"\\ud800\\udc00\\udfff",`); break;
    case 'comments': text = `/* c */${text}`; break;
    case 'nan': text = text.replace(/^\{/, '{"ts_ms":NaN,'); break;
  }
  return [text, op];
}

function jsonPayload(r: Rng, id: string, o: GenOptions, type: 'decide' | 'outcomes'): Payload {
  const base = type === 'decide' ? validDecide(r, id) : validOutcomes(r, id);
  const obj = toJson(r, base) as Record<string, unknown>;
  const accepted = type === 'outcomes' ? (obj.outcomes as unknown[]).length : undefined;
  const requestId = type === 'decide' ? id : undefined;
  const op = r.weighted<string>([
    ['valid', 4], ['confuse', 6], ['bad-field', 3], ['unknown', 2], ['budget', 1], ['proto', 1], ['deep', 1], ['deep-field', 1],
    ['huge', 1], ['top', 1], ['text', 3], ['empty', 1], ['invalid-utf8', 1],
  ]);
  const kind = `${type}.json.${op}`;
  const done = (expect: Expect, extra: Partial<Payload> = {}, text: string | Buffer = JSON.stringify(obj)): Payload =>
    ({ kind, ...extra, body: Buffer.isBuffer(text) ? text : Buffer.from(text), expect });
  // string fields of what target() returned: a DecideRequest's, or an Outcome's
  const stringsOf = (prefix: string) => (type === 'decide' || prefix.endsWith('request.')
    ? ['user_agent', 'path', 'query', 'request_id', 'identifier', 'client_ip'] : ['path', 'request_id', 'auth_result', 'method', 'client_ip']);
  // where a broken field lives: the request itself, or one outcome (or its nested request)
  const target = (): [Record<string, unknown>, string] => {
    if (type === 'decide') return [obj, ''];
    const list = obj.outcomes as Array<Record<string, unknown>>;
    if (list.length === 0) list.push({});
    const k = r.int(0, list.length - 1);
    const out = list[k] as Record<string, unknown>;
    if (out.request && r.chance(0.5)) return [out.request as Record<string, unknown>, `outcomes.${k}.request.`];
    return [out, `outcomes.${k}.`];
  };
  switch (op) {
    case 'valid':
      return done('ok', { requestId, accepted });
    case 'confuse': {
      const [t, prefix] = target();
      const keys = Object.keys(t);
      const field = r.chance(0.8) && keys.length ? r.pick(keys) : r.pick(['mode', 'ts_ms', 'has_authorization', 'header_names', 'session_hash', 'status', 'request']);
      t[field] = confusedValue(r);
      return done('any', { field: `${prefix}${field}` });
    }
    case 'bad-field': {
      if (type === 'outcomes' && r.chance(0.3)) {
        const list = obj.outcomes as Array<Record<string, unknown>>;
        if (list.length === 0) list.push({});
        const k = r.int(0, list.length - 1);
        const [t, prefix] = [list[k] as Record<string, unknown>, `outcomes.${k}.`];
        const [field, value] = r.pick<[string, unknown]>([['status', r.pick([1000, -1, 1.5, '200'])], ['action', r.pick(['DENY', 4, 'allow'])], ['upstream_ms', -5], ['request', r.pick(['x', 5, []])], ['from_cache', 'yes']]);
        t[field] = value;
        return done('bad', { field: `${prefix}${field}` });
      }
      const [t, prefix] = target();
      if (prefix.endsWith('request.') || type === 'decide') {
        const [field, value] = badDecideValue(r, o);
        if (value === undefined) delete t[field];
        else t[field] = Buffer.isBuffer(value) ? value.toString('base64') : value;
        return done('bad', { field: `${prefix}${field}` });
      }
      t.method = 'x'.repeat(17);
      return done('bad', { field: `${prefix}method` });
    }
    case 'unknown': {
      for (let k = r.int(1, 5); k > 0; k--) obj[r.pick(['x', 'extra', 'budget', 'ts', 'Client_IP', 'request_id ', 'a.b', '', r.alnum(r.int(1, 30))])] = confusedValue(r);
      return done('ok', { requestId, accepted });
    }
    case 'budget':
      obj.budget_ms = r.pick<unknown>([0, 1, 35, -1, 1e9, 'x', null, 2 ** 53, 1.5]);
      return done('any');
    case 'proto': {
      // prototype pollution attempts (secure-json-parse refuses some; none may take effect)
      const text = JSON.stringify(obj).replace(/^\{/, r.pick(['{"__proto__":{"client_ip":"1.2.3.4","polluted":1},', '{"constructor":{"prototype":{"polluted":1}},', '{"__proto__":null,']));
      return done('any', {}, text);
    }
    case 'deep': {
      const depth = r.pick([100, 1000, r.int(1000, 20_000), Math.min(200_000, Math.floor(o.hugeBytes / 8))]);
      return done('any', { kind: `${kind}-${depth > 10_000 ? 'huge' : 'some'}` }, JSON.stringify(obj).replace(/^\{/, `{"nest":${deepJson(r, depth)},`));
    }
    case 'deep-field': {
      const [t, prefix] = target();
      const field = r.pick(type === 'decide' || prefix.endsWith('request.') ? ['client_ip', 'header_names', 'mode', 'ts_ms'] : ['status', 'request', 'action']);
      t[field] = '__DEEP__';
      return done('any', { field: `${prefix}${field}` }, JSON.stringify(obj).replace('"__DEEP__"', deepJson(r, r.int(50, 5000))));
    }
    case 'huge': {
      const [t, prefix] = target();
      const field = r.chance(0.5) ? r.pick(stringsOf(prefix)) : 'padding';
      t[field] = hugeString(r, o);
      return done(field === 'padding' ? 'any' : 'bad', { field: field === 'padding' ? undefined : `${prefix}${field}` });
    }
    case 'top':
      return done('bad', {}, r.pick(['[]', '[{}]', '"x"', '1', 'null', 'true', '""', '{}'.repeat(2), ' ']));
    case 'text': {
      const [text, sub] = jsonText(r, obj, true);
      return { kind: `${kind}-${sub}`, body: Buffer.from(text, sub === 'bitflip' ? 'latin1' : 'utf8'), expect: sub === 'truncate' || sub === 'trailing' || sub === 'comments' || sub === 'nan' ? 'bad' : 'any' };
    }
    case 'empty':
      return done('bad', {}, '');
    case 'invalid-utf8': {
      const text = JSON.stringify(obj).replace(/^\{/, '{"user_agent":"\u0001PLACEHOLDER",');
      const buf = Buffer.from(text);
      const at = buf.indexOf('\u0001PLACEHOLDER');
      const bad = r.pick([Buffer.from([0xff, 0xfe]), Buffer.from([0xc0, 0x80]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xe2, 0x82])]);
      return done('any', {}, Buffer.concat([buf.subarray(0, at), bad, buf.subarray(at + 12)]));
    }
  }
  return done('any');
}

export const decideJson = (r: Rng, id: string, o: GenOptions) => jsonPayload(r, id, o, 'decide');
export const outcomesJson = (r: Rng, id: string, o: GenOptions) => jsonPayload(r, id, o, 'outcomes');

// ---------------------------------------------------------------------------------------------
// HTTP cases

const PB = 'application/x-protobuf';
const JSON_CT = 'application/json';

function rawCase(r: Rng): Buffer {
  const body = '{"client_ip":"192.0.2.1","method":"GET","path":"/"}';
  const t = r.int(0, 15);
  const lines = (...l: string[]) => Buffer.from(l.join('\r\n'), 'latin1');
  switch (t) {
    case 0: return lines('POST /v1/decide HTTP/1.1', 'Host: x', 'Content-Type: application/json', 'Content-Length: 400', '', body.slice(0, 20));
    case 1: return lines('POST /v1/decide HTTP/1.1', 'Host: x', 'Content-Type: application/json', 'Content-Length: 5', 'Transfer-Encoding: chunked', '', '5', body.slice(0, 5), '0', '', '');
    case 2: return lines('POST /v1/decide HTTP/1.1', 'Host: x', 'Content-Type: application/json', 'Transfer-Encoding: chunked', '', 'zz', 'abc', '0', '', '');
    case 3: return lines('POST /v1/decide HTTP/1.1', 'Host: x', 'Content-Type: application/json', 'Content-Length: -1', '', body);
    case 4: return lines('POST /v1/decide HTTP/1.1', 'Host: x', 'Content-Type: application/json', 'Content-Length: 99999999999999', '', body);
    case 5: return lines('POST /v1/decide HTTP/1.1', 'Host: x', `X-Big: ${'a'.repeat(r.int(17_000, 70_000))}`, '', '');
    case 6: return lines('POST /v1/decide HTTP/9.9', 'Host: x', '', '');
    case 7: return lines('GARBAGE', '', '');
    case 8: return bytes(r, r.int(1, 2000));
    case 9: return lines('POST /v1/decide HTTP/1.1', 'Host: x', 'Content-Type: application/json', 'Content-Length: 2', 'Content-Length: 3', '', '{}');
    case 10: return lines('POST /v1/decide HTTP/1.1', 'Host: x', 'Content-Type: application/json', ' folded', `Content-Length: ${body.length}`, '', body);
    case 11: {
      // two pipelined requests, the second malformed
      const ok = `POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
      return Buffer.concat([Buffer.from(ok), lines('POST /v1/decide HTTP/1.1', 'Host: x', 'Content-Length: zz', '', '')]);
    }
    case 12: return lines(`GET /${'x'.repeat(r.int(10_000, 100_000))} HTTP/1.1`, 'Host: x', '', '');
    case 13: return lines('POST /v1/decide HTTP/1.1', 'Host: x', ...Array.from({ length: r.int(100, 3000) }, (_, i) => `X-H${i}: v`), '', '');
    case 14: return lines('POST /v1/decide HTTP/1.1', 'Host: x', 'Content-Type: application/json\u0000', `Content-Length: ${body.length}`, '', body);
    default: return lines('POST /v1/decide HTTP/1.1', 'Host: x', 'Content-Type: application/json', 'Expect: 100-continue', `Content-Length: ${body.length}`, '', body);
  }
}

function authHeaders(r: Rng): Record<string, string> {
  const h: Record<string, string> = {};
  const printable = (n: number) => { let s = ''; for (let i = 0; i < n; i++) s += String.fromCharCode(r.chance(0.05) ? r.int(0x80, 0xff) : r.int(0x20, 0x7e)); return s; };
  if (r.chance(0.8)) h['x-original-uri'] = r.pick([routePath(r), `${routePath(r)}?${r.pick(QUERIES)}`, '', 'no-slash', '?', printable(r.int(1, 5000))]);
  if (r.chance(0.8)) h['x-original-method'] = r.pick(['GET', 'POST', 'get', '', printable(r.int(1, 30))]);
  if (r.chance(0.8)) h['x-real-ip'] = r.pick([ip(r), '', 'x', '1.2.3.4, 5.6.7.8', printable(r.int(1, 100))]);
  if (r.chance(0.4)) h.cookie = r.pick(['sid=abc', 'sid=', '=;=;;', printable(r.int(1, 4000)), 'a=b; sid=' + 'x'.repeat(3000)]);
  if (r.chance(0.4)) h.authorization = r.pick(['Bearer t', 'Basic ' + 'a'.repeat(100), ' ', 'x'.repeat(40), printable(r.int(1, 200))]);
  if (r.chance(0.2)) h['x-device-id'] = printable(r.int(1, 300));
  if (r.chance(0.3)) h['user-agent'] = r.pick(UAS) || 'ua';
  if (r.chance(0.2)) h['x-request-id'] = printable(r.int(1, 300));
  return h;
}

/** HTTP case `index` of `seed`. */
export function httpCase(seed: number, index: number, o: GenOptions = DEFAULT_GEN): HttpCase {
  const r = new Rng(seed, `http:${index}`);
  const id = `fz${index}`;
  const base = { transport: 'http' as const, index };
  const what = r.weighted<string>([['decide.pb', 34], ['decide.json', 26], ['outcomes.pb', 12], ['outcomes.json', 10], ['wire', 8], ['auth', 5], ['raw', 2], ['route', 3]]);
  if (what === 'raw') {
    return { ...base, kind: 'raw', method: '', path: '', headers: {}, body: undefined, raw: rawCase(r), expect: 'any' };
  }
  if (what === 'auth') {
    return { ...base, kind: 'auth', method: 'GET', path: '/v1/auth', headers: authHeaders(r), body: undefined, expect: 'any' };
  }
  if (what === 'route') {
    const method = r.pick(['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'POST']);
    const path = r.pick(['/v1/decide', '/v1/outcomes', '/', '/v1/decide/', '/V1/DECIDE', '/v1/decide?x=%zz', '//v1/decide', '/v1/%zz', '/v1/inventory', '/healthz', '/metrics', `/${'v'.repeat(r.int(1, 8000))}`, '/v1/decide/../outcomes']);
    return { ...base, kind: `route.${method}`, method, path, headers: r.chance(0.5) ? { 'content-type': JSON_CT } : {}, body: method === 'GET' || method === 'HEAD' ? undefined : Buffer.from('{}'), expect: 'any' };
  }
  const [endpoint, enc] = what === 'wire' ? [r.pick(['decide', 'outcomes']), r.pick(['pb', 'json'])] : what.split('.') as [string, string];
  const gen = endpoint === 'decide' ? (enc === 'pb' ? decidePb : decideJson) : enc === 'pb' ? outcomesPb : outcomesJson;
  const p = gen(r, id, o);
  const path = endpoint === 'decide' ? '/v1/decide' : '/v1/outcomes';
  const encoding = enc === 'pb' ? 'protobuf' : 'json';
  const headers: Record<string, string> = {
    'content-type': enc === 'pb' ? r.pick([PB, PB, PB, 'application/protobuf', 'application/octet-stream', `${PB}; proto=verdict.v1`]) : r.pick([JSON_CT, JSON_CT, `${JSON_CT}; charset=utf-8`]),
  };
  let answerEncoding: 'json' | 'protobuf' = encoding;
  if (r.chance(0.3)) {
    const accept = r.pick([PB, JSON_CT, '*/*', 'text/html', `${JSON_CT}, ${PB}`, 'application/*', 'garbage;;q=x']);
    headers.accept = accept;
    answerEncoding = accept.includes(PB) ? 'protobuf' : accept.includes(JSON_CT) ? 'json' : encoding;
  }
  let c: HttpCase = { ...base, ...p, method: 'POST', path, headers, answerEncoding };
  // Chunked bodies, in at most 4096 chunks: a big body in 1-byte chunks costs the service seconds
  // of CPU and hundreds of MB (a finding of its own), and would swamp every other input.
  if (r.chance(0.08)) c.chunked = Math.max(r.pick([1, 7, 64, 1024]), Math.ceil((c.body?.length ?? 0) / 4096));
  if (what === 'wire') {
    // wrong or odd content types; the body is whatever the generator made
    const ct = r.pick<string | undefined>([
      undefined, 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', enc === 'pb' ? JSON_CT : PB,
      'APPLICATION/JSON', 'application/jsonx', 'application/json-patch+json', `${JSON_CT}; charset=utf-16`, 'x'.repeat(r.int(100, 8000)), '', ';', 'application/',
    ]);
    const h: Record<string, string> = { ...headers };
    if (ct === undefined) delete h['content-type'];
    else h['content-type'] = ct;
    if (r.chance(0.2)) h['content-encoding'] = r.pick(['gzip', 'br', 'identity', 'x']);
    const sameEncoding = ct !== undefined && ct !== '' && ((enc === 'pb' && ct.startsWith(PB)) || (enc === 'json' && ct.toLowerCase().startsWith(JSON_CT)));
    const expect: Expect = sameEncoding ? 'any' : enc === 'pb' && ct === JSON_CT ? 'bad' : ct === undefined || ct === 'text/plain' ? 'bad' : 'any';
    c = { ...c, kind: `wire.${p.kind}`, headers: h, expect, requestId: undefined, accepted: undefined, field: undefined };
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// frame sessions

/** One frame's bytes: the service's own encoder. */
export const frameBytes = frame;

function oneFrame(r: Rng, id: string, o: GenOptions): [Buffer, FrameAnswer] {
  const what = r.weighted<string>([['decide', 10], ['outcomes', 3], ['ping', 1], ['unknown', 1], ['typeonly', 1], ['crossed', 1]]);
  const { VERDICT, ACK, PONG, ERROR } = FRAME;
  switch (what) {
    case 'decide': {
      const p = decidePb(r, id, o);
      const types = p.expect === 'ok' ? [VERDICT] : p.expect === 'bad' ? [ERROR] : [VERDICT, ERROR];
      return [frameBytes(FRAME.DECIDE, p.body), { types, label: p.kind, requestId: p.requestId }];
    }
    case 'outcomes': {
      const p = outcomesPb(r, id, o);
      const types = p.expect === 'ok' ? [ACK] : p.expect === 'bad' ? [ERROR] : [ACK, ERROR];
      return [frameBytes(FRAME.OUTCOMES, p.body), { types, label: p.kind, accepted: p.accepted }];
    }
    case 'ping':
      return [frameBytes(FRAME.PING, r.chance(0.5) ? Buffer.alloc(0) : bytes(r, r.int(1, 100))), { types: [PONG], label: 'ping' }];
    case 'unknown': {
      const type = r.pick([0, 2, 4, 6, 7, 14, 15, 16, 127, 128, 255]);
      return [frameBytes(type, bytes(r, r.int(0, 64))), { types: [ERROR], label: `unknown-type-${type}` }];
    }
    case 'typeonly':
      // length 1: a type byte and no payload (an empty DecideRequest lacks client_ip)
      return [frameBytes(FRAME.DECIDE, Buffer.alloc(0)), { types: [ERROR], label: 'decide-empty' }];
    default: {
      // a DecideRequest sent as OUTCOMES and the other way round
      const asOutcomes = r.chance(0.5);
      const body = asOutcomes ? encDecide(validDecide(r, id)) : encOutcomes(validOutcomes(r, id));
      return [frameBytes(asOutcomes ? FRAME.OUTCOMES : FRAME.DECIDE, body), { types: asOutcomes ? [ACK, ERROR] : [VERDICT, ERROR], label: 'crossed-types' }];
    }
  }
}

function splitWrites(r: Rng, stream: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  // sometimes byte by byte at first (a length header split across writes), then at most 200
  // pieces cut at random points (each write costs the run a turn of the event loop)
  if (r.chance(0.3)) {
    while (at < stream.length && out.length < 64) {
      const n = r.int(1, 3);
      out.push(stream.subarray(at, at + n));
      at += n;
    }
  }
  const cuts = new Set<number>();
  for (let k = r.int(1, 200); k > 0 && at < stream.length; k--) cuts.add(r.int(at + 1, stream.length));
  for (const cut of [...cuts].sort((x, y) => x - y)) {
    out.push(stream.subarray(at, cut));
    at = cut;
  }
  if (at < stream.length) out.push(stream.subarray(at));
  return out;
}

/**
 * Frame payloads (other than the fatal tails) stay under this: a frame longer than every limit
 * closes the connection, and the smallest "every limit" of the service's versions is 1 MiB (the
 * outcomes limit; 4 MiB before per-endpoint limits). Longer than the decide limit (64 KiB) is
 * fine: such a frame is answered ERROR BODY_TOO_LARGE (today: decoded), and no valid frame is.
 */
export const FRAME_PAYLOAD_CAP = 1024 * 1024 - 64;

/** A frame length over every limit any configuration allows (VERDICT_*_LIMIT ≤ 64 MiB). */
const OVER_EVERY_LIMIT = 64 * 1024 * 1024 + 1;

/** Frame session `index` of `seed`. */
export function frameSession(seed: number, index: number, o: GenOptions = DEFAULT_GEN): FrameSession {
  const r = new Rng(seed, `frames:${index}`);
  // every frame stays under the limit: an oversized one closes the connection (the fatal tail's job)
  o = { ...o, hugeBytes: Math.min(o.hugeBytes, FRAME_PAYLOAD_CAP - 64 * 1024) };
  const kind = r.weighted<string>([['pipeline', 5], ['split', 4], ['fatal', 2], ['garbage', 2], ['partial', 1]]);
  const n = r.weighted<number>([[1, 1], [r.int(2, 20), 6], [r.int(21, 80), 2]]);
  const frames: Buffer[] = [];
  const answers: FrameAnswer[] = [];
  for (let i = 0; i < n; i++) {
    const [f, a] = oneFrame(r, `fz-f${index}-${i}`, o);
    frames.push(f);
    answers.push(a);
  }
  const stream = Buffer.concat(frames);
  const writes = kind === 'split' ? splitWrites(r, stream) : [stream];
  const s: FrameSession = { transport: 'frames', index, kind, phases: [{ writes, answers }] };
  if (kind === 'fatal') {
    const len = r.pick([0, 0, OVER_EVERY_LIMIT, 0xffffffff, 0x80000000]);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(len >>> 0, 0);
    s.tail = { kind: 'fatal', bytes: Buffer.concat([head, r.chance(0.5) ? frames[0] ?? Buffer.alloc(0) : Buffer.alloc(0)]) };
    if (r.chance(0.5)) s.tail.pipelined = true;
  } else if (kind === 'garbage') {
    s.tail = { kind: 'garbage', bytes: Buffer.concat([bytes(r, r.int(1, 300)), r.chance(0.5) ? stream : Buffer.alloc(0)]) };
  } else if (kind === 'partial') {
    // a length the server accepts, and fewer bytes than it says, then our side closes
    const len = r.int(2, Math.min(FRAME_PAYLOAD_CAP, o.hugeBytes));
    const head = Buffer.alloc(5);
    head.writeUInt32BE(len, 0);
    head[4] = FRAME.DECIDE;
    s.tail = { kind: 'partial', bytes: Buffer.concat([head, bytes(r, r.int(0, Math.min(len - 2, 4096)))]) };
  }
  return s;
}

/** `count` valid DECIDE frames, pipelined in one write: every VERDICT must come back in order. */
export function bigPipeline(seed: number, count: number): FrameSession {
  const r = new Rng(seed, 'frames:big-pipeline');
  const frames: Buffer[] = [];
  const answers: FrameAnswer[] = [];
  for (let i = 0; i < count; i++) {
    const id = `fz-big-${i}`;
    frames.push(frameBytes(FRAME.DECIDE, encDecide(validDecide(r, id))));
    answers.push({ types: [FRAME.VERDICT], label: 'big-pipeline', requestId: id });
  }
  return { transport: 'frames', index: -1, kind: 'big-pipeline', phases: [{ writes: [Buffer.concat(frames)], answers }] };
}

/** The request the before/after probes send (a sensitive-path probe: a deterministic verdict). */
export function probeRequest(ipAddr: string, id: string): Record<string, unknown> {
  return { request_id: id, client_ip: ipAddr, method: 'GET', host: 'shop.example.com', path: '/.env', user_agent: UAS[0], header_names: ['host', 'user-agent'], ts_ms: Date.now() };
}

export { encDecide };
