// CPU-time per decision (user+sys of this process), robust to other load on the machine.
const root = process.argv[2]!;
const { loadPolicyFile } = await import(`${root}/decision-service/src/config/policy.ts`);
const { systemClock } = await import(`${root}/decision-service/src/engine/clock.ts`);
const { Engine } = await import(`${root}/decision-service/src/engine/engine.ts`);
const { MemoryStore } = await import(`${root}/decision-service/src/state/memory-store.ts`);
const { decodeDecideRequest } = await import(`${root}/decision-service/src/wire/codec.ts`);
const { decideBodies } = await import(`${root}/bench/lib/decide-bodies.ts`);
const engine = new Engine({ policy: loadPolicyFile(process.env.POLICY ?? `${root}/policies/default.yaml`), store: new MemoryStore(), clock: systemClock, identifierKey: Buffer.from('verdict-bench-identifier-key-0123') });
const reqs = decideBodies().map((b: Uint8Array) => decodeDecideRequest(b, 'protobuf'));
const n = reqs.length;
for (let i = 0; i < 100_000; i++) engine.decide(reqs[i % n]);
const N = 400_000;
const best: number[] = [];
for (let round = 0; round < 3; round++) {
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) engine.decide(reqs[i % n]);
  const c = process.cpuUsage(c0);
  best.push(N / ((c.user + c.system) / 1e6));
}
console.log(`${process.argv[3] ?? root}: ${Math.round(Math.max(...best)).toLocaleString('en-US')} decisions per CPU-second (rounds ${best.map((x) => Math.round(x / 1000) + 'k').join(' ')})`);
