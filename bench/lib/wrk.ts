// wrk (the Debian package) as the load generator: the runner, the Lua scripts it runs (rotating
// pre-built requests; constant-rate pacing) and the parser of its output.
//
// Constant rate: wrk has no open-loop mode (wrk2 is not in Debian), so the paced script uses
// wrk's delay() hook with a per-thread schedule (LuaJIT ffi clock_gettime): slot k of a thread
// is due at start + k / rate, each delay() claims the next slot and waits until it is due (1 ms
// timer granularity; late slots are sent at once, so the offered rate holds while connections
// are free). wrk's own latency is from the actual send (coordinated omission: a request that
// waited for a free connection, or behind a slow one, is timed from when it finally went out).
// The paced script also measures it from the intended send time: each request carries its slot's
// due time in an `X-Bench-Due` header (requests take the thread's slots in order), the bench
// upstream echoes it back (stock-nginx.ts), and response() records now − due in a per-thread
// histogram (10 µs steps to 100 ms, then 1 ms steps) that done() merges: the corrected latency.
// Responses without the echo (answered by Verdict itself: a block, a challenge) are counted apart.
// (Not an X-Verdict-* name: the gateway strips those from client requests, they are its own.)
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CpuSet, GcShare } from './proc.ts';

export interface WrkLatency {
  /** microseconds */
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export interface WrkResult {
  requests: number;
  durationS: number;
  rps: number;
  latencyUs: WrkLatency;
  errors: { connect: number; read: number; write: number; timeout: number; status: number };
  /** Lua gateway cases: share of guarded requests that got a verdict from the service (not fail-open) */
  decidedShare?: number;
  /** ...of which decided without a call (a clean mark or a clearance: not waited on, scored after the response) */
  uncalledShare?: number;
  /** paced scripts: latency from each request's intended send time (coordinated omission corrected) */
  corrected?: CorrectedLatency;
  /** the decision service's GC pauses during the run (set by the harness, not by wrk) */
  gc?: GcShare;
}

export interface CorrectedLatency {
  /** microseconds, from the intended send time */
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  /** responses measured; responses without the due-time echo (answered by Verdict itself) */
  n: number;
  unmatched: number;
}

const JSON_MARK = 'VERDICT_WRK ';
const CO_MARK = 'VERDICT_WRK_CO ';

/** The done() hook every bench script ends with: one machine-readable line, exact percentiles. */
export const DONE_HOOK = `
function done(summary, latency, requests)
  if verdict_corrected then verdict_corrected() end
  local e = summary.errors
  io.write(string.format(
    '${JSON_MARK}{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d,' ..
    '"mean":%.3f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
`;

const UNIT_US: Readonly<Record<string, number>> = { us: 1, ms: 1000, s: 1_000_000, m: 60_000_000, h: 3_600_000_000 };

/** "1.23ms" → 1230 (microseconds); NaN when not a wrk duration. */
export function parseDurationUs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  if (!m) return Number.NaN;
  // rounded to ns: 2.01 * 1000 is 2009.9999999999998 in floating point
  return Math.round(Number(m[1]) * (UNIT_US[m[2] ?? ''] ?? Number.NaN) * 1000) / 1000;
}

/**
 * Parses wrk's output. Prefers the VERDICT_WRK line of DONE_HOOK (exact); falls back to the
 * text report (`--latency` needed for the percentiles; p999 is then the 99% value). Throws when
 * neither is there.
 */
export function parseWrkOutput(stdout: string): WrkResult {
  const lines = stdout.split('\n');
  const line = lines.find((l) => l.startsWith(JSON_MARK));
  const coLine = lines.find((l) => l.startsWith(CO_MARK));
  const co = coLine ? (JSON.parse(coLine.slice(CO_MARK.length)) as CorrectedLatency) : undefined;
  // no response carried its due time back: no reading (not a latency of 0)
  const corrected = co && co.n > 0 ? co : undefined;
  if (line) {
    const j = JSON.parse(line.slice(JSON_MARK.length)) as Record<string, number>;
    const n = (k: string) => j[k] ?? 0;
    const durationS = n('duration_us') / 1e6;
    return {
      ...(corrected ? { corrected } : {}),
      requests: n('requests'),
      durationS,
      rps: durationS > 0 ? n('requests') / durationS : 0,
      latencyUs: { mean: n('mean'), p50: n('p50'), p90: n('p90'), p99: n('p99'), p999: n('p999'), max: n('max') },
      errors: { connect: n('connect'), read: n('read'), write: n('write'), timeout: n('timeout'), status: n('status') },
    };
  }
  const total = /(\d+) requests in ([\d.]+\w+),/.exec(stdout);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
  if (!total || !rps) throw new Error(`not a wrk report:\n${stdout.slice(0, 2000)}`);
  const pct = (p: string) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+\\w+)`, 'm').exec(stdout);
    return m?.[1] ? parseDurationUs(m[1]) : Number.NaN;
  };
  const lat = /^\s+Latency\s+([\d.]+\w+)\s+[\d.]+\w+\s+([\d.]+\w+)/m.exec(stdout);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(stdout);
  const p99 = pct('99');
  return {
    requests: Number(total[1]),
    durationS: parseDurationUs(total[2] ?? '') / 1e6,
    rps: Number(rps[1]),
    latencyUs: {
      mean: lat?.[1] ? parseDurationUs(lat[1]) : Number.NaN,
      p50: pct('50'),
      p90: pct('90'),
      p99,
      p999: p99,
      max: lat?.[2] ? parseDurationUs(lat[2]) : Number.NaN,
    },
    errors: {
      connect: Number(sock?.[1] ?? 0),
      read: Number(sock?.[2] ?? 0),
      write: Number(sock?.[3] ?? 0),
      timeout: Number(sock?.[4] ?? 0),
      status: Number(non2xx?.[1] ?? 0),
    },
  };
}

/** A request wrk sends; body may be binary. */
export interface WrkRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer | string;
}

/** A Lua string literal for arbitrary bytes. */
export function luaBytes(b: Buffer | string): string {
  const buf = typeof b === 'string' ? Buffer.from(b) : b;
  let s = '"';
  for (const c of buf) {
    if (c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c) s += String.fromCharCode(c);
    // always three digits: a shorter decimal escape followed by a digit would swallow it
    else s += `\\${String(c).padStart(3, '0')}`;
  }
  return `${s}"`;
}

/**
 * The rotation both request scripts share: `build` (Lua, in init) fills `built` with each
 * request's bytes once per thread; threads start at different points of the list.
 */
function rotation(prelude: string, build: string): string {
  return `-- generated by bench/lib/wrk.ts
${prelude}local built, n, i = {}, 0, 0
local thread_no = 0
function setup(thread)
  thread:set("thread_no", thread_no)
  thread_no = thread_no + 1
end
function init(args)
${build}
  n = #built
  i = ((tonumber(thread_no) or 0) * 7919) % n
end
function request()
  i = i % n + 1
  return built[i]
end
`;
}

/** Lua that builds every request once per thread and rotates through them. */
export function rotatingScript(reqs: readonly WrkRequest[]): string {
  const rows = reqs.map((r) => {
    const h = Object.entries(r.headers).map(([k, v]) => `[${luaBytes(k)}]=${luaBytes(v)}`).join(',');
    return `{${luaBytes(r.method)},${luaBytes(r.path)},{${h}},${r.body === undefined ? 'nil' : luaBytes(r.body)}}`;
  });
  return rotation(`local R = {
${rows.join(',\n')}
}
`, `  for k = 1, #R do
    local r = R[k]
    built[k] = wrk.format(r[1], r[2], r[3], r[4])
  end
  R = nil`);
}

/** The bytes wrk.format(method, path, headers, body) builds (Host and Content-Length as it adds them). */
export function rawRequest(r: WrkRequest): Buffer {
  const body = r.body === undefined ? undefined : typeof r.body === 'string' ? Buffer.from(r.body) : r.body;
  const lines = [`${r.method} ${r.path} HTTP/1.1`];
  for (const [k, v] of Object.entries(r.headers)) lines.push(`${k}: ${v}`);
  if (body) lines.push(`Content-Length: ${body.length}`);
  lines.push('', '');
  return Buffer.concat([Buffer.from(lines.join('\r\n')), body ?? Buffer.alloc(0)]);
}

/**
 * Lua that rotates through requests read from a file: for mixes too large for a Lua table
 * constructor (LuaJIT caps a function's constants). Writes `<path>`: per request "<bytes>\n" and
 * the raw request (rawRequest).
 */
export function rotatingFileScript(reqs: readonly WrkRequest[], path: string): string {
  const parts: Buffer[] = [];
  for (const r of reqs) {
    const raw = rawRequest(r);
    parts.push(Buffer.from(`${raw.length}\n`), raw);
  }
  writeFileSync(path, Buffer.concat(parts));
  return rotation('', `  local f = assert(io.open(${luaBytes(path)}, "rb"))
  local data = f:read("*a")
  f:close()
  local pos, len = 1, #data
  while pos <= len do
    local eol = data:find("\\n", pos, true)
    local size = tonumber(data:sub(pos, eol - 1))
    built[#built + 1] = data:sub(eol + 1, eol + size)
    pos = eol + size + 1
  end`);
}

/** Lua that paces a thread to `ratePerThread` requests/s and measures latency from each request's due time (see the header comment). */
export function pacingScript(ratePerThread: number): string {
  const intervalMs = 1000 / ratePerThread;
  return `
local ffi = require "ffi"
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } verdict_timespec;
int clock_gettime(int clk, verdict_timespec *tp);
]]
local ts = ffi.new("verdict_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local interval_ms = ${intervalMs.toFixed(6)}
local t_next = nil
-- the slots claimed by delay() and not yet sent, oldest first
local due, due_head, due_tail = {}, 1, 0
function delay()
  local now = now_ms()
  if t_next == nil then t_next = now end
  t_next = t_next + interval_ms
  due_tail = due_tail + 1
  due[due_tail] = t_next
  local d = t_next - now
  if d < 0.5 then return 0 end
  return math.floor(d + 0.5)
end
local unpaced_request = request
function request()
  local r = unpaced_request()
  local d
  if due_head <= due_tail then
    d = due[due_head]
    due[due_head] = nil
    due_head = due_head + 1
  else
    d = now_ms() -- a connection's first request: due now
  end
  local eol = r:find("\\r\\n", 1, true)
  return r:sub(1, eol + 1) .. "X-Bench-Due: " .. string.format("%.3f", d) .. "\\r\\n" .. r:sub(eol + 2)
end
-- corrected latency histogram: 10 us steps below 100 ms (index 0..9999), 1 ms steps above
hist, hist_n, hist_unmatched = {}, 0, 0
function response(status, headers, body)
  local d = tonumber(headers["X-Bench-Due"] or headers["x-bench-due"] or "")
  if not d then
    hist_unmatched = hist_unmatched + 1
    return
  end
  local us = (now_ms() - d) * 1000
  if us < 0 then us = 0 end
  local i = us < 100000 and math.floor(us / 10) or 10000 + math.floor((us - 100000) / 1000)
  hist[i] = (hist[i] or 0) + 1
  hist_n = hist_n + 1
end
local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
end
function verdict_corrected()
  local merged, n, unmatched, max_i = {}, 0, 0, -1
  for _, t in ipairs(threads) do
    local h = t:get("hist") or {}
    for i, c in pairs(h) do
      merged[i] = (merged[i] or 0) + c
      if i > max_i then max_i = i end
    end
    n = n + (t:get("hist_n") or 0)
    unmatched = unmatched + (t:get("hist_unmatched") or 0)
  end
  local function us_of(i) return i < 10000 and i * 10 + 5 or 100000 + (i - 10000) * 1000 + 500 end
  local function pct(p)
    local want, seen = math.ceil(n * p / 100), 0
    for i = 0, max_i do
      seen = seen + (merged[i] or 0)
      if seen >= want and want > 0 then return us_of(i) end
    end
    return 0
  end
  if n == 0 then
    -- nothing came back with its due time (a proxy in between dropped the header): no reading
    io.write(string.format('${CO_MARK.trim()} {"n":0,"unmatched":%d}\\n', unmatched))
    return
  end
  io.write(string.format('${CO_MARK.trim()} {"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"n":%d,"unmatched":%d}\\n',
    pct(50), pct(90), pct(99), pct(99.9), us_of(max_i), n, unmatched))
end
`;
}

export interface WrkRun {
  url: string;
  /** Lua script text without the done() hook (added here) */
  script: string;
  durationS: number;
  connections: number;
  threads?: number;
  cpu: CpuSet;
  /** where to write the script */
  dir: string;
  name: string;
}

/** Runs wrk once (pinned with taskset when cpu is set); bounded by duration + 20 s. */
export async function runWrk(run: WrkRun): Promise<WrkResult> {
  const scriptPath = join(run.dir, `${run.name}.lua`);
  writeFileSync(scriptPath, run.script + DONE_HOOK);
  const wrkArgs = ['-t', String(run.threads ?? 1), '-c', String(run.connections), '-d', `${run.durationS}s`, '--timeout', '2s', '--latency', '-s', scriptPath, run.url];
  const [cmd, args] = run.cpu === null ? ['wrk', wrkArgs] : ['taskset', ['-c', String(run.cpu), 'wrk', ...wrkArgs]];
  const child = spawn(cmd, args as string[], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const timer = setTimeout(() => child.kill('SIGKILL'), (run.durationS + 20) * 1000);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`wrk exited ${code}: ${err}${out}`);
  return parseWrkOutput(out);
}
