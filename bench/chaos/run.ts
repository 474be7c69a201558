// `npm run chaos`: the fault matrix under load through nginx. Each row starts a fresh stack
// (upstream, decision service, the Lua gateway inline on every route; Redis for the Redis row),
// runs open-loop load at a fixed rate, injects one fault mid-run and records every request:
// status, socket error, decided or failed open (by cause). Writes bench/results/reliability.md
// + .json (quick runs: reliability-quick.*).
//
//   npm run chaos                           full matrix (~4 min)
//   npm run chaos -- --quick                short rows (~2 min)
//   options: --only healthy,sigkill,...  --rate N (the matrix's req/s, default 1000)
//            --bench-rate N (skip measuring the bench's load)  --connections N  --http  --out DIR
//            --pool (the gateway's transport = "pool": a pooled connection per decide call; the
//            default follows the gateway's own: "auto" = mux over the framed transport)
//            --max-wait S (before each row, wait up to S s for other processes to quiet down; 30)
//
// Pinning (2+ cores) as in `npm run bench`: nginx (gateway and upstream), the decision service and
// Redis on CPU 0; this process (the load generator) on CPU 1.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { Cpus } from '../lib/case.ts';
import { LUA_GUARD, mixLocations } from '../lib/gateway.ts';
import { pinHarness, seriesSum, sleep } from '../lib/proc.ts';
import { humanMix } from '../lib/request-mix.ts';
import { startUpstream } from '../lib/stock-nginx.ts';
import { warmService } from '../lib/warm.ts';
import { rotatingFileScript, runWrk } from '../lib/wrk.ts';
import { FAULTS, type Fault, type FaultTimes } from './faults.ts';
import { startOpenLoop } from './load.ts';
import { writeReliability, unprotectedText, type ReliabilityResults, type RowResult, type TargetCheck } from './report.ts';
import { RestartableService, readUpstreamLog, seriesByLabel, startGateway, startLoggingUpstream, startPinnedRedis } from './stack.ts';
import { cpuSnapshot, othersShare, waitForQuiet, type CpuSnapshot } from './cpu-share.ts';
import { analyse, BUCKET_MS, decidedBefore, secondsBelow, secondsUnprotected, type RowCounts } from './timeline.ts';

const here = dirname(fileURLToPath(import.meta.url));
/** the matrix's default rate: moderate, well inside what a healthy inline stack carries here */
const DEFAULT_RATE = 1000;
/** the bench's lowest constant-rate point, as a share of the plain proxy's saturation */
const BENCH_SHARE = 0.25;
const REQUEST_TIMEOUT_MS = 10_000;
/** other processes' CPU share (of all cores) below which the machine counts as quiet */
const QUIET_SHARE = 0.1;
const inlineLayout = mixLocations({ identity: 'inline', promo: 'inline', static: 'inline', rest: 'inline' }, LUA_GUARD);

interface Args {
  quick: boolean;
  only: string[] | null;
  rate: number;
  benchRate: number | null;
  connections: number;
  transport: 'frame' | 'http';
  /** the gateway's transport: "mux" (its default over frames: decide calls pipelined on one
   *  connection per worker) unless --pool or --http */
  mux: boolean;
  out: string;
  maxWaitS: number;
}

function parseArgs(argv: readonly string[]): Args {
  const val = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const num = (name: string, min: number, max: number): number | null => {
    const v = val(name);
    if (v === undefined) return null;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${name} must be a number between ${min} and ${max}`);
    return n;
  };
  const only = val('--only')?.split(',').map((x) => x.trim()).filter(Boolean) ?? null;
  const unknown = only?.filter((id) => !FAULTS.some((f) => f.id === id)) ?? [];
  if (unknown.length) throw new Error(`--only: unknown fault(s) ${unknown.join(', ')}; known: ${FAULTS.map((f) => f.id).join(', ')}`);
  return {
    quick: argv.includes('--quick'),
    only,
    rate: num('--rate', 10, 50_000) ?? DEFAULT_RATE,
    benchRate: num('--bench-rate', 10, 50_000),
    connections: num('--connections', 1, 2000) ?? 128,
    transport: argv.includes('--http') ? 'http' : 'frame',
    mux: !argv.includes('--pool') && !argv.includes('--http'),
    out: val('--out') ?? join(here, '../results'),
    maxWaitS: num('--max-wait', 0, 3600) ?? 30,
  };
}

/**
 * The bench's load on this machine, measured as `npm run bench` does: the plain nginx proxy (the
 * same nginx, no Verdict) saturated by wrk with the mix (64 connections, 1 s warm-up), times
 * BENCH_SHARE.
 */
async function measureBenchRate(cpu: Cpus, quick: boolean): Promise<{ rate: number; source: string }> {
  const tmp = mkdtempSync(join(tmpdir(), 'verdict-chaos-plain-'));
  const upstream = await startUpstream(cpu.server);
  try {
    // the plain proxy: the gateway's nginx with no guard (the service address is never used)
    const plain = await startGateway({ upstream: `127.0.0.1:${upstream.port}`, service: '127.0.0.1:9', locations: '\n    location / {\n        proxy_pass http://verdict_app;\n    }', cpu: cpu.server });
    try {
      const script = rotatingFileScript(humanMix().map((m) => m.http), join(tmp, 'human-mix.bin'));
      const base = { url: plain.url, script, connections: 64, cpu: cpu.load, dir: tmp };
      await runWrk({ ...base, durationS: 1, name: 'plain-warm' });
      const sat = await runWrk({ ...base, durationS: quick ? 3 : 5, name: 'plain' });
      return { rate: Math.round(BENCH_SHARE * sat.rps), source: `${BENCH_SHARE * 100}% of the plain nginx proxy's saturation measured at the start of this run (${Math.round(sat.rps).toLocaleString('en-US')} req/s, wrk, 64 connections)` };
    } finally {
      await plain.stop();
    }
  } finally {
    await upstream.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

function log(msg: string): void {
  process.stderr.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').find((l) => l.trim()) ?? 'unknown';
}

interface Phases { warmS: number; preS: number; postS: number; healthyS: number }

const emptyCounts = (): RowCounts => ({
  sent: 0, byClass: { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }, byStatus: {}, socketErrors: 0, socketErrorsByKind: {}, resent: 0,
  decided: 0, decidedAtGateway: 0, failedOpen: 0, failedOpenByCause: {}, unaccounted: 0, servedRps: 0,
  latencyMs: { p50: Number.NaN, p99: Number.NaN, max: Number.NaN }, sendLagMs: { p99: Number.NaN, max: Number.NaN },
});

const delta = (after: Record<string, number>, before: Record<string, number>) => {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
};

async function runRow(fault: Fault, args: Args, rate: number, cpu: Cpus, ph: Phases): Promise<RowResult> {
  const dir = mkdtempSync(join(tmpdir(), `verdict-chaos-${fault.id}-`));
  const logPath = join(dir, 'upstream.log');
  const row: RowResult = {
    id: fault.id, title: fault.title, what: fault.what, rate, windowS: 0, faultAtS: null, backAtS: null, outageS: null,
    detail: '', unprotectedS: null, observedAfterBackS: null, belowS: 0, decidedBeforeFault: null, othersCpu: null, counts: emptyCounts(),
    gateway: { callsByResult: {}, failOpenByCause: {}, skippedByWhy: {}, breakerOpens: 0 }, buckets: [],
  };
  const stops: Array<() => Promise<void>> = [];
  try {
    const upstream = await startLoggingUpstream(cpu.server, logPath);
    stops.push(() => upstream.stop());
    const redis = fault.redis ? await startPinnedRedis(cpu.server) : null;
    if (redis) stops.push(() => redis.stop());
    const service = await RestartableService.create(cpu.service, redis ? { VERDICT_REDIS_URL: redis.url } : {});
    stops.push(() => service.stop());
    await service.start();
    await warmService(service.frameAddr, 30_000);
    const gateway = await startGateway({
      upstream: `127.0.0.1:${upstream.port}`,
      service: args.transport === 'frame' ? service.frameAddr : service.addr,
      locations: inlineLayout,
      cpu: cpu.server,
      init: { transport: args.mux ? 'mux' : 'pool' },
    });
    stops.push(() => gateway.stop());
    const metrics = async () => {
      try { return await (await fetch(gateway.metricsUrl)).text(); } catch { return ''; }
    };

    const loop = startOpenLoop({
      url: gateway.url,
      requests: humanMix().map((m) => m.http),
      rate,
      connections: args.connections,
      timeoutMs: REQUEST_TIMEOUT_MS,
      maxDurationS: 180,
    });
    const sleepUntil = async (ms: number) => { const d = ms - loop.now(); if (d > 0) await sleep(d); };
    const warmMs = ph.warmS * 1000;
    let times: FaultTimes | null = null;
    let before = '';
    let after = '';
    let cpuA: CpuSnapshot | null = null;
    let cpuB: CpuSnapshot | null = null;
    let failure: unknown = null;
    try {
      await sleepUntil(warmMs);
      before = await metrics();
      cpuA = cpuSnapshot();
      await sleepUntil(warmMs + ph.preS * 1000);
      if (fault.id.startsWith('healthy')) log(`  ${fault.id}: no fault`);
      else log(`  ${fault.id}: injecting at +${(loop.now() / 1000).toFixed(1)} s`);
      times = await fault.run({
        clock: loop.now,
        fromPerf: (p) => p - (performance.now() - loop.now()),
        sleepUntil,
        service,
        gateway,
        redis,
      });
      await sleepUntil(times ? times.backAt + ph.postS * 1000 : warmMs + ph.healthyS * 1000);
      after = await metrics();
    } catch (err) {
      failure = err;
      after = await metrics();
    }
    cpuB = cpuSnapshot();
    const endMs = loop.now();
    const rec = await loop.stop();
    const seen = readUpstreamLog(logPath);
    // the bucket grid starts < 100 ms after the warm-up so that the fault falls on a boundary
    const fromMs = times ? warmMs + ((times.faultAt - warmMs) % BUCKET_MS) : warmMs;
    const { counts, buckets } = analyse(rec, seen, fromMs);
    row.counts = counts;
    row.windowS = (endMs - fromMs) / 1000;
    row.belowS = secondsBelow(buckets);
    row.buckets = buckets.map((b) => ({ ...b, t: (b.t - fromMs) / 1000 }));
    if (cpuA) row.othersCpu = othersShare(cpuA, cpuB);
    row.gateway = {
      callsByResult: delta(seriesByLabel(after, 'verdict_gateway_calls_total', 'result'), seriesByLabel(before, 'verdict_gateway_calls_total', 'result')),
      failOpenByCause: delta(seriesByLabel(after, 'verdict_gateway_fail_open_total', 'cause'), seriesByLabel(before, 'verdict_gateway_fail_open_total', 'cause')),
      skippedByWhy: delta(seriesByLabel(after, 'verdict_gateway_skipped_calls_total', 'why'), seriesByLabel(before, 'verdict_gateway_skipped_calls_total', 'why')),
      breakerOpens: seriesSum(after, 'verdict_gateway_breaker_opens_total') - seriesSum(before, 'verdict_gateway_breaker_opens_total'),
    };
    if (times) {
      row.faultAtS = (times.faultAt - fromMs) / 1000;
      row.backAtS = (times.backAt - fromMs) / 1000;
      row.decidedBeforeFault = decidedBefore(buckets, times.faultAt);
      row.outageS = times.outageMs === null ? null : times.outageMs / 1000;
      row.detail = times.detail;
      row.unprotectedS = secondsUnprotected(buckets, times.backAt);
      row.observedAfterBackS = (endMs - times.backAt) / 1000;
    }
    if (failure) {
      row.error = failure instanceof Error ? failure.message : String(failure);
      const tail = service.outputTail().trim();
      if (tail) row.error += `\nservice output: ${tail.slice(-500)}`;
    }
  } catch (err) {
    row.error = err instanceof Error ? err.message : String(err);
  } finally {
    for (const stop of stops.reverse()) {
      try { await stop(); } catch { /* best effort */ }
    }
    rmSync(dir, { recursive: true, force: true });
  }
  return row;
}

function targets(rows: readonly RowResult[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  const ran = rows.filter((r) => r.counts.sent > 0);
  const lost = ran.reduce((s, r) => s + r.counts.socketErrors, 0);
  const s5xx = ran.reduce((s, r) => s + r.counts.byClass['5xx'], 0);
  const worst = ran.filter((r) => r.counts.socketErrors + r.counts.byClass['5xx'] > 0).map((r) => `${r.id} ${r.counts.socketErrors + r.counts.byClass['5xx']}`);
  out.push({
    target: '0 requests lost or 5xx\'d, every fault',
    measured: `${lost.toLocaleString('en-US')} lost, ${s5xx.toLocaleString('en-US')} 5xx${worst.length ? ` (${worst.join(', ')})` : ''}`,
    met: ran.length ? lost + s5xx === 0 : null,
  });
  for (const [id, target] of [['healthy-bench', '≥ 99.9% decided on a healthy service at the bench\'s load'], ['healthy', '≥ 99.9% decided on a healthy service at the matrix\'s rate (same bar)']] as const) {
    const r = rows.find((x) => x.id === id);
    if (!r) continue;
    const share = r.counts.sent ? r.counts.decided / r.counts.sent : Number.NaN;
    out.push({ target, measured: Number.isFinite(share) ? `${(Math.floor(share * 10_000) / 100).toFixed(2)}% at ${Math.round(r.rate).toLocaleString('en-US')} req/s` : 'not measured', met: Number.isFinite(share) && !r.error ? share >= 0.999 : null });
  }
  for (const id of ['restart', 'sigkill']) {
    const r = rows.find((x) => x.id === id);
    if (!r) continue;
    out.push({
      target: id === 'restart' ? '< 1 s unprotected after a restart' : '< 1 s unprotected after SIGKILL + start (same bar)',
      measured: `${unprotectedText(r)} s`,
      met: r.error || r.backAtS === null ? null : r.unprotectedS !== null && r.unprotectedS < 1,
    });
  }
  return out;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const { pinned, cpu } = pinHarness();
  const ph: Phases = args.quick ? { warmS: 2, preS: 2, postS: 6, healthyS: 8 } : { warmS: 3, preS: 5, postS: 10, healthyS: 20 };
  const faults = FAULTS.filter((f) => !args.only || args.only.includes(f.id));
  const started = Date.now();
  let bench = { rate: args.benchRate ?? 0, source: '--bench-rate' };
  const quiet = async () => {
    if (args.maxWaitS <= 0) return;
    let told = 0;
    const share = await waitForQuiet(args.maxWaitS * 1000, QUIET_SHARE, (x) => {
      if (Date.now() - told < 10_000) return;
      told = Date.now();
      log(`  other processes use ${Math.round(100 * x)}% of the CPU; waiting for them (up to ${args.maxWaitS} s)`);
    });
    if (share >= QUIET_SHARE) log(`  still ${Math.round(100 * share)}% busy with other processes: running anyway (see the "other processes' CPU" column)`);
  };
  if (args.benchRate === null && faults.some((f) => f.load === 'bench')) {
    await quiet();
    log('measuring the bench\'s load: the plain nginx proxy at saturation');
    bench = await measureBenchRate(cpu, args.quick);
  }
  log(`faults: ${faults.map((f) => f.id).join(', ')}; ${args.rate} req/s${bench.rate ? ` (bench's load ${bench.rate} req/s)` : ''}; pinning ${pinned ? 'on' : 'off'}`);

  const rows: RowResult[] = [];
  for (const f of faults) {
    log(`row ${f.id}`);
    await quiet();
    const r = await runRow(f, args, f.load === 'bench' ? bench.rate : args.rate, cpu, ph);
    rows.push(r);
    const c = r.counts;
    log(`  ${c.sent} sent, other processes ${r.othersCpu === null ? '?' : Math.round(100 * r.othersCpu)}% CPU, decided ${c.sent ? ((100 * c.decided) / c.sent).toFixed(2) : '–'}%, failed open ${c.failedOpen}, lost ${c.socketErrors}, resent ${c.resent}, 5xx ${c.byClass['5xx']}, unprotected ${unprotectedText(r)}${r.error ? `; ERROR ${r.error.split('\n')[0]}` : ''}`);
  }

  const cpuModel = cpus()[0]?.model.trim() ?? 'unknown';
  const res: ReliabilityResults = {
    meta: {
      date: new Date().toISOString(),
      command: `npm run chaos${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
      quick: args.quick,
      machine: `${cpuModel}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB RAM; Linux ${release()}; Node ${process.version}; ${firstLine('/usr/sbin/nginx', ['-v']).replace(/^nginx version: /, '')}; ${firstLine('/usr/bin/redis-server', ['--version']).split(' sha=')[0] ?? 'redis'}`,
      pinning: pinned
        ? 'Pinning: CPU 0: nginx (1 worker gateway; upstream), the decision service and Redis; CPU 1: the load generator (this harness). The server side shares one core.'
        : 'No pinning (fewer than 2 CPUs or no taskset): noisier.',
      rate: args.rate,
      rateSource: args.rate === DEFAULT_RATE ? 'the default' : '--rate',
      benchRate: bench.rate || null,
      benchRateSource: bench.rate ? bench.source : null,
      connections: args.connections,
      transport: args.transport,
      mux: args.mux,
      notes: [
        `Phases per row: ${ph.warmS} s warm-up (not counted), ${ph.preS} s before the fault, then ${ph.postS} s observed after the failed part is back; the healthy row runs ${ph.healthyS} s.`,
        'A 2-core machine shared with other work: anything else running on these cores shows up here as timeouts (failed open) and latency. Rerun before trusting a single bad second.',
        `Wall time of this run: ${Math.round((Date.now() - started) / 1000)} s.`,
      ],
    },
    rows,
    targets: targets(rows),
  };
  const written = writeReliability(args.out, res, args.quick ? 'reliability-quick' : 'reliability');
  log(`wrote ${written.md} and ${written.json}`);
  for (const t of res.targets) log(`  ${t.met === null ? '–  ' : t.met ? 'ok ' : 'NO '} ${t.target}: ${t.measured}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`chaos: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  },
);
