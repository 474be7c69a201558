// Open-loop load for the fault matrix: requests leave on a fixed schedule (slot k due at
// t0 + k / rate) whatever happens to earlier ones, so a stalled gateway does not lower the offered
// load and every request's fate is recorded. undici keep-alive pool.
//
// One resend, as browsers and curl do: a request whose connection was reset or closed before any
// byte of its answer (the race every HTTP server has when it closes an idle keep-alive connection,
// as nginx does to every idle connection of an old worker at a reload) is sent once more on a new
// connection with `X-Chaos-Try: 2`. Resent requests are counted on their own; one whose first
// attempt had reached the upstream anyway (the application saw it twice) counts as lost, as does
// one whose resend fails too.
//
// Each request carries `X-Chaos-Id: <k>`; the upstream logs that id with the `X-Verdict-Fail-Open`
// header it received, which is how a response is told decided from failed open (upstream-log.ts).
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import type { WrkRequest } from '../lib/wrk.ts';

/** Why a request got no HTTP answer; index 0 = it got one. */
export const ERROR_KINDS = ['', 'connect', 'reset', 'timeout', 'other'] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

const CONNECT = 1;
const RESET = 2;
const TIMEOUT = 3;
const OTHER = 4;

function errorKind(code: string): number {
  switch (code) {
    case 'ECONNREFUSED':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return CONNECT;
    case 'UND_ERR_SOCKET':
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_CLOSED':
      return RESET;
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return TIMEOUT;
    default:
      return OTHER;
  }
}

/** Per-request records, index = request id; times in ms since the first slot. */
export interface LoadRecords {
  /** requests sent (ids 0..sent-1) */
  sent: number;
  /** when the slot was due */
  intended: Float64Array;
  /** when it actually left (the pacer's lateness = sent − intended) */
  started: Float64Array;
  /** when the answer (or the error) arrived; latency from `intended` corrects coordinated omission */
  finished: Float64Array;
  /** HTTP status, 0 = no answer (see `error`) */
  status: Uint16Array;
  /** index into ERROR_KINDS */
  error: Uint8Array;
  /** 1 = the first attempt was reset before any answer and the request was sent again */
  resent: Uint8Array;
  /** raw error codes seen, with counts (for the JSON) */
  errorCodes: Record<string, number>;
}

export interface OpenLoopOptions {
  url: string;
  requests: readonly WrkRequest[];
  /** requests per second */
  rate: number;
  connections: number;
  /** per-request limit for headers and for the body */
  timeoutMs: number;
  /** upper bound of the run's length (arrays are sized for it; sending stops there) */
  maxDurationS: number;
}

export interface OpenLoop {
  /** ms since the first slot (the clock every fault time is read on) */
  now(): number;
  /** stops sending; resolves when every request sent has its answer or error */
  stop(): Promise<LoadRecords>;
}

export function startOpenLoop(o: OpenLoopOptions): OpenLoop {
  const cap = Math.ceil(o.rate * o.maxDurationS);
  const rec: LoadRecords = {
    sent: 0,
    intended: new Float64Array(cap),
    started: new Float64Array(cap),
    finished: new Float64Array(cap),
    status: new Uint16Array(cap),
    error: new Uint8Array(cap),
    resent: new Uint8Array(cap),
    errorCodes: {},
  };
  const pool = new Pool(o.url, {
    connections: o.connections,
    pipelining: 1,
    headersTimeout: o.timeoutMs,
    bodyTimeout: o.timeoutMs,
    connectTimeout: o.timeoutMs,
  });
  const interval = 1000 / o.rate;
  const t0 = performance.now() + 20;
  const now = () => performance.now() - t0;
  let inFlight = 0;
  let stopped = false;
  let drained: (() => void) | null = null;

  // headers as flat [name, value, ...] arrays built once; each request adds its id to a copy
  const flat = o.requests.map((r) => Object.entries(r.headers).flat());
  const attempt = (k: number, headers: string[], req: WrkRequest, retry: boolean) => {
    pool.request({ path: req.path, method: req.method as 'GET', headers, body: req.body }).then(
      async (res) => {
        // the status is known; a body that then fails still counts as answered
        rec.status[k] = res.statusCode;
        try { await res.body.dump(); } catch { /* answered; body cut */ }
        done(k);
      },
      (err: { code?: string }) => {
        const code = err.code ?? 'unknown';
        const kind = errorKind(code);
        if (retry && kind === RESET) {
          rec.resent[k] = 1;
          rec.errorCodes[`${code} (resent)`] = (rec.errorCodes[`${code} (resent)`] ?? 0) + 1;
          attempt(k, [...headers, 'x-chaos-try', '2'], req, false);
          return;
        }
        rec.error[k] = kind;
        rec.errorCodes[code] = (rec.errorCodes[code] ?? 0) + 1;
        done(k);
      },
    );
  };
  const done = (k: number) => {
    rec.finished[k] = now();
    inFlight--;
    if (inFlight === 0 && drained) drained();
  };
  const send = (k: number) => {
    const i = k % o.requests.length;
    const req = o.requests[i]!;
    const headers = flat[i]!.slice();
    headers.push('x-chaos-id', String(k));
    rec.intended[k] = k * interval;
    rec.started[k] = now();
    inFlight++;
    attempt(k, headers, req, true);
  };

  // a 1 ms timer sends every slot that is due; late slots go at once (lateness is recorded)
  let timer: NodeJS.Timeout | null = null;
  const tick = () => {
    const t = now();
    while (!stopped && rec.sent < cap && rec.sent * interval <= t) send(rec.sent++);
    if (!stopped && rec.sent < cap) timer = setTimeout(tick, 1);
  };
  timer = setTimeout(tick, 20);

  return {
    now,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (inFlight > 0) await new Promise<void>((r) => { drained = r; });
      await pool.close();
      return rec;
    },
  };
}
