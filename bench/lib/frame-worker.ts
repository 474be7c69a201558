// Load generator for the framed transport (wrk speaks only HTTP): `connections` persistent
// sockets, each keeping `depth` DECIDE frames in flight (pipelined, as the protocol allows),
// rotating 2,000 different protobuf bodies, for `seconds`. Prints one JSON line: decisions/s and
// the round-trip p50/p99 of the frames (µs; with pipelining this includes queueing).
//   tsx bench/lib/frame-worker.ts <host:port | unix:/path> <seconds> [connections] [depth]
import { connect } from 'node:net';
import { decideFrames } from './decide-bodies.ts';

const [target = '', secondsArg = '5', connArg = '4', depthArg = '32'] = process.argv.slice(2);
const seconds = Number(secondsArg);
const conns = Number(connArg);
const depth = Number(depthArg);
const frames = decideFrames(2000, 7);
const end = Date.now() + seconds * 1000;
let done = 0;
const lat: number[] = [];

await Promise.all(Array.from({ length: conns }, (_, k) => new Promise<void>((resolve, reject) => {
  const s = target.startsWith('unix:') ? connect(target.slice(5)) : connect(Number(target.split(':')[1]), target.split(':')[0]);
  s.setNoDelay(true);
  let i = k * 97;
  let pending: Buffer = Buffer.alloc(0);
  const sentAt: number[] = [];
  const fill = () => {
    if (Date.now() > end) {
      if (sentAt.length === 0) { s.end(); resolve(); }
      return;
    }
    const out: Buffer[] = [];
    const now = performance.now();
    while (sentAt.length < depth) { out.push(frames[i++ % frames.length] as Buffer); sentAt.push(now); }
    if (out.length) s.write(Buffer.concat(out));
  };
  s.on('connect', fill);
  s.on('data', (d: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, d]) : d;
    let off = 0;
    const now = performance.now();
    while (pending.length - off >= 4) {
      const len = pending.readUInt32BE(off);
      if (pending.length - off < 4 + len) break;
      const greeting = pending[off + 4] === 7; // the CHALLENGE of a new connection: no answer
      off += 4 + len;
      if (greeting) continue;
      done++;
      const t0 = sentAt.shift();
      if (t0 !== undefined && (done & 7) === 0) lat.push(now - t0);
    }
    pending = pending.subarray(off);
    fill();
  });
  s.on('error', reject);
})));
lat.sort((a, b) => a - b);
const q = (p: number) => Math.round(1000 * (lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] ?? Number.NaN));
process.stdout.write(`${JSON.stringify({ decisionsPerSec: done / seconds, p50Us: q(0.5), p99Us: q(0.99) })}\n`);
process.exit(0);
