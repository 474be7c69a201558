// `npm run bench:profile`: where the inline path's CPU goes. Starts the bench's stack (upstream,
// decision service, the Lua gateway inline on every route, same pinning as `npm run bench`),
// sends the all-human mix at a constant rate, and reads user + system CPU per request of each
// server-side process from /proc. With --perf it also samples the gateway's nginx worker with
// `perf record -e cpu-clock -g` and the service with V8's --cpu-prof (--cpu-prof: the service
// only), with --lua-prof the worker's Lua with LuaJIT's sampler, and writes folded stacks, flame
// graphs and top-functions tables to the output directory; --strace counts syscalls instead.
// --plain: the same stack without Verdict.
//
//   npm run bench:profile -- [--rate 1500] [--duration 5] [--perf | --cpu-prof | --lua-prof | --strace]
//                            [--out DIR] [--plain] [--inspect off|auto|all] [--service-env NAME=VALUE]... [--node-flag --v8-flag=N]...
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchEnv } from './lib/case.ts';
import { LUA_GUARD, mixLocations, startLuaGateway } from './lib/gateway.ts';
import { argEnv, argNumber, argValue, argValues } from './lib/args.ts';
import { childPids, gcPauses, gcShare, groupUsage, perRequest, pinHarness, seriesSum, sleep, startServiceProcess } from './lib/proc.ts';
import { humanMix } from './lib/request-mix.ts';
import { startStockNginx, startUpstream } from './lib/stock-nginx.ts';
import { INSPECT_BODY } from './cases/inspect.ts';
import { warmService } from './lib/warm.ts';
import { flameGraphSvg } from './lib/flamegraph.ts';
import { pacingScript, rotatingFileScript, runWrk } from './lib/wrk.ts';

const rate = argNumber('--rate', 1500);
const durationS = argNumber('--duration', 5);
const withPerf = process.argv.includes('--perf');
const withCpuProf = withPerf || process.argv.includes('--cpu-prof');
const withStrace = process.argv.includes('--strace');
const withLuaProf = process.argv.includes('--lua-prof');
// --time-lua: wall time (CLOCK_MONOTONIC; these hooks never yield, so it is their CPU time save
// for preemption) of the gateway's hooks and of the outcome encoder, per call, in the measured window
const withLuaTimers = process.argv.includes('--time-lua');
const inspect = argValue('--inspect', '');

/** A loopback-only location running `lua` (a content_by_lua_block's body) in the gateway worker. */
const luaLocation = (name: string, lua: string) => `
    location = /${name} {
        allow 127.0.0.1;
        deny all;
        content_by_lua_block {
${lua}
        }
    }`;

/** A location that starts LuaJIT's sampling profiler in the worker (?op=start) or returns its folded stacks. */
const LUA_PROFILE_LOCATION = luaLocation('verdict-lua-profile', `
            local prof = require "jit.profile"
            if ngx.var.arg_op == "start" then
                local acc = {}
                package.loaded["verdict.bench_profile"] = acc
                prof.start("li1", function(th, samples, vmmode)
                    local k = prof.dumpstack(th, "l;", -40) .. "[" .. vmmode .. "]"
                    acc[k] = (acc[k] or 0) + samples
                end)
                ngx.say("started")
                return
            end
            prof.stop()
            for k, v in pairs(package.loaded["verdict.bench_profile"] or {}) do ngx.say(k, " ", v) end
`);
const LUA_TIMERS_LOCATION = luaLocation('verdict-lua-timers', `
            local ffi = require "ffi"
            pcall(ffi.cdef, "typedef struct { long tv_sec; long tv_nsec; } vt_timespec; int clock_gettime(int, vt_timespec *);")
            local ts = ffi.new("vt_timespec")
            local function now() ffi.C.clock_gettime(1, ts) return tonumber(ts.tv_sec) * 1e9 + tonumber(ts.tv_nsec) end
            local acc = package.loaded["verdict.bench_timers"]
            if ngx.var.arg_op == "start" then
                acc = {}
                package.loaded["verdict.bench_timers"] = acc
                local function wrap(mod, name, label)
                    local m = require(mod)
                    local f = m[name]
                    local a = { n = 0, ns = 0 }
                    acc[label] = a
                    m[name] = function(...)
                        local t0 = now()
                        local r1, r2 = f(...)
                        a.ns = a.ns + now() - t0
                        a.n = a.n + 1
                        return r1, r2
                    end
                end
                local ev = { n = 0, ns = 0 }
                acc["jit events"] = ev
                jit.attach(function(what, tr, func, pc, otr, oex)
                    local k = what == "abort" and ("abort " .. tostring(otr)) or what
                    ev[k] = (ev[k] or 0) + 1
                end, "trace")
                wrap("verdict.handler", "header_filter", "header_filter")
                wrap("verdict.handler", "body_filter", "body_filter")
                wrap("verdict.handler", "log", "log")
                wrap("verdict.inspect", "finish", "inspect.finish (in log)")
                wrap("verdict.codec", "encode_outcome_batch", "encode_outcome_batch")
                ngx.say("started")
                return
            end
            for label, a in pairs(acc or {}) do
                if label == "jit events" then
                    local parts = {}
                    for k, v in pairs(a) do if k ~= "n" and k ~= "ns" then parts[#parts + 1] = k .. "=" .. v end end
                    ngx.say("# jit trace events in the window: ", table.concat(parts, ", "))
                else
                    ngx.say(label, " ", a.n, " ", a.ns)
                end
            end
`);
const out = argValue('--out', join(tmpdir(), `verdict-profile-${Date.now()}`));

/** Folded stacks ("a;b;c count") from `perf script` output. */
function foldPerf(text: string): Map<string, number> {
  const folded = new Map<string, number>();
  for (const block of text.split('\n\n')) {
    const lines = block.split('\n').filter((l) => l.trim());
    if (lines.length < 2) continue;
    const frames = lines.slice(1).map((l) => {
      const m = /^\s*[0-9a-f]+\s+(.+?)\s+\((.+)\)$/.exec(l);
      if (!m) return l.trim();
      const sym = m[1] === '[unknown]' ? `[${m[2]!.split('/').pop()}]` : m[1]!.replace(/\+0x[0-9a-f]+$/, '');
      return sym;
    }).reverse();
    // JIT-compiled Lua has no frame pointers: perf walks garbage there, dozens of unknown frames
    // deep. Runs of the same frame are kept once, and a stack is cut after 16 frames.
    const kept: string[] = [];
    for (const f of frames) if (kept[kept.length - 1] !== f && kept.length < 16) kept.push(f);
    const key = kept.join(';');
    folded.set(key, (folded.get(key) ?? 0) + 1);
  }
  return folded;
}

function topSelf(folded: Map<string, number>, n: number): string[] {
  const self = new Map<string, number>();
  let total = 0;
  for (const [k, v] of folded) {
    const leaf = k.split(';').pop() ?? k;
    self.set(leaf, (self.get(leaf) ?? 0) + v);
    total += v;
  }
  return [...self].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
}

interface CpuProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface CpuProfile { nodes: CpuProfileNode[]; startTime: number; samples: number[]; timeDeltas: number[] }

/** Folded stacks (µs) from a V8 .cpuprofile, only samples taken within [fromUs, toUs] (CLOCK_MONOTONIC µs). */
function foldCpuProfile(p: CpuProfile, fromUs: number, toUs: number): Map<string, number> {
  const parent = new Map<number, number>();
  const byId = new Map<number, CpuProfileNode>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const name = (n: CpuProfileNode) => {
    const file = n.callFrame.url.replace(/^.*\/(decision-service|node_modules)\//, '$1/');
    return `${n.callFrame.functionName || '(anonymous)'}${file ? ` ${file}:${n.callFrame.lineNumber + 1}` : ''}`;
  };
  const folded = new Map<string, number>();
  let t = p.startTime;
  p.samples.forEach((id, i) => {
    t += p.timeDeltas[i] ?? 0;
    if (t < fromUs || t > toUs) return;
    const frames: string[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur)!;
      if (n.callFrame.functionName !== '(root)') frames.push(name(n));
    }
    const key = frames.reverse().join(';');
    folded.set(key, (folded.get(key) ?? 0) + (p.timeDeltas[i] ?? 0));
  });
  return folded;
}

/** Writes NAME.folded (every stack) and NAME.svg (the stacks `keep` keeps) to the output directory. */
function writeFolded(name: string, folded: Map<string, number>, title: string, keep: (stack: string) => boolean = () => true): void {
  const lines = (f: (stack: string) => boolean) => [...folded].filter(([k]) => f(k)).map(([k, v]) => `${k} ${v}`).join('\n');
  writeFileSync(join(out, `${name}.folded`), `${lines(() => true)}\n`);
  writeFileSync(join(out, `${name}.svg`), flameGraphSvg(lines(keep), title));
}

/**
 * GC pauses between two scrapes of the service's metrics, per kind (count, total ms, how many took
 * over 10 / 100 ms), and whether GC can be in the p99: a request waits on a pause only if it
 * reaches the service during one, so the share of the window spent in pauses bounds the share of
 * requests that waited on GC; under 1%, GC alone cannot set the p99.
 */
function gcSummary(before: string, after: string, windowMs: number): string {
  const parts = [...gcPauses(before, after).kinds].map(([kind, p]) => `${kind} ${p.count} (${p.ms.toFixed(0)} ms; over 10 ms ${p.over10}, over 100 ms ${p.over100})`);
  const { share } = gcShare(before, after, windowMs);
  return `${parts.join(', ') || 'none'}; ${(share * 100).toFixed(2)}% of the window in pauses: GC ${share < 0.01 ? 'is not' : 'can be'} in the p99`;
}

async function main(): Promise<void> {
  mkdirSync(out, { recursive: true });
  const { cpu } = pinHarness();
  const tmp = mkdtempSync(join(tmpdir(), 'verdict-profile-'));
  const profDir = join(out, 'service-cpuprofile');
  // --inspect SETTING: the upstream answers case 2.3's JSON body and the gateway inspects per SETTING
  const upstream = inspect
    ? await startStockNginx({ cpu: cpu.server, http: '    keepalive_requests 100000;', server: `        location / { default_type application/json; return 200 '${INSPECT_BODY}'; }` })
    : await startUpstream(cpu.server);
  const service = await startServiceProcess({
    cpu: cpu.service,
    env: argEnv('--service-env'),
    nodeFlags: [...(withCpuProf ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`, '--cpu-prof-interval=200'] : []), ...argValues('--node-flag')],
  });
  await warmService(service.frameAddr);
  const mix = humanMix();
  const env = {
    quick: false, cpus: cpu, upstream: `127.0.0.1:${upstream.port}`, service, tmp, mix,
    mixScript: rotatingFileScript(mix.map((m) => m.http), join(tmp, 'human-mix.bin')),
    attackScript: '', durationS, warmupS: 2, connections: 64, transport: 'frame', workers: 1,
  } as BenchEnv;
  const plain = process.argv.includes('--plain');
  const stack = await startLuaGateway(env, mixLocations({ identity: 'inline', promo: 'inline', static: 'inline', rest: 'inline' }, plain ? 'proxy_pass http://verdict_app;' : `${inspect ? `set $verdict_inspect ${inspect};\n        ` : ''}${LUA_GUARD}`) + (withLuaProf ? LUA_PROFILE_LOCATION : '') + (withLuaTimers ? LUA_TIMERS_LOCATION : ''));
  const base = { url: stack.url, script: env.mixScript + pacingScript(rate), connections: 64, cpu: cpu.load, dir: tmp };
  await runWrk({ ...base, durationS: 2, name: 'warm' });
  const workers = stack.workerPids?.() ?? [];
  const groups = { gateway: workers, service: [service.pid], upstream: childPids(upstream.pid) };
  const metrics0 = (await stack.gatewayMetrics?.()) ?? '';
  const serviceMetrics0 = await service.metrics();
  let perf: ReturnType<typeof spawn> | null = null;
  const perfData = join(out, 'nginx-worker.perf.data');
  if (withPerf && !process.argv.includes('--cpu-prof') && workers.length) {
    perf = spawn('perf', ['record', '-e', 'cpu-clock', '-F', '2000', '-g', '-o', perfData, '-p', workers.join(',')], { stdio: 'ignore' });
    await sleep(300);
  }
  const straced: Array<{ name: string; proc: ReturnType<typeof spawn>; file: string }> = [];
  if (withStrace) {
    for (const [name, pids] of Object.entries(groups)) {
      const file = join(out, `${name}.strace`);
      straced.push({ name, file, proc: spawn('strace', ['-c', '-f', '-o', file, ...pids.flatMap((p) => ['-p', String(p)])], { stdio: 'ignore' }) });
    }
    await sleep(500);
  }
  if (withLuaProf) await fetch(`${stack.url}/verdict-lua-profile?op=start`);
  if (withLuaTimers) await fetch(`${stack.url}/verdict-lua-timers?op=start`);
  const before = groupUsage(groups);
  const fromUs = Number(process.hrtime.bigint() / 1000n);
  const r = await runWrk({ ...base, durationS, name: 'measure' });
  const used = perRequest(before, groupUsage(groups), r.requests);
  const toUs = Number(process.hrtime.bigint() / 1000n);
  for (const s of straced) {
    s.proc.kill('SIGINT');
    await new Promise((res) => s.proc.once('exit', res));
  }
  if (perf) {
    perf.kill('SIGINT');
    await new Promise((res) => perf!.once('exit', res));
  }
  const metrics1 = (await stack.gatewayMetrics?.()) ?? '';
  const serviceMetrics1 = await service.metrics();
  const n = Math.max(1, r.requests);
  const lines = [`rate ${rate}/s for ${durationS} s: ${r.requests} requests, ${Math.round(r.rps)} req/s, p50 ${(r.latencyUs.p50 / 1000).toFixed(2)} ms p99 ${(r.latencyUs.p99 / 1000).toFixed(2)} ms`];
  if (withLuaTimers) {
    const text = await (await fetch(`${stack.url}/verdict-lua-timers?op=stop`)).text();
    lines.push('', 'gateway hooks (wall time inside each call; they never yield), per request of the window and per call:');
    for (const l of text.trim().split('\n').sort()) {
      const m = /^(.*) (\d+) (\d+)$/.exec(l);
      if (l.startsWith('# ')) lines.push(`  ${l.slice(2)}`);
      else if (m) lines.push(`  ${m[1]!.padEnd(26)} ${(Number(m[3]) / 1000 / n).toFixed(2).padStart(7)} µs per request  ${(Number(m[3]) / 1000 / Math.max(1, Number(m[2]))).toFixed(2).padStart(7)} µs per call (${m[2]} calls)`);
    }
  }
  if (withLuaProf) {
    const text = await (await fetch(`${stack.url}/verdict-lua-profile?op=stop`)).text();
    const folded = new Map<string, number>();
    for (const l of text.split('\n')) {
      const m = /^(.*) (\d+)$/.exec(l);
      if (m) folded.set(m[1]!.replace(/;\[/, ';[').replace(/\s+/g, '_'), Number(m[2]));
    }
    writeFolded('gateway-lua', folded, `gateway Lua, jit.profile, ${rate}/s`);
    const byLine = new Map<string, number>();
    let sum = 0;
    for (const [k, v] of folded) {
      const frames = k.split(';');
      const leaf = frames.length > 1 ? `${frames[frames.length - 2]} ${frames[frames.length - 1]}` : k;
      byLine.set(leaf, (byLine.get(leaf) ?? 0) + v);
      sum += v;
    }
    lines.push('', `gateway Lua (jit.profile, 1 ms samples: ${sum}), top lines [N compiled, I interpreted, C in C, G GC, J JIT compiler]:`);
    for (const [k, v] of [...byLine].sort((a, b) => b[1] - a[1]).slice(0, 40)) lines.push(`${((100 * v) / sum).toFixed(1).padStart(5)}%  ${k}`);
  }
  const names = Object.keys(used) as Array<keyof typeof used>;
  for (const k of names) {
    const u = used[k];
    lines.push(`  ${k.padEnd(8)} ${u.cpuUs.toFixed(1).padStart(7)} µs CPU per request (system ${u.sysUs.toFixed(1)}); reads ${u.reads.toFixed(2)}, writes ${u.writes.toFixed(2)} per request`);
  }
  lines.push(`  ${'total'.padEnd(8)} ${names.reduce((a, k) => a + used[k].cpuUs, 0).toFixed(1).padStart(7)} µs`);
  // the upstream's work per request is fixed (stock nginx, `return 200`): in its units, the
  // others' costs hardly move when the machine's speed does (a shared VM's swings by ±30%)
  lines.push(`  in upstream units: ${names.map((k) => `${k} ${(used[k].cpuUs / used.upstream.cpuUs).toFixed(2)}`).join(', ')}`);
  const calls = (t: string) => [...t.matchAll(/^verdict_gateway_calls_total\{[^}]*result="(\w+)"[^}]*\} (\d+)/gm)].map((m) => `${m[1]}=${m[2]}`).join(' ');
  const buckets = (t: string) => new Map([...t.matchAll(/^verdict_gateway_call_duration_ms_bucket\{le="([^"]+)"\} (\d+)/gm)].map((m) => [m[1]!, Number(m[2])]));
  const b0 = buckets(metrics0);
  const b1 = buckets(metrics1);
  lines.push(`  decide call latency (gateway histogram, cumulative share): ${[...b1].map(([le, v]) => `≤${le} ms ${(((v - (b0.get(le) ?? 0)) / Math.max(1, (b1.get('+Inf') ?? 0) - (b0.get('+Inf') ?? 0))) * 100).toFixed(1)}%`).join(' ')}`);
  lines.push(`  gateway calls before: ${calls(metrics0)}  after: ${calls(metrics1)}`);
  lines.push(`  service GC pauses in the window (prom-client's nodejs_gc_duration_seconds): ${gcSummary(serviceMetrics0, serviceMetrics1, (toUs - fromUs) / 1000)}`);
  if (serviceMetrics1.includes('verdict_redis_flushes')) {
    const at = (t: string, name: string) => seriesSum(t, `verdict_redis_${name}`);
    const d = (name: string) => at(serviceMetrics1, name) - at(serviceMetrics0, name);
    lines.push(`  redis store in the window: ${d('flushes')} flushes, ${d('commands')} commands, ${d('dropped')} deltas dropped, ${at(serviceMetrics1, 'pending_keys')} keys pending at the end, ${at(serviceMetrics1, 'instances')} instance(s)`);
  }
  for (const s of straced) {
    const calls = readFileSync(s.file, 'utf8').split('\n').filter((l) => /^\s*[0-9.]+\s+[0-9.]+\s+\d+\s+\d+/.test(l));
    lines.push('', `${s.name}: syscalls per request (strace -c)`);
    for (const l of calls.slice(0, 12)) {
      const f = l.trim().split(/\s+/);
      lines.push(`  ${(Number(f[3]) / n).toFixed(2).padStart(7)}  ${f[f.length - 1]}`);
    }
  }
  await stack.stop();
  await service.stop();
  await upstream.stop();
  if (perf && existsSync(perfData)) {
    const script = spawnSync('perf', ['script', '-i', perfData], { encoding: 'utf8', maxBuffer: 1 << 30 });
    const folded = foldPerf(script.stdout);
    writeFolded('nginx-worker', folded, `gateway nginx worker, perf cpu-clock, ${rate}/s`);
    lines.push('', 'nginx worker, top self (perf cpu-clock):', ...topSelf(folded, 40));
  }
  if (withCpuProf && existsSync(profDir)) {
    const f = readdirSync(profDir).find((x) => x.endsWith('.cpuprofile'));
    if (f) {
      const folded = foldCpuProfile(JSON.parse(readFileSync(join(profDir, f), 'utf8')) as CpuProfile, fromUs, toUs);
      // the graph shows where the busy time goes: idle samples left out
      writeFolded('service', folded, `decision service, V8 --cpu-prof (busy µs, idle left out), ${rate}/s`, (stack) => stack !== '(idle)');
      const sampled = [...folded.values()].reduce((a, b) => a + b, 0);
      lines.push('', `decision service: ${(sampled / n).toFixed(1)} µs sampled per request (idle included)`);
      lines.push('', 'decision service, top self (V8 --cpu-prof, the measured window only):', ...topSelf(folded, 40));
    }
  }
  writeFileSync(join(out, 'summary.txt'), lines.join('\n') + '\n');
  process.stdout.write(lines.join('\n') + `\n\nwritten to ${out}\n`);
}

await main();
