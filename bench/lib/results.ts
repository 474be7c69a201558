// The benchmark's results: the model, the summary (medians over rounds, ratios to the plain
// proxy of the same round) and the writer of bench/results/perf.md + perf.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WrkResult } from './wrk.ts';
import type { GcShare } from './proc.ts';

export interface Meta {
  date: string;
  command: string;
  quick: boolean;
  rounds: number;
  durationS: number;
  connections: number;
  machine: { cpu: string; cores: number; memGiB: number; kernel: string; node: string; nginx: string; wrk: string };
  pinning: string;
  notes: string[];
}

/** One round: every proxy case's wrk result, side by side. */
export interface ProxyRound {
  round: number;
  cases: Record<string, WrkResult>;
}

export interface ProxyCaseInfo {
  id: string;
  title: string;
  /** why the case did not run (e.g. a package missing on this distribution) */
  unavailable?: string;
}

export interface ProxySummaryRow {
  id: string;
  title: string;
  rounds: number;
  rps: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  /** median over rounds of rps / plain rps from the same round */
  ratio: number | null;
  /** non-2xx/3xx responses + socket errors, as a share of requests (all rounds) */
  errorShare: number;
  /** Lua gateway cases: median share of guarded requests decided by the service (rest failed open) */
  decidedShare?: number;
  /** ...of which without a call (a clean mark or a clearance; median) */
  uncalledShare?: number;
  unavailable?: string;
}

export interface UnderLoadRow {
  /** share of the plain proxy's saturation throughput */
  share: number;
  rate: number;
  caseId: string;
  title: string;
  achievedRps: number;
  p50Us: number;
  p99Us: number;
  /** this case minus the plain proxy at the same rate (0 for the plain proxy itself) */
  addedP50Us: number;
  addedP99Us: number;
  /** the same from each request's intended send time (coordinated omission corrected, wrk.ts);
   *  NaN when the run gave none */
  coP50Us: number;
  coP99Us: number;
  addedCoP50Us: number;
  addedCoP99Us: number;
  /** the decision service's GC pauses during the run, and their share of its wall time (absent: not scraped) */
  gc?: GcShare;
}

/** A free-form table (cases 6-8). */
export interface Section {
  id: string;
  title: string;
  columns: string[];
  rows: Array<Array<string | number>>;
  notes: string[];
}

export interface TargetCheck {
  target: string;
  measured: string;
  /** null: not measured in this run */
  met: boolean | null;
}

export interface BenchResults {
  meta: Meta;
  /** census: every request of the mix sent once per case (round 1), answers by status */
  proxy: { rounds: ProxyRound[]; summary: ProxySummaryRow[]; census: Record<string, Record<string, number>> };
  underLoad: UnderLoadRow[];
  sections: Section[];
  targets: TargetCheck[];
}

export function median(xs: readonly number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/** Medians over rounds; ratios against `plainId` from the same round. */
export function summarizeProxy(rounds: readonly ProxyRound[], cases: readonly ProxyCaseInfo[], plainId: string): ProxySummaryRow[] {
  return cases.map((c) => {
    if (c.unavailable) {
      return { id: c.id, title: c.title, rounds: 0, rps: Number.NaN, p50Us: Number.NaN, p90Us: Number.NaN, p99Us: Number.NaN, ratio: null, errorShare: 0, unavailable: c.unavailable };
    }
    const runs = rounds.map((r) => r.cases[c.id]).filter((x): x is WrkResult => x !== undefined);
    const ratios = rounds
      .map((r) => {
        const a = r.cases[c.id];
        const p = r.cases[plainId];
        return a && p && p.rps > 0 ? a.rps / p.rps : Number.NaN;
      })
      .filter(Number.isFinite);
    const requests = runs.reduce((s, r) => s + r.requests, 0);
    const errors = runs.reduce((s, r) => s + r.errors.status + r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout, 0);
    return {
      id: c.id,
      title: c.title,
      rounds: runs.length,
      rps: median(runs.map((r) => r.rps)),
      p50Us: median(runs.map((r) => r.latencyUs.p50)),
      p90Us: median(runs.map((r) => r.latencyUs.p90)),
      p99Us: median(runs.map((r) => r.latencyUs.p99)),
      ratio: ratios.length ? median(ratios) : null,
      errorShare: requests > 0 ? errors / requests : 0,
      ...(runs.some((r) => r.decidedShare !== undefined) ? { decidedShare: median(runs.map((r) => r.decidedShare ?? Number.NaN).filter(Number.isFinite)) } : {}),
      ...(runs.some((r) => r.uncalledShare !== undefined) ? { uncalledShare: median(runs.map((r) => r.uncalledShare ?? Number.NaN).filter(Number.isFinite)) } : {}),
    };
  });
}

const fmtInt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
export const fmtMs = (us: number) => (Number.isFinite(us) ? (us / 1000).toFixed(us < 10_000 ? 3 : 1) : '–');
const fmtRatio = (r: number | null) => (r === null || !Number.isFinite(r) ? '–' : `${r.toFixed(2)}×`);
const fmtPct = (x: number) => `${(100 * x).toFixed(x > 0 && x < 0.001 ? 3 : 1)}%`;
const fmtSigned = (us: number) => (Number.isFinite(us) ? `${us >= 0 ? '+' : ''}${(us / 1000).toFixed(3)}` : '–');

export function fmtCensus(c: Record<string, number> | undefined): string {
  if (!c) return '–';
  const total = Object.values(c).reduce((a, b) => a + b, 0);
  if (total === 0) return '–';
  return Object.entries(c)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}: ${fmtPct(v / total)}`)
    .join(', ');
}

function table(columns: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const cell = (v: string | number) => String(v).replace(/\|/g, '\\|');
  return [
    `| ${columns.join(' | ')} |`,
    `|${columns.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n');
}

export function renderMarkdown(res: BenchResults): string {
  const m = res.meta;
  const out: string[] = [];
  out.push('# Verdict benchmark results', '');
  out.push(`Generated by \`${m.command}\` on ${m.date}${m.quick ? ' — **quick run** (short, for routine checks; not the official numbers)' : ''}.`, '');
  out.push(`Machine: ${m.machine.cpu}, ${m.machine.cores} cores, ${m.machine.memGiB} GiB RAM; Linux ${m.machine.kernel}; Node ${m.machine.node}; nginx ${m.machine.nginx}; ${m.machine.wrk}.`, '');
  out.push(`Rounds: ${m.rounds} × ${m.durationS} s per case, ${m.connections} connections; medians over rounds; ratios against the plain proxy **of the same round**.`, '');
  out.push(`Pinning: ${m.pinning}`, '');
  for (const n of m.notes) out.push(`- ${n}`);
  if (m.notes.length) out.push('');

  out.push('## Throughput at saturation', '');
  out.push(table(
    ['case', 'req/s', 'ratio to plain', 'p50 ms', 'p90 ms', 'p99 ms', 'decided', 'of them without a call', 'non-2xx + errors', 'answers (census)', 'rounds'],
    res.proxy.summary.map((r) => r.unavailable
      ? [r.title, r.unavailable, '–', '–', '–', '–', '–', '–', '–', '–', 0]
      : [r.title, fmtInt(r.rps), fmtRatio(r.ratio), fmtMs(r.p50Us), fmtMs(r.p90Us), fmtMs(r.p99Us), r.decidedShare === undefined ? '–' : fmtPct(r.decidedShare), r.uncalledShare === undefined ? '–' : fmtPct(r.uncalledShare), fmtPct(r.errorShare), fmtCensus(res.proxy.census[r.id]), r.rounds]),
  ), '');
  out.push('"answers (census)": each of the mix\'s requests sent once through the case before round 1\'s measurement; a Verdict block or challenge shows here as 403/429.', '');
  out.push('"decided": for the Lua gateway, the share of guarded requests that got the service\'s verdict within the budget during the measurement (the rest failed open: fast for the wrong reason). "of them without a call": requests of clients the service had marked clean (policy `clean_marks`) or that carried a clearance, passed at once where `$verdict_cleared` is async and scored after the response (identity and promo locations are always called).', '');

  if (res.underLoad.length) {
    out.push('## Latency under load (constant rate)', '');
    out.push('Offered rate as a share of the plain proxy\'s measured saturation throughput; "added" is the case minus the plain proxy at the same rate. "from intended send" is each request\'s latency from when the constant-rate schedule said to send it (coordinated omission corrected: a request that waited for a free connection counts its wait; it includes wrk\'s 1 ms timer granularity, which the plain proxy pays too); "from actual send" is wrk\'s own measure, from when it went out. The targets read the corrected columns.', '');
    out.push(table(
      ['load', 'rate req/s', 'case', 'achieved req/s', 'from intended send: p50 ms', 'p99 ms', 'added p50 ms', 'added p99 ms', 'from actual send: p50 ms', 'p99 ms', 'added p50 ms', 'added p99 ms', 'service GC: pauses, ms (share of the run)'],
      res.underLoad.map((u) => [`${Math.round(u.share * 100)}%`, fmtInt(u.rate), u.title, fmtInt(u.achievedRps), fmtMs(u.coP50Us), fmtMs(u.coP99Us), fmtSigned(u.addedCoP50Us), fmtSigned(u.addedCoP99Us), fmtMs(u.p50Us), fmtMs(u.p99Us), fmtSigned(u.addedP50Us), fmtSigned(u.addedP99Us), u.gc ? `${u.gc.pauses}, ${u.gc.ms.toFixed(0)} (${fmtPct(u.gc.share)})` : '–']),
    ), '');
    out.push('"service GC": the decision service\'s garbage-collection pauses during the run (prom-client\'s nodejs_gc_duration_seconds, scraped before and after). A request waits on a pause only if it reaches the service during one, so the share of the run spent in pauses bounds the share of requests that did: under 1%, GC alone cannot set the p99.', '');
  }

  for (const s of res.sections) {
    out.push(`## ${s.title}`, '');
    out.push(table(s.columns, s.rows), '');
    for (const n of s.notes) out.push(`- ${n}`);
    if (s.notes.length) out.push('');
  }

  if (res.targets.length) {
    out.push('## Targets (DESIGN §8)', '');
    out.push(table(['target', 'measured', 'met'], res.targets.map((t) => [t.target, t.measured, t.met === null ? 'not measured' : t.met ? 'yes' : '**no**'])), '');
  }
  return out.join('\n');
}

/** Writes <basename>.md and <basename>.json into `dir` (quick runs use perf-quick); returns their paths. */
export function writeResults(dir: string, res: BenchResults, basename = 'perf'): { md: string; json: string } {
  mkdirSync(dir, { recursive: true });
  const md = join(dir, `${basename}.md`);
  const json = join(dir, `${basename}.json`);
  writeFileSync(md, renderMarkdown(res));
  // NaN is not JSON: write null for numbers that were not measured
  writeFileSync(json, `${JSON.stringify(res, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`);
  return { md, json };
}
