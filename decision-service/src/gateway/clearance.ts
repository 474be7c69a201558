// The challenge nonce, proof and clearance token of gateway-plugin/CONTRACT.md, "Challenges and
// clearance (issue 13)": the TypeScript reference the Lua (lua/verdict/clearance.lua) and njs
// gateways are held to through gateway-plugin/spec/clearance-vectors.json.
//
// Grammar (anything else is `malformed`; where the contract gives no width, these fix one):
//   nonce  c1.<kid>.<iat>.<exp>.<difficulty>.<ttl>.<nh>.<uh>.<rand>.<sig>
//   proof  <nonce>.<counter>
//   token  v1.<kid>.<iat>.<exp>.<level>.<nh>.<uh>.<sig>
//   kid [A-Za-z0-9_-]{1,16}; iat, exp [0-9]{1,12}; ttl [0-9]{1,7}; difficulty [0-9]{1,2} and at
//   most 32; level [0-9]{1,2}; nh, uh: 8 b64u characters; rand: 16; sig: 22; counter [0-9]{1,12}.
// Signatures are compared as text, so a sig whose last character differs only in the bits
// base64 drops is still a bad signature.

import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { subnetOf } from '../net/ip.ts';

export interface ClearanceKey {
  readonly id: string;
  readonly secret: string;
}

/** What a rejected proof failed first, in the order the checks run. */
export type ProofRejection =
  | 'malformed' | 'unknown key' | 'bad signature' | 'expired' | 'network' | 'browser' | 'work' | 'too early' | 'reused';

export type ProofVerdict =
  | { readonly ok: true; readonly level: number; readonly ttl: number; readonly rand: string; readonly exp: number }
  | { readonly ok: false; readonly why: ProofRejection };

/** Why a token is `invalid`. */
export type TokenFault = 'malformed' | 'unknown key' | 'bad signature' | 'network' | 'browser';

export type TokenState =
  | { readonly state: 'none' }
  | { readonly state: 'valid'; readonly level: number; readonly ageS: number }
  | { readonly state: 'invalid'; readonly why: TokenFault }
  | { readonly state: 'expired' };

/** A nonce's fields; `body` is what its sig signs (after the context prefix). */
export interface NonceFields {
  readonly kid: string;
  readonly iat: number;
  readonly exp: number;
  readonly difficulty: number;
  readonly ttl: number;
  readonly nh: string;
  readonly uh: string;
  readonly rand: string;
  readonly body: string;
  readonly sig: string;
}

interface TokenFields {
  readonly kid: string;
  readonly iat: number;
  readonly exp: number;
  readonly level: number;
  readonly nh: string;
  readonly uh: string;
  readonly body: string;
  readonly sig: string;
}

// what split('.') yields once the grammar matched
type NonceParts = [c1: string, kid: string, iat: string, exp: string, difficulty: string, ttl: string, nh: string, uh: string, rand: string, sig: string];
type TokenParts = [v1: string, kid: string, iat: string, exp: string, level: string, nh: string, uh: string, sig: string];

/** A challenge lives 5 minutes. */
export const CHALLENGE_LIFETIME_S = 300;
export const PROOF_ALGORITHM = 'sha256-leading-zero-bits';
export const DEFAULT_NOJS_WAIT_S = 5;
const MIN_SECRET_LENGTH = 32;
const CHALLENGE_CONTEXT = 'verdict-challenge-v1.';
const CLEARANCE_CONTEXT = 'verdict-clearance-v1.';
const DERIVE_CONTEXT = 'verdict clearance key v1';

const KID = /^[A-Za-z0-9_-]{1,16}$/;
const NONCE = /^c1\.[A-Za-z0-9_-]{1,16}\.[0-9]{1,12}\.[0-9]{1,12}\.[0-9]{1,2}\.[0-9]{1,7}\.[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}$/;
const COUNTER = /^[0-9]{1,12}$/;
const TOKEN = /^v1\.[A-Za-z0-9_-]{1,16}\.[0-9]{1,12}\.[0-9]{1,12}\.[0-9]{1,2}\.[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{22}$/;
const RAND = /^[A-Za-z0-9_-]{16}$/;
/** The largest time (12 digits), ttl (7 digits) and difficulty the grammar holds. */
const MAX_TIME = 999_999_999_999;
const MAX_TTL = 9_999_999;
export const MAX_DIFFICULTY = 32;
/** Longer than any string the grammar allows: refused before any regex runs. */
const MAX_TEXT = 160;

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();
const b64u = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');

/** nh: b64u of the first 6 bytes of SHA-256("net:" .. subnet). */
export function netHash(subnet: string): string {
  return b64u(sha256(`net:${subnet}`).subarray(0, 6));
}

/** nh of a client address, through the verdict cache's subnet key (net/ip.ts subnetOf). */
export function netHashOfIp(ip: string): string {
  return netHash(subnetOf(ip));
}

/** uh: b64u of the first 6 bytes of SHA-256("ua:" .. User-Agent); "" when there is none. */
export function uaHash(ua: string): string {
  return b64u(sha256(`ua:${ua}`).subarray(0, 6));
}

/** HMAC-SHA-256(secret, text), first 16 bytes, b64u (22 characters). */
export function mac(secret: string, text: string): string {
  return b64u(createHmac('sha256', secret).update(text, 'utf8').digest().subarray(0, 16));
}

/** The key used without clearance_keys: derived from the gateway's hmac_key. */
export function deriveKey(hmacKey: string): ClearanceKey {
  return {
    id: `h${sha256(hmacKey).toString('hex').slice(0, 8)}`,
    secret: createHmac('sha256', hmacKey).update(DERIVE_CONTEXT, 'utf8').digest('hex'),
  };
}

/** Throws on a key list the gateway would refuse at start (ids, secret lengths, duplicates). */
export function validateKeys(keys: readonly ClearanceKey[]): readonly ClearanceKey[] {
  if (keys.length === 0) throw new Error('clearance keys: none given');
  const seen = new Set<string>();
  for (const k of keys) {
    if (!KID.test(k.id)) throw new Error(`clearance keys: id "${k.id}" is not 1-16 of A-Z a-z 0-9 _ -`);
    if (k.secret.length < MIN_SECRET_LENGTH) throw new Error(`clearance keys: the secret of "${k.id}" is under ${MIN_SECRET_LENGTH} characters`);
    if (seen.has(k.id)) throw new Error(`clearance keys: id "${k.id}" is listed twice`);
    seen.add(k.id);
  }
  return keys;
}

/** clearance_keys_file: one "id secret" pair per line, the signing key first; blank and "#" lines skipped. */
export function parseKeys(text: string): readonly ClearanceKey[] {
  const keys: ClearanceKey[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const [id, secret, extra] = line.split(/\s+/);
    if (id === undefined || secret === undefined || extra !== undefined) {
      throw new Error(`clearance keys: line ${i + 1} is not "id secret"`);
    }
    keys.push({ id, secret });
  });
  return validateKeys(keys);
}

function requireInt(name: string, v: number, max: number): void {
  if (!Number.isSafeInteger(v) || v < 0 || v > max) throw new RangeError(`${name} must be an integer 0..${max}`);
}

function requireKey(key: ClearanceKey): void {
  validateKeys([key]);
}

export interface NonceInput {
  readonly key: ClearanceKey;
  readonly now: number;
  readonly difficulty: number;
  readonly ttl: number;
  readonly subnet: string;
  readonly ua: string;
  /** 16 b64u characters (12 bytes); random when absent */
  readonly rand?: string;
  /** difficulty 0 only: the no-JS wait, signed in as iat = now + wait (default 5) */
  readonly nojsWaitS?: number;
}

/** A difficulty-0 nonce is valid from iat = issue time + the no-JS wait; any other from now. */
export function nonceIat(now: number, difficulty: number, nojsWaitS = DEFAULT_NOJS_WAIT_S): number {
  return difficulty === 0 ? now + nojsWaitS : now;
}

/** A signed challenge nonce; nothing is stored. exp = iat + 300. */
export function issueNonce(input: NonceInput): string {
  requireKey(input.key);
  requireInt('difficulty', input.difficulty, MAX_DIFFICULTY);
  requireInt('ttl', input.ttl, MAX_TTL);
  requireInt('nojsWaitS', input.nojsWaitS ?? 0, MAX_TTL);
  const iat = nonceIat(input.now, input.difficulty, input.nojsWaitS);
  requireInt('now', iat, MAX_TIME - CHALLENGE_LIFETIME_S);
  const rand = input.rand ?? b64u(randomBytes(12));
  if (!RAND.test(rand)) throw new RangeError('rand must be 16 b64u characters');
  const exp = iat + CHALLENGE_LIFETIME_S;
  const body = `c1.${input.key.id}.${iat}.${exp}.${input.difficulty}.${input.ttl}.${netHash(input.subnet)}.${uaHash(input.ua)}.${rand}`;
  return `${body}.${mac(input.key.secret, CHALLENGE_CONTEXT + body)}`;
}

export interface ClientCheck {
  /** every key that verifies (the signing key first) */
  readonly keys: readonly ClearanceKey[];
  readonly now: number;
  /** the verdict cache's subnet string of the client address */
  readonly subnet: string;
  /** the User-Agent as received, "" when absent */
  readonly ua: string;
}

export interface ProofCheck extends ClientCheck {
  /**
   * Whether `rand` was used before. Called last, only when every other check passed, so it may
   * also record the rand (an atomic add that answers "already there"). Absent: never used.
   */
  readonly used?: (rand: string) => boolean;
}

/** The signature matches, compared as text in constant time. */
function signedBy(key: ClearanceKey, context: string, body: string, sig: string): boolean {
  const want = Buffer.from(mac(key.secret, context + body), 'latin1');
  const got = Buffer.from(sig, 'latin1');
  return want.length === got.length && timingSafeEqual(want, got);
}

/** Leading zero bits of a digest. */
function zeroBits(digest: Uint8Array): number {
  let bits = 0;
  for (const byte of digest) {
    if (byte !== 0) return bits + Math.clz32(byte) - 24;
    bits += 8;
  }
  return bits;
}

/** The fields of a nonce (signature not checked), or undefined when it is malformed. */
export function readNonce(nonce: unknown): NonceFields | undefined {
  if (typeof nonce !== 'string' || nonce.length > MAX_TEXT || !NONCE.test(nonce)) return undefined;
  const [, kid, iat, exp, difficulty, ttl, nh, uh, rand, sig] = nonce.split('.') as NonceParts;
  if (Number(difficulty) > MAX_DIFFICULTY) return undefined;
  const body = nonce.slice(0, nonce.length - sig.length - 1);
  return { kid, iat: Number(iat), exp: Number(exp), difficulty: Number(difficulty), ttl: Number(ttl), nh, uh, rand, body, sig };
}

/** The fields of a token (signature not checked), or undefined when it is malformed. */
function readToken(token: string): TokenFields | undefined {
  if (token.length > MAX_TEXT || !TOKEN.test(token)) return undefined;
  const [, kid, iat, exp, level, nh, uh, sig] = token.split('.') as TokenParts;
  const body = token.slice(0, token.length - sig.length - 1);
  return { kid, iat: Number(iat), exp: Number(exp), level: Number(level), nh, uh, body, sig };
}

/** Whether the proof shows its work: difficulty 0 (no-JS) asks for counter "0", from iat on. */
function workDone(proof: string, counter: string, n: NonceFields, now: number): ProofRejection | undefined {
  if (n.difficulty > 0) return zeroBits(sha256(proof)) >= n.difficulty ? undefined : 'work';
  if (counter !== '0') return 'work';
  return now >= n.iat ? undefined : 'too early';
}

/** Checks a proof "<nonce>.<counter>" for the client answering; never throws on the proof. */
export function checkProof(proof: unknown, opts: ProofCheck): ProofVerdict {
  const reject = (why: ProofRejection): ProofVerdict => ({ ok: false, why });
  if (typeof proof !== 'string' || proof.length > MAX_TEXT) return reject('malformed');
  const dot = proof.lastIndexOf('.');
  const n = dot < 0 ? undefined : readNonce(proof.slice(0, dot));
  const counter = proof.slice(dot + 1);
  if (n === undefined || !COUNTER.test(counter)) return reject('malformed');
  const key = opts.keys.find((k) => k.id === n.kid);
  if (key === undefined) return reject('unknown key');
  if (!signedBy(key, CHALLENGE_CONTEXT, n.body, n.sig)) return reject('bad signature');
  if (opts.now > n.exp) return reject('expired');
  if (n.nh !== netHash(opts.subnet)) return reject('network');
  if (n.uh !== uaHash(opts.ua)) return reject('browser');
  const notDone = workDone(proof, counter, n, opts.now);
  if (notDone !== undefined) return reject(notDone);
  if (opts.used?.(n.rand) === true) return reject('reused');
  return { ok: true, level: n.difficulty, ttl: n.ttl, rand: n.rand, exp: n.exp };
}

export interface TokenInput {
  readonly key: ClearanceKey;
  readonly now: number;
  readonly level: number;
  readonly ttl: number;
  readonly subnet: string;
  readonly ua: string;
}

/** The clearance token a valid proof earns: exp = now + ttl. */
export function issueToken(input: TokenInput): string {
  requireKey(input.key);
  requireInt('level', input.level, MAX_DIFFICULTY);
  requireInt('ttl', input.ttl, MAX_TTL);
  requireInt('now', input.now, MAX_TIME - input.ttl);
  const body = `v1.${input.key.id}.${input.now}.${input.now + input.ttl}.${input.level}.${netHash(input.subnet)}.${uaHash(input.ua)}`;
  return `${body}.${mac(input.key.secret, CLEARANCE_CONTEXT + body)}`;
}

/**
 * The state of a verdict_clearance cookie value for the client sending it; never throws on the
 * token. "" is `none`: nginx's $cookie_ variable cannot tell an empty cookie from a missing one.
 */
export function checkToken(token: unknown, opts: ClientCheck): TokenState {
  const invalid = (why: TokenFault): TokenState => ({ state: 'invalid', why });
  if (token === undefined || token === null || token === '') return { state: 'none' };
  if (typeof token !== 'string') return invalid('malformed');
  const t = readToken(token);
  if (t === undefined) return invalid('malformed');
  const key = opts.keys.find((k) => k.id === t.kid);
  if (key === undefined) return invalid('unknown key');
  if (!signedBy(key, CLEARANCE_CONTEXT, t.body, t.sig)) return invalid('bad signature');
  if (t.nh !== netHash(opts.subnet)) return invalid('network');
  if (t.uh !== uaHash(opts.ua)) return invalid('browser');
  if (opts.now > t.exp) return { state: 'expired' };
  // a token issued by a gateway whose clock runs ahead: age 0, not negative (uint32 on the wire)
  return { state: 'valid', level: t.level, ageS: Math.max(0, opts.now - t.iat) };
}
