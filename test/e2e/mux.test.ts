// transport = "mux" (issue 15) end to end: a real nginx whose worker pipelines every decide call
// over one long-lived frame connection, in front of the real decision service (with the gateway
// secret: the HELLO of a fresh connection) and of frame stand-ins that misbehave. What must hold
// on the new transport as on the pool: decisions, the fail-open causes, no wait on a connection
// known dead (killed, refused), recovery after the service is back (killed, stopped, restarted),
// a garbage or out-of-step stream never enforced, and the old worker's connections closing on a
// reload.
import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deadAddress, freePort, type NginxHandle } from '../../scripts/lib/nginx.ts';
import { startServiceChild, type ServiceChild } from '../../scripts/lib/service.ts';
import { DecideRequestType, DecideResponseType } from '../../decision-service/src/wire/codec.ts';
import { ask, echoed, SCHED_MARGIN_MS, sleep, sumSeries } from '../helpers/http.ts';
import { startEchoUpstream } from '../helpers/servers.ts';
import { testPolicy } from '../helpers/service.ts';
import { luaVariant } from '../helpers/variants.ts';

const M = 'verdict_gateway_';
const SECRET = 'gateway-secret-0123456789abcdef0123456789';
const dir = mkdtempSync(join(tmpdir(), 'verdict-mux-'));
const secretFile = join(dir, 'gateway.secret');
writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o644 });

const locations = (budget: number) => `
    location / {
        set $verdict_budget_ms ${budget};
        {{guard}}
    }
    location /closed/ {
        set $verdict_budget_ms ${budget};
        set $verdict_fail closed;
        {{guard}}
    }`;

interface Svc { svc: ServiceChild; httpPort: number; framePort: number }

// these cases test the transport with a test client that polls at machine speed: the (correct)
// machine-regular-timing verdict must not depend on scheduling luck
const policy = testPolicy([[/automation:\n    enabled: true/, 'automation:\n    enabled: false']]);

// every request from its own loopback address: no verdict cached for one client decides another
let nextAddr = 0;
const fresh = () => { nextAddr++; return { localAddress: `127.0.${1 + (Math.floor(nextAddr / 250) % 250)}.${1 + (nextAddr % 250)}` }; };

/** The real service with the gateway secret, on fixed ports (a restart takes the same ones). */
async function startRealService(httpPort: number, framePort: number): Promise<Svc> {
  const svc = await startServiceChild({
    VERDICT_LISTEN: `127.0.0.1:${httpPort}`,
    VERDICT_FRAME_LISTEN: `127.0.0.1:${framePort}`,
    VERDICT_LOG_LEVEL: 'warn',
    VERDICT_WARMUP: '200',
    VERDICT_GATEWAY_SECRET_FILE: secretFile,
    VERDICT_POLICY: policy,
  }, 15_000);
  return { svc, httpPort, framePort };
}

const cause = (r: Awaited<ReturnType<typeof ask>>) => (r.status === 200 ? echoed(r).headers['x-verdict-fail-open'] ?? 'decided' : String(r.status));

/** Asks until `want(cause)` or `ms` pass; returns ms waited, -1 when never. */
async function until(url: string, want: (c: string) => boolean, ms: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (want(cause(await ask(url, fresh())))) return Date.now() - start;
    await sleep(10);
  }
  return -1;
}

/** A gateway on transport mux; with the secret for the real service (stand-ins send no CHALLENGE). */
async function muxGateway(t: Test, upstreamPort: number, service: string, budget: number, init: Record<string, string | number | boolean> = {}, secret = false): Promise<NginxHandle> {
  const nginx = await luaVariant.start({
    upstream: `127.0.0.1:${upstreamPort}`,
    service,
    locations: locations(budget),
    workers: 1,
    init: { transport: 'mux', outcomes_enabled: false, breaker_failures: 100000, ...(secret ? { secret_file: secretFile } : {}), ...init },
  });
  t.teardown(() => nginx.stop());
  return nginx;
}

t.test('mux with the real service: decisions over one authenticated connection; killed, stopped, restarted', async (t) => {
  const upstream = await startEchoUpstream();
  t.teardown(() => upstream.close());
  const httpPort = await freePort();
  const framePort = await freePort();
  let s: Svc | undefined = await startRealService(httpPort, framePort);
  t.teardown(async () => { await s?.svc.stop(); });
  const nginx = await muxGateway(t, upstream.port, `frame:127.0.0.1:${framePort}`, 500, {}, true);
  const url = `${nginx.url}/api/orders/1001`;
  const blocked = `${nginx.url}/internal/admin/users`;

  await t.test('decides: allow, tag and block (HELLO accepted)', async (t) => {
    t.equal((await ask(`${nginx.url}/`, fresh())).status, 200);
    t.equal(cause(await ask(`${nginx.url}/`, fresh())), 'decided');
    t.equal((await ask(blocked, fresh())).status, 403, 'blocked by the service');
    const rs = await Promise.all(Array.from({ length: 40 }, (_, i) => ask(i % 2 ? blocked : `${nginx.url}/`, fresh())));
    t.same(rs.map((r) => r.status), Array.from({ length: 40 }, (_, i) => (i % 2 ? 403 : 200)), '40 concurrent calls, each its own verdict');
    const m = (await ask(nginx.metricsUrl)).body;
    t.ok(sumSeries(m, `${M}calls_total`, 'result="ok"') >= 43, 'calls counted ok');
    t.notMatch(nginx.errorLog(), /auth refused|mux error/, 'no refusal, no writer error');
  });

  await t.test('SIGKILL: calls fail at once (closed / refused), never wait on the dead connection; decided again once it is back', async (t) => {
    s!.svc.child.kill('SIGKILL');
    await new Promise<void>((r) => s!.svc.child.once('exit', () => r()));
    const causes: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await ask(url, fresh());
      causes.push(cause(r));
      t.ok(r.ms < 50 + SCHED_MARGIN_MS, `no wait for the 500 ms budget (${r.ms.toFixed(1)} ms, ${cause(r)})`);
    }
    t.ok(causes.every((c) => c === 'closed' || c === 'refused'), `causes: ${causes.join(', ')}`);
    t.equal((await ask(`${nginx.url}/closed/x`, fresh())).status, 503, 'fail-closed location');
    s = await startRealService(httpPort, framePort);
    const after = await until(blocked, (c) => c === '403', 3000);
    t.ok(after >= 0 && after < 1000, `decided again ${after} ms after the service listens (< 1000)`);
  });

  await t.test('SIGSTOP: calls time out within the budget; SIGCONT: decided again', async (t) => {
    s!.svc.child.kill('SIGSTOP');
    const rs = await Promise.all(Array.from({ length: 4 }, () => ask(url, fresh())));
    for (const r of rs) {
      t.equal(cause(r), 'timeout');
      t.ok(r.ms < 500 + SCHED_MARGIN_MS, `within the budget (${r.ms.toFixed(1)} ms)`);
    }
    s!.svc.child.kill('SIGCONT');
    const after = await until(blocked, (c) => c === '403', 3000);
    t.ok(after >= 0 && after < 1000, `decided again ${after} ms after SIGCONT`);
  });

  await t.test('graceful restart (SIGTERM, then a new process): decided again', async (t) => {
    await s!.svc.stop();
    const r = await ask(url, fresh());
    t.ok(['closed', 'refused'].includes(cause(r)), `while down: ${cause(r)} in ${r.ms.toFixed(1)} ms`);
    s = await startRealService(httpPort, framePort);
    const after = await until(blocked, (c) => c === '403', 3000);
    t.ok(after >= 0 && after < 1000, `decided again ${after} ms after the service listens`);
    t.equal(cause(await ask(`${nginx.url}/`, fresh())), 'decided');
  });
});

t.test('mux: nginx reload: the old worker\'s connections close with it; the new worker decides', async (t) => {
  const upstream = await startEchoUpstream();
  t.teardown(() => upstream.close());
  const framePort = await freePort();
  const s = await startRealService(await freePort(), framePort);
  t.teardown(() => s.svc.stop());
  const nginx = await muxGateway(t, upstream.port, `frame:127.0.0.1:${framePort}`, 500, {}, true);
  t.equal((await ask(`${nginx.url}/internal/admin/users`, fresh())).status, 403);
  const master = Number(readFileSync(join(nginx.prefix, 'nginx.pid'), 'utf8').trim());
  const workers = () => readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try { return readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ')[1] === String(master); } catch { return false; }
  });
  const before = workers();
  t.ok(before.length >= 1, `worker(s) ${before.join(', ')}`);
  await nginx.reload();
  let gone = -1;
  const start = Date.now();
  while (Date.now() - start < 5000) {
    if (!workers().some((p) => before.includes(p))) { gone = Date.now() - start; break; }
    await sleep(50);
  }
  t.ok(gone >= 0, `the old worker exited ${gone} ms after the reload (its timers did not keep it)`);
  const after = await until(`${nginx.url}/internal/admin/users`, (c) => c === '403', 3000);
  t.ok(after >= 0, 'the new worker decides over its own connection');
});

// ---------------------------------------------------------------- stand-ins that misbehave

type Fault = 'blackhole' | 'junk' | 'error' | 'wrong-type' | 'other-id' | 'reversed';

/** A frame stand-in: no CHALLENGE (a gateway with a secret then waits for it: these run without). */
async function startFrameFault(kind: Fault): Promise<{ port: number; connections: number; requests: number; close(): Promise<void> }> {
  const state = { connections: 0, requests: 0 };
  const sockets = new Set<Socket>();
  const frameOf = (type: number, payload: Uint8Array) => {
    const out = Buffer.alloc(5 + payload.length);
    out.writeUInt32BE(payload.length + 1, 0);
    out[4] = type;
    out.set(payload, 5);
    return out;
  };
  const verdict = (id: string, block: boolean) => frameOf(2, DecideResponseType.encode(DecideResponseType.fromObject({ request_id: id, action: block ? 3 : 0 })).finish());
  const srv = createServer((sock) => {
    state.connections++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const ids: string[] = [];
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const len = buf.readUInt32BE(0);
        const payload = buf.subarray(5, 4 + len);
        buf = buf.subarray(4 + len);
        state.requests++;
        const id = (DecideRequestType.decode(payload) as unknown as { request_id: string }).request_id;
        if (kind === 'junk') sock.end('SSH-2.0-OpenSSH_9.2 garbage\r\n\r\n');
        else if (kind === 'error') sock.write(frameOf(15, Buffer.from('BAD_BODY: not a DecideRequest')));
        else if (kind === 'wrong-type') sock.write(frameOf(6, Buffer.alloc(0)));
        else if (kind === 'other-id') sock.write(verdict(`not-${id}`, true)); // a BLOCK for someone else
        else if (kind === 'reversed') ids.push(id);
        // blackhole: say nothing
      }
      // reversed: a read's worth of answers, last first, each BLOCK naming its own request
      if (ids.length) sock.write(Buffer.concat(ids.reverse().map((id) => verdict(id, true))));
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const a = srv.address();
  return {
    port: typeof a === 'object' && a ? a.port : 0,
    get connections() { return state.connections; },
    get requests() { return state.requests; },
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); srv.close(() => r()); }),
  };
}

const faults: Array<[Fault, string]> = [
  ['blackhole', 'timeout'], ['junk', 'bad response'], ['error', 'bad response'], ['wrong-type', 'bad response'], ['other-id', 'bad response'],
];
for (const [kind, want] of faults) {
  t.test(`mux stand-in "${kind}": passes with X-Verdict-Fail-Open: ${want}`, async (t) => {
    const upstream = await startEchoUpstream();
    const fault = await startFrameFault(kind);
    t.teardown(async () => { await fault.close(); await upstream.close(); });
    const nginx = await muxGateway(t, upstream.port, `frame:127.0.0.1:${fault.port}`, 50);
    for (let i = 0; i < 3; i++) {
      const r = await ask(`${nginx.url}/api/thing`);
      t.equal(r.status, 200, 'never enforced');
      t.equal(cause(r), want);
      t.ok(r.ms < 50 + SCHED_MARGIN_MS, `within budget + margin (${r.ms.toFixed(1)} ms)`);
    }
    if (kind === 'error') t.equal(fault.connections, 1, 'an ERROR frame leaves the stream in step: one connection');
    if (kind === 'other-id' || kind === 'wrong-type') t.ok(fault.connections >= 2, `a stream out of step is dropped and replaced (${fault.connections} connections)`);
    t.equal((await ask(`${nginx.url}/closed/x`)).status, 503, 'fail-closed location');
  });
}

t.test('mux stand-in answering a read\'s frames in reverse order: no request gets another\'s verdict', async (t) => {
  const upstream = await startEchoUpstream();
  const fault = await startFrameFault('reversed');
  t.teardown(async () => { await fault.close(); await upstream.close(); });
  const nginx = await muxGateway(t, upstream.port, `frame:127.0.0.1:${fault.port}`, 200);
  let enforced = 0;
  let failedOpen = 0;
  for (let round = 0; round < 10; round++) {
    const rs = await Promise.all(Array.from({ length: 16 }, () => ask(`${nginx.url}/x`)));
    for (const r of rs) {
      if (r.status === 403) enforced++;
      else if (cause(r) === 'bad response') failedOpen++;
      else t.fail(`unexpected ${cause(r)}`);
    }
  }
  // every verdict is a BLOCK naming its own request: enforcing one means it was matched to it
  t.ok(failedOpen > 0, `reordered answers were refused (${failedOpen} failed open, ${enforced} blocked by their own verdict)`);
  t.match(nginx.errorLog(), /verdict for another request; closing it/, 'logged, connection replaced');
});

t.test('mux: service down (refused): calls fail at once; the breaker opens', async (t) => {
  const upstream = await startEchoUpstream();
  t.teardown(() => upstream.close());
  const nginx = await muxGateway(t, upstream.port, `frame:${await deadAddress()}`, 500,
    { breaker_failures: 3, breaker_min_span_ms: 0, breaker_cooldown_ms: 60000 });
  const causes: string[] = [];
  for (let i = 0; i < 6; i++) {
    const r = await ask(`${nginx.url}/x`);
    causes.push(cause(r));
    t.ok(r.ms < 50 + SCHED_MARGIN_MS, `no wait (${r.ms.toFixed(1)} ms)`);
  }
  t.same(causes, ['refused', 'refused', 'refused', 'breaker open', 'breaker open', 'breaker open']);
});

t.test('mux needs frame: addresses (nginx refuses to start otherwise)', async (t) => {
  await t.rejects(luaVariant.start({
    upstream: '127.0.0.1:9', service: '127.0.0.1:9400', locations: locations(50), init: { transport: 'mux' },
  }), /"transport" "mux" multiplexes the framed transport/);
});
