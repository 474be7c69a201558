// Warms a decision service up before measuring: the first thousands of decisions run in V8's
// interpreter and a cold service misses a 25 ms budget under a burst, which opens the gateway's
// breaker and turns the measurement into a fail-open one. Sends `count` varied decisions over
// the framed transport, pipelined, and resolves when all are answered.
import { connect } from 'node:net';
import { decideFrames } from './decide-bodies.ts';

export async function warmService(frameAddr: string, count = 30_000, depth = 32): Promise<void> {
  const target = frameAddr.replace(/^frame:/, '');
  const bodies = decideFrames(2000, 11);
  await new Promise<void>((resolve, reject) => {
    const s = target.startsWith('unix:') ? connect(target.slice(5)) : connect(Number(target.split(':')[1]), target.split(':')[0]);
    let sent = 0;
    let answered = 0;
    let pending: Buffer = Buffer.alloc(0);
    const fill = () => {
      const out: Buffer[] = [];
      while (sent < count && sent - answered < depth) out.push(bodies[sent++ % bodies.length] as Buffer);
      if (out.length) s.write(Buffer.concat(out));
    };
    s.on('connect', fill);
    s.on('data', (d: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, d]) : d;
      let off = 0;
      while (pending.length - off >= 4) {
        const len = pending.readUInt32BE(off);
        if (pending.length - off < 4 + len) break;
        if (pending[off + 4] !== 7) answered++; // the CHALLENGE greeting is no answer
        off += 4 + len;
      }
      pending = pending.subarray(off);
      if (answered >= count) {
        s.end();
        resolve();
      } else fill();
    });
    s.on('error', reject);
  });
}
