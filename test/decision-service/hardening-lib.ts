// Measurements of the decision service against hostile clients and overload (issue 10), run
// against a service child started from any checkout (so the same numbers can be taken on the
// code before the change): decide latency while other clients send huge outcome batches and
// deeply nested bodies, memory while a client sends and never reads, stale decisions computed
// after SIGSTOP/SIGCONT, and the latency of the first decisions after start.
// Used by hostile-load.test.ts (bounded assertions) and hardening.measure.ts (the numbers).

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer as createHttpServer, request as httpRequest, Agent } from 'node:http';
import { freePort, repoRoot } from '../../scripts/lib/nginx.ts';
import { ownChild } from '../../scripts/lib/service.ts';
import { DecideRequestType, OutcomeBatchType } from '../../decision-service/src/wire/codec.ts';
import { FRAME, frame } from '../../decision-service/src/wire/frame-server.ts';

const here = dirname(fileURLToPath(import.meta.url));

export interface Target {
  readonly child: ChildProcess;
  readonly httpPort: number;
  readonly framePort: number;
  /** From spawn to the "listening" line (ms). */
  readonly startMs: number;
  rssMiB(): number;
  metric(name: string): Promise<number>;
  stop(): Promise<void>;
}

/** Starts `root`'s decision service (decision-service/src/main.ts under tsx) on free ports. */
export async function startTarget(root = repoRoot, env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<Target> {
  const httpPort = await freePort();
  const framePort = await freePort();
  const spawned = performance.now();
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', 'decision-service/src/main.ts'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      VERDICT_LISTEN: `127.0.0.1:${httpPort}`,
      VERDICT_FRAME_LISTEN: `127.0.0.1:${framePort}`,
      VERDICT_LOG_LEVEL: 'error',
      VERDICT_POLICY_WATCH: '0',
      VERDICT_IDENTIFIER_KEY: 'measure-identifier-key-0123456789',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const { stop } = ownChild(child);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`service did not start:\n${out}`)), 60_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('listening on')) { clearTimeout(timer); resolve(); }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`service exited (${code}):\n${out}`)); });
  });
  const startMs = performance.now() - spawned;
  return {
    child,
    httpPort,
    framePort,
    startMs,
    rssMiB: () => {
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        return m ? Number(m[1]) / 1024 : 0;
      } catch {
        return 0;
      }
    },
    metric: async (name) => {
      const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
      let sum = 0;
      for (const line of text.split('\n')) if (line.startsWith(name) && /^[a-z_]+(\{|\s)/.test(line)) sum += Number(line.split(' ').pop());
      return sum;
    },
    stop,
  };
}

const decideBody = (fields: Record<string, unknown>) =>
  Buffer.from(DecideRequestType.encode(DecideRequestType.fromObject({ client_ip: '198.51.100.7', method: 'GET', path: '/', ...fields })).finish());

/** A framed connection answering one request at a time (resolves each answer's type and payload). */
class FrameConn {
  private pending: Buffer = Buffer.alloc(0);
  private waiting: Array<(a: { type: number; payload: Buffer }) => void> = [];

  private constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      this.pending = this.pending.length ? Buffer.concat([this.pending, d]) : d;
      while (this.pending.length >= 4 && this.pending.length >= 4 + this.pending.readUInt32BE(0)) {
        const len = this.pending.readUInt32BE(0);
        const a = { type: this.pending[4] as number, payload: this.pending.subarray(5, 4 + len) };
        this.pending = this.pending.subarray(4 + len);
        if (a.type === 7) continue; // the CHALLENGE greeting: not an answer
        this.waiting.shift()?.(a);
      }
    });
    socket.on('error', () => {});
  }

  static open(port: number): Promise<FrameConn> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(new FrameConn(s)));
      s.once('error', reject);
    });
  }

  ask(f: Buffer): Promise<{ type: number; payload: Buffer }> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.socket.write(f);
    });
  }
}

function quantiles(xs: number[]): { n: number; p50: number; p99: number; max: number; slowest: string } {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? Number.NaN;
  const max = s[s.length - 1] ?? Number.NaN;
  const slowest = xs.map((x, i) => [Math.round(x), i] as const).sort((a, b) => b[0] - a[0]).slice(0, 5);
  return { n: s.length, p50: q(0.5), p99: q(0.99), max, slowest: slowest.map(([ms, i]) => `${ms} ms @${i}`).join(', ') };
}

function post(port: number, path: string, body: Buffer | string, contentType: string, agent: Agent): Promise<number> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': contentType, 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

export function outcomeBatch(n: number): Buffer {
  const outcomes = Array.from({ length: n }, (_, i) => ({
    request_id: `o${i}`, ts_ms: Date.now(), client_ip: `203.0.113.${i % 200}`, method: 'POST', path: '/api/auth/login', status: i % 3 ? 401 : 404,
    request: i % 3 === 0 ? { request_id: `o${i}`, client_ip: `203.0.113.${i % 200}`, method: 'GET', path: `/api/orders/${i}`, user_agent: 'python-requests/2.32', header_names: ['host', 'user-agent', 'accept'], mode: 1 } : undefined,
  }));
  return Buffer.from(OutcomeBatchType.encode(OutcomeBatchType.fromObject({ gateway_id: 'hostile/1', outcomes })).finish());
}

export interface HostileCounts {
  readonly frameBatches: number;
  readonly httpBatches: number;
  readonly nestedBodies: number;
  readonly nestedStatuses: number[];
}

export interface HostileResult extends HostileCounts {
  readonly frameDecideMs: ReturnType<typeof quantiles>;
  readonly httpDecideMs: ReturnType<typeof quantiles>;
}

/**
 * The hostile clients, for `seconds`: `batch`-outcome protobuf batches back to back over frames
 * and over HTTP, and 4 MB and 1 MB bodies of nested JSON arrays to /v1/outcomes and /v1/decide. Run in a
 * child process (hostile-clients.ts) so their work does not delay the measuring client.
 */
export async function hostileClients(httpPort: number, framePort: number, seconds: number, batch: number, pauseMs = 0): Promise<HostileCounts> {
  const big = outcomeBatch(batch);
  const bigFrame = frame(FRAME.OUTCOMES, big);
  // 4 MB (over the default outcomes limit: refused from its Content-Length) and 1 MB (read, then
  // refused by the nesting scan).
  const nested = [4_000_000, 1_000_000].map((n) => Buffer.from(`{"outcomes":${'['.repeat(n / 2)}${']'.repeat(n / 2)}}`));
  const until = Date.now() + seconds * 1000;
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  let frameBatches = 0;
  let httpBatches = 0;
  let nestedBodies = 0;
  const nestedStatuses = new Set<number>();
  // A short pause after each body: the point is what one body does to other clients' decides,
  // not a CPU saturated by the attack (that is a capacity question).
  const pause = () => new Promise((r) => setTimeout(r, pauseMs));
  const frames = (async () => {
    const c = await FrameConn.open(framePort);
    while (Date.now() < until) {
      if ((await c.ask(bigFrame)).type === FRAME.ACK) frameBatches++;
      await pause();
    }
    c.socket.destroy();
  })();
  const http = (async () => {
    while (Date.now() < until) {
      if ((await post(httpPort, '/v1/outcomes', big, 'application/x-protobuf', agent)) === 200) httpBatches++;
      await pause();
    }
  })();
  const deep = (async () => {
    while (Date.now() < until) {
      const i = nestedBodies % 4;
      nestedStatuses.add(await post(httpPort, i < 2 ? '/v1/outcomes' : '/v1/decide', nested[i % 2] as Buffer, 'application/json', agent));
      nestedBodies++;
      await pause();
    }
  })();
  await Promise.all([frames, http, deep]);
  agent.destroy();
  return { frameBatches, httpBatches, nestedBodies, nestedStatuses: [...nestedStatuses].sort() };
}

/**
 * For `seconds`: one client decides over frames and one over HTTP, one at a time, every 2 ms,
 * timing each, while hostileClients() runs in a child process.
 */
export async function hostileLoad(t: Target, seconds: number, batch = 5000, pauseMs = 0): Promise<HostileResult> {
  const hostile = spawn(process.execPath, ['--import', 'tsx', join(here, 'hostile-clients.ts'), String(t.httpPort), String(t.framePort), String(seconds), String(batch), String(pauseMs)], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let report = '';
  hostile.stdout?.on('data', (d: Buffer) => { report += d.toString(); });
  const ended = new Promise<void>((resolve) => hostile.once('exit', () => resolve()));
  // The child builds its bodies first: measure once it says it has started.
  await new Promise<void>((resolve) => {
    const check = () => (report.includes('started') ? resolve() : setTimeout(check, 20));
    check();
  });
  const decideFrame = frame(FRAME.DECIDE, decideBody({ request_id: 'm' }));
  const decideJson = JSON.stringify({ client_ip: '198.51.100.7', method: 'GET', path: '/', request_id: 'h' });
  const until = Date.now() + seconds * 1000;
  const agent = new Agent({ keepAlive: true });
  const frameLat: number[] = [];
  const httpLat: number[] = [];
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const measureFrames = (async () => {
    const c = await FrameConn.open(t.framePort);
    while (Date.now() < until) {
      const t0 = performance.now();
      await c.ask(decideFrame);
      frameLat.push(performance.now() - t0);
      await sleep(2);
    }
    c.socket.destroy();
  })();
  const measureHttp = (async () => {
    while (Date.now() < until) {
      const t0 = performance.now();
      await post(t.httpPort, '/v1/decide', decideJson, 'application/json', agent);
      httpLat.push(performance.now() - t0);
      await sleep(2);
    }
  })();
  await Promise.all([measureFrames, measureHttp]);
  agent.destroy();
  await ended;
  const counts = JSON.parse(report.slice(report.indexOf('{'))) as HostileCounts;
  return { ...counts, frameDecideMs: quantiles(frameLat), httpDecideMs: quantiles(httpLat) };
}

/** RSS growth while a client sends decide frames for `seconds` and never reads an answer. */
export async function neverReader(t: Target, seconds: number): Promise<{ rssBeforeMiB: number; rssAfterMiB: number; offeredMiB: number }> {
  const rssBeforeMiB = t.rssMiB();
  const s = connect(t.framePort, '127.0.0.1');
  await new Promise((r) => s.once('connect', r));
  s.pause();
  const chunk = Buffer.concat(Array.from({ length: 1000 }, (_, i) => frame(FRAME.DECIDE, decideBody({ request_id: `n${i}`, path: `/n/${i}` }))));
  const until = Date.now() + seconds * 1000;
  let offered = 0;
  await new Promise<void>((resolve) => {
    const more = () => {
      while (Date.now() < until) {
        offered += chunk.length;
        if (!s.write(chunk)) {
          s.once('drain', more);
          return;
        }
      }
      resolve();
    };
    more();
    setTimeout(resolve, seconds * 1000 + 100);
  });
  const rssAfterMiB = t.rssMiB();
  s.destroy();
  return { rssBeforeMiB, rssAfterMiB, offeredMiB: offered / 1048576 };
}

/**
 * A gateway sending `rate` INLINE decides a second, each with a 25 ms budget on its own
 * connection that it abandons when the budget runs out (as the Lua client does), for 1 s, then
 * through a `stopMs` SIGSTOP of the service. Counts what the service computed afterwards.
 */
export async function stopCont(t: Target, stopMs = 5000, rate = 100): Promise<{ sentDuringStop: number; computedAfter: number; expiredAfter: number }> {
  const gateway = 'measure-gw/1';
  const send = (ts: number) => new Promise<void>((resolve) => {
    const s = connect(t.framePort, '127.0.0.1');
    s.on('error', () => {});
    s.write(frame(FRAME.DECIDE, decideBody({ request_id: `s${ts}`, ts_ms: ts, budget_ms: 25, gateway_id: gateway, path: '/api/orders/1' })));
    const done = () => { s.destroy(); resolve(); };
    s.once('data', done);
    setTimeout(done, 25);
  });
  const interval = 1000 / rate;
  for (let i = 0; i < rate; i++) {
    void send(Date.now());
    await new Promise((r) => setTimeout(r, interval));
  }
  await new Promise((r) => setTimeout(r, 200));
  const decidedBefore = await t.metric('verdict_decisions_total');
  const expiredBefore = await t.metric('verdict_decide_expired_total');
  t.child.kill('SIGSTOP');
  const stopUntil = Date.now() + stopMs;
  let sent = 0;
  while (Date.now() < stopUntil) {
    void send(Date.now());
    sent++;
    await new Promise((r) => setTimeout(r, interval));
  }
  t.child.kill('SIGCONT');
  await new Promise((r) => setTimeout(r, 3000));
  return {
    sentDuringStop: sent,
    computedAfter: (await t.metric('verdict_decisions_total')) - decidedBefore,
    expiredAfter: (await t.metric('verdict_decide_expired_total')) - expiredBefore,
  };
}

/** Runs this process's own HTTP client code a while, so a measured round trip is the service's. */
export async function warmClient(): Promise<void> {
  const server = createHttpServer((req, res) => { req.resume(); req.on('end', () => res.end('{}')); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const agent = new Agent({ keepAlive: true });
  for (let i = 0; i < 300; i++) await post(port, '/', '{"x":1}', 'application/json', agent);
  agent.destroy();
  await new Promise((r) => server.close(r));
}

/** Round trips of the first decisions after start: JSON over HTTP, then frames (ms). */
export async function firstDecisions(t: Target): Promise<{ startMs: number; httpFirst: number; httpSecond: number; frameFirst: number; frameSecond: number }> {
  const agent = new Agent({ keepAlive: true });
  const body = JSON.stringify({ client_ip: '198.51.100.9', method: 'POST', path: '/api/auth/login', identifier: '13800001111', header_names: ['host'], user_agent: 'curl/8' });
  let t0 = performance.now();
  await post(t.httpPort, '/v1/decide', body, 'application/json', agent);
  const httpFirst = performance.now() - t0;
  t0 = performance.now();
  await post(t.httpPort, '/v1/decide', body, 'application/json', agent);
  const httpSecond = performance.now() - t0;
  agent.destroy();
  const c = await FrameConn.open(t.framePort);
  const f = frame(FRAME.DECIDE, decideBody({ method: 'GET', path: '/api/orders/9', token_hash: Buffer.alloc(20, 1), has_authorization: true }));
  t0 = performance.now();
  await c.ask(f);
  const frameFirst = performance.now() - t0;
  t0 = performance.now();
  await c.ask(f);
  const frameSecond = performance.now() - t0;
  c.socket.destroy();
  return { startMs: t.startMs, httpFirst, httpSecond, frameFirst, frameSecond };
}
