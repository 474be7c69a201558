// Request bodies, read with bounds, and JSON checked before it is parsed. Size is bounded per
// route (the route's bodyLimit, from the Content-Length before reading, else while reading).
// Pieces are bounded too (readBody): Node hands every chunk of a chunked body to JavaScript as a
// Buffer of its own, so a body in 1-byte chunks cost ~6 µs and ~300 bytes of heap per byte (about
// 3 s of CPU and +300 MB RSS or more for 900 KB in 5.4 MB on the wire); a body in absurdly many
// small pieces is refused once that is clear. Nesting is checked by one linear scan,
// because a megabyte of `[[[[…` costs JSON.parse and the validators far more than its size
// suggests (the issue measured the event loop held 1.1 s by one 4 MB body). The deepest wire
// message (OutcomeBatch → Outcome → DecideRequest → header_names) is 4 levels.

import type { IncomingMessage } from 'node:http';
import { errorCodes, type FastifyInstance, type FastifyRequest } from 'fastify';
import { VerdictError } from '../errors.ts';

/**
 * A body may arrive in at most this many pieces (chunks, or reads) before its pieces must
 * average MIN_PIECE_BYTES: any real client stays far below (nginx and Node send a body in a few
 * writes), and refusing at this point bounds what one body costs to a few tens of ms.
 */
export const MAX_SMALL_PIECES = 4096;
export const MIN_PIECE_BYTES = 64;

/** How long a connection whose body was refused in pieces lingers (not read) before it goes. */
const REFUSED_LINGER_MS = 1000;

type BodyDone = (err: Error | null, body?: Buffer) => void;

/**
 * Reads a request body into one Buffer (grown by doubling up to what Content-Length says, or the
 * limit: memory follows the bytes received, not the bytes announced; the pieces are copied, not
 * kept), within the route's bodyLimit and the piece rule above. Errors carry the status fastify's error path maps (413 too large, 400 otherwise); fastify
 * closes the connection after a body it refused.
 */
export function readBody(req: FastifyRequest, payload: IncomingMessage, done: BodyDone): void {
  const limit = req.routeOptions.bodyLimit;
  const declared = req.headers['content-length'] === undefined ? Number.NaN : Number(req.headers['content-length']);
  if (declared > limit) {
    done(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
    return;
  }
  const most = declared >= 0 ? declared : limit;
  let buf = Buffer.allocUnsafe(Math.min(most, 16 * 1024));
  let received = 0;
  let pieces = 0;
  const stop = (err: Error | null, body?: Buffer) => {
    payload.removeListener('data', onData);
    payload.removeListener('end', onEnd);
    payload.removeListener('error', onError);
    done(err, body);
  };
  const onData = (chunk: Buffer) => {
    pieces++;
    received += chunk.length;
    if (received > limit) {
      stop(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
      return;
    }
    if (pieces > MAX_SMALL_PIECES && pieces * MIN_PIECE_BYTES > received) {
      // fastify's error path writes the answer synchronously (this app has no onSend hooks;
      // http/chunked-body.test.ts checks the 400 arrives). Then nothing more is read (left
      // reading, Node would go on parsing and dumping every piece still coming, which costs as
      // much again), the answer is followed by a FIN, and the socket goes a moment later:
      // destroyed at once with the client's bytes unread, the kernel's reset could overtake the
      // answer on its way to the client.
      stop(new VerdictError('BAD_BODY', `the body came in ${pieces} pieces averaging under ${MIN_PIECE_BYTES} bytes (send it whole, or in larger chunks)`));
      const socket = payload.socket;
      socket.pause();
      socket.end();
      setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
      return;
    }
    if (received > buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(received, Math.min(most, 2 * buf.length)));
      buf.copy(grown, 0, 0, received - chunk.length);
      buf = grown;
    }
    chunk.copy(buf, received - chunk.length);
  };
  const onEnd = () => {
    if (declared >= 0 && received !== declared) {
      stop(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
      return;
    }
    stop(null, received === buf.length ? buf : buf.subarray(0, received));
  };
  const onError = (err: Error & { statusCode?: number }) => {
    if (!(typeof err.statusCode === 'number' && err.statusCode >= 400)) err.statusCode = 400;
    stop(err);
  };
  payload.on('data', onData);
  payload.on('end', onEnd);
  payload.on('error', onError);
  payload.resume();
}

/** A request whose JSON body bytes were kept (the parsed body replaces them in req.body). */
export type RawBodyRequest = FastifyRequest & { rawBody?: Buffer };

/** The exact body bytes of a request: protobuf bodies are kept as they are, JSON ones beside the parse. */
export function rawBody(req: FastifyRequest): Buffer {
  return Buffer.isBuffer(req.body) ? req.body : (req as RawBodyRequest).rawBody ?? EMPTY_BODY;
}
const EMPTY_BODY = Buffer.alloc(0);

export const MAX_JSON_DEPTH = 8;

const QUOTE = 34;
const BACKSLASH = 92;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;

/** The deepest nesting of objects/arrays in `text`, stopping early once it exceeds `max`. */
export function jsonDepth(text: string, max: number): number {
  let depth = 0;
  let deepest = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      // Skip the string: brackets inside it do not nest.
      for (i++; i < n; i++) {
        const s = text.charCodeAt(i);
        if (s === BACKSLASH) i++;
        else if (s === QUOTE) break;
      }
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > max) return deepest;
      }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return deepest;
}

/** Replaces fastify's JSON parser with one that reads by readBody and refuses deep nesting before parsing. */
export function registerJsonParser(app: FastifyInstance, maxDepth = MAX_JSON_DEPTH): void {
  // fastify's own parser (secure-json-parse: refuses __proto__ / constructor.prototype keys).
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', (req, payload, done) => {
    readBody(req, payload, (err, body) => {
      if (err || !body) {
        done(err, undefined);
        return;
      }
      const text = body.toString('utf8');
      if (jsonDepth(text, maxDepth) > maxDepth) {
        done(new VerdictError('TOO_DEEP', `more than ${maxDepth} levels of objects/arrays`), undefined);
        return;
      }
      // the exact bytes, for the gateway signature (auth/gateway-auth.ts)
      (req as RawBodyRequest).rawBody = body;
      parse(req, text, done);
    });
  });
}
