// Case 7: the decision service alone on one core: wrk POSTs protobuf DecideRequests (2,000
// different ones from the request mix: many IPs, paths, identifiers, user agents, tokens) to
// /v1/decide over keep-alive TCP; the service pinned to the service CPU, wrk to the load CPU.
// Also the framed transport (the Lua gateway's default in the bench) with a pipelined generator.
// Reported: decisions/s at saturation; round-trip latency at saturation and at half of it; the
// service's own decode+decide+encode time from its histogram; and the engine in-process.
import type { BenchEnv, CaseOutput, CustomCase } from '../lib/case.ts';
import { runWorker } from '../lib/child.ts';
import { decideBodies } from '../lib/decide-bodies.ts';
import { startServiceProcess } from '../lib/proc.ts';
import { fmtMs } from '../lib/results.ts';
import { pacingScript, rotatingScript, runWrk } from '../lib/wrk.ts';

/** Upper bound of the histogram bucket holding quantile q, from before/after scrapes (µs). */
export function histogramQuantileUs(before: string, after: string, metric: string, q: number): number {
  const read = (text: string) => {
    const m = new Map<number, number>();
    const re = new RegExp(`^${metric}_bucket\\{[^}]*le="([^"]+)"[^}]*\\} (\\d+(?:\\.\\d+)?)`, 'gm');
    for (const x of text.matchAll(re)) {
      const le = x[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(x[1]);
      m.set(le, (m.get(le) ?? 0) + Number(x[2]));
    }
    return m;
  };
  const b = read(before);
  const a = read(after);
  const les = [...a.keys()].sort((x, y) => x - y);
  const total = a.get(Number.POSITIVE_INFINITY)! - (b.get(Number.POSITIVE_INFINITY) ?? 0);
  if (!(total > 0)) return Number.NaN;
  for (const le of les) {
    if ((a.get(le)! - (b.get(le) ?? 0)) / total >= q) return le * 1e6;
  }
  return Number.NaN;
}

const serviceAlone: CustomCase = {
  kind: 'custom',
  id: 'service-alone',
  order: 7,
  title: '7. decision service alone, one core',
  async run(env: BenchEnv): Promise<CaseOutput> {
    const bodies = decideBodies();
    const script = rotatingScript(bodies.map((b) => ({ method: 'POST', path: '/v1/decide', headers: { 'content-type': 'application/x-protobuf' }, body: b })));
    const svc = await startServiceProcess({ cpu: env.cpus.service, env: { VERDICT_METRICS: '1' } });
    const connections = 32;
    const base = { url: svc.url, connections, cpu: env.cpus.load, dir: env.tmp };
    let sat;
    let half;
    let p99ComputeUs = Number.NaN;
    let p50ComputeUs = Number.NaN;
    let frames: Record<string, number | string> = {};
    let framesP50 = Number.NaN;
    let framesP99 = Number.NaN;
    try {
      await runWrk({ ...base, script, durationS: env.warmupS + 1, name: 'svc-warm' });
      const before = await svc.metrics();
      sat = await runWrk({ ...base, script, durationS: env.durationS, name: 'svc-sat' });
      const after = await svc.metrics();
      p50ComputeUs = histogramQuantileUs(before, after, 'verdict_decide_duration_seconds', 0.5);
      p99ComputeUs = histogramQuantileUs(before, after, 'verdict_decide_duration_seconds', 0.99);
      half = await runWrk({ ...base, script: script + pacingScript(sat.rps / 2), durationS: env.durationS, name: 'svc-half' });
      const fb = await svc.metrics();
      frames = (await runWorker('bench/lib/frame-worker.ts', [svc.frameAddr.replace(/^frame:/, ''), String(env.durationS), '4', '32'], env.cpus.load, 120_000))[0] ?? {};
      const fa = await svc.metrics();
      framesP50 = histogramQuantileUs(fb, fa, 'verdict_decide_duration_seconds', 0.5);
      framesP99 = histogramQuantileUs(fb, fa, 'verdict_decide_duration_seconds', 0.99);
    } finally {
      await svc.stop();
    }
    const eng = (await runWorker('bench/lib/engine-worker.ts', [String(env.quick ? 2 : 5)], env.cpus.service, 120_000))[0] ?? {};
    const engRate = Number(eng.decisionsPerSec);
    const rows: Array<Array<string | number>> = [
      ['service over TCP, saturation', Math.round(sat.rps).toLocaleString('en-US'), fmtMs(sat.latencyUs.p50), fmtMs(sat.latencyUs.p99), `≤ ${fmtMs(p50ComputeUs)} / ≤ ${fmtMs(p99ComputeUs)}`],
      ['service over TCP, 50% of saturation', Math.round(half.rps).toLocaleString('en-US'), fmtMs(half.latencyUs.p50), fmtMs(half.latencyUs.p99), '–'],
      ['service over the framed transport (4 sockets × 32 pipelined)', Math.round(Number(frames.decisionsPerSec)).toLocaleString('en-US'), fmtMs(Number(frames.p50Us)), fmtMs(Number(frames.p99Us)), `≤ ${fmtMs(framesP50)} / ≤ ${fmtMs(framesP99)}`],
      ['engine in-process', Math.round(engRate).toLocaleString('en-US'), fmtMs(Number(eng.p50Us)), fmtMs(Number(eng.p99Us)), '(same: compute only)'],
    ];
    return {
      sections: [{
        id: 'service-alone',
        title: this.title,
        columns: ['what', 'decisions/s', 'p50 ms', 'p99 ms', 'service compute p50 / p99 ms (histogram bucket bound)'],
        rows,
        notes: [
          `wrk: ${connections} connections, 2,000 distinct protobuf bodies rotated; latency is the HTTP round trip seen by wrk (at saturation it includes queueing).`,
          'service compute = decode + decide + encode as timed by the service (verdict_decide_duration_seconds); the bound is the histogram bucket holding the quantile.',
          'framed transport: bench/lib/frame-worker.ts (wrk speaks only HTTP), pinned to the load CPU; round trip includes the pipeline queue.',
          'engine in-process: default policy, every detector in DETECTORS, the same 2,000 requests pre-decoded; latency per decision timed on its own.',
          'Traffic: bench/lib/request-mix.ts (bench/traffic/ was not ready to use when this harness was written).',
        ],
      }],
      targets: [
        { target: 'decision service alone ≥ 40,000 decisions/s on one core', measured: `HTTP ${Math.round(sat.rps).toLocaleString('en-US')}/s, frames ${Math.round(Number(frames.decisionsPerSec)).toLocaleString('en-US')}/s`, met: Math.max(sat.rps, Number(frames.decisionsPerSec) || 0) >= 40_000 },
        { target: 'decision service p99 compute < 0.5 ms', measured: `≤ ${fmtMs(p99ComputeUs)} ms (bucket bound)`, met: Number.isFinite(p99ComputeUs) ? p99ComputeUs <= 500 : null },
        { target: 'engine in-process ≥ 100,000 decisions/s on one core, every detector on', measured: `${Math.round(engRate).toLocaleString('en-US')}/s`, met: Number.isFinite(engRate) ? engRate >= 100_000 : null },
      ],
    };
  },
};

export default serviceAlone;
