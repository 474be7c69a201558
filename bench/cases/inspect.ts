// Case 2.3 (issue 17): what response inspection costs. Verdict inline on every request in front
// of an upstream answering a JSON body (about 2 KB: a page of 12 user records, 4 of them with
// mobile numbers, 2 masked, and an e-mail address) — measured at saturation with
// `$verdict_inspect off`, `auto` (the default: the policy's share per route class, so on the
// human mix the object, identity and promo routes' responses, and a sample of the rest) and `all`
// (every response scanned chunk by chunk, a ResponseSample in each outcome) side by side,
// in rounds of short runs (off, auto, all in turn) so drift between minutes hits none of them.
import type { BenchEnv, CaseOutput, CustomCase, Stack } from '../lib/case.ts';
import { LUA_GUARD, mixLocations, startLuaGateway } from '../lib/gateway.ts';
import { warmService } from '../lib/warm.ts';
import { fmtMs, median } from '../lib/results.ts';
import { startStockNginx } from '../lib/stock-nginx.ts';
import { childPids, groupUsage, perRequest, startServiceProcess, type ServiceProcess } from '../lib/proc.ts';
import { pacingScript, runWrk, type WrkResult } from '../lib/wrk.ts';

/** Rounds of saturation runs (each: off, auto and all in turn) and seconds per run. */
const SAT_ROUNDS = 8;
const SAT_RUN_S = 4;
/** The rate each stack is paced at in the CPU-per-request rounds (three stacks at once: together
 *  well below the shared core's saturation). */
const CPU_RATE = 600;
/** Rounds of CPU-per-request readings (the three stacks at the same time) and seconds per reading. */
const CPU_ROUNDS = 12;
const CPU_RUN_S = 5;

/** CPU per request, µs, of each process on the server core while a paced run sends `RATE`/s. */
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
    // CPU per request at a fixed rate, read from /proc per process: what inspection adds to the
    // server core's work. Each setting has its own gateway and its own decision service, so each
    // process's CPU belongs to one setting; the upstream is shared (the same work per request).
    const services: Partial<Record<Setting, ServiceProcess>> = {};
    const stacks: Partial<Record<Setting, Stack>> = {};
    const paced = (stack: Stack, name: string, durationS: number) =>
      runWrk({ url: stack.url, script: env.mixScript + pacingScript(CPU_RATE), connections: env.connections, cpu: env.cpus.load, dir: env.tmp, durationS, name });
    const cpuPerRequest = async (stack: Stack, service: ServiceProcess, name: string, durationS: number): Promise<CpuPerRequest> => {
      const groups = { gateway: stack.workerPids?.() ?? [], service: [service.pid], upstream: childPids(upstream.pid) };
      const before = groupUsage(groups);
      const r = await paced(stack, name, durationS);
      const u = perRequest(before, groupUsage(groups), r.requests);
      return { gateway: u.gateway.cpuUs, service: u.service.cpuUs, upstream: u.upstream.cpuUs, total: u.gateway.cpuUs + u.service.cpuUs + u.upstream.cpuUs };
    };
    // The three stacks paced at the same time, for the same seconds: whatever this shared VM does
    // in a given second (it swings by ±15-30% between minutes) it does to all three. The
    // upstream's CPU is split by requests answered (its work per request is the same for all).
    const cpuTogether = async (durationS: number, round: number): Promise<Record<Setting, CpuPerRequest>> => {
      const settings = ['off', 'auto', 'all'] as const;
      const groups = Object.fromEntries(settings.flatMap((s) => [[`${s}:gateway`, (stacks[s] as Stack).workerPids?.() ?? []], [`${s}:service`, [(services[s] as ServiceProcess).pid]]]).concat([['upstream', childPids(upstream.pid)]])) as Record<string, number[]>;
      const before = groupUsage(groups);
      const done = await Promise.all(settings.map((s) => paced(stacks[s] as Stack, `inspect-cpu-${s}-${round}`, durationS)));
      const after = groupUsage(groups);
      const sent = done.reduce((n, r) => n + r.requests, 0);
      const upstreamUs = (after.upstream!.cpuUs - before.upstream!.cpuUs) / Math.max(1, sent);
      const out = {} as Record<Setting, CpuPerRequest>;
      settings.forEach((s, i) => {
        const n = Math.max(1, done[i]?.requests ?? 0);
        const gateway = (after[`${s}:gateway`]!.cpuUs - before[`${s}:gateway`]!.cpuUs) / n;
        const service = (after[`${s}:service`]!.cpuUs - before[`${s}:service`]!.cpuUs) / n;
        out[s] = { gateway, service, upstream: upstreamUs, total: gateway + service + upstreamUs };
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
    // per round: the gateway's and the service's CPU per request added by the setting, µs
    const addedUs: Record<'auto' | 'all', number[]> = { auto: [], all: [] };
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
      // CPU per request, side by side at the same time: the three stacks (each its own gateway and
      // its own decision service, the upstream shared) paced together, so whatever this shared VM
      // does in a given second it does to all three; a round's cost is its own settings against its
      // own `off`, measured over the same seconds.
      for (const setting of ['off', 'auto', 'all'] as const) await cpuPerRequest(stacks[setting] as Stack, services[setting] as ServiceProcess, `inspect-cpu-warm-${setting}`, 2);
      const rounds = env.quick ? 2 : CPU_ROUNDS;
      for (let r = 0; r < rounds; r++) {
        const got = await cpuTogether(env.quick ? 2 : CPU_RUN_S, r);
        for (const setting of ['off', 'auto', 'all'] as const) cpu[setting].push(got[setting]);
        const off = got.off;
        for (const s of ['auto', 'all'] as const) {
          const x = got[s];
          addedUs[s].push(x.gateway + x.service - off.gateway - off.service);
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
    // What the added CPU costs at saturation: there the server core is busy, so a request costs
    // 1 s / (req/s) of it (gateway, service and upstream together), and the setting adds its
    // median added µs (measured side by side, at a pace) to that: throughput falls to c / (c + Δ).
    const satUsOff = 1e6 / rps('off');
    const added = (s: 'auto' | 'all') => median(addedUs[s]);
    const costOf = (d: number) => d / (satUsOff + d);
    const cost = costOf(added('auto'));
    const costAll = costOf(added('all'));
    const fmtUs = (v: number) => v.toFixed(1);
    return {
      sections: [{
        id: 'inspect',
        title: this.title,
        columns: ['$verdict_inspect', 'req/s at saturation (median of runs)', 'throughput cost at saturation (median of rounds)', 'p99, ms', `CPU µs per request at ${CPU_RATE.toLocaleString('en-US')}/s: gateway`, 'service', 'upstream', 'total', 'added CPU µs per request (gateway + service, median of rounds)', 'throughput cost from the added CPU', 'runs (saturation + CPU)'],
        rows: (['off', 'auto', 'all'] as const).map((s) => [s, Math.round(rps(s)).toLocaleString('en-US'), s === 'off' ? '–' : `${(100 * satCost(s)).toFixed(1)}%`, fmtMs(p99(s)), fmtUs(us(s, 'gateway')), fmtUs(us(s, 'service')), fmtUs(us(s, 'upstream')), fmtUs(us(s, 'total')),
          s === 'off' ? '–' : `+${fmtUs(added(s))}`, s === 'off' ? '–' : `${(100 * costOf(added(s))).toFixed(1)}%`, `${runs[s].length} + ${cpu[s].length}`]),
        notes: [
          `Upstream: stock nginx answering a ${Buffer.byteLength(INSPECT_BODY)}-byte application/json body (12 records, 4 unmasked and 2 masked mobile numbers, 1 e-mail address) to every request of the human mix; inline on every route.`,
          `Saturation runs per round (req/s, off / auto / all; ${SAT_RUN_S} s each after 1 s of warm-up, the round's first setting rotating): ${runs.off.map((o, i) => `${Math.round(o.rps).toLocaleString('en-US')} / ${Math.round(runs.auto[i]?.rps ?? 0).toLocaleString('en-US')} / ${Math.round(runs.all[i]?.rps ?? 0).toLocaleString('en-US')}`).join(', ')}.`,
          `Added CPU per request per round, gateway + service, µs (auto / all): ${addedUs.auto.map((c, i) => `${fmtUs(c)} / ${fmtUs(addedUs.all[i] ?? Number.NaN)}`).join(', ')}.`,
          `Saturation cost per round, each setting against the round's own off run (auto / all): ${satPairs.auto.map((c, i) => `${(100 * c).toFixed(1)}% / ${(100 * (satPairs.all[i] ?? Number.NaN)).toFixed(1)}%`).join(', ')}.`,
          `Throughput cost of response inspection at its default (auto) / inspecting every response (all): at saturation (median of ${runs.off.length} rounds' own costs) ${(100 * measured).toFixed(1)}% / ${(100 * measuredAll).toFixed(1)}%; from the added CPU (the median of the rounds' added µs, against the ${fmtUs(satUsOff)} µs of the server core a request costs at \`off\`'s saturation) ${(100 * cost).toFixed(1)}% / ${(100 * costAll).toFixed(1)}%.`,
          `The Lua scan alone (inspect.lua on this body in a loop inside nginx, median of 5 × 20,000): ${scanUs.toFixed(1)} µs per response.`,
          `CPU per request: user + system time from /proc of each setting's own gateway nginx worker and own decision service (the upstream nginx is shared and split by requests), over ${env.quick ? 2 : CPU_RUN_S} s in which the three stacks are each paced at ${CPU_RATE.toLocaleString('en-US')} requests/s at the same time, divided by the requests each was sent. Run together, the VM's swings between seconds hit the three alike; run one after another (before 2026-12-02) the rounds' costs spread by ±15 points.`,
        ],
      }],
      targets: [
        // met when the direct reading (saturation) and the steadier CPU reading both say so
        { target: 'response inspection (default, auto) costs ≤ 5% throughput', measured: `saturation ${(100 * measured).toFixed(1)}% (all: ${(100 * measuredAll).toFixed(1)}%); from the added CPU ${(100 * cost).toFixed(1)}% (+${fmtUs(added('auto'))} µs; all: ${(100 * costAll).toFixed(1)}%, +${fmtUs(added('all'))} µs)`, met: Number.isFinite(measured) && Number.isFinite(cost) ? measured <= 0.05 && cost <= 0.05 : null },
      ],
    };
  },
};

export default inspectCase;
