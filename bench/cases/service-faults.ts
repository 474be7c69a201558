// Case 6: the decision service down (connection refused) and black-holed (SIGSTOP: connections
// accepted by the kernel, never answered). Verdict inline on every request, 25 ms budget, the
// breaker at its defaults (5 failures in a row and no answer for 1 s open it; a background probe
// every 200 ms closes it).
// Measured: (a) per-request latency of the first requests after the fault, sequentially, on
// one connection, against the plain proxy's (what a user pays until the breaker opens);
// (b) throughput at saturation with the breaker open, against the plain proxy right before.
import type { BenchEnv, CaseOutput, CustomCase } from '../lib/case.ts';
import { LUA_GUARD, mixLocations, startLuaGateway } from '../lib/gateway.ts';
import { freePort } from '../../scripts/lib/nginx.ts';
import { sequentialLatencies } from '../lib/probe.ts';
import { startServiceProcess, sleep } from '../lib/proc.ts';
import { warmService } from '../lib/warm.ts';
import { fmtMs, median } from '../lib/results.ts';
import { runWrk, type WrkRequest } from '../lib/wrk.ts';
import { PLAIN_ID } from './plain-proxy.ts';

const BUDGET_MS = 25;
const BREAKER_FAILURES = 5;
const inlineLayout = mixLocations({ identity: 'inline', promo: 'inline', static: 'inline', rest: 'inline' }, LUA_GUARD);

async function saturate(env: BenchEnv, url: string, name: string) {
  await runWrk({ url, script: env.mixScript, durationS: env.warmupS, connections: env.connections, cpu: env.cpus.load, dir: env.tmp, name: `${name}-warm` });
  return runWrk({ url, script: env.mixScript, durationS: env.durationS, connections: env.connections, cpu: env.cpus.load, dir: env.tmp, name });
}

const serviceFaults: CustomCase = {
  kind: 'custom',
  id: 'faults',
  order: 6,
  title: '6. decision service down / black-holed',
  async run(env, sofar): Promise<CaseOutput> {
    // a public page, guarded inline in this layout
    const probeReq: WrkRequest = env.mix.find((m) => m.http.path === '/')?.http ?? { method: 'GET', path: '/', headers: { host: 'shop.example' } };
    const rows: Array<Array<string | number>> = [];
    const notes: string[] = [];

    // baseline: the plain proxy, sequential and at saturation, right before the faults
    const plainCase = (await import('./plain-proxy.ts')).default;
    const plain = await plainCase.start(env);
    const plainSeq = median(await sequentialLatencies(plain.url, probeReq, 200));
    const plainSat = await saturate(env, plain.url, 'faults-plain');
    await plain.stop();

    // (a) refused: nobody listens on the service port
    const deadPort = await freePort();
    const refused = await startLuaGateway(env, inlineLayout, { service: `${env.transport === 'frame' ? 'frame:' : ''}127.0.0.1:${deadPort}` });
    const refusedSeq = await sequentialLatencies(refused.url, probeReq, 20);
    const refusedSat = await saturate(env, refused.url, 'faults-refused');
    await refused.stop();

    // (b) black-holed: a live service with warm pooled connections, then SIGSTOP
    const svc = await startServiceProcess({ cpu: env.cpus.service });
    await warmService(svc.frameAddr, 10_000);
    const bh = await startLuaGateway(env, inlineLayout, { service: env.transport === 'frame' ? svc.frameAddr : svc.addr });
    let bhSeq: number[] = [];
    let bhSat;
    try {
      const healthy = median(await sequentialLatencies(bh.url, probeReq, 200));
      notes.push(`healthy service, sequential: ${fmtMs(healthy)} ms per request (plain proxy ${fmtMs(plainSeq)} ms).`);
      svc.pause();
      await sleep(50);
      bhSeq = await sequentialLatencies(bh.url, probeReq, 20);
      bhSat = await saturate(env, bh.url, 'faults-blackholed');
    } finally {
      svc.resume();
      await bh.stop();
      await svc.stop();
    }

    const preOpen = (xs: number[]) => xs.slice(0, BREAKER_FAILURES);
    const postOpen = (xs: number[]) => xs.slice(BREAKER_FAILURES);
    const addedMax = (xs: number[]) => Math.max(...xs) - plainSeq;
    for (const [name, seq, sat] of [['refused', refusedSeq, refusedSat], ['black-holed (SIGSTOP)', bhSeq, bhSat]] as const) {
      rows.push([
        name,
        fmtMs(addedMax(preOpen(seq))),
        fmtMs(median(postOpen(seq)) - plainSeq),
        sat ? Math.round(sat.rps).toLocaleString('en-US') : '–',
        sat ? `${(sat.rps / plainSat.rps).toFixed(2)}×` : '–',
        sat ? `${(100 * (1 - sat.rps / plainSat.rps)).toFixed(1)}%` : '–',
      ]);
    }
    notes.push(`first ${BREAKER_FAILURES + 3} sequential latencies after the fault (ms) — refused: ${refusedSeq.slice(0, BREAKER_FAILURES + 3).map((x) => fmtMs(x)).join(', ')}; black-holed: ${bhSeq.slice(0, BREAKER_FAILURES + 3).map((x) => fmtMs(x)).join(', ')}.`);
    notes.push(`plain proxy right before: ${Math.round(plainSat.rps).toLocaleString('en-US')} req/s at saturation, ${fmtMs(plainSeq)} ms sequential (median of 200). Breaker: ${BREAKER_FAILURES} failures in a row and no answer for 1 s open it; while open a background probe every 200 ms (no request pays for it) closes it at the first answer.`);
    const plainRound = sofar.proxy.summary.find((r) => r.id === PLAIN_ID);
    if (plainRound) notes.push(`(the plain proxy in the main rounds: ${Math.round(plainRound.rps).toLocaleString('en-US')} req/s)`);

    const refusedCost = 1 - refusedSat.rps / plainSat.rps;
    const bhCost = bhSat ? 1 - bhSat.rps / plainSat.rps : Number.NaN;
    const bhAdded = addedMax(preOpen(bhSeq));
    const bhAfter = median(postOpen(bhSeq)) - plainSeq;
    return {
      sections: [{
        id: 'faults',
        title: this.title,
        columns: ['fault', 'max added latency before breaker opens, ms', 'added latency after, ms (median)', 'req/s, breaker open', 'ratio to plain', 'throughput cost'],
        rows,
        notes,
      }],
      targets: [
        { target: 'service down (refused): throughput cost ≤ 5%', measured: `${(100 * refusedCost).toFixed(1)}%`, met: refusedCost <= 0.05 },
        { target: 'service black-holed: throughput cost ≤ 5% once the breaker is open', measured: `${(100 * bhCost).toFixed(1)}%`, met: Number.isFinite(bhCost) ? bhCost <= 0.05 : null },
        { target: `black-holed: added latency ≤ budget + 1 ms (${BUDGET_MS + 1} ms) until the breaker opens`, measured: `${fmtMs(bhAdded)} ms`, met: bhAdded <= (BUDGET_MS + 1) * 1000 },
        { target: 'black-holed: no added latency once the breaker is open', measured: `${fmtMs(bhAfter)} ms (median)`, met: bhAfter <= 100 },
      ],
    };
  },
};

export default serviceFaults;
