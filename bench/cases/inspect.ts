// Case 2.3 (issue 17): what response inspection costs. Verdict inline on every request in front
// of an upstream answering a JSON body (about 2 KB: a page of 12 user records, 4 of them with
// mobile numbers, 2 masked, and an e-mail address) — measured at saturation with
// `$verdict_inspect off`, `auto` (the default: the policy's share per route class, so on the
// human mix the object, identity and promo routes' responses, and a sample of the rest) and `all`
// (every response scanned chunk by chunk, a ResponseSample in each outcome), each with its own
// gateway and decision service: alone (rounds of short runs, off, auto and all in turn) and side by
// side (the three saturated at the same time, so the VM's drift between minutes hits all alike).
import type { BenchEnv, CaseOutput, CustomCase, Stack } from '../lib/case.ts';
import { LUA_GUARD, mixLocations, startLuaGateway } from '../lib/gateway.ts';
import { warmService } from '../lib/warm.ts';
import { fmtMs, median } from '../lib/results.ts';
import { startStockNginx } from '../lib/stock-nginx.ts';
import { childPids, groupUsage, startServiceProcess, type ServiceProcess } from '../lib/proc.ts';
import { runWrk, type WrkResult } from '../lib/wrk.ts';

/** Rounds of saturation runs (each: off, auto and all in turn) and seconds per run. */
const SAT_ROUNDS = 8;
const SAT_RUN_S = 4;
/** Rounds of the three stacks saturated side by side, seconds per round, wrk connections per stack. */
const TOGETHER_ROUNDS = 12;
const TOGETHER_RUN_S = 4;
const TOGETHER_CONNECTIONS = 32;

/** CPU per request, µs, of each process on the server core over a side-by-side round. */
interface CpuPerRequest { gateway: number; service: number; upstream: number; total: number }

const records = Array.from({ length: 12 }, (_, i) => ({
  id: 1000 + i,
  name: `user ${i}`,
  phone: i % 3 === 0 ? `1380013${String(1000 + i)}` : i % 5 === 1 ? '139****5678' : '',
  email: i === 7 ? 'someone@example.com' : '',
  address: 'Room 1203, Building 5, 88 Example Road, Pudong, Shanghai',
  created_at: '2026-11-30T08:15:00Z',
}));
export const INSPECT_BODY = JSON.stringify({ page: 1, page_size: 12, total: 4810, items: records });

/** 1 s of warm-up, then `durationS` measured. */
async function saturate(env: BenchEnv, url: string, name: string, durationS: number): Promise<WrkResult> {
  const base = { url, script: env.mixScript, connections: env.connections, cpu: env.cpus.load, dir: env.tmp };
  await runWrk({ ...base, durationS: 1, name: `${name}-warm` });
  return runWrk({ ...base, durationS, name });
}

const inspectCase: CustomCase = {
  kind: 'custom',
  id: 'inspect',
  order: 2.3,
  title: '2.3 Verdict inline, response inspection all vs off (JSON upstream body)',
  async run(env): Promise<CaseOutput> {
    // nginx's return takes a single-quoted string: the JSON body has no single quote
    const upstream = await startStockNginx({
      cpu: env.cpus.server,
      http: '    keepalive_requests 100000;',
      server: `        location / { default_type application/json; return 200 '${INSPECT_BODY}'; }`,
    });
    const at = { ...env, upstream: `127.0.0.1:${upstream.port}` };
    type Setting = 'all' | 'auto' | 'off';
    const layout = (setting: Setting) =>
      mixLocations({ identity: 'inline', promo: 'inline', static: 'inline', rest: 'inline' }, `set $verdict_inspect ${setting};\n        ${LUA_GUARD}`);
    const runs: Record<Setting, WrkResult[]> = { all: [], auto: [], off: [] };
    const cpu: Record<Setting, CpuPerRequest[]> = { all: [], auto: [], off: [] };
    // Each setting has its own gateway and its own decision service, so each process's CPU belongs
    // to one setting; the upstream is shared (the same work per request, split by requests).
    const services: Partial<Record<Setting, ServiceProcess>> = {};
    const stacks: Partial<Record<Setting, Stack>> = {};
    // Side by side: the three stacks saturated at the same time, for the same seconds, so whatever
    // this shared VM does in a given second (its speed swings by ±15-30% between minutes, more than
    // the cost being measured) it does to all three; each one's CPU per request (the scheduler's
    // own count) and throughput are read over the same window.
    const together = async (durationS: number, round: number): Promise<Record<Setting, { cpu: CpuPerRequest; rps: number }>> => {
      const settings = ['off', 'auto', 'all'] as const;
      const groups = Object.fromEntries(settings.flatMap((s) => [[`${s}:gateway`, (stacks[s] as Stack).workerPids?.() ?? []], [`${s}:service`, [(services[s] as ServiceProcess).pid]]]).concat([['upstream', childPids(upstream.pid)]])) as Record<string, number[]>;
      const before = groupUsage(groups);
      const done = await Promise.all(settings.map((s) => runWrk({ url: (stacks[s] as Stack).url, script: env.mixScript, connections: TOGETHER_CONNECTIONS, cpu: env.cpus.load, dir: env.tmp, durationS, name: `inspect-together-${s}-${round}` })));
      const after = groupUsage(groups);
      const sent = done.reduce((n, r) => n + r.requests, 0);
      const upstreamUs = (after.upstream!.cpuUs - before.upstream!.cpuUs) / Math.max(1, sent);
      const out = {} as Record<Setting, { cpu: CpuPerRequest; rps: number }>;
      settings.forEach((s, i) => {
        const n = Math.max(1, done[i]?.requests ?? 0);
        const gateway = (after[`${s}:gateway`]!.cpuUs - before[`${s}:gateway`]!.cpuUs) / n;
        const service = (after[`${s}:service`]!.cpuUs - before[`${s}:service`]!.cpuUs) / n;
        out[s] = { cpu: { gateway, service, upstream: upstreamUs, total: gateway + service + upstreamUs }, rps: done[i]?.rps ?? 0 };
      });
      return out;
    };
    // The Lua scan alone: inspect.lua on the case's body in a loop inside the gateway's nginx
    // (no request, no outcome), so its cost is measured apart from the noisy stack.
    let scanUs = Number.NaN;
    {
      const bodyLua = `[==[${INSPECT_BODY}]==]`;
      const stack = await startLuaGateway(at, `
    location = /verdict-scan-bench {
        content_by_lua_block {
            local inspect = require "verdict.inspect"
            local body, n = ${bodyLua}, 20000
            for i = 1, 2000 do inspect.feed(inspect.new_scan(16384, 0), body, true) end
            ngx.update_time()
            local t0 = ngx.now()
            for i = 1, n do
                local scan = inspect.new_scan(16384, 0)
                inspect.feed(scan, body, true)
                inspect.sample(scan)
            end
            ngx.update_time()
            ngx.say((ngx.now() - t0) * 1e6 / n)
        }
    }`);
      try {
        const samples: number[] = [];
        for (let i = 0; i < 5; i++) samples.push(Number(await (await fetch(`${stack.url}/verdict-scan-bench`)).text()));
        scanUs = median(samples);
      } finally {
        await stack.stop();
      }
    }
    // side by side, per round: each setting's throughput, and its cost against `off` from the CPU
    // per request and from the throughput
    const togetherRps: Record<Setting, number[]> = { all: [], auto: [], off: [] };
    const togetherCpuCost: Record<'auto' | 'all', number[]> = { auto: [], all: [] };
    const togetherRpsCost: Record<'auto' | 'all', number[]> = { auto: [], all: [] };
    // Saturation, in rounds: the three settings' gateways run side by side (an idle one costs
    // nothing) and each round saturates each of them in turn for a few seconds, rotating who goes
    // first; a round's cost is its own runs against its own `off` run, seconds apart. Long runs
    // minutes apart measured this shared VM's drift (±15-30%) more than inspection.
    const satPairs: Record<'auto' | 'all', number[]> = { auto: [], all: [] };
    try {
      for (const setting of ['off', 'auto', 'all'] as const) {
        const service = await startServiceProcess({ cpu: env.cpus.service });
        services[setting] = service;
        await warmService(service.frameAddr);
        stacks[setting] = await startLuaGateway(at, layout(setting), { service: env.transport === 'frame' ? service.frameAddr : service.addr });
      }
      // one unrecorded run each first: nginx's Lua and the service's code paths for each setting warm
      for (const setting of ['off', 'auto', 'all'] as const) await saturate(env, (stacks[setting] as Stack).url, `inspect-${setting}-warm`, 2);
      for (let r = 0; r < (env.quick ? 1 : SAT_ROUNDS); r++) {
        const turn: Setting[] = (['off', 'auto', 'all'] as const).map((_, i, a) => a[(i + r) % 3] as Setting);
        const got: Partial<Record<Setting, WrkResult>> = {};
        for (const setting of turn) {
          const w = await saturate(env, (stacks[setting] as Stack).url, `inspect-${setting}-${r}`, env.quick ? env.durationS : SAT_RUN_S);
          got[setting] = w;
          runs[setting].push(w);
        }
        for (const x of ['auto', 'all'] as const) satPairs[x].push(1 - (got[x] as WrkResult).rps / (got.off as WrkResult).rps);
      }
      // side by side, in rounds (one unrecorded first)
      await together(2, -1);
      for (let r = 0; r < (env.quick ? 2 : TOGETHER_ROUNDS); r++) {
        const got = await together(env.quick ? 2 : TOGETHER_RUN_S, r);
        for (const setting of ['off', 'auto', 'all'] as const) {
          cpu[setting].push(got[setting].cpu);
          togetherRps[setting].push(got[setting].rps);
        }
        for (const x of ['auto', 'all'] as const) {
          togetherCpuCost[x].push(1 - got.off.cpu.total / got[x].cpu.total);
          togetherRpsCost[x].push(1 - got[x].rps / got.off.rps);
        }
      }
    } finally {
      for (const st of Object.values(stacks)) await st?.stop();
      for (const sv of Object.values(services)) await sv?.stop();
      await upstream.stop();
    }
    const rps = (s: Setting) => median(runs[s].map((r) => r.rps));
    const p99 = (s: Setting) => median(runs[s].map((r) => r.latencyUs.p99));
    // on a saturated shared core, the reading the target takes: the median of the rounds' own costs
    const satCost = (s: 'auto' | 'all') => median(satPairs[s]);
    const measured = satCost('auto');
    const measuredAll = satCost('all');
    const us = (s: Setting, k: keyof CpuPerRequest) => median(cpu[s].map((c) => c[k]));
    const cost = median(togetherCpuCost.auto);
    const costAll = median(togetherCpuCost.all);
    const rpsCost = median(togetherRpsCost.auto);
    const rpsCostAll = median(togetherRpsCost.all);
    const fmtUs = (v: number) => v.toFixed(1);
    const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
    return {
      sections: [{
        id: 'inspect',
        title: this.title,
        columns: ['$verdict_inspect', 'alone: req/s at saturation (median of rounds)', 'alone: throughput cost (median of rounds)', 'alone: p99, ms', 'side by side: req/s (median of rounds)', 'side by side: CPU µs per request: gateway', 'service', 'upstream', 'total', 'side by side: cost from the CPU per request (median of rounds)', 'side by side: cost from the throughput (median of rounds)', 'rounds (alone + side by side)'],
        rows: (['off', 'auto', 'all'] as const).map((s) => [s, Math.round(rps(s)).toLocaleString('en-US'), s === 'off' ? '–' : pct(satCost(s)), fmtMs(p99(s)),
          Math.round(median(togetherRps[s])).toLocaleString('en-US'), fmtUs(us(s, 'gateway')), fmtUs(us(s, 'service')), fmtUs(us(s, 'upstream')), fmtUs(us(s, 'total')),
          s === 'off' ? '–' : pct(median(togetherCpuCost[s])), s === 'off' ? '–' : pct(median(togetherRpsCost[s])), `${runs[s].length} + ${cpu[s].length}`]),
        notes: [
          `Upstream: stock nginx answering a ${Buffer.byteLength(INSPECT_BODY)}-byte application/json body (12 records, 4 unmasked and 2 masked mobile numbers, 1 e-mail address) to every request of the human mix; inline on every route. Each setting has its own gateway (one nginx worker) and its own decision service; all of them and the upstream share the server core.`,
          `Alone: each round saturates each setting's stack in turn (${SAT_RUN_S} s after 1 s of warm-up, the round's first setting rotating); a round's cost is its own runs against its own \`off\` run, seconds apart. Runs (req/s, off / auto / all): ${runs.off.map((o, i) => `${Math.round(o.rps).toLocaleString('en-US')} / ${Math.round(runs.auto[i]?.rps ?? 0).toLocaleString('en-US')} / ${Math.round(runs.all[i]?.rps ?? 0).toLocaleString('en-US')}`).join(', ')}; costs (auto / all): ${satPairs.auto.map((c, i) => `${pct(c)} / ${pct(satPairs.all[i] ?? Number.NaN)}`).join(', ')}.`,
          `Side by side: each round saturates the three stacks at the same time for ${env.quick ? 2 : TOGETHER_RUN_S} s (${TOGETHER_CONNECTIONS} connections each), so the VM's speed, which swings by ±15-30% between minutes here, is the same for all three; CPU per request is each process's CPU time by the scheduler's own count (/proc/PID/task/*/schedstat) over the round, divided by the requests its stack answered (the shared upstream's split by requests), and a round's cost is 1 − off's CPU per request / the setting's. Costs from CPU (auto / all): ${togetherCpuCost.auto.map((c, i) => `${pct(c)} / ${pct(togetherCpuCost.all[i] ?? Number.NaN)}`).join(', ')}; from throughput: ${togetherRpsCost.auto.map((c, i) => `${pct(c)} / ${pct(togetherRpsCost.all[i] ?? Number.NaN)}`).join(', ')}.`,
          `Throughput cost of response inspection at its default (auto) / inspecting every response (all): alone at saturation (median of ${runs.off.length} rounds) ${pct(measured)} / ${pct(measuredAll)}; side by side (median of ${cpu.off.length} rounds) from the CPU per request ${pct(cost)} / ${pct(costAll)}, from the throughput ${pct(rpsCost)} / ${pct(rpsCostAll)}.`,
          `The Lua scan alone (inspect.lua on this body in a loop inside nginx, median of 5 × 20,000): ${scanUs.toFixed(1)} µs per response.`,
        ],
      }],
      targets: [
        // met when the direct reading (alone) and the steadier side-by-side CPU reading both say so
        { target: 'response inspection (default, auto) costs ≤ 5% throughput', measured: `alone ${pct(measured)} (all: ${pct(measuredAll)}); side by side from CPU per request ${pct(cost)} (all: ${pct(costAll)}), from throughput ${pct(rpsCost)} (all: ${pct(rpsCostAll)})`, met: Number.isFinite(measured) && Number.isFinite(cost) ? measured <= 0.05 && cost <= 0.05 : null },
      ],
    };
  },
};

export default inspectCase;
