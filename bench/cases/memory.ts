// Case 8: memory of the embedded state under millions of distinct keys: RSS of a process holding
// the engine and its MemoryStore (LRU-bounded, default 1M keys) at 1M and 10M distinct keys.
import type { CaseOutput, CustomCase } from '../lib/case.ts';
import { runWorker } from '../lib/child.ts';

const MiB = 1024 * 1024;

const memory: CustomCase = {
  kind: 'custom',
  id: 'memory',
  order: 8,
  title: '8. memory: service state under millions of distinct keys',
  async run(env): Promise<CaseOutput> {
    const engineRequests = env.quick ? 100_000 : 1_000_000;
    // quick: 1M and 2M keys (the bound already shows); the official run: 1M and 10M
    const top = env.quick ? 2_000_000 : 10_000_000;
    const lines = await runWorker('bench/lib/memory-worker.ts', [String(engineRequests), `1000000,${top}`], env.cpus.service, 600_000, ['--expose-gc', '--max-old-space-size=4096']);
    const baseline = Number(lines.find((l) => l.phase === 'baseline')?.rss ?? Number.NaN);
    const rows = lines.map((l) => [
      l.phase === 'baseline' ? 'baseline (engine + policy loaded)' : l.phase === 'engine' ? `engine.decide, ${Number(l.keys).toLocaleString('en-US')} distinct clients` : `store, ${Number(l.keys).toLocaleString('en-US')} distinct keys`,
      Number(l.storeKeys).toLocaleString('en-US'),
      (Number(l.rss) / MiB).toFixed(0),
      ((Number(l.rss) - baseline) / MiB).toFixed(0),
    ]);
    const at1m = Number(lines.find((l) => l.phase === 'store' && Number(l.keys) === 1_000_000)?.rss ?? Number.NaN);
    const at10m = Number(lines.find((l) => l.phase === 'store' && Number(l.keys) === top)?.rss ?? Number.NaN);
    const held = Number(lines.find((l) => l.phase === 'store' && Number(l.keys) === top)?.storeKeys ?? Number.NaN);
    const topText = `${top / 1_000_000}M`;
    const bounded = at10m <= at1m * 1.25;
    return {
      sections: [{
        id: 'memory',
        title: this.title,
        columns: ['after', 'keys held by the store', 'RSS MiB', 'over baseline MiB'],
        rows,
        notes: [
          'One process (pinned), RSS read from /proc after two forced GCs. The store is the embedded MemoryStore with its default bound (LRU over keys); the engine phase writes the keys its detectors use per distinct client.',
          `Bound: ${held.toLocaleString('en-US')} keys held after ${topText} distinct keys; RSS at ${topText} is ${(at10m / at1m).toFixed(2)}× RSS at 1M.`,
        ],
      }],
      targets: [
        { target: 'memory stays within a configured bound under millions of distinct keys', measured: `${(at1m / MiB).toFixed(0)} MiB at 1M keys, ${(at10m / MiB).toFixed(0)} MiB at ${topText} (${held.toLocaleString('en-US')} held)`, met: Number.isFinite(at10m) ? bounded : null },
      ],
    };
  },
};

export default memory;
