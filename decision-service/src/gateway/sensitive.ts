// The response inspector of gateway-plugin/CONTRACT.md, "Response inspection (issue 17)": the
// TypeScript reference the Lua gateway (lua/verdict/inspect.lua) is held to through
// gateway-plugin/spec/sensitive-vectors.json. It scans a whole body at once; the gateway scans
// chunk by chunk and must find the same values.
//
// Where the contract gives no exact grammar, these fix one (the Lua module uses the same regex
// sources, PCRE there, JavaScript here; both read them the same way for these ASCII patterns):
//   - The scanned bytes are read as bytes (latin1 here), never decoded: a non-ASCII byte is just
//     a byte that no built-in kind contains.
//   - Kinds run in the order cn_id, cn_mobile, bank_card, email, then the policy's patterns; for
//     each, its masked form first, then the unmasked one. A match that overlaps a value an earlier
//     search already claimed is skipped; a match that fails its check (ID checksum, Luhn, lengths)
//     claims nothing.
//   - A value never contains a JSON structural byte (`"` `,` `:` `{` `}` `[` `]` tab, CR, LF):
//     that is what lets the gateway scan a chunk up to its last such byte and carry only the rest.
//     A policy pattern whose matches can contain one is found in whole bodies only by chance.
//   - unmasked / masked count every occurrence; value_hashes hold each distinct unmasked value
//     once, in the order first seen, at most 32 per kind; findings list kinds in the order above
//     (those with a count), at most 16.

import { createHmac } from 'node:crypto';
import { MAX_FINDINGS, MAX_VALUE_HASHES, type ResponseSample, type SensitiveFinding, type SensitivePattern } from '../wire/schema.ts';

/** The policy's patterns as the gateway runs them (wire/schema.ts SensitivePattern). */
export type SensitivePatternSpec = SensitivePattern;

export interface InspectOptions {
  /** hmac_key bytes, as the gateway's config holds them (Buffer.from(hmac_key, 'utf8')). */
  key: Buffer;
  /** inspect_max_bytes; default 16384. */
  maxBytes?: number;
  /** The policy's responses.patterns, in order. */
  patterns?: readonly SensitivePatternSpec[];
  /** The request's limit / page_size / per_page / size argument (0 = none). */
  requestedLimit?: number;
}

export const DEFAULT_INSPECT_MAX_BYTES = 16_384;

/** The built-in kinds' regex sources: PCRE for ngx.re ("jo") and JavaScript alike. */
export const BUILTIN_PATTERNS = {
  cn_id: {
    masked: '(?<![0-9*])[1-9][0-9]{0,5}\\*+[0-9]{0,3}[0-9Xx](?![0-9*])',
    unmasked: '(?<![0-9])[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx](?![0-9])',
  },
  cn_mobile: {
    masked: '(?<![0-9*])(?:(?:\\+|00)?86[ -]?)?1[3-9][0-9]\\*{3,5}[0-9]{3,4}(?![0-9*])',
    unmasked: '(?<![0-9])(?:(?:\\+|00)?86[ -]?)?1[3-9][0-9]{9}(?![0-9])',
  },
  bank_card: {
    masked: '(?<![0-9*])[0-9]{4,6}[ -]?(?:\\*[ -]?){4,}[0-9]{4}(?![0-9*])',
    unmasked: '(?<![0-9])(?:[0-9]{13,19}|[0-9]{4,6}(?:[ -][0-9]{3,6}){2,4})(?![0-9])',
  },
  email: {
    masked: '(?<![A-Za-z0-9._%+*-])[A-Za-z0-9._%+-]*\\*[A-Za-z0-9._%+*-]*@(?:[A-Za-z0-9-]+\\.)+[A-Za-z]{2,}(?![A-Za-z0-9-])',
    unmasked: '(?<![A-Za-z0-9._%+*-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\\.)+[A-Za-z]{2,}(?![A-Za-z0-9-])',
  },
} as const;

const ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK = '10X98765432';

/** GB 11643: the 18th character of a resident ID number from the first 17 digits. */
export function idCheckValid(id: string): boolean {
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += (id.charCodeAt(i) - 48) * (ID_WEIGHTS[i] ?? 0);
  return ID_CHECK[sum % 11] === id.charAt(17).toUpperCase();
}

export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) { d *= 2; if (d > 9) d -= 9; }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

const digitsOf = (s: string): string => s.replace(/[^0-9]/g, '');

/** The keyed hash of a value: HMAC-SHA-256(key, "sv:" + kind + ":" + normalized), first 8 bytes. */
export function valueHash(key: Buffer, kind: string, normalized: string): Buffer {
  return createHmac('sha256', key).update(`sv:${kind}:${normalized}`, 'latin1').digest().subarray(0, 8);
}

/** What a match is: null = not a value of this kind (fails its check); else its normalized form. */
type Check = (match: string) => string | null;

interface Search { kind: string; masked: boolean; re: RegExp; check: Check; maskedRe?: RegExp }

const BUILTIN_CHECKS: Record<keyof typeof BUILTIN_PATTERNS, { masked: Check; unmasked: Check }> = {
  cn_id: {
    masked: (m) => (m.length === 18 ? m : null),
    unmasked: (m) => (idCheckValid(m) ? m.toUpperCase() : null),
  },
  cn_mobile: { masked: (m) => m, unmasked: (m) => digitsOf(m).slice(-11) },
  bank_card: {
    masked: (m) => m,
    unmasked: (m) => {
      const d = digitsOf(m);
      return d.length >= 13 && d.length <= 19 && luhnValid(d) ? d : null;
    },
  },
  email: { masked: (m) => m, unmasked: (m) => m.toLowerCase() },
};

// policy regexes are UTF-8 text; the scanned bytes are latin1 here, so the pattern is too
const asBytes = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');

function searches(patterns: readonly SensitivePatternSpec[]): Search[] {
  const out: Search[] = [];
  for (const kind of Object.keys(BUILTIN_PATTERNS) as Array<keyof typeof BUILTIN_PATTERNS>) {
    out.push({ kind, masked: true, re: new RegExp(BUILTIN_PATTERNS[kind].masked, 'g'), check: BUILTIN_CHECKS[kind].masked });
    out.push({ kind, masked: false, re: new RegExp(BUILTIN_PATTERNS[kind].unmasked, 'g'), check: BUILTIN_CHECKS[kind].unmasked });
  }
  for (const p of patterns) {
    const maskedRe = p.masked_regex ? new RegExp(asBytes(p.masked_regex)) : undefined;
    out.push({ kind: p.name, masked: false, re: new RegExp(asBytes(p.regex), 'g'), check: (m) => m, maskedRe });
  }
  return out;
}

interface Tally { kind: string; unmasked: number; masked: number; seen: Set<string>; hashes: Buffer[] }

/**
 * The ResponseSample the gateway reports for a response whose body starts with `body` (the
 * whole body, or at least its first maxBytes + 1 bytes so `truncated` is right).
 */
export function inspectResponse(body: string | Buffer, opts: InspectOptions): ResponseSample {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const max = opts.maxBytes ?? DEFAULT_INSPECT_MAX_BYTES;
  const scanned = bytes.subarray(0, max);
  const text = scanned.toString('latin1');
  let records = 0;
  for (let i = 0; i < scanned.length; i++) if (scanned[i] === 0x7b) records++;

  const claimed = new Uint8Array(text.length);
  const tallies = new Map<string, Tally>();
  for (const s of searches(opts.patterns ?? [])) {
    s.re.lastIndex = 0;
    for (let m = s.re.exec(text); m !== null; m = s.re.exec(text)) {
      const from = m.index;
      const to = from + m[0].length;
      if (to === from) { s.re.lastIndex++; continue; } // an empty match of a policy pattern
      let free = true;
      for (let i = from; i < to; i++) if (claimed[i]) { free = false; break; }
      if (!free) continue;
      const normalized = s.check(m[0]);
      if (normalized === null) continue;
      claimed.fill(1, from, to);
      let t = tallies.get(s.kind);
      if (!t) { t = { kind: s.kind, unmasked: 0, masked: 0, seen: new Set(), hashes: [] }; tallies.set(s.kind, t); }
      const masked = s.masked || (s.maskedRe !== undefined && s.maskedRe.test(m[0]));
      if (masked) { t.masked++; continue; }
      t.unmasked++;
      if (t.hashes.length < MAX_VALUE_HASHES && !t.seen.has(normalized)) {
        t.seen.add(normalized);
        t.hashes.push(valueHash(opts.key, s.kind, normalized));
      }
    }
  }
  // Map order is the order kinds were first counted; findings follow the search order
  const order = [...Object.keys(BUILTIN_PATTERNS), ...(opts.patterns ?? []).map((p) => p.name)];
  const findings: SensitiveFinding[] = [];
  for (const kind of order) {
    const t = tallies.get(kind);
    if (!t || findings.length >= MAX_FINDINGS || findings.some((f) => f.kind === kind)) continue;
    findings.push({ kind, unmasked: t.unmasked, masked: t.masked, value_hashes: t.hashes });
  }
  return {
    inspected_bytes: scanned.length,
    truncated: bytes.length > max,
    records,
    requested_limit: opts.requestedLimit ?? 0,
    findings,
  };
}
