// Benchmark: the engine in-process on the embedded store vs the Redis store (one instance, and two
// instances sharing one Redis with the traffic alternating between them), same policy, same
// varied request mix. Reports decisions/s, decide latency percentiles, and Redis operations per
// decision (client commands sent, and server-side INFO commandstats calls, which also count the
// commands our Lua scripts run). Writes bench/results/redis.md + redis.json.
//
// Usage: tsx bench/redis-store.ts [seconds per case, default 5]
// The loop yields to the event loop every 1,000 decisions in every case (the Redis store's
// flushes and pulls run on timers), so the cases differ only by the store.

import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import { loadPolicyFile } from '../decision-service/src/config/policy.ts';
import { systemClock } from '../decision-service/src/engine/clock.ts';
import { Engine } from '../decision-service/src/engine/engine.ts';
import { MemoryStore } from '../decision-service/src/state/memory-store.ts';
import { RedisStore } from '../decision-service/src/state/redis-store.ts';
import type { Store } from '../decision-service/src/state/store.ts';
import { decodeDecideRequest } from '../decision-service/src/wire/codec.ts';
import type { DecideRequest } from '../decision-service/src/wire/schema.ts';
import { repoRoot } from '../scripts/lib/nginx.ts';
import { startRedis } from '../scripts/lib/redis-server.ts';
import { decideBodies } from './lib/decide-bodies.ts';

const SECONDS = Math.min(60, Math.max(1, Number(process.argv[2] ?? 5)));
const LATENCY_SAMPLES = 100_000;
const policy = loadPolicyFile(join(repoRoot, 'policies/default.yaml'));
const KEY = Buffer.from('verdict-bench-identifier-key-0123');

interface CaseResult {
  id: string;
  title: string;
  decisionsPerSec: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  decisions: number;
  clientCommandsPerDecision?: number;
  serverCallsPerDecision?: number;
  serverCallsByCommand?: Record<string, number>;
  flushes?: number;
  flushErrors?: number;
  avgOpsPerFlush?: number;
  storeKeys: number;
}

async function commandStats(r: import('ioredis').Redis): Promise<Map<string, number>> {
  const text = await r.info('commandstats');
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    const x = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (x) m.set(x[1] as string, Number(x[2]));
  }
  return m;
}

async function runCase(id: string, title: string, engines: Engine[], stores: Store[], reqs: DecideRequest[], redis?: import('ioredis').Redis): Promise<CaseResult> {
  const n = reqs.length;
  const k = engines.length;
  let i = 0;
  const decide = () => {
    (engines[i % k] as Engine).decide(reqs[i % n] as DecideRequest);
    i++;
  };
  for (let w = 0; w < 50_000; w++) {
    decide();
    if (w % 1000 === 999) await yieldLoop();
  }
  const before = redis ? await commandStats(redis) : undefined;
  const cmd0 = stores.map((s) => (s instanceof RedisStore ? s.stats().commands : 0));
  const fl0 = stores.map((s) => (s instanceof RedisStore ? s.stats().flushes : 0));
  const start = i;

  const t0 = process.hrtime.bigint();
  const until = t0 + BigInt(SECONDS * 1e9);
  let now = t0;
  while (now < until) {
    for (let b = 0; b < 1000; b++) decide();
    await yieldLoop();
    now = process.hrtime.bigint();
  }
  const perSec = (i - start) / (Number(now - t0) / 1e9);

  const lat = new Float64Array(LATENCY_SAMPLES);
  for (let s = 0; s < LATENCY_SAMPLES; s++) {
    const a = process.hrtime.bigint();
    decide();
    lat[s] = Number(process.hrtime.bigint() - a) / 1000;
    if (s % 1000 === 999) await yieldLoop();
  }
  lat.sort();
  const q = (p: number) => Math.round((lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? 0) * 100) / 100;
  const decisions = i - start;
  const result: CaseResult = { id, title, decisionsPerSec: Math.round(perSec), p50Us: q(0.5), p99Us: q(0.99), p999Us: q(0.999), decisions, storeKeys: stores.reduce((a, s) => a + s.size(), 0) };

  if (redis && before) {
    // let the last deltas go out so the counts cover the whole run
    for (const s of stores) if (s instanceof RedisStore) await s.sync();
    const after = await commandStats(redis);
    const by: Record<string, number> = {};
    let total = 0;
    for (const [name, calls] of after) {
      if (name === 'info') continue;
      const d = calls - (before.get(name) ?? 0);
      if (d > 0) { by[name] = Math.round((d / decisions) * 1000) / 1000; total += d; }
    }
    const redisStores = stores.filter((s): s is RedisStore => s instanceof RedisStore);
    const cmds = redisStores.reduce((a, s, j) => a + s.stats().commands - (cmd0[j] ?? 0), 0);
    const flushes = redisStores.reduce((a, s, j) => a + s.stats().flushes - (fl0[j] ?? 0), 0);
    result.clientCommandsPerDecision = Math.round((cmds / decisions) * 1000) / 1000;
    result.serverCallsPerDecision = Math.round((total / decisions) * 1000) / 1000;
    result.serverCallsByCommand = by;
    result.flushes = flushes;
    result.flushErrors = redisStores.reduce((a, s) => a + s.stats().flushErrors, 0);
    result.avgOpsPerFlush = flushes > 0 ? Math.round(cmds / flushes) : 0;
  }
  return result;
}

async function main(): Promise<void> {
  const reqs = decideBodies(20_000, 11).map((b) => decodeDecideRequest(b, 'protobuf'));
  const results: CaseResult[] = [];

  const mem = new MemoryStore();
  results.push(await runCase('memory', 'embedded store (MemoryStore)', [new Engine({ policy, store: mem, clock: systemClock, identifierKey: KEY })], [mem], reqs));

  const server = await startRedis();
  const admin = server.client();
  try {
    const one = new RedisStore({ url: server.url, prefix: 'bench1:' });
    await one.waitReady();
    results.push(await runCase('redis-1', 'Redis store, one instance (flush 100 ms, refresh 250 ms)', [new Engine({ policy, store: one, clock: systemClock, identifierKey: KEY })], [one], reqs, admin));
    await one.close();

    const a = new RedisStore({ url: server.url, prefix: 'bench2:' });
    const b = new RedisStore({ url: server.url, prefix: 'bench2:' });
    await Promise.all([a.waitReady(), b.waitReady()]);
    const engines = [a, b].map((store) => new Engine({ policy, store, clock: systemClock, identifierKey: KEY }));
    results.push(await runCase('redis-2', 'Redis store, two instances sharing one Redis (traffic alternates; one process, so decisions/s is the sum on one core)', engines, [a, b], reqs, admin));
    await a.close();
    await b.close();
    const mem2 = await admin.info('memory');
    const used = /used_memory_human:(\S+)/.exec(mem2)?.[1] ?? '?';
    const keys = await admin.dbsize();
    writeResults(results, { redisUsedMemory: used, redisKeys: keys });
  } finally {
    await server.stop();
  }
}

function writeResults(results: CaseResult[], redisInfo: { redisUsedMemory: string; redisKeys: number }): void {
  const dir = join(repoRoot, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const meta = {
    date: new Date().toISOString(),
    command: `tsx bench/redis-store.ts ${SECONDS}`,
    secondsPerCase: SECONDS,
    machine: { cpu: os.cpus()[0]?.model ?? '?', cores: os.cpus().length, node: process.version, redis: 'local redis-server, loopback, no persistence' },
    traffic: 'bench/lib/decide-bodies.ts mix: 20,000 varied requests (seed 11), replayed in order, default policy, every detector on',
    ...redisInfo,
  };
  writeFileSync(join(dir, 'redis.json'), `${JSON.stringify({ meta, results }, null, 2)}\n`);
  const base = results[0];
  const rows = results.map((r) => `| ${r.title} | ${r.decisionsPerSec.toLocaleString('en-US')} | ${base ? (r.decisionsPerSec / base.decisionsPerSec).toFixed(2) : '-'}× | ${r.p50Us} | ${r.p99Us} | ${r.p999Us} | ${r.clientCommandsPerDecision ?? '-'} | ${r.serverCallsPerDecision ?? '-'} | ${r.avgOpsPerFlush ?? '-'} |`);
  const ops = results.filter((r) => r.serverCallsByCommand).map((r) => `- ${r.id}: ${Object.entries(r.serverCallsByCommand ?? {}).sort((x, y) => y[1] - x[1]).map(([c, v]) => `${c} ${v}`).join(', ')}`);
  const md = `# Redis store vs embedded store

${meta.date} · \`${meta.command}\` · ${meta.machine.cpu} (${meta.machine.cores} cores) · Node ${meta.machine.node}

Same in-process engine, default policy, same varied request mix (${meta.traffic}); the loop
yields to the event loop every 1,000 decisions in every case. Latency: each decision timed on its
own (${LATENCY_SAMPLES.toLocaleString('en-US')} samples), µs.

| store | decisions/s | vs embedded | p50 µs | p99 µs | p99.9 µs | Redis commands / decision (client) | Redis calls / decision (server, incl. inside scripts) | commands / flush |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
${rows.join('\n')}

Server-side calls per decision by command (INFO commandstats delta / decisions):
${ops.join('\n')}

Redis after the run: ${redisInfo.redisKeys} keys, ${redisInfo.redisUsedMemory} used (every key has a TTL).

Reading it: the decide path never talks to Redis, so the Redis store's cost on it is local
bookkeeping (pending deltas, merged views); Redis work is batched per flush (100 ms) and per
refresh (250 ms), so operations per decision fall as traffic concentrates on fewer keys and rise
with the number of distinct keys touched per refresh interval.
`;
  writeFileSync(join(dir, 'redis.md'), md);
  process.stdout.write(md);
}

main().catch((err: unknown) => {
  process.stderr.write(`redis bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
