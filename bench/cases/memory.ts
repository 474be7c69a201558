// Case 8: memory under millions of distinct clients: RSS of a process holding the engine and its
// MemoryStore, for two key bounds (VERDICT_STORE_MAX_KEYS 100k and 500k) from 1M to 10M distinct
// clients through engine.decide (quick: 100k keys, 250k and 1M clients). The same matrix, alone,
// with its own results file: `npx tsx bench/memory.ts` (bench/results/memory.md).
import type { CaseOutput, CustomCase } from '../lib/case.ts';
import { memorySection, OFFICIAL, QUICK, runMemoryMatrix } from '../lib/memory-matrix.ts';

const memory: CustomCase = {
  kind: 'custom',
  id: 'memory',
  order: 8,
  title: '8. memory: the service state under millions of distinct clients',
  async run(env): Promise<CaseOutput> {
    const spec = env.quick ? QUICK : OFFICIAL;
    const points = await runMemoryMatrix({ ...spec, cpu: env.cpus.service });
    return memorySection(this.title, points, spec.checkpoints);
  },
};

export default memory;
