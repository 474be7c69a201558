// `npm run bench`: every case side by side in one invocation on this machine, several rounds,
// medians, ratios to the plain proxy of the same round; writes bench/results/perf.{md,json}.
//
//   npm run bench                       the official run (3 rounds × 10 s; ~15 min; idle machine!)
//   npm run bench -- --quick            a short version (< 2 min) for routine checks
//   npm run bench -- --only plain,inline
//   options: --rounds N  --duration S  --connections N  --out DIR  --unix (service on a unix socket)
//            --http (the Lua gateway calls the service over HTTP instead of the framed transport)
//            --layout spread (issue 15's second configuration: the service on a core of its own, 2 nginx
//            workers with 4+ cores; writes perf-spread.{md,json}; see bench/lib/proc.ts planFor)
//
// Pinning (2+ cores): nginx (1 worker: gateway; upstream) and the decision service on CPU 0 —
// the server side shares one core, as in a deployment where Verdict runs next to nginx — and
// wrk plus this process on CPU 1, so the load generator never competes with what it measures.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchCase, BenchEnv, Cpus, CustomCase, ProxyCase, Stack } from './lib/case.ts';
import { gcShare, pinHarness, seriesSum, startServiceProcess, type Layout } from './lib/proc.ts';
import { statusCensus } from './lib/probe.ts';
import { warmService } from './lib/warm.ts';
import { humanMix, requestMix } from './lib/request-mix.ts';
import {
  median, summarizeProxy, writeResults, fmtMs,
  type BenchResults, type ProxyRound, type Section, type TargetCheck, type UnderLoadRow,
} from './lib/results.ts';
import { startUpstream } from './lib/stock-nginx.ts';
import { pacingScript, rotatingFileScript, rotatingScript, runWrk, type WrkResult } from './lib/wrk.ts';

const here = dirname(fileURLToPath(import.meta.url));
const PLAIN = 'plain';

interface Args { quick: boolean; only: string[] | null; rounds: number; durationS: number; connections: number; out: string; unix: boolean; transport: 'frame' | 'http'; layout: Layout }

export function parseArgs(argv: readonly string[]): Args {
  const quick = argv.includes('--quick');
  const val = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const num = (name: string, dflt: number, min: number, max: number) => {
    const v = val(name);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${name} must be a number between ${min} and ${max}`);
    return n;
  };
  return {
    quick,
    only: val('--only')?.split(',').map((s) => s.trim()).filter(Boolean) ?? null,
    rounds: num('--rounds', quick ? 1 : 3, 1, 20),
    durationS: num('--duration', quick ? 3 : 10, 1, 120),
    connections: num('--connections', 64, 1, 1000),
    out: val('--out') ?? join(here, 'results'),
    unix: argv.includes('--unix'),
    transport: argv.includes('--http') ? 'http' : 'frame',
    layout: layoutArg(val('--layout')),
  };
}

function layoutArg(v: string | undefined): Layout {
  if (v === undefined || v === 'shared' || v === 'spread') return v ?? 'shared';
  throw new Error(`--layout must be shared (the official table: the server side on one core) or spread (the service on a core of its own), not ${JSON.stringify(v)}`);
}

async function loadCases(): Promise<BenchCase[]> {
  const dir = join(here, 'cases');
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts')).sort();
  const cases: BenchCase[] = [];
  for (const f of files) {
    const mod = (await import(pathToFileURL(join(dir, f)).href)) as { default?: BenchCase };
    if (mod.default && (mod.default.kind === 'proxy' || mod.default.kind === 'custom')) cases.push(mod.default);
  }
  return cases.sort((a, b) => a.order - b.order);
}

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').find((l) => l.trim()) ?? 'unknown';
}

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

async function withStack<T>(c: ProxyCase, env: BenchEnv, fn: (s: Stack) => Promise<T>): Promise<T> {
  const stack = await c.start(env);
  try {
    return await fn(stack);
  } finally {
    await stack.stop();
  }
}

async function saturation(c: ProxyCase, env: BenchEnv, round: number, census?: Record<string, Record<string, number>>): Promise<WrkResult> {
  return withStack(c, env, async (s) => {
    const base = { url: s.url, script: c.script?.(env) ?? env.mixScript, connections: env.connections, cpu: env.cpus.load, dir: env.tmp };
    await runWrk({ ...base, durationS: env.warmupS, name: `${c.id}-r${round}-warm` });
    if (census) census[c.id] = await statusCensus(s.url, env.mix.slice(0, env.quick ? 500 : 2000).map((m) => m.http));
    const before = s.gatewayMetrics ? await s.gatewayMetrics() : '';
    const result = await runWrk({ ...base, durationS: env.durationS, name: `${c.id}-r${round}` });
    if (s.gatewayMetrics) {
      // A gateway that fails open is fast for the wrong reason: report how many requests were decided.
      const after = await s.gatewayMetrics();
      const ok = seriesSum(after, 'verdict_gateway_calls_total', 'result="ok"') - seriesSum(before, 'verdict_gateway_calls_total', 'result="ok"');
      const failed = seriesSum(after, 'verdict_gateway_fail_open_total') - seriesSum(before, 'verdict_gateway_fail_open_total');
      // not waited on (a clean mark or a clearance): decided by the service's cached ALLOW, scored after the response
      const skipped = seriesSum(after, 'verdict_gateway_skipped_calls_total') - seriesSum(before, 'verdict_gateway_skipped_calls_total');
      const guarded = ok + failed + skipped;
      if (guarded > 0) {
        result.decidedShare = (ok + skipped) / guarded;
        result.uncalledShare = skipped / guarded;
      }
    }
    return result;
  });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const { pinned, cpu, workers, plan } = pinHarness(args.layout);
  const started = Date.now();
  const tmp = mkdtempSync(join(tmpdir(), 'verdict-bench-'));

  const all = await loadCases();
  const wanted = (c: BenchCase) => !args.only || args.only.includes(c.id) || (c.id === PLAIN && all.some((x) => x.kind === 'proxy' && x.id !== PLAIN && args.only!.includes(x.id)));
  const selected = all.filter(wanted);
  const proxyCases = selected.filter((c): c is ProxyCase => c.kind === 'proxy');
  const customCases = selected.filter((c): c is CustomCase => c.kind === 'custom');
  const unavailable = new Map(proxyCases.map((c) => [c.id, c.unavailable?.() ?? null]));
  const runnable = proxyCases.filter((c) => !unavailable.get(c.id));
  log(`cases: ${selected.map((c) => c.id).join(', ')}; ${args.rounds} round(s) × ${args.durationS} s; pinning ${pinned ? plan : 'off'}`);

  const upstream = await startUpstream(cpu.server);
  const service = await startServiceProcess({ cpu: cpu.service, unix: args.unix });
  log('warming the decision service up (30,000 decisions)');
  await warmService(service.frameAddr);
  const mix = humanMix();
  const env: BenchEnv = {
    quick: args.quick,
    cpus: cpu,
    workers,
    upstream: `127.0.0.1:${upstream.port}`,
    service,
    tmp,
    mix,
    mixScript: rotatingFileScript(mix.map((m) => m.http), join(tmp, 'human-mix.bin')),
    attackScript: rotatingScript(requestMix().map((m) => m.http)),
    durationS: args.durationS,
    warmupS: args.quick ? 1 : 3,
    connections: args.connections,
    transport: args.transport,
  };

  const results: BenchResults = {
    meta: {
      date: new Date().toISOString(),
      command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
      quick: args.quick,
      rounds: args.rounds,
      durationS: args.durationS,
      connections: args.connections,
      machine: {
        cpu: cpus()[0]?.model.trim() ?? 'unknown',
        cores: cpus().length,
        memGiB: Math.round(totalmem() / 2 ** 30),
        kernel: release(),
        node: process.version,
        nginx: firstLine('/usr/sbin/nginx', ['-v']).replace(/^nginx version: nginx\//, ''),
        wrk: firstLine('wrk', ['-v']).split(' [')[0] ?? 'wrk',
      },
      pinning: plan,
      notes: [
        'Upstream: a separate stock nginx answering `return 200 "ok"`; every proxy case sends the same all-human mix (bench/lib/request-mix.ts `humanMix`: 60,000 requests from 60,000 people, browsers and apps, each claiming the promo at most once, X-Forwarded-For as the client IP) unless its title says "attack mix" (`requestMix`: 2,000 requests from 3,000 users replayed thousands of times a second, as bots would).',
        'Verdict gateway: the Lua script, 25 ms budget, fail open, breaker defaults, service over ' + (args.transport === 'frame' ? 'the framed protobuf transport' : 'HTTP/1.1 keep-alive') + (args.unix ? ' on a unix socket' : ' on TCP loopback') + '.',
        'Constant-rate load: wrk with a Lua delay() pacing script (bench/lib/wrk.ts), 1 ms timer granularity; latency both from each request\'s intended send time (coordinated omission corrected: the due time rides in a header the upstream echoes) and, as wrk measures it, from the actual send.',
        'Run the official numbers on an otherwise idle machine: anything else on these cores shows up as noise.',
      ],
    },
    proxy: { rounds: [], summary: [], census: {} },
    underLoad: [],
    sections: [],
    targets: [],
  };

  try {
    // ---- saturation rounds: every proxy case, side by side, per round
    for (let r = 1; r <= args.rounds && runnable.length; r++) {
      const round: ProxyRound = { round: r, cases: {} };
      for (const c of runnable) {
        log(`round ${r}: ${c.id}`);
        round.cases[c.id] = await saturation(c, env, r, r === 1 ? results.proxy.census : undefined);
        log(`  ${Math.round(round.cases[c.id]!.rps)} req/s, p99 ${fmtMs(round.cases[c.id]!.latencyUs.p99)} ms`);
      }
      results.proxy.rounds.push(round);
    }
    results.proxy.summary = summarizeProxy(results.proxy.rounds, proxyCases.map((c) => ({ id: c.id, title: c.title, unavailable: unavailable.get(c.id) ?? undefined })), PLAIN);

    // ---- latency under load: constant rates at shares of the plain proxy's saturation
    const plainRps = results.proxy.summary.find((s) => s.id === PLAIN)?.rps ?? Number.NaN;
    const loadCases = runnable.filter((c) => c.underLoad && (!args.quick || c.id === PLAIN || c.id === 'inline' || c.id === 'inline-pool'));
    if (Number.isFinite(plainRps) && loadCases.length) {
      const shares = [0.25, 0.5, 0.75];
      const byCase = new Map<string, WrkResult[]>();
      for (const c of loadCases) {
        log(`under load: ${c.id}`);
        byCase.set(c.id, await withStack(c, env, async (s) => {
          const out: WrkResult[] = [];
          for (const share of shares) {
            const script = env.mixScript + pacingScript(share * plainRps);
            const base = { url: s.url, script, connections: env.connections, cpu: env.cpus.load, dir: env.tmp };
            await runWrk({ ...base, durationS: 1, name: `${c.id}-load${share}-warm` });
            const before = await env.service.metrics();
            const w = await runWrk({ ...base, durationS: args.quick ? 2 : Math.max(3, Math.round(args.durationS * 0.6)), name: `${c.id}-load${share}` });
            if (before) w.gc = gcShare(before, await env.service.metrics(), w.durationS * 1000);
            out.push(w);
          }
          return out;
        }));
      }
      shares.forEach((share, i) => {
        const plain = byCase.get(PLAIN)?.[i];
        for (const c of loadCases) {
          const w = byCase.get(c.id)?.[i];
          if (!w) continue;
          const row: UnderLoadRow = {
            share,
            rate: share * plainRps,
            caseId: c.id,
            title: c.title,
            achievedRps: w.rps,
            p50Us: w.latencyUs.p50,
            p99Us: w.latencyUs.p99,
            addedP50Us: plain ? w.latencyUs.p50 - plain.latencyUs.p50 : Number.NaN,
            addedP99Us: plain ? w.latencyUs.p99 - plain.latencyUs.p99 : Number.NaN,
            coP50Us: w.corrected?.p50 ?? Number.NaN,
            coP99Us: w.corrected?.p99 ?? Number.NaN,
            addedCoP50Us: w.corrected && plain?.corrected ? w.corrected.p50 - plain.corrected.p50 : Number.NaN,
            addedCoP99Us: w.corrected && plain?.corrected ? w.corrected.p99 - plain.corrected.p99 : Number.NaN,
            ...(w.gc ? { gc: w.gc } : {}),
          };
          results.underLoad.push(row);
        }
      });
    }

    // ---- custom cases: faults, service alone, memory
    for (const c of customCases) {
      log(`${c.id}`);
      try {
        const out = await c.run(env, results);
        results.sections.push(...out.sections);
        results.targets.push(...out.targets);
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        log(`  ${c.id} failed: ${msg}`);
        results.sections.push(failedSection(c, msg));
      }
    }
  } finally {
    await service.stop();
    await upstream.stop();
    rmSync(tmp, { recursive: true, force: true });
  }

  results.targets.unshift(...proxyTargets(results));
  results.meta.notes.push(`Wall time of this run: ${Math.round((Date.now() - started) / 1000)} s.`);
  const files = writeResults(args.out, results, `perf${args.quick ? '-quick' : ''}${args.layout === 'spread' ? '-spread' : ''}`);
  log(`wrote ${files.md} and ${files.json}`);
  process.stdout.write(`${files.md}\n`);
}

function failedSection(c: CustomCase, msg: string): Section {
  return { id: c.id, title: c.title, columns: ['result'], rows: [['failed']], notes: [msg.split('\n')[0] ?? msg] };
}

/** The DESIGN §8 targets that come from the proxy rounds and the under-load table. */
export function proxyTargets(res: BenchResults): TargetCheck[] {
  const row = (id: string) => res.proxy.summary.find((s) => s.id === id && !s.unavailable);
  const out: TargetCheck[] = [];
  const inline = row('inline');
  const mix = row('mix');
  const auth = row('auth-request');
  const ratio = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : `${x.toFixed(2)}×`);
  out.push({ target: 'inline on every request ≥ 0.6× plain throughput', measured: ratio(inline?.ratio), met: inline?.ratio == null ? null : inline.ratio >= 0.6 });
  // from intended send times (coordinated omission corrected), at a quarter and at half of saturation
  for (const [share, name] of [[0.25, 'a quarter'], [0.5, 'half']] as const) {
    const u = res.underLoad.find((x) => x.caseId === 'inline' && x.share === share);
    const ok = (v: number | undefined, limit: number) => (u && Number.isFinite(v) ? (v as number) <= limit : null);
    out.push({ target: `inline: added p50 ≤ 0.3 ms at ${name} of saturation (from intended send)`, measured: u ? `${fmtMs(u.addedCoP50Us)} ms` : '–', met: ok(u?.addedCoP50Us, 300) });
    out.push({ target: `inline: added p99 ≤ 1 ms at ${name} of saturation (from intended send)`, measured: u ? `${fmtMs(u.addedCoP99Us)} ms` : '–', met: ok(u?.addedCoP99Us, 1000) });
  }
  out.push({ target: 'realistic route mix ≥ 0.9× plain throughput', measured: ratio(mix?.ratio), met: mix?.ratio == null ? null : mix.ratio >= 0.9 });
  // per-round ratios inline / auth_request, median
  const vsAuth = median(res.proxy.rounds.map((r) => {
    const a = r.cases.inline;
    const b = r.cases['auth-request'];
    return a && b && b.rps > 0 ? a.rps / b.rps : Number.NaN;
  }));
  out.push({ target: 'inline ≥ 1.5× the throughput of auth_request to the same service', measured: ratio(vsAuth), met: inline && auth && Number.isFinite(vsAuth) ? vsAuth >= 1.5 : null });
  return out;
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
}
