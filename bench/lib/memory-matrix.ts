// The memory matrix (bench case 8 and bench/memory.ts): for each VERDICT_STORE_MAX_KEYS, one
// memory-worker process drives engine.decide with distinct clients up to each checkpoint; this
// file runs the workers and renders their lines as one table.
import { storeBytes } from '../../decision-service/src/state/memory-store.ts';
import { runWorker } from './child.ts';
import type { CpuSet } from './proc.ts';
import type { Section, TargetCheck } from './results.ts';

const MiB = 1024 * 1024;

export interface MemoryPoint {
  maxKeys: number;
  /** distinct-client decisions so far (0 = baseline: engine and policy loaded) */
  decisions: number;
  storeKeys: number;
  rss: number;
  /** highest RSS sampled since the previous checkpoint, no forced GC */
  rssPeak: number;
  /** after two forced full GCs */
  rssGc: number;
  heapGc: number;
  arrayBuffersGc: number;
  seconds: number;
}

export interface MatrixSpec {
  maxKeys: readonly number[];
  checkpoints: readonly number[];
  cpu: CpuSet;
  timeoutMs: number;
}

export const OFFICIAL: Omit<MatrixSpec, 'cpu'> = { maxKeys: [100_000, 500_000], checkpoints: [1_000_000, 2_000_000, 5_000_000, 10_000_000], timeoutMs: 45 * 60_000 };
export const QUICK: Omit<MatrixSpec, 'cpu'> = { maxKeys: [100_000], checkpoints: [250_000, 1_000_000], timeoutMs: 5 * 60_000 };

export async function runMemoryMatrix(spec: MatrixSpec): Promise<MemoryPoint[]> {
  const out: MemoryPoint[] = [];
  for (const maxKeys of spec.maxKeys) {
    const lines = await runWorker('bench/lib/memory-worker.ts', [String(maxKeys), spec.checkpoints.join(',')], spec.cpu, spec.timeoutMs, ['--expose-gc']);
    for (const l of lines) {
      out.push({
        maxKeys, decisions: Number(l.keys), storeKeys: Number(l.storeKeys), rss: Number(l.rss), rssPeak: Number(l.rssPeak),
        rssGc: Number(l.rssGc), heapGc: Number(l.heapGc), arrayBuffersGc: Number(l.arrayBuffersGc), seconds: Number(l.seconds ?? 0),
      });
    }
  }
  return out;
}

const mib = (b: number) => (b / MiB).toFixed(0);
const count = (n: number) => n.toLocaleString('en-US');

/** Peak RSS from `from` (exclusive) to `to` decisions, for one key bound. */
function peakBetween(points: readonly MemoryPoint[], maxKeys: number, from: number, to: number): number {
  return Math.max(...points.filter((p) => p.maxKeys === maxKeys && p.decisions > from && p.decisions <= to).map((p) => p.rssPeak));
}

/**
 * The key bound × distinct clients table: at the first and the last checkpoint, the peak RSS of
 * the stretch leading there (from the start; from the first checkpoint) and the RSS after a full GC.
 */
export function summaryTable(points: readonly MemoryPoint[], checkpoints: readonly number[]): { columns: string[]; rows: string[][] } {
  const first = checkpoints[0] ?? 0;
  const last = checkpoints[checkpoints.length - 1] ?? 0;
  const columns = ['VERDICT_STORE_MAX_KEYS', 'store tables (allocated once)', 'baseline RSS', `${short(first)} distinct clients: peak RSS (0–${short(first)}) / after full GC`, `${short(last)} distinct clients: peak RSS (${short(first)}–${short(last)}) / after full GC`, `keys held at ${short(last)}`];
  const rows: string[][] = [];
  for (const maxKeys of new Set(points.map((p) => p.maxKeys))) {
    const at = (n: number) => points.find((p) => p.maxKeys === maxKeys && p.decisions === n);
    const base = at(0);
    const a = at(first);
    const b = at(last);
    rows.push([
      count(maxKeys),
      `${mib(storeBytes(maxKeys))} MiB`,
      base ? `${mib(base.rssGc)} MiB` : '–',
      a ? `${mib(peakBetween(points, maxKeys, 0, first))} / ${mib(a.rssGc)} MiB` : '–',
      b ? `${mib(peakBetween(points, maxKeys, first, last))} / ${mib(b.rssGc)} MiB` : '–',
      b ? count(b.storeKeys) : '–',
    ]);
  }
  return { columns, rows };
}

/** 1000000 → "1M", 250000 → "250k". */
export function short(n: number): string {
  if (n >= 1_000_000 && n % 1_000_000 === 0) return `${n / 1_000_000}M`;
  if (n >= 1000 && n % 1000 === 0) return `${n / 1000}k`;
  return count(n);
}

export function detailRows(points: readonly MemoryPoint[]): string[][] {
  return points.map((p) => [
    count(p.maxKeys),
    p.decisions === 0 ? 'baseline' : count(p.decisions),
    count(p.storeKeys),
    mib(p.rssPeak),
    mib(p.rssGc),
    mib(p.heapGc),
    mib(p.arrayBuffersGc),
  ]);
}

export const DETAIL_COLUMNS = ['max keys', 'decisions', 'keys held', 'peak RSS MiB (since previous row)', 'RSS MiB after full GC', 'JS heap MiB after GC', 'typed arrays MiB'];

/** Bounded: for every key bound, the peak after the first checkpoint stays within 15% of the peak up to it. */
export function flatness(points: readonly MemoryPoint[], checkpoints: readonly number[]): Array<{ maxKeys: number; early: number; late: number; ok: boolean }> {
  const first = checkpoints[0] ?? 0;
  const last = checkpoints[checkpoints.length - 1] ?? 0;
  return [...new Set(points.map((p) => p.maxKeys))].map((maxKeys) => {
    const early = peakBetween(points, maxKeys, 0, first);
    const late = peakBetween(points, maxKeys, first, last);
    return { maxKeys, early, late, ok: Number.isFinite(late) && late <= early * 1.15 };
  });
}

export function memorySection(title: string, points: readonly MemoryPoint[], checkpoints: readonly number[]): { sections: Section[]; targets: TargetCheck[] } {
  const summary = summaryTable(points, checkpoints);
  const flat = flatness(points, checkpoints);
  const last = checkpoints[checkpoints.length - 1] ?? 0;
  return {
    sections: [
      {
        id: 'memory',
        title,
        columns: summary.columns,
        rows: summary.rows,
        notes: [
          'One process per key bound (pinned): the engine with every detector on, the default policy and the embedded MemoryStore, driven through engine.decide by clients nobody has seen before — every request a new IP (1 in 8 IPv6), session or device, token, identifier, object id, some paths no template collapses — over the bench route mix, with the outcomes of identity and object requests fed back. Peak RSS is sampled every 8,192 decisions with no forced GC (what the OOM killer sees); "after full GC" is what is live.',
          `Store tables: the five structures' typed arrays, allocated once from the key bound (${storeBytes(1)} bytes × VERDICT_STORE_MAX_KEYS); the rest is the JS heap (recent requests awaiting outcomes, inventory, per-request garbage between collections).`,
          ...flat.map((f) => `${count(f.maxKeys)} keys: peak ${mib(f.early)} MiB up to ${short(checkpoints[0] ?? 0)} distinct clients, ${mib(f.late)} MiB from there to ${short(last)} (${(f.late / f.early).toFixed(2)}×; bounded = at most 1.15×).`),
        ],
      },
      {
        id: 'memory-detail',
        title: `${title}: every checkpoint`,
        columns: DETAIL_COLUMNS,
        rows: detailRows(points),
        notes: [],
      },
    ],
    targets: [
      {
        target: 'memory stays within a configured bound under millions of distinct keys',
        measured: `peak RSS up to ${short(checkpoints[0] ?? 0)} → from there to ${short(last)} distinct clients: ${flat.map((f) => `${short(f.maxKeys)} keys ${mib(f.early)} → ${mib(f.late)} MiB`).join('; ')}`,
        met: flat.length > 0 && flat.every((f) => f.ok),
      },
    ],
  };
}
