// The framed transport: the same protobuf messages as HTTP, on persistent TCP or unix-socket
// connections, pipelined, with no HTTP to parse on either side (the lean side-call design of
// HAProxy's SPOE agent protocol). JSON/HTTP stays for debugging, curl and njs.
//
// Frame: uint32 big-endian length of what follows, uint8 type, protobuf payload.
//   1 DECIDE   (DecideRequest)  → 2 VERDICT (DecideResponse)
//   3 OUTCOMES (OutcomeBatch)   → 4 ACK     (OutcomeAck)
//   5 PING     (empty)          → 6 PONG    (empty)
//   any bad frame               → 15 ERROR  (UTF-8 "CODE: message"); the connection stays usable
//   (first, from the service)   →  7 CHALLENGE (16 random bytes), on every new connection
//   8 HELLO (kid + HMAC-SHA1 of the challenge: gateway-plugin/CONTRACT.md) → no answer when good;
//   a bad HELLO, or a DECIDE/OUTCOMES before HELLO on a connection that must authenticate
//   (auth/guard.ts), is answered ERROR "AUTH: …" and the connection is closed; so is one that
//   must and has not sent a good HELLO within handshakeTimeoutMs (5 s).
// Answers go out in request order on each connection. An INLINE decide whose gateway deadline
// has passed is answered "DEADLINE: …" without being decided. A frame over its type's limit
// (decide, ping: the decide limit; outcomes: the outcomes limit) is answered BODY_TOO_LARGE and
// its bytes are discarded unread; a zero length, or one over every limit, is answered with an
// ERROR after the answers to the frames before it, and the connection is closed (the stream
// cannot be trusted to resynchronise).
//
// Hostile or stuck clients cannot grow memory or hold the loop: a connection stops being read
// while its answers cannot be written (socket.write() returned false, until 'drain'), while
// maxInFlight frames wait for their answers, or while outcome batches it sent are still being
// applied (at most about one outcomes limit of them held). Input held is at most one frame. A
// connection idle for idleTimeoutMs, or stalled for requestTimeoutMs with a frame half-sent or
// answers unread, is closed. At maxConnections a new connection is admitted and the one idle
// longest is closed instead (unauthenticated ones first: connection-cap.ts), so idle connections
// held by anyone cannot lock a gateway out.

import { createServer, type Server, type Socket } from 'node:net';
import { VerdictError } from '../errors.ts';
import type { DecisionService } from '../service/decision-service.ts';
import type { ServiceMetrics } from '../service/metrics.ts';
import type { GatewayGuard } from '../auth/guard.ts';
import { newChallenge } from '../auth/gateway-auth.ts';
import { decodeDecideRequest, encodeDecideResponse, encodeOutcomeAck, openOutcomeBatch, type PendingOutcomeBatch } from './codec.ts';
import { CapEntry, ConnectionCap, type EvictReason } from './connection-cap.ts';

export const FRAME = { DECIDE: 1, VERDICT: 2, OUTCOMES: 3, ACK: 4, PING: 5, PONG: 6, CHALLENGE: 7, HELLO: 8, ERROR: 15 } as const;

export function frame(type: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + payload.length);
  out.writeUInt32BE(payload.length + 1, 0);
  out[4] = type;
  out.set(payload, 5);
  return out;
}

export interface FrameLimits {
  /** Largest DECIDE (and PING, unknown type) payload in bytes. */
  readonly decideBytes: number;
  /** Largest OUTCOMES payload in bytes. */
  readonly outcomesBytes: number;
  /** Most outcomes in one batch. */
  readonly maxOutcomes: number;
  /** Frames decoded whose answers are not yet written, per connection, before reading pauses. */
  readonly maxInFlight: number;
  /** A connection with nothing in progress is closed after this long (ms). */
  readonly idleTimeoutMs: number;
  /** A frame must arrive whole, and answers be read, within this long (ms). */
  readonly requestTimeoutMs: number;
  /** Open connections; at the cap each newcomer evicts the connection idle longest. */
  readonly maxConnections: number;
  /**
   * A connection that must prove the gateway secret and has not sent a good HELLO by then is
   * closed (ms). A gateway sends HELLO in its first write, so a few seconds is generous; it
   * keeps unauthenticated connections from holding places until the idle timeout.
   */
  readonly handshakeTimeoutMs: number;
}

export const DEFAULT_FRAME_LIMITS: FrameLimits = Object.freeze({
  decideBytes: 64 * 1024,
  outcomesBytes: 1024 * 1024,
  maxOutcomes: 2000,
  maxInFlight: 256,
  idleTimeoutMs: 75_000,
  requestTimeoutMs: 10_000,
  maxConnections: 4096,
  handshakeTimeoutMs: 5000,
});

export interface FrameServerOptions {
  readonly service: DecisionService;
  readonly metrics: ServiceMetrics | undefined;
  readonly limits?: Partial<FrameLimits>;
  /** Who must prove the gateway secret; absent = nobody (tests of the transport alone). */
  readonly guard?: GatewayGuard;
  /** Counts a connection closed to make room for a new one at maxConnections. */
  readonly onEvict?: (reason: EvictReason) => void;
}

type CloseReason = 'idle' | 'request_timeout' | 'frame_too_large' | 'bad_length' | 'handshake_timeout';

const EMPTY = Buffer.alloc(0);
const PONG = frame(FRAME.PONG, EMPTY);
const DEADLINE = frame(FRAME.ERROR, Buffer.from(`DEADLINE: ${new VerdictError('DEADLINE').message}`));

/** What every connection of one server shares. */
class FrameContext {
  readonly maxPayload: number;
  readonly cap: ConnectionCap;

  constructor(
    readonly service: DecisionService,
    readonly metrics: ServiceMetrics | undefined,
    readonly limits: FrameLimits,
    readonly guard: GatewayGuard | undefined,
    readonly onEvict: ((reason: EvictReason) => void) | undefined,
  ) {
    this.maxPayload = Math.max(limits.decideBytes, limits.outcomesBytes);
    this.cap = new ConnectionCap(limits.maxConnections);
  }

  errorFrame(err: unknown): Buffer {
    const e = this.service.failure(err, 'frame');
    return frame(FRAME.ERROR, Buffer.from(`${e.code}: ${e.message}`));
  }
}

class FrameConnection {
  /** Input not yet parsed, in arrival order; joined only once the next frame is complete. */
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes of buffered input the next parse step needs. */
  private need = 4;
  /** Bytes of a refused frame still to discard as they arrive. */
  private skip = 0;
  /** Answers in request order; null = an outcome batch still being applied. */
  private readonly answers: Array<Buffer | null> = [];
  private head = 0;
  /** Payload bytes of outcome batches held until applied. */
  private heldBytes = 0;
  private outcomesChain: Promise<void> = Promise.resolve();
  private paused = false;
  private closed = false;
  /** True while the short (request) timeout runs instead of the idle one. */
  private busy = false;
  /** When the frame now half-received began (performance.now()). */
  private partialSince = 0;
  private readonly peer: string;
  private readonly challenge: Buffer;
  /** The client proved the gateway secret, or need not. */
  private authed: boolean;
  /**
   * An AUTH error or a bad length is queued: nothing more is parsed, the answers owed go out,
   * then the connection closes (finish()).
   */
  private ending = false;
  private endReason: CloseReason | undefined = undefined;
  /** This connection's place in the eviction order of the cap. */
  private readonly capEntry: CapEntry;
  /** The handshake timeout (until a good HELLO), then the last wait for the client's FIN. */
  private timer: NodeJS.Timeout | undefined = undefined;

  constructor(
    private readonly socket: Socket,
    private readonly ctx: FrameContext,
  ) {
    // Unix-socket peers have no address: they share this host's clock (see DecisionService.expired).
    this.peer = socket.remoteAddress ?? '';
    this.challenge = newChallenge();
    this.authed = !ctx.guard || !ctx.guard.required(this.peer);
    this.capEntry = new CapEntry((reason) => this.evicted(reason));
    ctx.cap.admit(this.capEntry, this.authed);
    if (!this.authed) {
      this.timer = setTimeout(() => this.close('handshake_timeout'), ctx.limits.handshakeTimeoutMs);
      this.timer.unref();
    }
    // Sent whatever the settings, so a gateway with a secret never waits for a greeting that
    // does not come (and one without a secret simply skips it).
    socket.write(frame(FRAME.CHALLENGE, this.challenge));
    socket.setTimeout(ctx.limits.idleTimeoutMs);
    socket.on('timeout', () => this.close(this.busy ? 'request_timeout' : 'idle'));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => {
      if (this.paused) this.pump();
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      ctx.cap.remove(this.capEntry);
      this.release();
    });
  }

  private onData(chunk: Buffer): void {
    // Ending: what follows a bad length or a refused frame is read and dropped (left unread, it
    // would make the kernel answer our close with a reset that can overtake the answers).
    if (this.closed || this.ending) return;
    this.ctx.cap.touch(this.capEntry);
    if (this.busy && performance.now() - this.partialSince > this.ctx.limits.requestTimeoutMs) {
      // A client trickling one frame slowly never trips the inactivity timer.
      this.close('request_timeout');
      return;
    }
    if (this.skip > 0) {
      const n = Math.min(this.skip, chunk.length);
      this.skip -= n;
      if (n === chunk.length) {
        this.updateTimer();
        return;
      }
      chunk = chunk.subarray(n);
    }
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.buffered >= this.need && !this.paused) this.pump();
    else this.updateTimer();
  }

  /** Parses and answers whole frames while the connection may take more work. */
  private pump(): void {
    if (this.closed) return;
    const { limits } = this.ctx;
    let buf = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : this.chunks.length === 0 ? EMPTY : Buffer.concat(this.chunks, this.buffered);
    let off = 0;
    for (;;) {
      if (this.answers.length - this.head >= limits.maxInFlight) this.flush();
      if (this.blocked() || this.ending) break;
      const avail = buf.length - off;
      if (avail < 4) {
        this.need = 4;
        break;
      }
      const len = buf.readUInt32BE(off);
      if (len === 0 || len - 1 > this.ctx.maxPayload) {
        // The frames before it were whole: they are answered, then this ERROR, then the close.
        const err = len === 0
          ? new VerdictError('BAD_BODY', 'a frame length of 0 (at least the type byte); closing')
          : new VerdictError('BODY_TOO_LARGE', `a frame of ${len - 1} bytes, over every limit (${this.ctx.maxPayload}); closing`);
        this.answers.push(this.ctx.errorFrame(err));
        this.ending = true;
        this.endReason = len === 0 ? 'bad_length' : 'frame_too_large';
        off = buf.length;
        break;
      }
      if (avail < 5) {
        this.need = 5;
        break;
      }
      const type = buf[off + 4] as number;
      const size = len - 1;
      if (size > (type === FRAME.OUTCOMES ? limits.outcomesBytes : limits.decideBytes)) {
        this.answers.push(this.ctx.errorFrame(new VerdictError('BODY_TOO_LARGE', `a type ${type} frame of ${size} bytes`)));
        const have = Math.min(avail - 5, size);
        off += 5 + have;
        this.skip = size - have;
        if (this.skip > 0) break;
        continue;
      }
      if (avail < 4 + len) {
        this.need = 4 + len;
        break;
      }
      this.dispatch(type, buf.subarray(off + 5, off + 4 + len));
      off += 4 + len;
    }
    if (off >= buf.length) {
      buf = EMPTY;
      this.chunks = [];
    } else {
      buf = buf.subarray(off);
      this.chunks = [buf];
    }
    this.buffered = buf.length;
    if (this.buffered < 4) this.need = 4;
    // Progress: the frame now half-received (if any) starts its clock here.
    if (off > 0) this.partialSince = performance.now();
    this.flush();
    if (this.ending) {
      this.finish();
      return;
    }
    this.setPaused(this.blocked());
    this.updateTimer();
  }

  /**
   * Ends the connection once every answer owed is written (an outcome batch still being applied
   * comes back here from fill()): FIN after the answers; the socket goes when the client closes
   * its side, or at the latest after the request timeout (reading on, to drop what it sends).
   */
  private finish(): void {
    if (this.closed || this.answers.length - this.head > 0) return;
    if (this.endReason) this.ctx.metrics?.framesClosed.inc({ reason: this.endReason });
    this.release();
    this.setPaused(false);
    this.socket.end();
    const socket = this.socket;
    this.timer = setTimeout(() => socket.destroy(), this.ctx.limits.requestTimeoutMs);
    this.timer.unref();
  }

  private blocked(): boolean {
    return (
      this.answers.length - this.head >= this.ctx.limits.maxInFlight ||
      this.heldBytes >= this.ctx.limits.outcomesBytes ||
      this.socket.writableNeedDrain
    );
  }

  private setPaused(paused: boolean): void {
    if (paused === this.paused) return;
    this.paused = paused;
    if (paused) this.socket.pause();
    else this.socket.resume();
  }

  /** Short timeout while a frame is half-received or answers wait; the idle one otherwise. */
  private updateTimer(): void {
    const busy = this.buffered > 0 || this.skip > 0 || this.paused;
    if (busy === this.busy) return;
    this.busy = busy;
    if (busy) this.partialSince = performance.now();
    this.socket.setTimeout(busy ? this.ctx.limits.requestTimeoutMs : this.ctx.limits.idleTimeoutMs);
  }

  private refuse(message: string): void {
    this.answers.push(frame(FRAME.ERROR, Buffer.from(`AUTH: ${message}`)));
    this.ending = true;
  }

  private dispatch(type: number, body: Buffer): void {
    const { service, guard } = this.ctx;
    if (type === FRAME.HELLO) {
      if (!guard || this.authed) return; // nothing to prove, or proved already
      const r = guard.hello(this.challenge, body);
      if (r.ok) {
        this.authed = true;
        clearTimeout(this.timer);
        this.ctx.cap.authenticate(this.capEntry);
      } else {
        this.refuse(`bad HELLO (${r.reason})`);
      }
      return;
    }
    if (!this.authed && (type === FRAME.DECIDE || type === FRAME.OUTCOMES)) {
      guard?.refusedFrame();
      this.refuse('send HELLO first (this connection must prove the gateway secret)');
      return;
    }
    switch (type) {
      case FRAME.DECIDE: {
        const started = performance.now();
        try {
          const req = decodeDecideRequest(body, 'protobuf');
          if (service.expired(req, this.peer, 'frame')) {
            this.answers.push(DEADLINE);
            return;
          }
          const d = service.decideSettled(req);
          if (d instanceof Promise) {
            // a fleet reads what it had not merged first: the answer keeps its place
            const slot = this.answers.length;
            this.answers.push(null);
            d.then(
              (v) => { service.observeDecide('frame', started); this.fill(slot, 0, frame(FRAME.VERDICT, encodeDecideResponse(v))); },
              (err: unknown) => this.fill(slot, 0, this.ctx.errorFrame(err)),
            );
            return;
          }
          const out = frame(FRAME.VERDICT, encodeDecideResponse(d));
          service.observeDecide('frame', started);
          this.answers.push(out);
        } catch (err) {
          this.answers.push(this.ctx.errorFrame(err));
        }
        return;
      }
      case FRAME.OUTCOMES: {
        let batch: PendingOutcomeBatch;
        try {
          batch = openOutcomeBatch(body, 'protobuf', this.ctx.limits.maxOutcomes);
        } catch (err) {
          this.answers.push(this.ctx.errorFrame(err));
          return;
        }
        this.applyOutcomes(batch, body.length);
        return;
      }
      case FRAME.PING:
        this.answers.push(PONG);
        return;
      default:
        this.answers.push(this.ctx.errorFrame(new VerdictError('BAD_BODY', `unknown frame type ${type}`)));
    }
  }

  /**
   * Outcome batches of one connection are applied one after another (in arrival order), in
   * slices; their ACK keeps its place among the answers, decides behind it are decided at once.
   */
  private applyOutcomes(batch: PendingOutcomeBatch, bytes: number): void {
    const slot = this.answers.length;
    this.answers.push(null);
    this.heldBytes += bytes;
    const { service } = this.ctx;
    this.outcomesChain = this.outcomesChain
      .then(() => (this.closed ? undefined : service.outcomes(batch)))
      .then(
        (ack) => this.fill(slot, bytes, ack ? frame(FRAME.ACK, encodeOutcomeAck(ack)) : EMPTY),
        (err: unknown) => this.fill(slot, bytes, this.ctx.errorFrame(err)),
      );
  }

  private fill(slot: number, bytes: number, answer: Buffer): void {
    if (this.closed) return;
    this.heldBytes -= bytes;
    this.answers[slot] = answer;
    this.flush();
    if (this.ending) this.finish();
    else if (this.paused && !this.blocked()) this.pump();
  }

  /** Writes the answers that are ready, up to the first still being worked on, in one write. */
  private flush(): void {
    const answers = this.answers;
    let end = this.head;
    let bytes = 0;
    while (end < answers.length) {
      const a = answers[end];
      if (a === null || a === undefined) break;
      bytes += a.length;
      end++;
    }
    if (end === this.head) return;
    const out = end - this.head === 1 ? (answers[this.head] as Buffer) : Buffer.concat(answers.slice(this.head, end) as Buffer[], bytes);
    if (end === answers.length) {
      answers.length = 0;
      this.head = 0;
    } else {
      for (let i = this.head; i < end; i++) answers[i] = EMPTY;
      this.head = end;
    }
    // write() returning false leaves writableNeedDrain set: blocked() stops reading until 'drain'.
    if (!this.socket.destroyed) this.socket.write(out);
  }

  private close(reason: CloseReason): void {
    if (this.closed) return;
    this.ctx.metrics?.framesClosed.inc({ reason });
    this.ctx.cap.remove(this.capEntry);
    this.socket.destroy();
    this.release();
  }

  /** Closed to make room for a newcomer at the cap (already out of the cap's lists). */
  private evicted(reason: EvictReason): void {
    this.ctx.onEvict?.(reason);
    this.socket.destroy();
    this.release();
  }

  /** Drops everything the connection holds (a batch being applied finishes, unanswered). */
  private release(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.chunks = [];
    this.buffered = 0;
    this.answers.length = 0;
    this.head = 0;
  }
}

export function createFrameServer(opts: FrameServerOptions): Server {
  const limits: FrameLimits = Object.freeze({ ...DEFAULT_FRAME_LIMITS, ...opts.limits });
  const ctx = new FrameContext(opts.service, opts.metrics, limits, opts.guard, opts.onEvict);
  // No server.maxConnections: refusing newcomers at the cap would let whoever holds the places
  // keep a gateway out; the cap evicts instead (connection-cap.ts).
  return createServer({ noDelay: true }, (socket: Socket) => {
    new FrameConnection(socket, ctx);
  });
}
