// HTTP routes: decide, outcomes, health, metrics. Content negotiation: protobuf or JSON in,
// the same out unless Accept asks for the other. Each POST has its own body limit, checked
// before the body is read when Content-Length says it, bodies in absurdly many small chunks are
// refused, and JSON nesting is checked before parsing (json-body.ts).

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Decision, Engine } from '../engine/engine.ts';
import { VerdictError } from '../errors.ts';
import {
  decodeDecideRequest,
  encodeDecideResponse,
  encodeOutcomeAck,
  openOutcomeBatch,
  type DecideResponse,
  type Encoding,
} from '../wire/codec.ts';
import { toWire, type DecisionService } from '../service/decision-service.ts';
import type { ServiceMetrics } from '../service/metrics.ts';
import { rawBody, readBody, registerJsonParser } from './json-body.ts';
import type { Store } from '../state/store.ts';
import type { GatewayGuard } from '../auth/guard.ts';

const PROTOBUF = 'application/x-protobuf';

function requestEncoding(req: FastifyRequest): Encoding {
  const ct = req.headers['content-type'] ?? '';
  if (ct.startsWith(PROTOBUF) || ct.startsWith('application/protobuf') || ct.startsWith('application/octet-stream')) return 'protobuf';
  if (ct.startsWith('application/json')) return 'json';
  throw new VerdictError('BAD_CONTENT_TYPE', `got "${ct || '(none)'}"`);
}

function responseEncoding(req: FastifyRequest, incoming: Encoding): Encoding {
  const accept = req.headers.accept;
  if (!accept || accept === '*/*') return incoming;
  if (accept.includes(PROTOBUF)) return 'protobuf';
  if (accept.includes('application/json')) return 'json';
  return incoming;
}

/** The answer to /v1/decide in the encoding the gateway asked for. */
function answerDecide(service: DecisionService, req: FastifyRequest, reply: FastifyReply, encoding: Encoding, d: Decision, started: number): FastifyReply {
  const out = responseEncoding(req, encoding);
  let payload: Buffer | DecideResponse;
  if (out === 'protobuf') {
    const bytes = encodeDecideResponse(d);
    payload = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    reply.header('content-type', PROTOBUF);
  } else {
    payload = toWire(d);
  }
  service.observeDecide(encoding, started);
  return reply.send(payload);
}

export interface RouteDeps {
  readonly engine: () => Engine;
  readonly metrics: ServiceMetrics | undefined;
  readonly store: Store;
  readonly guard: GatewayGuard;
  readonly service: DecisionService;
  readonly limits: RouteLimits;
}

export interface RouteLimits {
  /** Largest POST /v1/decide body (bytes). */
  readonly decideBytes: number;
  /** Largest POST /v1/outcomes body (bytes). */
  readonly outcomesBytes: number;
  /** Most outcomes in one batch. */
  readonly maxOutcomes: number;
}

const DEADLINE_BODY = new VerdictError('DEADLINE').toJSON();

export function registerRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { metrics, limits, service, guard } = deps;

  registerJsonParser(app);
  app.addContentTypeParser([PROTOBUF, 'application/protobuf', 'application/octet-stream'], (req, payload, done) => readBody(req, payload, done));

  // The service's error path for every route (GET /v1/auth included); fastify's own errors are
  // put in the catalogue first.
  app.setErrorHandler((err, req, reply) => {
    const endpoint = req.routeOptions.url ?? 'unknown';
    const status = err instanceof VerdictError ? 0 : (err as { statusCode?: number }).statusCode ?? 0;
    if (status === 413) {
      const tooLarge = endpoint === '/v1/outcomes'
        ? new VerdictError('BODY_TOO_LARGE', `over ${limits.outcomesBytes} bytes (VERDICT_OUTCOMES_BODY_LIMIT)`)
        : new VerdictError('BODY_TOO_LARGE', `over ${limits.decideBytes} bytes (VERDICT_DECIDE_BODY_LIMIT)`);
      service.failure(tooLarge, endpoint);
      // Close rather than read and discard the rest of a body we refused (megabytes, from a
      // client that is hostile or misconfigured).
      return reply.code(413).header('connection', 'close').send(tooLarge.toJSON());
    }
    const e = service.failure(status >= 400 && status < 500
      ? new VerdictError(status === 415 ? 'BAD_CONTENT_TYPE' : 'BAD_BODY', (err as Error).message)
      : err, endpoint);
    return reply.code(e.status).send(e.toJSON());
  });

  app.setNotFoundHandler((_req, reply) => reply.code(404).send(new VerdictError('NOT_FOUND').toJSON()));

  // Gateways prove the secret on every decide/outcome call (unless exempt: loopback without a
  // secret, or with VERDICT_AUTH_EXEMPT_LOOPBACK): a signature over the exact body bytes.
  // Callback hooks, not async ones: no promise per decide.
  const gatewayOnly = (req: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void => {
    const h = req.headers['x-verdict-auth'];
    const r = guard.http(req.socket.remoteAddress, Array.isArray(h) ? h[0] : h, req.routeOptions.url ?? '', rawBody(req));
    done(r.ok ? undefined : new VerdictError('AUTH', `gateway proof ${r.reason}`));
  };
  const adminOnly = (req: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void => {
    done(guard.admin(req.socket.remoteAddress, req.headers.authorization) ? undefined : new VerdictError('AUTH', 'admin endpoint'));
  };

  app.post('/v1/decide', { bodyLimit: limits.decideBytes, preHandler: gatewayOnly }, (req: FastifyRequest, reply: FastifyReply) => {
    const started = performance.now();
    const encoding = requestEncoding(req);
    const input = decodeDecideRequest(req.body, encoding);
    // Not an error of the client's making: answered directly, counted as expired, not bad.
    if (service.expired(input, req.socket.remoteAddress ?? '', 'http')) return reply.code(504).send(DEADLINE_BODY);
    const settled = service.decideSettled(input);
    if (settled instanceof Promise) return settled.then((d) => answerDecide(service, req, reply, encoding, d, started));
    return answerDecide(service, req, reply, encoding, settled, started);
  });

  app.post('/v1/outcomes', { bodyLimit: limits.outcomesBytes, preHandler: gatewayOnly }, async (req: FastifyRequest, reply: FastifyReply) => {
    const encoding = requestEncoding(req);
    const ack = await service.outcomes(openOutcomeBatch(req.body, encoding, limits.maxOutcomes));
    if (responseEncoding(req, encoding) === 'protobuf') {
      const bytes = encodeOutcomeAck(ack);
      reply.header('content-type', PROTOBUF);
      return reply.send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    }
    return reply.send(ack);
  });

  // The other admin endpoints (inventory, audit, overrides, console): http/admin.ts.

  app.get('/healthz', () => ({ status: 'ok', policy_version: deps.engine().policyVersion }));

  if (metrics) {
    app.get('/metrics', { preHandler: adminOnly }, async (_req, reply) => {
      metrics.storeKeys.set(deps.store.size());
      reply.header('content-type', metrics.registry.contentType);
      return metrics.registry.metrics();
    });
  }
}
