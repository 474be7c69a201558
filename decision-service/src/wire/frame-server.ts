// The framed transport: the same protobuf messages as HTTP, on persistent TCP or unix-socket
// connections, pipelined, with no HTTP to parse on either side (the lean side-call design of
// HAProxy's SPOE agent protocol). JSON/HTTP stays for debugging, curl and njs.
//
// Frame: uint32 big-endian length of what follows, uint8 type, protobuf payload.
//   1 DECIDE   (DecideRequest)  → 2 VERDICT (DecideResponse)
//   3 OUTCOMES (OutcomeBatch)   → 4 ACK     (OutcomeAck)
//   5 PING     (empty)          → 6 PONG    (empty)
//   any bad frame               → 15 ERROR  (UTF-8 "CODE: message"); the connection stays usable
// Answers go out in request order on each connection. A frame longer than the body limit, or a
// zero length, closes the connection (the stream cannot be resynchronised).

import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { VerdictError } from '../errors.ts';
import type { Handlers } from '../http/handlers.ts';
import type { ServiceMetrics } from '../http/metrics.ts';
import { decodeDecideRequest, decodeOutcomeBatch, encodeDecideResponse, encodeOutcomeAck } from './codec.ts';

export const FRAME = { DECIDE: 1, VERDICT: 2, OUTCOMES: 3, ACK: 4, PING: 5, PONG: 6, ERROR: 15 } as const;

export function frame(type: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + payload.length);
  out.writeUInt32BE(payload.length + 1, 0);
  out[4] = type;
  out.set(payload, 5);
  return out;
}

export interface FrameServerOptions {
  readonly handlers: Handlers;
  readonly metrics: ServiceMetrics | undefined;
  readonly logger: Logger;
  readonly maxFrame: number;
}

export function createFrameServer(opts: FrameServerOptions): Server {
  const { handlers, metrics, logger, maxFrame } = opts;

  function answer(type: number, body: Buffer): Buffer {
    try {
      switch (type) {
        case FRAME.DECIDE: {
          const started = performance.now();
          const d = handlers.decide(decodeDecideRequest(body, 'protobuf'));
          const out = frame(FRAME.VERDICT, encodeDecideResponse(d));
          handlers.observeDecide('frame', started);
          return out;
        }
        case FRAME.OUTCOMES:
          return frame(FRAME.ACK, encodeOutcomeAck(handlers.outcomes(decodeOutcomeBatch(body, 'protobuf'))));
        case FRAME.PING:
          return frame(FRAME.PONG, new Uint8Array(0));
        default:
          throw new VerdictError('BAD_BODY', `unknown frame type ${type}`);
      }
    } catch (err) {
      const e = err instanceof VerdictError ? err : new VerdictError('INTERNAL');
      if (!(err instanceof VerdictError)) logger.error({ err }, 'frame handler failed');
      metrics?.badRequests.inc({ endpoint: 'frame', code: e.code });
      return frame(FRAME.ERROR, Buffer.from(`${e.code}: ${e.message}`));
    }
  }

  return createServer({ noDelay: true }, (socket: Socket) => {
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let offset = 0;
      const out: Buffer[] = [];
      while (pending.length - offset >= 4) {
        const len = pending.readUInt32BE(offset);
        if (len === 0 || len > maxFrame) {
          metrics?.badRequests.inc({ endpoint: 'frame', code: 'BODY_TOO_LARGE' });
          socket.destroy();
          return;
        }
        if (pending.length - offset - 4 < len) break;
        const type = pending[offset + 4] ?? 0;
        out.push(answer(type, pending.subarray(offset + 5, offset + 4 + len)));
        offset += 4 + len;
      }
      pending = offset === pending.length ? Buffer.alloc(0) : pending.subarray(offset);
      if (out.length === 1) socket.write(out[0] as Buffer);
      else if (out.length > 1) socket.write(Buffer.concat(out));
    });
    socket.on('error', () => socket.destroy());
  });
}
