// Gateway ↔ service authentication (gateway-plugin/CONTRACT.md, "authentication"): who may ask
// for verdicts and report outcomes. One shared secret (two during a rotation), proven
//   - on HTTP by a signed header: X-Verdict-Auth: <kid>:<ts_ms>:<base64 HMAC-SHA1(key,
//     "verdict http v1\n" ts "\n" path "\n" body)>, fresh within the allowed skew;
//   - on frames by a HELLO answering the CHALLENGE the service sends on every new connection;
//   - for GET /v1/auth (stock auth_request cannot sign) by a static derived bearer.
// HMAC-SHA1 because nginx has it natively (ngx.hmac_sha1); every compare is constant-time.

import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { readKeyLines } from '../config/key-file.ts';
import { ConfigError } from '../errors.ts';

export const MIN_KEY_LENGTH = 32;
export const CHALLENGE_BYTES = 16;
const KID_LENGTH = 8;
const MAC_LENGTH = 20;

export interface GatewayKey {
  readonly kid: string;
  readonly key: Buffer;
  /** base64 of the derived bearer for /v1/auth */
  readonly bearer: Buffer;
}

export type AuthFailure = 'missing' | 'malformed' | 'unknown key' | 'stale' | 'bad mac';

export type AuthResult = { ok: true; kid: string } | { ok: false; reason: AuthFailure };

/** kid: the first 8 lower-case hex characters of SHA-1(key). */
export function kidOf(key: Buffer | string): string {
  return createHash('sha1').update(key).digest('hex').slice(0, KID_LENGTH);
}

function mac(key: Buffer, text: string | Buffer, body?: Buffer): Buffer {
  const h = createHmac('sha1', key).update(text);
  if (body) h.update(body);
  return h.digest();
}

export function gatewayKey(key: string): GatewayKey {
  const k = Buffer.from(key);
  return Object.freeze({ kid: kidOf(k), key: k, bearer: Buffer.from(mac(k, 'verdict bearer v1').toString('base64')) });
}

/**
 * Reads the secret file: one or two non-empty lines (the current key, then the previous one
 * during a rotation). Errors name the file, the line and the fix.
 */
export function loadGatewayKeys(file: string, variable = 'VERDICT_GATEWAY_SECRET_FILE'): GatewayKey[] {
  const lines = readKeyLines(file, variable, 'the gateway secret');
  const problems: string[] = [];
  if (lines.length === 0) problems.push(`${file}: is empty; write one key of at least ${MIN_KEY_LENGTH} characters (openssl rand -hex 32)`);
  if (lines.length > 2) problems.push(`${file}: has ${lines.length} keys; keep the current key on line 1 and, during a rotation, the previous one on line 2`);
  lines.forEach((l, i) => {
    if (l.length < MIN_KEY_LENGTH) problems.push(`${file}: line ${i + 1} holds a key of ${l.length} characters; use at least ${MIN_KEY_LENGTH} (openssl rand -hex 32)`);
  });
  if (problems.length > 0) throw new ConfigError('invalid gateway secret', problems);
  return lines.map(gatewayKey);
}

function equal(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Checks an X-Verdict-Auth header of a POST to `path` with exactly these body bytes.
 * `nowMs` is the service clock; `skewMs` the allowed difference to the gateway's ts_ms.
 */
export function verifyHttp(keys: readonly GatewayKey[], header: string | undefined, path: string, body: Buffer, nowMs: number, skewMs: number): AuthResult {
  if (!header) return { ok: false, reason: 'missing' };
  const m = /^([0-9a-f]{8}):(\d{1,16}):([A-Za-z0-9+/]{27}=)$/.exec(header);
  if (!m) return { ok: false, reason: 'malformed' };
  const [, kid, ts, sig] = m as unknown as [string, string, string, string];
  const key = keys.find((k) => k.kid === kid);
  if (!key) return { ok: false, reason: 'unknown key' };
  if (Math.abs(nowMs - Number(ts)) > skewMs) return { ok: false, reason: 'stale' };
  const want = mac(key.key, `verdict http v1\n${ts}\n${path}\n`, body);
  return equal(Buffer.from(sig, 'base64'), want) ? { ok: true, kid } : { ok: false, reason: 'bad mac' };
}

/** Checks the static bearer of GET /v1/auth: "bearer <kid>:<base64 HMAC-SHA1(key, "verdict bearer v1")>". */
export function verifyBearer(keys: readonly GatewayKey[], header: string | undefined): AuthResult {
  if (!header) return { ok: false, reason: 'missing' };
  const m = /^bearer ([0-9a-f]{8}):([A-Za-z0-9+/]{27}=)$/i.exec(header.trim());
  if (!m) return { ok: false, reason: 'malformed' };
  const key = keys.find((k) => k.kid === m[1]);
  if (!key) return { ok: false, reason: 'unknown key' };
  return equal(Buffer.from(m[2] as string), key.bearer) ? { ok: true, kid: key.kid } : { ok: false, reason: 'bad mac' };
}

/** The 16 random bytes a new frame connection is challenged with. */
export function newChallenge(): Buffer {
  return randomBytes(CHALLENGE_BYTES);
}

/** Checks a HELLO payload (kid, 8 ASCII bytes, then the 20-byte HMAC of the challenge). */
export function verifyHello(keys: readonly GatewayKey[], challenge: Buffer, payload: Buffer): AuthResult {
  if (payload.length !== KID_LENGTH + MAC_LENGTH) return { ok: false, reason: 'malformed' };
  const kid = payload.subarray(0, KID_LENGTH).toString('latin1');
  const key = keys.find((k) => k.kid === kid);
  if (!key) return { ok: false, reason: 'unknown key' };
  const want = mac(key.key, Buffer.concat([Buffer.from('verdict hello v1\n'), challenge]));
  return equal(payload.subarray(KID_LENGTH), want) ? { ok: true, kid } : { ok: false, reason: 'bad mac' };
}

/** What a gateway sends: the header for a POST (used by tests, the bench and tools). */
export function signHttp(key: GatewayKey, path: string, body: Buffer | string, nowMs: number): string {
  const ts = String(Math.floor(nowMs));
  return `${key.kid}:${ts}:${mac(key.key, `verdict http v1\n${ts}\n${path}\n`, Buffer.from(body)).toString('base64')}`;
}

/** What a gateway sends: the HELLO payload answering `challenge`. */
export function helloPayload(key: GatewayKey, challenge: Buffer): Buffer {
  return Buffer.concat([Buffer.from(key.kid, 'latin1'), mac(key.key, Buffer.concat([Buffer.from('verdict hello v1\n'), challenge]))]);
}

/** The bearer header value for GET /v1/auth. */
export function bearerHeader(key: GatewayKey): string {
  return `bearer ${key.kid}:${key.bearer.toString()}`;
}

/** True for 127.0.0.0/8, ::1 and IPv4-mapped loopback (and unix-socket peers: no address). */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined || address === '') return true; // a unix socket
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (isIP(a) === 4) return a.startsWith('127.');
  return a === '::1';
}

/** A listen host that only this machine can reach. */
export function isLoopbackListen(host: string): boolean {
  return host === 'localhost' || isLoopback(host);
}
