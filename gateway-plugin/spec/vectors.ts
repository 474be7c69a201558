// Readers of the gateway's vector files (request-vectors.json, cache-key-vectors.json), with the
// {{c*N}} runs expanded. Every implementation of the contract (Lua, njs, the TypeScript
// reference) is tested against what these return: test/spec/vectors.test.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { specDir } from './render.ts';

export interface RawRequest {
  /** the peer address nginx sees ($remote_addr) */
  readonly client_ip: string;
  readonly method: string;
  /** as sent in the request line, before nginx normalises it into $uri */
  readonly path: string;
  /** the raw query string, without "?" ("" = none) */
  readonly query: string;
  readonly http_version: '1.0' | '1.1';
  /** [name, value] in arrival order, exactly as sent */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: string;
}

export interface RequestVector {
  readonly name: string;
  /** "body": identifier and password_hash come from the body (njs cannot read it) */
  readonly needs?: readonly 'body'[];
  /** the location's $verdict_<name> values, as written in nginx */
  readonly settings: Readonly<Record<string, string>>;
  readonly raw: RawRequest;
  /** the DecideRequest in its JSON form (bytes base64; absent = proto3 default) */
  readonly expect: Readonly<Record<string, unknown>>;
}

export interface RequestVectors {
  readonly hmac_key: string;
  /** fields that vary per request or worker: not compared */
  readonly ignore: readonly string[];
  readonly vectors: readonly RequestVector[];
}

export interface CacheKeyVector {
  readonly ip: string;
  /** null: no subnet key */
  readonly subnet: string | null;
}

/** "{{c*N}}" -> c repeated N times, in every string of a JSON value. */
function expand<T>(value: T): T {
  return JSON.parse(JSON.stringify(value), (_k, v: unknown) =>
    (typeof v === 'string' ? v.replace(/\{\{(.)\*(\d+)\}\}/g, (_m, c: string, n: string) => c.repeat(Number(n))) : v)) as T;
}

const read = (file: string): unknown => JSON.parse(readFileSync(join(specDir, file), 'utf8'));

export function loadRequestVectors(): RequestVectors {
  return expand(read('request-vectors.json') as RequestVectors);
}

export function loadCacheKeyVectors(): CacheKeyVector[] {
  return (read('cache-key-vectors.json') as { vectors: CacheKeyVector[] }).vectors;
}

/** DecideRequest fields -> the cache's `client:` key (CONTRACT.md). */
export interface ClientKeyVector {
  readonly client_ip: string;
  readonly user_agent?: string;
  readonly accept_language?: string;
  readonly accept_encoding?: string;
  readonly sec_ch_ua?: string;
  readonly key: string;
}

export function loadClientKeyVectors(): ClientKeyVector[] {
  return (read('cache-key-vectors.json') as { client_vectors: ClientKeyVector[] }).client_vectors;
}

/** The request's bytes on the wire (HTTP/1.x request line, headers in order, body). */
export function rawBytes(raw: RawRequest): Buffer {
  const target = raw.query === '' ? raw.path : `${raw.path}?${raw.query}`;
  const head = [`${raw.method} ${target} HTTP/${raw.http_version}`, ...raw.headers.map(([n, v]) => `${n}: ${v}`)].join('\r\n');
  return Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'latin1'), Buffer.from(raw.body, 'utf8')]);
}
