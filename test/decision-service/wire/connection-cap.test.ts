// The connection cap evicts instead of refusing: at the cap a newcomer is admitted and the
// connection idle longest goes, unauthenticated ones first; a frame connection that must prove the
// gateway secret and sends no good HELLO in time is closed. (The flood at scale:
// ../connection-flood.test.ts.)

import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { buildApp } from '../../../decision-service/src/app.ts';
import { gatewayKey, helloPayload } from '../../../decision-service/src/auth/gateway-auth.ts';
import { GatewayGuard } from '../../../decision-service/src/auth/guard.ts';
import { parseEnv } from '../../../decision-service/src/config/env.ts';
import { createLogger } from '../../../decision-service/src/logger.ts';
import { DecisionService } from '../../../decision-service/src/service/decision-service.ts';
import { createMetrics } from '../../../decision-service/src/service/metrics.ts';
import { CapEntry, ConnectionCap, type EvictReason } from '../../../decision-service/src/wire/connection-cap.ts';
import { createFrameServer, FRAME, frame } from '../../../decision-service/src/wire/frame-server.ts';
import { policy } from '../../helpers/policy.ts';
import { decideFrame } from './frame-client.ts';

t.test('ConnectionCap: unauthenticated first, then least recently active; O(1) bookkeeping', async (t) => {
  const cap = new ConnectionCap(3);
  const gone: string[] = [];
  const entry = (name: string) => new CapEntry((reason: EvictReason) => gone.push(`${name}:${reason}`));
  const a = entry('a');
  const b = entry('b');
  const u = entry('u');
  cap.admit(a, true);
  cap.admit(u, false);
  cap.admit(b, true);
  t.equal(cap.size, 3);
  cap.admit(entry('c'), true);
  t.same(gone, ['u:unauthenticated'], 'the unauthenticated one goes first, though a is older');
  cap.touch(a); // a active again: b is now the idle-longest
  cap.admit(entry('d'), true);
  t.same(gone.slice(1), ['b:least_recent']);
  cap.remove(a);
  cap.remove(a); // idempotent (an evicted or closed connection's 'close' comes later)
  t.equal(cap.size, 2);
  const v = entry('v');
  cap.admit(v, false);
  cap.authenticate(v);
  cap.admit(entry('e'), true);
  t.same(gone.slice(2), ['c:least_recent'], 'an authenticated connection is ordered by activity like the rest');
  t.equal(cap.size, 3);
});

interface Raw { socket: Socket; challenge: Promise<Buffer>; types: number[]; closed: Promise<void> }

/** A frame connection that keeps the CHALLENGE (to answer it) and the answer types. */
function openRaw(port: number): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let gotChallenge: (b: Buffer) => void = () => {};
    const raw: Raw = {
      socket,
      challenge: new Promise<Buffer>((r) => { gotChallenge = r; }),
      types: [],
      closed: new Promise<void>((r) => socket.once('close', () => r())),
    };
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const len = buf.readUInt32BE(0);
        const type = buf[4] as number;
        if (type === FRAME.CHALLENGE) gotChallenge(Buffer.from(buf.subarray(5, 4 + len)));
        else raw.types.push(type);
        buf = buf.subarray(4 + len);
      }
    });
    socket.on('error', () => {});
    socket.once('connect', () => resolve(raw));
    socket.once('error', reject);
  });
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: () => boolean, ms = 5000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await wait(10)) if (what()) return true;
  return what();
}

/** A frame server whose clients must prove the gateway secret, loopback included. */
async function securedServer(t: Test, maxConnections: number, handshakeTimeoutMs: number) {
  const dir = mkdtempSync(join(tmpdir(), 'verdict-cap-'));
  const secret = 'a'.repeat(64);
  writeFileSync(join(dir, 'gateway.secret'), `${secret}\n`);
  const key = gatewayKey(secret);
  const config = parseEnv({ VERDICT_POLICY_WATCH: '0', VERDICT_GATEWAY_SECRET_FILE: join(dir, 'gateway.secret') });
  const built = buildApp(config, { logger: createLogger('silent'), policy: policy() });
  t.teardown(() => built.app.close());
  const metrics = createMetrics(false);
  const guard = new GatewayGuard(config.gatewayKeys, false, config.clockSkewMs, undefined, false, metrics.authFailures);
  t.ok(guard.required('127.0.0.1'), 'loopback clients must authenticate here');
  const evicted: EvictReason[] = [];
  const server = createFrameServer({
    service: new DecisionService({ engine: () => built.engine, metrics, logger: createLogger('silent') }),
    metrics,
    guard,
    limits: { maxConnections, handshakeTimeoutMs },
    onEvict: (r) => evicted.push(r),
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const sockets: Socket[] = [];
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  }));
  const open = async () => {
    const r = await openRaw(port);
    sockets.push(r.socket);
    return r;
  };
  const hello = async (r: Raw) => {
    r.socket.write(frame(FRAME.HELLO, helloPayload(key, await r.challenge)));
  };
  return { open, hello, evicted, metrics };
}

t.test('at the cap, connections that have not proved the secret are evicted before gateways', async (t) => {
  const s = await securedServer(t, 3, 60_000);
  const gw = await s.open();
  await s.hello(gw);
  gw.socket.write(decideFrame({ request_id: 'g1' }));
  t.ok(await until(() => gw.types.length === 1), 'the gateway decides');
  // two connections that never say HELLO, opened after the gateway's last activity
  const u1 = await s.open();
  const u2 = await s.open();
  await u1.challenge;
  await u2.challenge;
  // the newcomer evicts an unauthenticated one, not the gateway (idle longer than both)
  const gw2 = await s.open();
  t.ok(await until(() => s.evicted.length === 1), 'one evicted');
  t.same(s.evicted, ['unauthenticated']);
  await Promise.race([u1.closed, u2.closed]);
  t.pass('an unauthenticated connection was closed');
  await s.hello(gw2);
  gw2.socket.write(decideFrame({ request_id: 'g2' }));
  gw.socket.write(decideFrame({ request_id: 'g1b' }));
  t.ok(await until(() => gw2.types.length === 1 && gw.types.length === 2), 'both gateway connections decide');
  t.same([...gw.types, ...gw2.types], [FRAME.VERDICT, FRAME.VERDICT, FRAME.VERDICT]);
  t.match(await s.metrics.registry.metrics(), /verdict_auth_failures_total/);
});

t.test('a connection that must authenticate and sends no HELLO in time is closed', async (t) => {
  const s = await securedServer(t, 100, 300);
  const silent = await s.open();
  const pinging = await s.open();
  const gw = await s.open();
  await s.hello(gw);
  const started = Date.now();
  // PING is answered before HELLO, but does not stand in for it
  const ping = setInterval(() => pinging.socket.write(frame(FRAME.PING, Buffer.alloc(0))), 50);
  t.teardown(() => clearInterval(ping));
  await silent.closed;
  await pinging.closed;
  const after = Date.now() - started;
  t.ok(after >= 200 && after < 3000, `closed after ${after} ms (handshake timeout 300 ms)`);
  t.ok(pinging.types.length > 0 && pinging.types.every((x) => x === FRAME.PONG), 'the pings were answered meanwhile');
  await wait(400);
  gw.socket.write(decideFrame({ request_id: 'still' }));
  t.ok(await until(() => gw.types.length === 1), 'the authenticated connection stays open and decides');
  t.match(await s.metrics.registry.metrics(), /verdict_frame_connections_closed_total\{reason="handshake_timeout"\} 2/);
});
