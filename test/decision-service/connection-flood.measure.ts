// Issue 10's connection flood, at full size, for this checkout or another (the code before):
//   npx tsx test/decision-service/connection-flood.measure.ts [checkout root] [--total 20000] [--mode idle|reconnect] [--rounds 2]
// Holds `total` idle connections to the frame port (in flood children of at most 9,000 each: every
// process here has `ulimit -n` file descriptors) while a gateway decides over a connection it had
// before (busy) and over new ones; two rounds, to show the service's RSS does not creep. Prints
// one JSON object. Not a test: timings depend on the machine (connection-flood.test.ts holds
// the bounds).

import { repoRoot } from '../../scripts/lib/nginx.ts';
import { busyGateway, counter, Decider, latency, newConnectionDecides, openFds, startFlood, type Flood } from './flood-lib.ts';
import { startTarget } from './hardening-lib.ts';

// tap runs every file of a directory it is given (TAP=1 in its children): not a test, skip.
if (process.env.TAP === '1') process.exit(0);

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? (args[i + 1] ?? dflt) : dflt;
};
const root = args.find((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--')) ?? repoRoot;
const total = Number(opt('total', '20000'));
const mode = opt('mode', 'idle') as 'idle' | 'reconnect';
const rounds = Number(opt('rounds', '2'));
const PER_CHILD = 9000;

async function main(): Promise<void> {
  const target = await startTarget(root);
  const pid = target.child.pid ?? 0;
  const out: Record<string, unknown> = { root, total, mode, cap: 4096 };
  try {
    const gw = await Decider.open(target.framePort);
    if (!gw) throw new Error('no gateway connection');
    const warm: number[] = [];
    for (let i = 0; i < 500; i++) warm.push(await gw.decide(`warm-${i}`));
    out.before = latency(warm.slice(200));
    await new Promise((r) => setTimeout(r, 500));
    out.serviceRssMiBBefore = Math.round(target.rssMiB());
    out.serviceFdsBefore = await openFds(pid);
    const roundsOut: unknown[] = [];
    for (let round = 0; round < rounds; round++) {
      const busy = busyGateway(gw);
      const t0 = performance.now();
      const floods: Flood[] = [];
      // all children connect at once
      const sizes = Array.from({ length: Math.ceil(total / PER_CHILD) }, (_, i) => Math.min(PER_CHILD, total - i * PER_CHILD));
      floods.push(...(await Promise.all(sizes.map((n) => startFlood(target.framePort, n, mode)))));
      const floodMs = Math.round(performance.now() - t0);
      const fresh = await newConnectionDecides(target.framePort, 200);
      const busyDuring = await busy.stop();
      const counts = await Promise.all(floods.map((f) => f.counts()));
      const r = {
        round,
        floodConnectMs: floodMs,
        flood: {
          connected: counts.reduce((n, c) => n + c.connected, 0),
          heldOpen: counts.reduce((n, c) => n + c.open, 0),
          closedByService: counts.reduce((n, c) => n + c.closedByServer, 0),
          failedToConnect: counts.reduce((n, c) => n + c.failed, 0),
        },
        newConnections: { ...fresh.latency, connectFailures: fresh.connectFailures },
        busyGateway: busyDuring,
        serviceFdsDuring: await openFds(pid),
        serviceRssMiBDuring: Math.round(target.rssMiB()),
        evicted: await counter(target, /^verdict_connections_evicted_total\{transport="frame"/).catch(() => Number.NaN),
        refused: await counter(target, /^verdict_connections_refused_total\{transport="frame"/).catch(() => Number.NaN),
      };
      for (const f of floods) await f.stop();
      await new Promise((res) => setTimeout(res, 1500));
      roundsOut.push({ ...r, serviceRssMiBAfter: Math.round(target.rssMiB()), serviceFdsAfter: await openFds(pid) });
    }
    out.rounds = roundsOut;
    // Idle between the rounds' end and now, the gateway's connection may have been evicted by a
    // reconnecting flood (it was the idle-longest then): like the Lua client with a pooled
    // connection the service closed, open a fresh one.
    out.gatewayConnectionEvictedWhileIdle = gw.closed;
    const again = gw.closed ? await Decider.open(target.framePort) : gw;
    const after: number[] = [];
    for (let i = 0; i < 200; i++) after.push(again ? await again.decide(`after-${i}`) : Number.NaN);
    out.after = latency(after);
    again?.close();
    gw.close();
  } finally {
    await target.stop();
  }
  console.log(JSON.stringify(out, null, 1));
}

await main();
