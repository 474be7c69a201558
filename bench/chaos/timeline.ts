// From per-request records to what the reliability table shows: each request classified
// (decided / failed open by cause / lost / 5xx), 100 ms buckets by intended send time, and the
// seconds unprotected after a fault.
//
// A request is *decided* when Verdict's verdict was applied to it: it reached the upstream without
// `X-Verdict-Fail-Open`, or the gateway answered it itself (a block or challenge: the upstream
// here only ever answers 200). It *failed open* when the upstream got it with that header. It is
// *lost* when the client got no HTTP answer (socket error or timeout), or when it was resent after
// a reset (load.ts) although its first attempt had reached the upstream. The decided share of a
// bucket is decided / sent, so lost and 5xx'd requests count against it.
import { ERROR_KINDS, type LoadRecords } from './load.ts';
import type { UpstreamSeen } from './stack.ts';

export const BUCKET_MS = 100;
/** decided share a bucket needs to count as protected */
export const PROTECTED_SHARE = 0.99;
/** protection is "back" at a protected bucket that starts this many buckets protected together */
export const HOLD_BUCKETS = 10;

export interface Bucket {
  /** start, ms since the first slot */
  t: number;
  sent: number;
  decided: number;
  failedOpen: number;
  /** failed open by cause */
  causes: Record<string, number>;
  lost: number;
  s5xx: number;
}

export interface RowCounts {
  sent: number;
  byClass: { '2xx': number; '3xx': number; '4xx': number; '5xx': number };
  byStatus: Record<string, number>;
  socketErrors: number;
  socketErrorsByKind: Record<string, number>;
  /** first attempt reset before any answer, sent again on a new connection (load.ts) */
  resent: number;
  decided: number;
  /** answered by the gateway itself (block / challenge) */
  decidedAtGateway: number;
  failedOpen: number;
  failedOpenByCause: Record<string, number>;
  /** answered < 500 but not found in the upstream's log and not a gateway answer (should be 0) */
  unaccounted: number;
  /** answers received per second, from the window's start to the last answer (below the
   *  offered rate when the stack could not keep up and requests queued) */
  servedRps: number;
  /** latency from the intended send time (coordinated omission corrected), ms */
  latencyMs: { p50: number; p99: number; max: number };
  /** how late the pacer sent, ms */
  sendLagMs: { p99: number; max: number };
}

export interface Analysis {
  counts: RowCounts;
  buckets: Bucket[];
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/**
 * Classifies every request whose slot falls in [fromMs, rec's end) and buckets them.
 * `upstream`: id → fail-open cause as the upstream received it ("" = none); absent = never got there.
 */
export function analyse(rec: LoadRecords, seen: UpstreamSeen, fromMs: number): Analysis {
  const upstream = seen.cause;
  const counts: RowCounts = {
    sent: 0,
    byClass: { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 },
    byStatus: {},
    socketErrors: 0,
    socketErrorsByKind: {},
    resent: 0,
    decided: 0,
    decidedAtGateway: 0,
    failedOpen: 0,
    failedOpenByCause: {},
    unaccounted: 0,
    servedRps: 0,
    latencyMs: { p50: Number.NaN, p99: Number.NaN, max: Number.NaN },
    sendLagMs: { p99: Number.NaN, max: Number.NaN },
  };
  const buckets: Bucket[] = [];
  const lat: number[] = [];
  const lag: number[] = [];
  let lastAnswer = fromMs;
  for (let k = 0; k < rec.sent; k++) {
    const t = rec.intended[k]!;
    if (t < fromMs) continue;
    const bi = Math.floor((t - fromMs) / BUCKET_MS);
    while (buckets.length <= bi) buckets.push({ t: fromMs + buckets.length * BUCKET_MS, sent: 0, decided: 0, failedOpen: 0, causes: {}, lost: 0, s5xx: 0 });
    const b = buckets[bi]!;
    b.sent++;
    counts.sent++;
    lag.push(rec.started[k]! - t);
    const status = rec.status[k]!;
    const resent = rec.resent[k] === 1;
    if (resent) counts.resent++;
    // a resent request whose first attempt reached the application: that attempt's answer was lost
    const twice = resent && seen.firstTry.has(k);
    if (status === 0 || twice) {
      const kind = twice ? 'reset after reaching the upstream' : ERROR_KINDS[rec.error[k]!] ?? 'other';
      counts.socketErrors++;
      counts.socketErrorsByKind[kind] = (counts.socketErrorsByKind[kind] ?? 0) + 1;
      b.lost++;
      continue;
    }
    lat.push(rec.finished[k]! - t);
    if (rec.finished[k]! > lastAnswer) lastAnswer = rec.finished[k]!;
    counts.byStatus[status] = (counts.byStatus[status] ?? 0) + 1;
    const cls = status >= 500 ? '5xx' : status >= 400 ? '4xx' : status >= 300 ? '3xx' : '2xx';
    counts.byClass[cls]++;
    if (status >= 500) {
      b.s5xx++;
      continue;
    }
    const cause = upstream.get(k);
    if (cause === undefined) {
      if (status === 200) counts.unaccounted++;
      else { counts.decided++; counts.decidedAtGateway++; b.decided++; }
    } else if (cause === '') {
      counts.decided++;
      b.decided++;
    } else {
      counts.failedOpen++;
      counts.failedOpenByCause[cause] = (counts.failedOpenByCause[cause] ?? 0) + 1;
      b.failedOpen++;
      b.causes[cause] = (b.causes[cause] ?? 0) + 1;
    }
  }
  counts.servedRps = lastAnswer > fromMs ? lat.length / ((lastAnswer - fromMs) / 1000) : 0;
  const sortedLat = Float64Array.from(lat).sort();
  const sortedLag = Float64Array.from(lag).sort();
  counts.latencyMs = { p50: quantile(sortedLat, 0.5), p99: quantile(sortedLat, 0.99), max: sortedLat[sortedLat.length - 1] ?? Number.NaN };
  counts.sendLagMs = { p99: quantile(sortedLag, 0.99), max: sortedLag[sortedLag.length - 1] ?? Number.NaN };
  return { counts, buckets };
}

const share = (b: Bucket) => (b.sent === 0 ? 1 : b.decided / b.sent);
export const isProtected = (b: Bucket) => share(b) >= PROTECTED_SHARE;

/** Decided share of the buckets that ended before `ms` (NaN when none). */
export function decidedBefore(buckets: readonly Bucket[], ms: number): number {
  let sent = 0;
  let decided = 0;
  for (const b of buckets) {
    if (b.t + BUCKET_MS > ms) break;
    sent += b.sent;
    decided += b.decided;
  }
  return sent ? decided / sent : Number.NaN;
}

/** Seconds of the run whose buckets were below the protected share. */
export function secondsBelow(buckets: readonly Bucket[]): number {
  return buckets.filter((b) => !isProtected(b)).length * (BUCKET_MS / 1000);
}

/**
 * Seconds from `backMs` (the failed part able to answer again) until protection is back: the
 * start of the first bucket at or after the one holding `backMs` that is protected itself and
 * begins HOLD_BUCKETS buckets that together are (a single stray timeout in a bucket of a healthy
 * second does not count; a breaker that opens again does). 0 when that holds from `backMs` on;
 * null when protection did not come back before the data ends (the caller reports "> observed").
 */
export function secondsUnprotected(buckets: readonly Bucket[], backMs: number): number | null {
  const first = buckets.findIndex((b) => b.t + BUCKET_MS > backMs);
  if (first < 0) return null;
  for (let i = first; i + HOLD_BUCKETS <= buckets.length; i++) {
    if (!isProtected(buckets[i]!)) continue;
    let sent = 0;
    let decided = 0;
    for (let j = i; j < i + HOLD_BUCKETS; j++) {
      sent += buckets[j]!.sent;
      decided += buckets[j]!.decided;
    }
    if (sent === 0 || decided / sent >= PROTECTED_SHARE) return Math.max(0, buckets[i]!.t - backMs) / 1000;
  }
  return null;
}

/** Per-second rows for the timeline (seconds relative to `zeroMs`). */
export function perSecond(buckets: readonly Bucket[], zeroMs: number): Array<Bucket & { second: number }> {
  const out = new Map<number, Bucket & { second: number }>();
  for (const b of buckets) {
    const s = Math.floor((b.t - zeroMs) / 1000);
    const row = out.get(s) ?? { second: s, t: b.t, sent: 0, decided: 0, failedOpen: 0, causes: {}, lost: 0, s5xx: 0 };
    row.sent += b.sent;
    row.decided += b.decided;
    row.failedOpen += b.failedOpen;
    for (const [c, n] of Object.entries(b.causes)) row.causes[c] = (row.causes[c] ?? 0) + n;
    row.lost += b.lost;
    row.s5xx += b.s5xx;
    out.set(s, row);
  }
  return [...out.values()].sort((a, b) => a.second - b.second);
}
