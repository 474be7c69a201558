// Child process: memory of the decision engine (MemoryStore with `maxKeys`, every detector on,
// the default policy) under millions of distinct clients. Every request comes from a new client:
// its own IP (1 in 8 IPv6), session or device, token, identifier (phones and e-mails), object ids,
// and some paths no template collapses (file names, search slugs), over the bench's route mix
// (static, pages, object APIs, promo, logins and SMS); identity and object requests get their
// outcomes back (200 / 401 / 404), as the gateway's batches would bring them.
//
// Prints one JSON line per checkpoint: RSS now, the peak RSS since the previous checkpoint
// (sampled every 8,192 decisions, no forced GC: what the OOM killer sees), then RSS, heap and
// typed-array memory after two forced full GCs (what is live), and the keys the store holds.
// Usage: node --expose-gc --import tsx memory-worker.ts <maxKeys> <checkpoint,...>
import { loadPolicyFile } from '../../decision-service/src/config/policy.ts';
import { VirtualClock } from '../../decision-service/src/engine/clock.ts';
import { Engine } from '../../decision-service/src/engine/engine.ts';
import { MemoryStore } from '../../decision-service/src/state/memory-store.ts';
import { decodeDecideRequest } from '../../decision-service/src/wire/codec.ts';
import type { DecideRequest, Outcome } from '../../decision-service/src/wire/schema.ts';
import { repoRoot } from '../../scripts/lib/nginx.ts';
import { decideBodies } from './decide-bodies.ts';
import { join } from 'node:path';

const maxKeys = Number(process.argv[2] ?? 100_000);
const checkpoints = (process.argv[3] ?? '1000000').split(',').map(Number).filter((x) => x > 0 && x <= 100_000_000).sort((a, b) => a - b);
const gc = (globalThis as { gc?: () => void }).gc;
const emit = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);

const clock = new VirtualClock(Date.UTC(2025, 0, 1));
const store = new MemoryStore({ maxKeys });
const engine = new Engine({ policy: loadPolicyFile(join(repoRoot, 'policies/default.yaml')), store, clock, identifierKey: Buffer.from('verdict-bench-identifier-key-0123') });
const base = decideBodies(2000).map((b) => decodeDecideRequest(b, 'protobuf'));

/** 20 bytes standing for a gateway HMAC of client `c`'s session / token / device / password. */
function hash20(c: number, salt: number): Buffer {
  const b = Buffer.allocUnsafe(20);
  let x = (Math.imul(c, 0x9e3779b1) ^ salt) >>> 0;
  for (let k = 0; k < 20; k += 4) {
    x = Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) >>> 0;
    x = (x ^ (x >>> 12)) >>> 0;
    b.writeUInt32LE(x, k);
  }
  return b;
}

function ipOf(c: number): string {
  if (c % 8 === 7) return `2001:db8:${(c >>> 16).toString(16)}:${(c & 0xffff).toString(16)}::${(c % 251).toString(16)}`;
  return `${1 + (c % 223)}.${(c >>> 16) & 255}.${(c >>> 8) & 255}.${c & 255}`;
}

/** Request `c` of the mix, from a client nobody has seen before. */
function requestOf(c: number): DecideRequest {
  const r = base[c % base.length] as DecideRequest;
  let path = r.path;
  if (path.startsWith('/api/orders/')) path = `/api/orders/${10_000_000 + c}`;
  else if (path.startsWith('/api/users/')) path = `/api/users/${c}/profile`;
  else if (path.startsWith('/static/') && c % 16 === 3) path = `/static/chunk-${(Math.imul(c, 0x9e3779b1) >>> 0).toString(36)}.js`;
  else if (c % 64 === 9) path = `/api/search/${(Math.imul(c, 40_503) >>> 0).toString(36)}-deals`;
  const identifier = r.identifier ? (c % 2 === 0 ? `138${String((c * 7919) % 100_000_000).padStart(8, '0')}` : `user${c}@mail${c % 17}.example`) : '';
  return {
    ...r,
    request_id: `m${c}`,
    client_ip: ipOf(c),
    path,
    user_agent: c % 4 === 0 ? `${r.user_agent} build/${c % 5000}` : r.user_agent,
    identifier,
    session_hash: r.session_hash ? hash20(c, 1) : undefined,
    token_hash: r.token_hash ? hash20(c, 2) : undefined,
    device_hash: r.device_hash ? hash20(c, 3) : undefined,
    password_hash: r.password_hash ? hash20(c % 1000 === 0 ? 0 : c, 4) : undefined,
  };
}

function outcomeOf(req: DecideRequest, c: number): Outcome | undefined {
  const identity = req.route_tag === 'auth' || req.route_tag === 'sms';
  if (!identity && !req.path.startsWith('/api/orders/') && !req.path.startsWith('/api/users/')) return undefined;
  const status = identity ? ([200, 401, 404][c % 3] as number) : c % 5 === 0 ? 404 : 200;
  return { request_id: req.request_id, status, auth_result: '' } as Outcome;
}

const MiB = 1024 * 1024;
function live(): { rssGc: number; heapGc: number; arrayBuffersGc: number } {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return { rssGc: m.rss, heapGc: m.heapUsed, arrayBuffersGc: m.arrayBuffers };
}

const started = Date.now();
emit({ phase: 'baseline', maxKeys, keys: 0, storeKeys: store.size(), rss: process.memoryUsage.rss(), rssPeak: process.memoryUsage.rss(), ...live() });
let peak = 0;
let c = 0;
const outcomes: Outcome[] = [];
for (const target of checkpoints) {
  for (; c < target; c++) {
    clock.advance(0.2);
    const req = requestOf(c);
    engine.decide(req);
    const o = outcomeOf(req, c);
    if (o) outcomes.push(o);
    // The gateway reports outcomes in batches (every 100 ms or so): ≈ 4,096 decisions at 40k/s.
    if ((c & 4095) === 4095) {
      for (const x of outcomes) engine.observe(x);
      outcomes.length = 0;
    }
    if ((c & 8191) === 0) peak = Math.max(peak, process.memoryUsage.rss());
  }
  const rss = process.memoryUsage.rss();
  peak = Math.max(peak, rss);
  emit({ phase: 'engine', maxKeys, keys: target, storeKeys: store.size(), rss, rssPeak: peak, ...live(), seconds: Math.round((Date.now() - started) / 1000) });
  process.stderr.write(`memory-worker ${maxKeys} keys: ${target} decisions, peak RSS ${(peak / MiB).toFixed(0)} MiB\n`);
  peak = 0;
}
