// Helpers of the crowd end-to-end test (test/e2e/crowd.test.ts): a recording tap between the
// gateway and the decision service, the decoding of what it saw, and the classification of a
// response as Verdict's answer (block, API challenge, challenge page) or the shop's own.
//
// Why a tap: the service exposes no per-request decision log (GET /v1/inventory, /healthz,
// /metrics only) and the gateway passes reasons upstream only on TAG. To say *why* a customer
// was stopped, the tap forwards every gateway call byte for byte (the X-Verdict-Auth signature
// covers the body, which it does not touch) and keeps a copy. It is a process of its own (at the
// priority of the test that starts it), so the test's own work (playwright, the reporter) cannot
// delay a decide call past its budget; it reports an exchange only after the answer has gone back
// to the gateway.
//
// Requests are matched to decisions by path, time and (identity routes) the submitted
// identifier, not by request id: the id in the gateway's block body and challenge page is not
// the one it sent the service (each `ngx.var.request_id` read draws a new id when nothing in the
// nginx config references $request_id, as in the demo layout).
import { spawn } from 'node:child_process';
import {
  DecideRequestType,
  DecideResponseType,
  OutcomeAckType,
  OutcomeBatchType,
} from '../../decision-service/src/wire/codec.ts';
import { makeUsers, mulberry32, type DemoUser } from '../../scripts/demo-shop/users.ts';
import { ownChild } from '../../scripts/lib/service.ts';

/** One call the gateway made to the service, as the tap saw it. */
interface Exchange {
  /** when the tap had the whole request */
  at: number;
  path: string;
  contentType: string;
  request: Buffer;
  /** the service's HTTP status; 0 when the tap could not reach it */
  status: number;
  response: Buffer;
  error: string;
  /** ms the service took to answer the tap */
  ms: number;
}

/**
 * A decision of the service: a decide call (inline or monitor; its answer may have come too
 * late for the gateway, or be a 504 DEADLINE: then `action` is ''), or a verdict of async
 * scoring handed back in an outcome ack.
 */
export interface Verdict {
  /** when the tap had the request (tap clock = test clock) */
  at: number;
  /** ms from the gateway's ts_ms (stamped just before its call) to the tap having the request */
  transitMs: number;
  /** ms the service took */
  serviceMs: number;
  /** the service's HTTP status (200, or 504 when it judged the call past its budget) */
  serviceStatus: number;
  via: 'decide' | 'async';
  requestId: string;
  method: string;
  path: string;
  /** identity routes: the username or phone submitted */
  identifier: string;
  mode: string;
  action: string;
  score: number;
  reasons: string[];
  cacheKey: string;
  cacheTtlS: number;
}

/** What the gateway reported it did with a request (POST /v1/outcomes). */
export interface Outcome {
  /** the gateway's time of the request (Outcome.ts_ms), not of the report */
  at: number;
  requestId: string;
  method: string;
  path: string;
  status: number;
  action: string;
  fromCache: boolean;
  failOpen: string;
}

export interface DecideTap {
  /** "127.0.0.1:port", for the gateway's `service` */
  readonly addr: string;
  verdicts(): Verdict[];
  outcomes(): Outcome[];
  /** calls the tap could not forward */
  errors(): string[];
  stop(): Promise<void>;
}

// Plain JavaScript, run by `node -e`: an HTTP/1.1 keep-alive proxy that reports over IPC.
const TAP_PROCESS = `
const http = require('node:http');
const [host, port] = process.argv[1].split(':');
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const srv = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const at = Date.now();
    const up = http.request({ host, port: Number(port), method: req.method, path: req.url, headers: req.headers, agent }, (ur) => {
      const out = [];
      ur.on('data', (c) => out.push(c));
      ur.on('end', () => {
        const answer = Buffer.concat(out);
        const headers = Object.assign({}, ur.headers);
        delete headers['transfer-encoding'];
        headers['content-length'] = String(answer.length);
        res.writeHead(ur.statusCode, headers);
        res.end(answer);
        process.send({ at, path: req.url, contentType: req.headers['content-type'] || '',
          request: body, status: ur.statusCode, response: answer, error: '', ms: Date.now() - at });
      });
    });
    up.on('error', (e) => {
      res.destroy();
      process.send({ at, path: req.url, contentType: '', request: body, status: 0, response: Buffer.alloc(0), error: String(e), ms: Date.now() - at });
    });
    up.end(body);
  });
});
srv.keepAliveTimeout = 120000;
srv.listen(0, '127.0.0.1', () => process.send({ listening: srv.address().port }));
process.on('disconnect', () => process.exit(0));
`;

const toBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/** Starts the tap in front of the service at "host:port". */
export async function startDecideTap(service: string): Promise<DecideTap> {
  // NODE_OPTIONS cleared: tap's loader hooks are not needed by plain JavaScript and slow it down
  const child = spawn(process.execPath, ['-e', TAP_PROCESS, service], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced', env: { ...process.env, NODE_OPTIONS: '' },
  });
  const owned = ownChild(child);
  const seen: Exchange[] = [];
  const listening = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the decide tap exited (${code}) before listening`)));
    child.on('message', (m: { listening?: number } & Exchange) => {
      if (m.listening !== undefined) { resolve(m.listening); return; }
      seen.push({ ...m, request: toBuffer(m.request), response: toBuffer(m.response) });
    });
  });

  const OBJ = { enums: String, longs: Number, defaults: true } as const;
  const verdicts = (): Verdict[] => {
    const out: Verdict[] = [];
    for (const x of seen) {
      if (!x.contentType.includes('protobuf')) continue;
      if (x.path.startsWith('/v1/decide')) {
        const q = DecideRequestType.toObject(DecideRequestType.decode(x.request), OBJ);
        const r = x.status === 200 ? DecideResponseType.toObject(DecideResponseType.decode(x.response), OBJ) : undefined;
        out.push({
          at: x.at, transitMs: x.at - Number(q.ts_ms), serviceMs: x.ms, serviceStatus: x.status, via: 'decide',
          requestId: String(q.request_id), method: String(q.method), path: String(q.path), identifier: String(q.identifier),
          mode: String(q.mode), action: r ? String(r.action) : '', score: r ? Number(r.score) : 0,
          reasons: r ? (r.reasons as string[]) : [], cacheKey: r ? String(r.cache_key) : '', cacheTtlS: r ? Number(r.cache_ttl_s) : 0,
        });
      } else if (x.path.startsWith('/v1/outcomes') && x.status === 200) {
        const batch = OutcomeBatchType.toObject(OutcomeBatchType.decode(x.request), OBJ);
        const byId = new Map<string, Record<string, unknown>>();
        for (const o of batch.outcomes as Array<Record<string, unknown>>) byId.set(String(o.request_id), o);
        const ack = OutcomeAckType.toObject(OutcomeAckType.decode(x.response), OBJ);
        for (const r of (ack.verdicts as Array<Record<string, unknown>>) ?? []) {
          const o = byId.get(String(r.request_id));
          const q = (o?.request ?? {}) as Record<string, unknown>;
          out.push({
            at: x.at, transitMs: 0, serviceMs: x.ms, serviceStatus: x.status, via: 'async',
            requestId: String(r.request_id), method: String(o?.method ?? ''), path: String(o?.path ?? ''), identifier: String(q.identifier ?? ''),
            mode: 'ASYNC', action: String(r.action), score: Number(r.score), reasons: r.reasons as string[],
            cacheKey: String(r.cache_key), cacheTtlS: Number(r.cache_ttl_s),
          });
        }
      }
    }
    return out;
  };

  const outcomes = (): Outcome[] => {
    const out: Outcome[] = [];
    for (const x of seen) {
      if (!x.path.startsWith('/v1/outcomes') || !x.contentType.includes('protobuf')) continue;
      const batch = OutcomeBatchType.toObject(OutcomeBatchType.decode(x.request), OBJ);
      for (const o of batch.outcomes as Array<Record<string, unknown>>) {
        out.push({
          at: Number(o.ts_ms), requestId: String(o.request_id), method: String(o.method), path: String(o.path), status: Number(o.status),
          action: String(o.action), fromCache: Boolean(o.from_cache), failOpen: String(o.fail_open),
        });
      }
    }
    return out;
  };

  return {
    addr: `127.0.0.1:${listening}`,
    verdicts,
    outcomes,
    errors: () => seen.filter((x) => x.error !== '').map((x) => `${x.path}: ${x.error}`),
    stop: () => owned.stop(),
  };
}

/** Verdict's answer to a request, told apart from the shop's own 401/404/409/410. */
export type VerdictAnswer =
  | { kind: 'blocked'; requestId: string }
  | { kind: 'api-challenge'; requestId: string; nonce: string; difficulty: number }
  | { kind: 'challenge-page'; requestId: string };

/**
 * Classifies a response by its status, content type and body: the block body
 * `{"error":"blocked",…}`, the 429 descriptor `{"error":"challenge",…}`, or the interstitial
 * (an HTML page with the element id="verdict"). Anything else is the shop's (undefined).
 */
export function verdictAnswer(status: number, contentType: string, body: string): VerdictAnswer | undefined {
  if (contentType.includes('json')) {
    let j: { error?: unknown; request_id?: unknown; challenge?: { nonce?: unknown; difficulty?: unknown } };
    try { j = JSON.parse(body) as typeof j; } catch { return undefined; }
    const requestId = typeof j.request_id === 'string' ? j.request_id : '';
    if (j.error === 'blocked') return { kind: 'blocked', requestId };
    if (j.error === 'challenge' && j.challenge) {
      return { kind: 'api-challenge', requestId, nonce: String(j.challenge.nonce), difficulty: Number(j.challenge.difficulty) };
    }
    return undefined;
  }
  if (status === 429 && contentType.includes('text/html') && /id="verdict"/.test(body)) {
    return { kind: 'challenge-page', requestId: /Request ID: ([\w-]+)/.exec(body)?.[1] ?? '' };
  }
  return undefined;
}

/** One customer of the crowd: a seeded demo-shop user and how they behave. */
export interface Customer {
  n: number;
  user: DemoUser;
  /** what they type in the login box: their username, or (some of them) their phone */
  login: string;
  /** the wrong password typed first, or undefined */
  typo: string | undefined;
  /** ms after the crowd's start that they open the home page */
  arriveMs: number;
  /** per-key typing delay, ms */
  keyDelayMs: number;
  /** a pause generator for this customer: ms in [lo, hi) */
  pause(lo: number, hi: number): number;
}

/**
 * `count` distinct real users of the demo shop's default population (seed 42, 5000 users, the
 * one startShop() serves), spread over it; every fourth mistypes the password once (drops the
 * last character or doubles it), every fifth logs in with the phone number. Arrivals are a
 * Poisson process with `meanGapMs` between customers, so claims do not come at a regular beat.
 */
export function crowd(count: number, seed: number, meanGapMs: number): Customer[] {
  const users = makeUsers();
  const rng = mulberry32(seed);
  const out: Customer[] = [];
  let at = 0;
  for (let n = 1; n <= count; n++) {
    const user = users[(n * 113 + 7) % users.length] as DemoUser;
    const pw = user.password;
    const typo = n % 4 === 1 ? (rng() < 0.5 ? pw.slice(0, -1) : pw + pw.slice(-1)) : undefined;
    const own = mulberry32(seed * 1000 + n);
    out.push({
      n,
      user,
      login: n % 5 === 3 ? user.phone : user.username,
      typo,
      arriveMs: Math.round(at),
      keyDelayMs: 50 + Math.floor(rng() * 90),
      pause: (lo, hi) => lo + Math.floor(own() * (hi - lo)),
    });
    at += -Math.log(1 - rng()) * meanGapMs;
  }
  return out;
}

/** A request the browser made, to be matched with what Verdict decided for it. */
export interface Sent {
  method: string;
  path: string;
  /** browser clock: request start and response (same machine, same wall clock as the tap) */
  from: number;
  to: number;
  /** identity routes: what was typed as the username */
  identifier?: string;
}

/** What Verdict did with one request, in words, and whether the engine judged it at all. */
export interface Decided {
  text: string;
  /** set when the request went through undecided (fail-open) */
  undecided: string | undefined;
  /** the service's action that came after the gateway had stopped waiting ('' when none came) */
  late: string;
  /** the engine reached a verdict for it, in time or late (not so for a 504 or a call never made) */
  judged: boolean;
}

const SLACK_MS = 30;

const showVerdict = (v: Verdict): string => `${v.action} score ${v.score} [${v.reasons.join(', ') || 'no reason'}]` +
  (v.cacheKey && v.cacheTtlS > 0 ? `, cached ${v.cacheTtlS} s on ${v.cacheKey.replace(/:([0-9a-f]{12})[0-9a-f]+$/i, ':$1…')}` : '');

/**
 * The decision for a request: its decide call (path, identifier, inside the request's time
 * window), its fail-open if the gateway reported one, or the cached verdict the gateway
 * enforced without a call. Async locations (pages) only have cache hits to explain.
 */
export function decisionFor(s: Sent, verdicts: Verdict[], outcomes: Outcome[]): Decided {
  const inWindow = (at: number) => at >= s.from - SLACK_MS && at <= s.to + SLACK_MS;
  const call = verdicts
    .filter((v) => v.via === 'decide' && v.method === s.method && v.path === s.path && inWindow(v.at) &&
      (s.identifier === undefined || v.identifier === s.identifier))
    .at(-1);
  if (call) {
    const failOpen = outcomes.find((o) => o.requestId === call.requestId)?.failOpen ?? '';
    if (call.serviceStatus !== 200) {
      const why = `fail-open: the service answered HTTP ${call.serviceStatus} (its call arrived ${call.transitMs} ms after the gateway stamped it)`;
      return { text: `undecided (${why})`, undecided: why, late: '', judged: false };
    }
    if (failOpen) {
      const why = `fail-open: ${failOpen}; the service's ${call.action} came after ${call.transitMs + call.serviceMs} ms`;
      return { text: `undecided (${why}) — it would have been ${showVerdict(call)}`, undecided: why, late: call.action, judged: true };
    }
    return { text: `${call.mode.toLowerCase()} ${showVerdict(call)}`, undecided: undefined, late: '', judged: true };
  }
  const o = outcomes.filter((x) => x.method === s.method && x.path === s.path && inWindow(x.at)).at(-1);
  if (o?.fromCache) {
    const cached = verdicts
      .filter((v) => v.action === o.action && v.cacheKey !== '' && v.cacheTtlS > 0 && v.at <= o.at + SLACK_MS && v.at + v.cacheTtlS * 1000 >= o.at)
      .at(-1);
    return { text: `gateway cache ${o.action}` + (cached ? `, set by ${cached.method} ${cached.path}: ${showVerdict(cached)}` : ''), undecided: undefined, late: '', judged: true };
  }
  if (o?.failOpen) return { text: `undecided (fail-open: ${o.failOpen})`, undecided: `fail-open: ${o.failOpen}`, late: '', judged: false };
  if (o) return { text: `${o.action} (${o.status})`, undecided: undefined, late: '', judged: true };
  return { text: 'no decision found', undecided: undefined, late: '', judged: false };
}
