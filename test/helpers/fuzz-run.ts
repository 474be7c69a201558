// Runs the fuzzer's inputs (test/helpers/fuzz-inputs.ts) against the REAL decision service as a
// child process, over HTTP and the framed transport, and checks what must hold for any input:
//   - the service never exits and never logs an error (an unhandled error is a 500 / INTERNAL);
//   - HTTP: an answer always comes; no 5xx except 503/504 (shedding, deadlines); every error is
//     JSON {error:{code,message}}; bad input is a 4xx; an INVALID_FIELD answer names the broken
//     field; valid input is decided (200, its request_id, the encoding Accept asked for);
//   - frames: one answer per frame, in order, of an allowed type (VERDICT/ACK for valid payloads,
//     ERROR "CODE: message" for bad ones, never INTERNAL); a zero or oversized length closes the
//     connection; after garbage, a NEW connection is served;
//   - after the run: a valid decide is answered as before the run, quickly, on both transports,
//     and the service's RSS has not exploded.
// Used by test/fuzz/service.test.ts (bounded) and scripts/fuzz.ts (long runs).

import { request, Agent, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { freePort } from '../../scripts/lib/nginx.ts';
import { startServiceChild, type ServiceChild } from '../../scripts/lib/service.ts';
import { DecideResponseType, OutcomeAckType } from '../../decision-service/src/wire/codec.ts';
import { FRAME } from '../../decision-service/src/wire/frame-server.ts';
import { Rng } from '../../bench/traffic/rng.ts';
import {
  bigPipeline, encDecide, frameBytes, frameSession, httpCase, probeRequest, validDecide, PROBE_IPS,
  type FrameAnswer, type FrameSession, type GenOptions, type HttpCase,
} from './fuzz-inputs.ts';

const ACTIONS = new Set(['ALLOW', 'TAG', 'CHALLENGE', 'BLOCK']);
/** 5xx answers that are a documented choice, not a bug: overload shedding and missed deadlines. */
const SHED_STATUS = new Set([503, 504]);
const SHED_CODE = /DEADLINE|OVERLOAD|BUSY|TIMEOUT|UNAVAILABLE|EXPIRED|SHED/;
/** Bodies above this may meet a per-endpoint size limit (413, or a reset while still sending). */
const LARGE_BODY = 16 * 1024;
/** Past the default body limit of every version of the service (4 MiB; per endpoint: less). */
const OVER_LIMIT = 4 * 1024 * 1024;
const TYPE_NAMES: Record<number, string> = { 1: 'DECIDE', 2: 'VERDICT', 3: 'OUTCOMES', 4: 'ACK', 5: 'PING', 6: 'PONG', 15: 'ERROR' };

// ---------------------------------------------------------------------------------------------
// the service under test

export interface FuzzTarget {
  readonly httpPort: number;
  readonly framePort: number;
  readonly pid: number;
  alive(): boolean;
  /** How it ended, when it did. */
  exitInfo(): string;
  /** Log lines at error level or above, and anything on stderr. */
  errorLines(): string[];
  /** Resident set size in kB (0 where /proc is missing). */
  rssKb(): number;
  stop(): Promise<void>;
}

export async function startFuzzTarget(env: Record<string, string> = {}): Promise<FuzzTarget> {
  const httpPort = await freePort();
  const framePort = await freePort();
  const svc: ServiceChild = await startServiceChild({
    VERDICT_LISTEN: `127.0.0.1:${httpPort}`,
    VERDICT_FRAME_LISTEN: `127.0.0.1:${framePort}`,
    VERDICT_LOG_LEVEL: 'warn',
    VERDICT_POLICY_WATCH: '0',
    VERDICT_IDENTIFIER_KEY: 'fuzz-identifier-key-not-secret',
    // tap's process-info hook (inherited through NODE_OPTIONS) makes the service ~3x slower
    NODE_OPTIONS: (process.env.NODE_OPTIONS ?? '').replace(/"?--import=\S*@tapjs\/processinfo\S*"?/g, '').trim(),
    ...env,
  }, 30_000);
  const { child } = svc;
  const errors: string[] = [];
  let exit = '';
  child.once('exit', (code, signal) => { exit = `exited with ${signal ?? `code ${code}`}`; });
  const keep = (line: string) => { if (errors.length < 200) errors.push(line.slice(0, 4000)); };
  let outTail = '';
  child.stdout?.on('data', (d: Buffer) => {
    const lines = (outTail + d.toString()).split('\n');
    outTail = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      try {
        if ((JSON.parse(line) as { level?: number }).level! >= 50) keep(line);
      } catch { /* not a log line */ }
    }
  });
  child.stderr?.on('data', (d: Buffer) => { for (const l of d.toString().split('\n')) if (l.trim()) keep(`stderr: ${l}`); });
  const pid = child.pid ?? 0;
  return {
    httpPort,
    framePort,
    pid,
    alive: () => child.exitCode === null && child.signalCode === null,
    exitInfo: () => exit || 'running',
    errorLines: () => [...errors],
    rssKb: () => {
      try {
        return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
      } catch {
        return 0;
      }
    },
    stop: () => svc.stop(),
  };
}

// ---------------------------------------------------------------------------------------------
// HTTP

interface HttpAnswer { status: number; headers: IncomingHttpHeaders; body: Buffer; ms: number }

function sendHttp(port: number, agent: Agent, c: HttpCase, timeoutMs: number): Promise<HttpAnswer | { error: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const done = (v: HttpAnswer | { error: string; ms: number }) => { if (!settled) { settled = true; resolve(v); } };
    const headers: Record<string, string> = { ...c.headers };
    if (c.body && !c.chunked) headers['content-length'] = String(c.body.length);
    let req;
    try {
      req = request({ host: '127.0.0.1', port, method: c.method, path: c.path, headers, agent, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), ms: performance.now() - started }));
        res.on('error', (e) => done({ error: `response: ${e.message}`, ms: performance.now() - started }));
      });
    } catch (err) {
      done({ error: `client refused to send: ${(err as Error).message}`, ms: 0 });
      return;
    }
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', (e: NodeJS.ErrnoException) => done({ error: `${e.code ?? ''} ${e.message}`.trim(), ms: performance.now() - started }));
    if (c.body && c.chunked) {
      for (let at = 0; at < c.body.length; at += c.chunked) req.write(c.body.subarray(at, at + c.chunked));
      req.end();
    } else {
      req.end(c.body);
    }
  });
}

/** Malformed HTTP on a fresh connection: what came back before the server closed (or we gave up). */
function sendRaw(port: number, bytes: Buffer, timeoutMs: number): Promise<{ text: string; closed: boolean; error?: string }> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let error: string | undefined;
    const timer = setTimeout(() => { s.destroy(); resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: false, error }); }, timeoutMs);
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', (e: NodeJS.ErrnoException) => { error = e.code ?? e.message; });
    s.on('close', () => { clearTimeout(timer); resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: true, error }); });
    s.on('connect', () => { s.write(bytes); s.end(); });
  });
}

function decodeVerdict(body: Buffer, encoding: 'json' | 'protobuf'): Record<string, unknown> {
  if (encoding === 'protobuf') return DecideResponseType.toObject(DecideResponseType.decode(body), { enums: String, defaults: true });
  return JSON.parse(body.toString('utf8')) as Record<string, unknown>;
}

function verdictProblem(v: Record<string, unknown>, requestId: string | undefined): string | undefined {
  if (!ACTIONS.has(String(v.action))) return `verdict action ${JSON.stringify(v.action)}`;
  const score = v.score as number;
  if (!Number.isInteger(score) || score < 0 || score > 100) return `verdict score ${JSON.stringify(score)}`;
  if (!Array.isArray(v.reasons) || v.reasons.some((x) => typeof x !== 'string')) return 'verdict reasons are not a list of strings';
  if (typeof v.policy_version !== 'string' || v.policy_version === '') return 'verdict without policy_version';
  if (requestId !== undefined && v.request_id !== requestId) return `verdict for request_id ${JSON.stringify(v.request_id)}, sent ${JSON.stringify(requestId)}`;
  return undefined;
}

/** Why an answer breaks the invariants (undefined when it holds); `outcome` labels the statistics. */
function checkHttp(c: HttpCase, a: HttpAnswer): { problem?: string; outcome: string } {
  const ctype = String(a.headers['content-type'] ?? '');
  let errorCode = '';
  // /v1/auth answers nginx's auth_request, which reads only the status: 401/403 carry no body
  const authVerdict = c.path.startsWith('/v1/auth') && (a.status === 401 || a.status === 403);
  if (a.status >= 400 && c.method !== 'HEAD' && !authVerdict) {
    try {
      const e = (JSON.parse(a.body.toString('utf8')) as { error?: { code?: unknown; message?: unknown } }).error;
      if (!e || typeof e.code !== 'string' || !/^[A-Z][A-Z0-9_]*$/.test(e.code) || typeof e.message !== 'string' || e.message === '') {
        return { problem: `${a.status} without a JSON error {code, message}: ${a.body.toString('utf8').slice(0, 200)}`, outcome: String(a.status) };
      }
      errorCode = e.code;
      if (c.field && e.code === 'INVALID_FIELD' && !e.message.includes(c.field)) {
        return { problem: `INVALID_FIELD does not name the broken field "${c.field}": ${e.message.slice(0, 300)}`, outcome: `${a.status} ${errorCode}` };
      }
    } catch {
      return { problem: `${a.status} with a body that is not JSON: ${a.body.toString('latin1').slice(0, 200)}`, outcome: String(a.status) };
    }
  }
  const outcome = errorCode ? `${a.status} ${errorCode}` : String(a.status);
  if (a.status >= 500 && !SHED_STATUS.has(a.status)) return { problem: `server error ${outcome}: ${a.body.toString('utf8').slice(0, 300)}`, outcome };
  if (SHED_STATUS.has(a.status)) return { outcome: `shed ${outcome}` };
  if (c.expect === 'bad' && a.status < 400) return { problem: `bad input accepted with ${a.status}`, outcome };
  if (c.expect === 'ok' && a.status !== 200) {
    // a large valid body may meet a per-endpoint size limit below the global one
    if (a.status === 413 && (c.body?.length ?? 0) > LARGE_BODY) return { outcome };
    return { problem: `valid input answered ${outcome}: ${a.body.toString('utf8').slice(0, 300)}`, outcome };
  }
  if (a.status === 200 && (c.path.startsWith('/v1/decide') || c.path.startsWith('/v1/outcomes')) && c.method === 'POST') {
    const encoding = ctype.startsWith('application/x-protobuf') ? 'protobuf' : ctype.startsWith('application/json') ? 'json' : undefined;
    if (!encoding) return { problem: `200 with content-type "${ctype}"`, outcome };
    if (c.expect === 'ok' && c.answerEncoding && encoding !== c.answerEncoding) return { problem: `answered ${encoding}, Accept asked for ${c.answerEncoding}`, outcome };
    try {
      if (c.path.startsWith('/v1/decide')) {
        const p = verdictProblem(decodeVerdict(a.body, encoding), c.expect === 'ok' ? c.requestId : undefined);
        if (p) return { problem: p, outcome };
      } else {
        const ack = encoding === 'protobuf'
          ? OutcomeAckType.toObject(OutcomeAckType.decode(a.body), { defaults: true })
          : (JSON.parse(a.body.toString('utf8')) as Record<string, unknown>);
        // accepted = outcomes attributed to a request this service decided for that gateway
        if (c.expect === 'ok' && c.accepted !== undefined && !(ack.accepted <= c.accepted)) return { problem: `ack accepted ${String(ack.accepted)}, sent ${c.accepted}`, outcome };
        if (!Array.isArray(ack.verdicts)) return { problem: 'ack without a verdicts list', outcome };
      }
    } catch (err) {
      return { problem: `200 body does not decode: ${(err as Error).message}`, outcome };
    }
  }
  return { outcome };
}

// ---------------------------------------------------------------------------------------------
// frames

interface Answer { type: number; payload: Buffer }

/** A framed-transport client that collects answers. */
class FrameClient {
  readonly answers: Answer[] = [];
  closed = false;
  protocolError = '';
  private buf: Buffer = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  private constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      let off = 0;
      while (this.buf.length - off >= 4) {
        const len = this.buf.readUInt32BE(off);
        if (len === 0 || len > 64 * 1024 * 1024) { this.protocolError = `answer frame with length ${len}`; break; }
        if (this.buf.length - off - 4 < len) break;
        // the service greets every connection with a CHALLENGE: not an answer
        if (this.buf[off + 4] !== 7) this.answers.push({ type: this.buf[off + 4] ?? 0, payload: Buffer.from(this.buf.subarray(off + 5, off + 4 + len)) });
        off += 4 + len;
      }
      this.buf = this.buf.subarray(off);
      this.wake?.();
    });
    socket.on('error', () => { /* seen as close */ });
    socket.on('close', () => { this.closed = true; this.wake?.(); });
  }

  static open(port: number): Promise<FrameClient> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => resolve(new FrameClient(s)));
      s.once('error', reject);
    });
  }

  /** Resolves when `n` answers are in, the connection closed, or `ms` passed. */
  async waitFor(n: number, ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (this.answers.length < n && !this.closed && !this.protocolError && Date.now() < until) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, until - Date.now()));
        this.wake = () => { clearTimeout(t); r(); };
      });
      this.wake = undefined;
    }
  }

  async write(b: Buffer): Promise<void> {
    if (this.closed) return;
    if (!this.socket.write(b)) await new Promise<void>((r) => { this.socket.once('drain', r); this.socket.once('close', r); });
  }

  close(): void {
    this.socket.destroy();
  }
}

function errorCodeOf(a: Answer): string {
  return /^([A-Z][A-Z0-9_]*): ./s.exec(a.payload.toString('utf8'))?.[1] ?? '';
}

/** Why an answer breaks the invariants for the frame it answers; 'shed' for a documented refusal. */
function checkFrameAnswer(a: Answer, want: FrameAnswer): string | 'shed' | undefined {
  if (a.type === FRAME.ERROR) {
    const code = errorCodeOf(a);
    if (!code) return `ERROR frame not "CODE: message": ${JSON.stringify(a.payload.toString('utf8').slice(0, 200))}`;
    if (code === 'INTERNAL') return `ERROR INTERNAL (an unhandled exception): ${a.payload.toString('utf8').slice(0, 200)}`;
    if (!want.types.includes(FRAME.ERROR)) return SHED_CODE.test(code) ? 'shed' : `valid ${want.label} answered ERROR ${a.payload.toString('utf8').slice(0, 300)}`;
    return undefined;
  }
  if (!want.types.includes(a.type)) return `${want.label} answered with frame type ${TYPE_NAMES[a.type] ?? a.type}, expected ${want.types.map((t) => TYPE_NAMES[t]).join('|')}`;
  try {
    if (a.type === FRAME.VERDICT) return verdictProblem(DecideResponseType.toObject(DecideResponseType.decode(a.payload), { enums: String, defaults: true }), want.requestId);
    if (a.type === FRAME.ACK) {
      const ack = OutcomeAckType.toObject(OutcomeAckType.decode(a.payload), { defaults: true });
      if (want.accepted !== undefined && !(ack.accepted <= want.accepted)) return `ACK accepted ${String(ack.accepted)}, sent ${want.accepted}`;
    }
  } catch (err) {
    return `${TYPE_NAMES[a.type]} payload does not decode: ${(err as Error).message}`;
  }
  return undefined;
}

const tick = () => new Promise<void>((r) => setImmediate(r));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One valid decide + ping on a new connection: the transport still serves. */
async function framesServe(port: number, seed: number, tagText: string, timeoutMs = 5000): Promise<string | undefined> {
  const id = `fz-fresh-${tagText}`;
  let c: FrameClient;
  try {
    c = await FrameClient.open(port);
  } catch (err) {
    return `a new frame connection failed: ${(err as Error).message}`;
  }
  try {
    await c.write(Buffer.concat([frameBytes(FRAME.DECIDE, encDecide(validDecide(new Rng(seed, id), id))), frameBytes(FRAME.PING, Buffer.alloc(0))]));
    await c.waitFor(2, timeoutMs);
    const [v, p] = c.answers;
    if (!v || !p) return `a new connection got ${c.answers.length} of 2 answers in ${timeoutMs} ms${c.closed ? ' (closed)' : ''}`;
    const problem = checkFrameAnswer(v, { types: [FRAME.VERDICT], label: 'fresh decide', requestId: id });
    if (problem && problem !== 'shed') return `new connection: ${problem}`;
    if (p.type !== FRAME.PONG) return `new connection: PING answered ${TYPE_NAMES[p.type] ?? p.type}`;
    return undefined;
  } finally {
    c.close();
  }
}

async function runSession(port: number, s: FrameSession, seed: number, timeoutMs: number): Promise<{ problems: string[]; shed: number }> {
  const problems: string[] = [];
  let shed = 0;
  const c = await FrameClient.open(port);
  try {
    let expected = 0;
    const pipelined = s.tail?.pipelined === true;
    for (const [p, phase] of s.phases.entries()) {
      for (let i = 0; i < phase.writes.length; i++) {
        const last = pipelined && p === s.phases.length - 1 && i === phase.writes.length - 1;
        // a pipelined fatal tail goes in the same write as the last frames: they are answered first
        await c.write(last ? Buffer.concat([phase.writes[i] as Buffer, s.tail!.bytes]) : phase.writes[i] as Buffer);
        // split writes: let each piece leave as its own segment now and then
        if (phase.writes.length > 1) await (i % 16 === 15 ? sleep(1) : tick());
      }
      const from = expected;
      expected += phase.answers.length;
      await c.waitFor(expected, timeoutMs);
      if (c.protocolError) problems.push(c.protocolError);
      for (let k = 0; k < phase.answers.length; k++) {
        const a = c.answers[from + k];
        const want = phase.answers[k] as FrameAnswer;
        if (!a) {
          problems.push(`frame ${k} (${want.label}) unanswered after ${timeoutMs} ms: ${c.answers.length - from} of ${phase.answers.length} answers${c.closed ? ', connection closed' : ''}${pipelined ? ' (a zero or oversized frame length followed in the same write)' : ''}`);
          break;
        }
        const p = checkFrameAnswer(a, want);
        if (p === 'shed') shed++;
        else if (p) problems.push(`frame ${k} (${want.label}): ${p}`);
      }
      // (a pipelined fatal tail may add its ERROR; checked below)
      if (c.answers.length > expected && !pipelined) {
        await sleep(5);
        if (c.answers.length > expected) problems.push(`${c.answers.length - expected} answers more than frames sent`);
      }
    }
    if (s.tail) {
      if (!pipelined) await c.write(s.tail.bytes);
      if (s.tail.kind === 'fatal') {
        await c.waitFor(Number.MAX_SAFE_INTEGER, 3000);
        if (!c.closed) problems.push('connection still open 3 s after a zero or oversized frame length');
        for (const a of c.answers.slice(expected)) if (a.type !== FRAME.ERROR) problems.push(`answered ${TYPE_NAMES[a.type] ?? a.type} after a zero or oversized frame length`);
      } else {
        c.socket.end();
        await c.waitFor(Number.MAX_SAFE_INTEGER, 2000);
      }
      for (const a of c.answers.slice(expected)) if (a.type === FRAME.ERROR && errorCodeOf(a) === 'INTERNAL') problems.push(`ERROR INTERNAL after ${s.tail.kind}: ${a.payload.toString('utf8').slice(0, 200)}`);
      c.close();
      const fresh = await framesServe(port, seed, `${s.index}`);
      if (fresh) problems.push(`after ${s.tail.kind}: ${fresh}`);
    }
  } finally {
    c.close();
  }
  return { problems, shed };
}

// ---------------------------------------------------------------------------------------------
// the run

export interface FuzzOptions {
  seed: number;
  /** Stop after this many inputs of each transport (Infinity: until the deadline). */
  httpCases: number;
  frameSessions: number;
  /** Stop at this time (Date.now() ms), whatever the counts. */
  deadline?: number;
  /** Frames pipelined in one write in the big-pipeline check. */
  bigPipeline: number;
  concurrency: number;
  gen: GenOptions;
  /** Run only this input (reproduction). */
  only?: { transport: 'http' | 'frames'; index: number };
  progress?: (line: string) => void;
  /** HTTP answer / frame answers wait this long before the input counts as hung. */
  timeoutMs?: number;
}

export interface Failure {
  input: string;
  kind: string;
  problem: string;
  repro: string;
}

export interface FuzzReport {
  seed: number;
  httpInputs: number;
  frameSessions: number;
  frames: number;
  /** Statistics: "<kind> → <outcome>" counts (HTTP) and frame answers by type. */
  outcomes: Record<string, number>;
  shed: number;
  failures: Failure[];
  /** Failures beyond the first few of the same kind and problem, not listed. */
  suppressed: number;
  rssKb: { before: number; peak: number; after: number };
  /** The slowest inputs (ms from send to answer), slowest first. */
  slowest: Array<{ input: string; kind: string; ms: number; bytes: number }>;
  probe: { before: string; after: string; medianMs: number; maxMs: number };
  ms: number;
}

export function describeHttpCase(seed: number, c: HttpCase): string {
  const bytes = c.raw ?? c.body;
  const head = c.raw ? 'raw bytes on a fresh connection' : `${c.method} ${c.path} headers ${JSON.stringify(c.headers)}${c.chunked ? ` (chunked, ${c.chunked} B writes)` : ''}`;
  const shown = !bytes ? 'no body' : bytes.length <= 512 ? `body (${bytes.length} B, hex): ${bytes.toString('hex')}` : `body (${bytes.length} B, base64 of the first 1 KiB): ${bytes.subarray(0, 1024).toString('base64')}`;
  const again = c.index < 0 ? 'one of the fixed inputs every run sends first' : `regenerate: npm run fuzz -- --seed ${seed} --http ${c.index} --dump /tmp/fuzz-input.bin`;
  return `${head}; ${shown}; ${again}`;
}

export function describeSession(seed: number, s: FrameSession): string {
  const bytes = Buffer.concat(s.phases.flatMap((p) => p.writes));
  const writes = s.phases.reduce((n, p) => n + p.writes.length, 0);
  const shown = bytes.length <= 512 ? `hex: ${bytes.toString('hex')}` : `base64 of the first 1 KiB: ${bytes.subarray(0, 1024).toString('base64')}`;
  const again = s.index < 0 ? 'sent by every run' : `regenerate: npm run fuzz -- --seed ${seed} --frames ${s.index} --dump /tmp/fuzz-input.bin`;
  return `${s.kind} session, ${s.phases[0]?.answers.length ?? 0} frames in ${writes} writes (${bytes.length} B, ${shown})${s.tail ? `, then ${s.tail.kind} tail ${s.tail.bytes.subarray(0, 64).toString('hex')}${s.tail.pipelined ? ' in the same write' : ''}` : ''}; ${again}`;
}

async function probeHttp(port: number, agent: Agent, ip: string, id: string, json: boolean): Promise<{ action: string; ms: number; problem?: string }> {
  const body = json ? Buffer.from(JSON.stringify(probeRequest(ip, id))) : encDecide(probeRequest(ip, id));
  const c: HttpCase = {
    transport: 'http', index: -1, kind: 'probe', method: 'POST', path: '/v1/decide', body, expect: 'ok', requestId: id,
    headers: { 'content-type': json ? 'application/json' : 'application/x-protobuf' }, answerEncoding: json ? 'json' : 'protobuf',
  };
  const a = await sendHttp(port, agent, c, 5000);
  if ('error' in a) return { action: '', ms: a.ms, problem: `probe decide failed: ${a.error}` };
  const { problem } = checkHttp(c, a);
  if (problem || a.status !== 200) return { action: '', ms: a.ms, problem: `probe decide: ${problem ?? a.status}` };
  return { action: String(decodeVerdict(a.body, json ? 'json' : 'protobuf').action), ms: a.ms };
}

async function probeFrames(port: number, ip: string, id: string): Promise<{ action: string; problem?: string }> {
  const c = await FrameClient.open(port);
  try {
    await c.write(frameBytes(FRAME.DECIDE, encDecide(probeRequest(ip, id))));
    await c.waitFor(1, 5000);
    const a = c.answers[0];
    if (!a) return { action: '', problem: 'probe DECIDE frame unanswered in 5 s' };
    const p = checkFrameAnswer(a, { types: [FRAME.VERDICT], label: 'probe', requestId: id });
    if (p) return { action: '', problem: `probe DECIDE frame: ${p}` };
    return { action: String(DecideResponseType.toObject(DecideResponseType.decode(a.payload), { enums: String }).action) };
  } finally {
    c.close();
  }
}

export async function runFuzz(target: FuzzTarget, o: FuzzOptions): Promise<FuzzReport> {
  const started = Date.now();
  const timeoutMs = o.timeoutMs ?? 10_000;
  const agent = new Agent({ keepAlive: true, maxSockets: o.concurrency });
  const failures: Failure[] = [];
  const seen = new Map<string, number>();
  let suppressed = 0;
  const fail = (f: Failure) => {
    // the same problem from the same family of inputs (route.GET, route.PUT, …) is listed 3 times
    const sig = `${f.kind.split('.')[0]}|${f.problem.replace(/[0-9a-f]{6,}|\d+/g, '#').slice(0, 80)}`;
    const n = (seen.get(sig) ?? 0) + 1;
    seen.set(sig, n);
    if (n <= 3) failures.push(f);
    else suppressed++;
  };
  const outcomes: Record<string, number> = {};
  const count = (k: string) => { outcomes[k] = (outcomes[k] ?? 0) + 1; };
  let shed = 0;
  let httpDone = 0;
  let sessionsDone = 0;
  let frames = 0;
  const rss = { before: 0, peak: 0, after: 0 };
  const sampleRss = () => { const v = target.rssKb(); rss.peak = Math.max(rss.peak, v); return v; };
  const slowest: FuzzReport['slowest'] = [];
  const noteTime = (input: string, kind: string, ms: number, bytes: number) => {
    if (slowest.length >= 8 && ms <= (slowest[slowest.length - 1]?.ms ?? 0)) return;
    slowest.push({ input, kind, ms: Math.round(ms), bytes });
    slowest.sort((a, b) => b.ms - a.ms);
    if (slowest.length > 8) slowest.pop();
  };
  const timeUp = () => o.deadline !== undefined && Date.now() >= o.deadline;

  // before: warm up (the first decisions compile code paths), then the probe verdict to compare
  const warm = Array.from({ length: 100 }, (_, i) => i);
  await Promise.all(Array.from({ length: o.concurrency }, async () => {
    for (let i = warm.shift(); i !== undefined; i = warm.shift()) await probeHttp(target.httpPort, agent, `198.51.100.${i % 250}`, `warm-${i}`, i % 2 === 0);
  }));
  const before = await probeHttp(target.httpPort, agent, PROBE_IPS.before, 'probe-before', false);
  if (before.problem) fail({ input: 'probe-before', kind: 'probe', problem: before.problem, repro: '' });
  const beforeFrames = await probeFrames(target.framePort, '203.0.113.8', 'probe-before-frames');
  if (beforeFrames.problem) fail({ input: 'probe-before-frames', kind: 'probe', problem: beforeFrames.problem, repro: '' });
  rss.before = sampleRss();

  const lastInFlight: string[] = [];
  const died = () => {
    if (target.alive()) return false;
    fail({ input: 'service', kind: 'crash', problem: `the service ${target.exitInfo()}; inputs in flight or just sent: ${lastInFlight.join(', ')}`, repro: target.errorLines().slice(-5).join('\n') });
    return true;
  };

  async function oneHttp(c: HttpCase): Promise<void> {
    lastInFlight.push(`http#${c.index}`);
    if (lastInFlight.length > 2 * o.concurrency) lastInFlight.shift();
    if (c.raw) {
      const res = await sendRaw(target.httpPort, c.raw, 1500);
      // the last status line that is not 1xx (100 Continue comes first)
      const status = Number([...res.text.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => m[1]).filter((s) => !s?.startsWith('1')).pop() ?? 0);
      if (o.only) o.progress?.(`answer: ${res.text.slice(0, 1000)}`);
      count(`raw → ${status || (res.closed ? 'closed' : 'waiting')}`);
      if (status >= 500 && !SHED_STATUS.has(status)) fail({ input: `http#${c.index}`, kind: c.kind, problem: `raw HTTP answered ${status}: ${res.text.slice(0, 200)}`, repro: describeHttpCase(o.seed, c) });
      return;
    }
    const a = await sendHttp(target.httpPort, agent, c, timeoutMs);
    noteTime(`http#${c.index}`, c.kind, a.ms, c.body?.length ?? 0);
    if ('error' in a) {
      // a body over a limit may be cut off with the 413 while we still write it
      if ((c.body?.length ?? 0) > LARGE_BODY && /ECONNRESET|EPIPE|socket hang up/.test(a.error)) { count(`${c.kind} → reset`); return; }
      if (/client refused/.test(a.error)) { count('client-refused'); return; }
      count(`${c.kind} → no answer`);
      fail({ input: `http#${c.index}`, kind: c.kind, problem: `no HTTP answer: ${a.error}`, repro: describeHttpCase(o.seed, c) });
      return;
    }
    const { problem, outcome } = checkHttp(c, a);
    if (o.only) o.progress?.(`answer: ${a.status} ${String(a.headers['content-type'] ?? '')} ${a.body.toString(String(a.headers['content-type']).includes('json') ? 'utf8' : 'hex').slice(0, 1000)}`);
    count(`${c.kind.replace(/-\d+$/, '')} → ${outcome}`);
    if (outcome.startsWith('shed')) shed++;
    if (problem) fail({ input: `http#${c.index}`, kind: c.kind, problem, repro: describeHttpCase(o.seed, c) });
  }

  async function oneSession(s: FrameSession): Promise<void> {
    lastInFlight.push(`frames#${s.index}`);
    if (lastInFlight.length > 2 * o.concurrency) lastInFlight.shift();
    try {
      const t0 = performance.now();
      const r = await runSession(target.framePort, s, o.seed, timeoutMs);
      noteTime(`frames#${s.index}`, s.kind, performance.now() - t0, s.phases.reduce((n, p) => n + p.writes.reduce((m, w) => m + w.length, 0), 0));
      frames += s.phases.reduce((n, p) => n + p.answers.length, 0);
      shed += r.shed;
      count(`frames ${s.kind}${s.tail ? `+${s.tail.kind}` : ''} → ${r.problems.length ? 'problem' : 'ok'}`);
      for (const p of r.problems.slice(0, 3)) fail({ input: `frames#${s.index}`, kind: `frames.${s.kind}`, problem: p, repro: describeSession(o.seed, s) });
    } catch (err) {
      fail({ input: `frames#${s.index}`, kind: `frames.${s.kind}`, problem: `could not run: ${(err as Error).message}`, repro: describeSession(o.seed, s) });
    }
  }

  async function pool<T>(next: () => T | undefined, run: (x: T) => Promise<void>, width: number): Promise<void> {
    await Promise.all(Array.from({ length: width }, async () => {
      for (let x = next(); x !== undefined; x = next()) {
        await run(x);
        if (!target.alive()) return;
      }
    }));
  }

  if (!o.only) {
    // fixed inputs at the edges random ones rarely reach: past the (default) body limit, both ways
    const over = Buffer.concat([encDecide(probeRequest('192.0.2.10', 'over')), Buffer.alloc(OVER_LIMIT, 0x20)]);
    const base = { transport: 'http' as const, index: -1, method: 'POST', path: '/v1/decide', expect: 'bad' as const };
    await oneHttp({ ...base, kind: 'landmark.over-limit-pb', headers: { 'content-type': 'application/x-protobuf' }, body: over });
    await oneHttp({ ...base, kind: 'landmark.over-limit-json-chunked', headers: { 'content-type': 'application/json' }, body: Buffer.concat([Buffer.from('{"pad":"'), Buffer.alloc(OVER_LIMIT, 0x61), Buffer.from('"}')]), chunked: 65536 });
    await oneHttp({ ...base, path: '/v1/outcomes', kind: 'landmark.over-limit-outcomes', headers: { 'content-type': 'application/json' }, body: Buffer.alloc(OVER_LIMIT + 1, 0x20) });
  }
  if (o.only) {
    if (o.only.transport === 'http') {
      await oneHttp(httpCase(o.seed, o.only.index, o.gen));
      httpDone = 1;
    } else {
      await oneSession(frameSession(o.seed, o.only.index, o.gen));
      sessionsDone = 1;
    }
  } else {
    // rounds interleave both transports, so a long run exercises both until the deadline
    const HTTP_ROUND = 500;
    const FRAME_ROUND = 30;
    let round = 0;
    while (!timeUp() && (httpDone < o.httpCases || sessionsDone < o.frameSessions)) {
      const roundStart = performance.now();
      const httpEnd = Math.min(o.httpCases, httpDone + HTTP_ROUND);
      await pool(() => (httpDone < httpEnd && !timeUp() ? httpCase(o.seed, httpDone++, o.gen) : undefined), oneHttp, o.concurrency);
      if (died()) break;
      const httpMs = performance.now() - roundStart;
      const framesEnd = Math.min(o.frameSessions, sessionsDone + FRAME_ROUND);
      await pool(() => (sessionsDone < framesEnd && !timeUp() ? frameSession(o.seed, sessionsDone++, o.gen) : undefined), oneSession, Math.min(4, o.concurrency));
      if (died()) break;
      if (round === 0 && o.bigPipeline > 0) {
        await oneSession(bigPipeline(o.seed, o.bigPipeline));
        if (died()) break;
      }
      sampleRss();
      round++;
      o.progress?.(`${((Date.now() - started) / 1000).toFixed(1)} s: ${httpDone} HTTP inputs, ${sessionsDone} frame sessions (${frames} frames), ${failures.length + suppressed} failures, service RSS ${Math.round(rss.peak / 1024)} MB peak (round: HTTP ${(httpMs / 1000).toFixed(1)} s, frames ${((performance.now() - roundStart - httpMs) / 1000).toFixed(1)} s)`);
    }
  }

  // after: the service is alive, decides as before, quickly, on both transports
  const probe = { before: before.action, after: '', medianMs: 0, maxMs: 0 };
  if (!died()) {
    const after = await probeHttp(target.httpPort, agent, PROBE_IPS.after, 'probe-after', false);
    probe.after = after.action;
    if (after.problem) fail({ input: 'probe-after', kind: 'probe', problem: after.problem, repro: '' });
    else if (after.action !== before.action) fail({ input: 'probe-after', kind: 'probe', problem: `probe decided ${after.action} after the run, ${before.action} before`, repro: '' });
    const afterJson = await probeHttp(target.httpPort, agent, '198.18.0.9', 'probe-after-json', true);
    if (afterJson.problem) fail({ input: 'probe-after-json', kind: 'probe', problem: afterJson.problem, repro: '' });
    else if (afterJson.action !== before.action) fail({ input: 'probe-after-json', kind: 'probe', problem: `JSON probe decided ${afterJson.action} after the run, ${before.action} before`, repro: '' });
    const afterFrames = await probeFrames(target.framePort, '198.18.0.8', 'probe-after-frames');
    if (afterFrames.problem) fail({ input: 'probe-after-frames', kind: 'probe', problem: afterFrames.problem, repro: '' });
    else if (afterFrames.action !== beforeFrames.action) fail({ input: 'probe-after-frames', kind: 'probe', problem: `frame probe decided ${afterFrames.action} after the run, ${beforeFrames.action} before`, repro: '' });
    const fresh = await framesServe(target.framePort, o.seed, 'after');
    if (fresh) fail({ input: 'frames-after', kind: 'probe', problem: fresh, repro: '' });
    // latency: sequential decides from addresses the run never used
    const times: number[] = [];
    for (let i = 0; i < 21; i++) {
      const p = await probeHttp(target.httpPort, agent, `198.18.1.${i + 1}`, `probe-latency-${i}`, false);
      if (p.problem) { fail({ input: 'probe-latency', kind: 'probe', problem: p.problem, repro: '' }); break; }
      times.push(p.ms);
    }
    times.sort((a, b) => a - b);
    probe.medianMs = Math.round((times[Math.floor(times.length / 2)] ?? 0) * 10) / 10;
    probe.maxMs = Math.round((times[times.length - 1] ?? 0) * 10) / 10;
    if (probe.medianMs > 50 || probe.maxMs > 1000) fail({ input: 'probe-latency', kind: 'probe', problem: `decides after the run are slow: median ${probe.medianMs} ms, max ${probe.maxMs} ms`, repro: '' });
    // RSS: let the GC catch up with the large inputs, then compare with before
    await sleep(300);
    rss.after = sampleRss();
    if (rss.before > 0 && rss.after > Math.max(3 * rss.before, rss.before + 400 * 1024)) {
      fail({ input: 'rss', kind: 'memory', problem: `service RSS grew from ${Math.round(rss.before / 1024)} MB to ${Math.round(rss.after / 1024)} MB (peak ${Math.round(rss.peak / 1024)} MB)`, repro: '' });
    }
  }
  for (const line of target.errorLines()) fail({ input: 'service log', kind: 'log', problem: `the service logged an error: ${line.slice(0, 1500)}`, repro: 'the input is among those failing above, or run with --concurrency 1 to pin it' });
  agent.destroy();
  return { seed: o.seed, httpInputs: httpDone, frameSessions: sessionsDone + (o.bigPipeline > 0 && !o.only ? 1 : 0), frames: frames, outcomes, shed, failures, suppressed, rssKb: rss, slowest, probe, ms: Date.now() - started };
}

export function formatReport(r: FuzzReport): string {
  const lines = [
    `fuzz seed ${r.seed}: ${r.httpInputs} HTTP inputs, ${r.frameSessions} frame sessions (${r.frames} frames) in ${(r.ms / 1000).toFixed(1)} s`,
    `probe verdict before/after: ${r.probe.before}/${r.probe.after}; decide latency after the run: median ${r.probe.medianMs} ms, max ${r.probe.maxMs} ms`,
    `service RSS: ${Math.round(r.rssKb.before / 1024)} MB before, ${Math.round(r.rssKb.peak / 1024)} MB peak, ${Math.round(r.rssKb.after / 1024)} MB after; shed (503/504 or deadline errors): ${r.shed}`,
  ];
  lines.push(`slowest inputs: ${r.slowest.map((s) => `${s.input} [${s.kind}, ${s.bytes} B] ${s.ms} ms`).join('; ')}`);
  if (r.failures.length === 0) lines.push('no invariant broken');
  else {
    lines.push(`${r.failures.length + r.suppressed} invariant failures (${r.suppressed} more like the ones listed):`);
    for (const f of r.failures) lines.push(`- ${f.input} [${f.kind}] ${f.problem}${f.repro ? `\n    ${f.repro}` : ''}`);
  }
  return lines.join('\n');
}

/** Outcome statistics, most frequent first (for --verbose). */
export function formatOutcomes(r: FuzzReport): string {
  return Object.entries(r.outcomes).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${String(n).padStart(6)}  ${k}`).join('\n');
}
