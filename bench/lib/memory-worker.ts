// Child process: memory of the embedded state under millions of distinct keys. Drives the engine
// with distinct clients (every request a new IP, device and identifier) and then the MemoryStore
// directly with distinct keys up to each checkpoint; prints one JSON line per checkpoint with the
// RSS (after a GC) and the keys the store holds. Usage: memory-worker.ts <engine requests> <checkpoints,...>
import { loadPolicyFile } from '../../decision-service/src/config/policy.ts';
import { VirtualClock } from '../../decision-service/src/engine/clock.ts';
import { Engine } from '../../decision-service/src/engine/engine.ts';
import { MemoryStore } from '../../decision-service/src/state/memory-store.ts';
import { decodeDecideRequest } from '../../decision-service/src/wire/codec.ts';
import { repoRoot } from '../../scripts/lib/nginx.ts';
import { decideBodies } from './decide-bodies.ts';
import { join } from 'node:path';

const engineRequests = Math.min(5_000_000, Number(process.argv[2] ?? 100_000));
const checkpoints = (process.argv[3] ?? '1000000').split(',').map(Number).filter((x) => x > 0 && x <= 50_000_000).sort((a, b) => a - b);
const gc = (globalThis as { gc?: () => void }).gc;
const rss = () => { gc?.(); gc?.(); return process.memoryUsage().rss; };
const emit = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);

const clock = new VirtualClock(Date.UTC(2025, 0, 1));
const store = new MemoryStore();
const engine = new Engine({ policy: loadPolicyFile(join(repoRoot, 'policies/default.yaml')), store, clock, identifierKey: Buffer.from('verdict-bench-identifier-key-0123') });
const base = decideBodies(500).map((b) => decodeDecideRequest(b, 'protobuf'));
emit({ phase: 'baseline', keys: 0, storeKeys: store.size(), rss: rss() });

for (let i = 0; i < engineRequests; i++) {
  const r = base[i % base.length]!;
  clock.advance(1);
  engine.decide({ ...r, request_id: `m${i}`, client_ip: `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`, identifier: r.identifier ? `u${i}@mail.example` : '', device_hash: Buffer.from(`dev${i}`) });
}
emit({ phase: 'engine', keys: engineRequests, storeKeys: store.size(), rss: rss() });

// the store directly: distinct keys of the shapes detectors use, 60 s windows
let k = 0;
for (const target of checkpoints) {
  for (; k < target; k++) {
    if ((k & 1023) === 0) clock.advance(1);
    store.incr(`ip:${k}.${k & 255}`, 60_000, clock.now());
  }
  emit({ phase: 'store', keys: target, storeKeys: store.size(), rss: rss() });
}
