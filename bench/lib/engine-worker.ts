// Child process: the engine in-process on one core (run pinned), every detector on, the default
// policy, the bench's varied request mix. Prints one JSON line: decisions/s and per-decision
// latency percentiles (µs). Usage: engine-worker.ts <seconds>
import { loadPolicyFile } from '../../decision-service/src/config/policy.ts';
import { systemClock } from '../../decision-service/src/engine/clock.ts';
import { Engine } from '../../decision-service/src/engine/engine.ts';
import { MemoryStore } from '../../decision-service/src/state/memory-store.ts';
import { decodeDecideRequest } from '../../decision-service/src/wire/codec.ts';
import { repoRoot } from '../../scripts/lib/nginx.ts';
import { decideBodies } from './decide-bodies.ts';
import { join } from 'node:path';

const seconds = Math.min(60, Math.max(0.5, Number(process.argv[2] ?? 3)));
const engine = new Engine({
  policy: loadPolicyFile(join(repoRoot, 'policies/default.yaml')),
  store: new MemoryStore(),
  clock: systemClock,
  identifierKey: Buffer.from('verdict-bench-identifier-key-0123'),
});
const reqs = decideBodies().map((b) => decodeDecideRequest(b, 'protobuf'));
const n = reqs.length;

// warm-up (JIT), then throughput: batches between clock reads
for (let i = 0; i < 50_000; i++) engine.decide(reqs[i % n]!);
let done = 0;
const t0 = process.hrtime.bigint();
const until = t0 + BigInt(Math.round(seconds * 1e9));
let now = t0;
while (now < until) {
  for (let k = 0; k < 1000; k++) engine.decide(reqs[(done + k) % n]!);
  done += 1000;
  now = process.hrtime.bigint();
}
const perSec = done / (Number(now - t0) / 1e9);

// latency: each decision timed on its own (adds the clock reads' cost)
const lat = new Float64Array(100_000);
for (let i = 0; i < lat.length; i++) {
  const a = process.hrtime.bigint();
  engine.decide(reqs[i % n]!);
  lat[i] = Number(process.hrtime.bigint() - a) / 1000;
}
lat.sort();
const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? 0;
process.stdout.write(`${JSON.stringify({ decisionsPerSec: perSec, p50Us: q(0.5), p99Us: q(0.99), p999Us: q(0.999) })}\n`);
