// How much CPU the rest of the machine took during a row (Linux /proc): on a shared 2-core box a
// neighbour's test run shows up in the results as timeouts, so every row says how busy the
// machine was besides this stack. Ours = this process and all its descendants, including the
// ones that exited meanwhile (a reaped child's time is added to its parent's cutime/cstime).
import { readFileSync } from 'node:fs';
import { childPids } from '../lib/proc.ts';

export interface CpuSnapshot {
  /** busy and total jiffies of the whole machine */
  busy: number;
  total: number;
  /** jiffies used by our process tree (reaped children included) */
  ours: number;
}

function machine(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

/** utime + stime + cutime + cstime of one process (0 when gone). */
function processJiffies(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // fields after the command: state(3) ... utime(14) stime(15) cutime(16) cstime(17)
    return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  } catch {
    return 0;
  }
}

function treeJiffies(pid: number): number {
  let sum = processJiffies(pid);
  for (const c of childPids(pid)) sum += treeJiffies(c);
  return sum;
}

export function cpuSnapshot(): CpuSnapshot {
  return { ...machine(), ours: treeJiffies(process.pid) };
}

/**
 * Share of the machine's CPU capacity (all cores) used by other processes between two
 * snapshots, 0..1; NaN without /proc.
 */
export function othersShare(a: CpuSnapshot, b: CpuSnapshot): number {
  const total = b.total - a.total;
  if (!(total > 0)) return Number.NaN;
  return Math.max(0, (b.busy - a.busy) - (b.ours - a.ours)) / total;
}

/**
 * Waits (1 s samples, at most `maxMs`) until other processes use less than `threshold` of the
 * machine; resolves with the last sample's share. The row then reports what it measured anyway.
 */
export async function waitForQuiet(maxMs: number, threshold: number, onBusy: (share: number) => void): Promise<number> {
  const until = Date.now() + maxMs;
  for (;;) {
    const a = cpuSnapshot();
    await new Promise((r) => setTimeout(r, 1000));
    const share = othersShare(a, cpuSnapshot());
    if (!(share >= threshold) || Date.now() >= until) return share;
    onBusy(share);
  }
}
