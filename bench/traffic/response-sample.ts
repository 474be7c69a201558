// What the gateway's response inspection reports for one simulated response body (issue 17).
//
// A stand-in with the signature of the TypeScript reference detector
// `decision-service/src/gateway/sensitive.ts` (`inspectResponse(body, { key, maxBytes?,
// patterns?, requestedLimit? })`), which was not on this branch yet: it finds mainland-China
// mobile numbers and e-mail addresses, masked (`138****0000`) or not, and reports counts and keyed
// 8-byte hashes of distinct unmasked values. When the reference lands, this file becomes one
// re-export of it; nothing else in the simulator knows how responses are inspected.

import { createHmac } from 'node:crypto';
import { MAX_FINDINGS, MAX_VALUE_HASHES, type ResponseSample } from '../../decision-service/src/wire/schema.ts';

export interface InspectOptions {
  /** the gateway's hashing key */
  readonly key: Buffer | string;
  /** read at most this many bytes of the body (default 16 KB, the gateway's default) */
  readonly maxBytes?: number;
  /** operator-defined patterns (ignored by this stand-in) */
  readonly patterns?: readonly unknown[];
  /** the page size the request asked for (0: none) */
  readonly requestedLimit?: number;
}

const KINDS: ReadonlyArray<readonly [string, RegExp, RegExp]> = [
  ['cn_mobile', /(?<![\d*])1[3-9]\d{9}(?![\d*])/g, /(?<![\d*])1[3-9]\d\*{4}\d{4}(?![\d*])/g],
  ['email', /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g, /[A-Za-z0-9]\*+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g],
];

export function inspectResponse(body: string | Buffer, opts: InspectOptions): ResponseSample {
  const max = opts.maxBytes ?? 16_384;
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  const text = buf.subarray(0, max).toString('utf8');
  const findings: ResponseSample['findings'] = [];
  for (const [kind, unmaskedRe, maskedRe] of KINDS) {
    const values = text.match(unmaskedRe) ?? [];
    const masked = (text.match(maskedRe) ?? []).length;
    if (values.length === 0 && masked === 0) continue;
    const distinct = [...new Set(values)].slice(0, MAX_VALUE_HASHES);
    const value_hashes = distinct.map((v) => createHmac('sha256', opts.key).update(`${kind}:${v}`).digest().subarray(0, 8));
    findings.push({ kind, unmasked: values.length, masked, value_hashes });
    if (findings.length >= MAX_FINDINGS) break;
  }
  let records = 0;
  const m = /^\s*\[/.test(text) ? text.match(/\{/g) : null;
  if (m) records = m.length;
  return { inspected_bytes: Math.min(buf.length, max), truncated: buf.length > max, records, requested_limit: opts.requestedLimit ?? 0, findings };
}
