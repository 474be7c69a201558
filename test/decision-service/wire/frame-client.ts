// A minimal framed-transport client for tests: sends frames, collects answers in order.

import { connect, type Socket } from 'node:net';
import { DecideRequestType, OutcomeBatchType } from '../../../decision-service/src/wire/codec.ts';
import { FRAME, frame } from '../../../decision-service/src/wire/frame-server.ts';

export interface Answer {
  readonly type: number;
  readonly payload: Buffer;
}

export function decideFrame(fields: Record<string, unknown>): Buffer {
  return frame(FRAME.DECIDE, DecideRequestType.encode(DecideRequestType.fromObject({ client_ip: '198.51.100.7', method: 'GET', path: '/', ...fields })).finish());
}

export function outcomesFrame(batch: Record<string, unknown>): Buffer {
  return frame(FRAME.OUTCOMES, OutcomeBatchType.encode(OutcomeBatchType.fromObject(batch)).finish());
}

export class FrameClient {
  readonly answers: Answer[] = [];
  private pending: Buffer = Buffer.alloc(0);
  private waiters: Array<{ n: number; resolve: () => void }> = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.pending = this.pending.length ? Buffer.concat([this.pending, d]) : d;
      let off = 0;
      while (this.pending.length - off >= 4) {
        const len = this.pending.readUInt32BE(off);
        if (this.pending.length - off < 4 + len) break;
        // the CHALLENGE greeting of every connection is not an answer
        if (this.pending[off + 4] !== 7) this.answers.push({ type: this.pending[off + 4] as number, payload: this.pending.subarray(off + 5, off + 4 + len) });
        off += 4 + len;
      }
      this.pending = this.pending.subarray(off);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  static async open(port: number): Promise<FrameClient> {
    const s = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    return new FrameClient(s);
  }

  send(...frames: Buffer[]): void {
    this.socket.write(Buffer.concat(frames));
  }

  /** Resolves once `n` answers arrived in total (or the connection closed). */
  async waitFor(n: number, timeoutMs = 10_000): Promise<Answer[]> {
    if (this.answers.length < n && !this.closed) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${this.answers.length} of ${n} answers after ${timeoutMs} ms`)), timeoutMs);
        this.waiters.push({ n, resolve: () => { clearTimeout(timer); resolve(); } });
      });
    }
    return this.answers;
  }

  /** Resolves when the server closes the connection. */
  async waitClosed(timeoutMs = 10_000): Promise<void> {
    if (this.closed) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`still open after ${timeoutMs} ms`)), timeoutMs);
      this.socket.once('close', () => { clearTimeout(timer); resolve(); });
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (this.answers.length >= w.n || this.closed) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }
}

export function text(a: Answer | undefined): string {
  return a ? a.payload.toString() : '(none)';
}
