// `npm run bench:service-path`: the decision service's CPU per guarded request on the bench's
// all-human mix, with nothing else on its core — what the gateway costs the service, measured
// steadily enough to compare two versions of the code (the whole inline stack on one shared core
// swings by ±30% between runs on this VM; one process's CPU per request by a few %).
//
// The service runs pinned to CPU 0, as in `npm run bench`; this process drives it from CPU 1 over
// one framed connection the way a Lua gateway worker does: DECIDE frames in batches of 32 (the
// mux; two batches in flight, so the service never waits for this process), and an OUTCOMES
// frame of 32 outcomes after every 32 decides (each request's outcome, as
// the log phase reports them). Prints, per round: requests/s and the service's user + system CPU
// per request (µs).
//
//   npm run bench:service-path -- [--rounds 5] [--duration 5] [--service-env NAME=VALUE]... [--cpu-prof DIR] [--depth 32] [--unix] [--samples]
//                                   [--node-flag --some-v8-flag=N]...
import { connect, type Socket } from 'node:net';
import { argEnv, argNumber, argValue, argValues } from './lib/args.ts';
import { cpuMicros, pinHarness, startServiceProcess } from './lib/proc.ts';
import { humanMix, toDecideRequest } from './lib/request-mix.ts';
import { DecideRequestType, OutcomeBatchType } from '../decision-service/src/wire/codec.ts';
import { FRAME, frame } from '../decision-service/src/wire/frame-server.ts';
import { inspectResponse } from '../decision-service/src/gateway/sensitive.ts';
import { INSPECT_BODY } from './cases/inspect.ts';

/** Outcomes per OUTCOMES frame: one frame per DEPTH decides carries theirs (the decides repeat, so any outcome stands for one). */
const OUTCOMES_PER_BATCH = 32;
const WITH_OUTCOMES = !process.argv.includes('--no-outcomes');
const DEPTH = Math.max(1, argNumber('--depth', 32));

/** The mix as DECIDE frames, and after every DEPTH of them the OUTCOMES frame reporting them. */
function buildFrames(): { decides: Buffer[]; outcomes: Buffer[] } {
  const mix = humanMix();
  const decides: Buffer[] = [];
  const outcomes: Buffer[] = [];
  let batch: Record<string, unknown>[] = [];
  // --samples: every outcome carries the ResponseSample of the inspect case's JSON body, as with
  // \$verdict_inspect all (the gateway's key: the reference computes the same hashes)
  const sample = process.argv.includes('--samples') ? inspectResponse(INSPECT_BODY, { key: Buffer.from('verdict-bench-hmac-key-0123456789') }) : undefined;
  mix.forEach((m, i) => {
    const req = toDecideRequest(m, i);
    decides.push(frame(FRAME.DECIDE, DecideRequestType.encode(DecideRequestType.fromObject(req)).finish()));
    batch.push({
      request_id: req.request_id, ts_ms: 0, client_ip: req.client_ip, method: req.method, path: req.path,
      route_tag: req.route_tag, status: 200, upstream_ms: 1, bytes_sent: 180, action: 0,
      ...(sample ? { response: sample } : {}),
    });
    if (batch.length === OUTCOMES_PER_BATCH) {
      outcomes.push(frame(FRAME.OUTCOMES, OutcomeBatchType.encode(OutcomeBatchType.fromObject({ gateway_id: 'bench/1', outcomes: batch })).finish()));
      batch = [];
    }
  });
  return { decides, outcomes };
}

/** Sends for `seconds`; resolves with the requests decided. */
function drive(s: Socket, f: { decides: Buffer[]; outcomes: Buffer[] }, start: number, seconds: number): Promise<number> {
  return new Promise((resolve) => {
    const end = performance.now() + seconds * 1000;
    let i = start;
    let inFlight = 0;
    let decided = 0;
    let pending: Buffer = Buffer.alloc(0);
    const fill = () => {
      if (performance.now() > end) {
        if (inFlight === 0) { s.off('data', onData); resolve(decided); }
        return;
      }
      const out: Buffer[] = [];
      while (inFlight < 2 * DEPTH) {
        for (let k = 0; k < DEPTH; k++) out.push(f.decides[(i + k) % f.decides.length] as Buffer);
        if (WITH_OUTCOMES) out.push(f.outcomes[Math.floor(i / DEPTH) % f.outcomes.length] as Buffer);
        i += DEPTH;
        inFlight += DEPTH + (WITH_OUTCOMES ? 1 : 0);
      }
      s.write(Buffer.concat(out));
    };
    const onData = (d: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, d]) : d;
      let off = 0;
      while (pending.length - off >= 4) {
        const len = pending.readUInt32BE(off);
        if (pending.length - off < 4 + len) break;
        const type = pending[off + 4];
        off += 4 + len;
        if (type === FRAME.CHALLENGE) continue;
        if (type === FRAME.ERROR) throw new Error(`service answered ERROR: ${pending.subarray(off - len + 1, off).toString()}`);
        inFlight--;
        if (type === FRAME.VERDICT) decided++;
      }
      pending = pending.subarray(off);
      fill();
    };
    s.on('data', onData);
    fill();
  });
}

async function main(): Promise<void> {
  const rounds = argNumber('--rounds', 5);
  const seconds = argNumber('--duration', 5);
  const env = argEnv('--service-env');
  const { cpu } = pinHarness();
  const f = buildFrames();
  const profDir = argValue('--cpu-prof', '');
  const nodeFlags = [...(profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`, '--cpu-prof-interval=100'] : []), ...argValues('--node-flag')];
  const svc = await startServiceProcess({ cpu: cpu.service, env, unix: process.argv.includes('--unix'), nodeFlags });
  const target = svc.frameAddr.replace(/^frame:/, '');
  const [host, port] = target.split(':');
  const s = target.startsWith('unix:') ? connect(target.slice(5)) : connect(Number(port), host);
  if (!target.startsWith('unix:')) s.setNoDelay(true);
  await new Promise((r) => s.once('connect', r));
  let at = 0;
  // warm-up: JIT, and the store filled as by the rounds that follow
  at += await drive(s, f, at, 3);
  const perRequest: number[] = [];
  for (let r = 1; r <= rounds; r++) {
    const c0 = cpuMicros(svc.pid);
    const t0 = performance.now();
    const n = await drive(s, f, at, seconds);
    const us = (cpuMicros(svc.pid) - c0) / n;
    at += n;
    perRequest.push(us);
    process.stdout.write(`round ${r}: ${Math.round(n / ((performance.now() - t0) / 1000))} req/s, service CPU ${us.toFixed(1)} µs per request (decide + its outcome)\n`);
  }
  perRequest.sort((a, b) => a - b);
  process.stdout.write(`median ${perRequest[Math.floor(perRequest.length / 2)]!.toFixed(1)} µs per request over ${rounds} rounds\n`);
  s.destroy();
  await svc.stop();
}

await main();
