// HTTP routes: decide, outcomes, health, metrics. Content negotiation: protobuf or JSON in,
// the same out unless Accept asks for the other.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Engine } from '../engine/engine.ts';
import { VerdictError } from '../errors.ts';
import {
  decodeDecideRequest,
  decodeOutcomeBatch,
  encodeDecideResponse,
  encodeOutcomeAck,
  type DecideResponse,
  type Encoding,
} from '../wire/codec.ts';
import type { ServiceMetrics } from './metrics.ts';
import type { Store } from '../state/store.ts';

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

function toJson(r: DecideResponse): DecideResponse {
  return {
    request_id: r.request_id,
    action: r.action,
    score: r.score,
    reasons: r.reasons,
    cache_key: r.cache_key,
    cache_ttl_s: r.cache_ttl_s,
    policy_version: r.policy_version,
    dry_run: r.dry_run,
  };
}

export interface RouteDeps {
  readonly engine: () => Engine;
  readonly metrics: ServiceMetrics | undefined;
  readonly store: Store;
  readonly adminToken: string | undefined;
}

export function registerRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { metrics } = deps;

  app.addContentTypeParser([PROTOBUF, 'application/protobuf', 'application/octet-stream'], { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, req, reply) => {
    const endpoint = req.routeOptions.url ?? 'unknown';
    if (err instanceof VerdictError) {
      metrics?.badRequests.inc({ endpoint, code: err.code });
      return reply.code(err.status).send(err.toJSON());
    }
    const e = err as { statusCode?: number; code?: string; message?: string };
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      const code = e.statusCode === 413 ? 'BODY_TOO_LARGE' : e.statusCode === 415 ? 'BAD_CONTENT_TYPE' : 'BAD_BODY';
      metrics?.badRequests.inc({ endpoint, code });
      return reply.code(e.statusCode).send({ error: { code, message: e.message ?? 'bad request' } });
    }
    req.log.error({ err }, 'unhandled error');
    return reply.code(500).send(new VerdictError('INTERNAL').toJSON());
  });

  app.setNotFoundHandler((_req, reply) => reply.code(404).send(new VerdictError('NOT_FOUND').toJSON()));

  app.post('/v1/decide', (req: FastifyRequest, reply: FastifyReply) => {
    const started = process.hrtime.bigint();
    const encoding = requestEncoding(req);
    const input = decodeDecideRequest(req.body, encoding);
    const d = deps.engine().decide(input);
    if (metrics) {
      metrics.decisions.inc({ action: d.action, route_class: d.routeClass, mode: input.mode });
      for (const r of d.reasons) metrics.reasons.inc({ reason: r });
      if (d.dry_run) metrics.dryRun.inc({ would_action: d.wouldAction });
    }
    const out = responseEncoding(req, encoding);
    let payload: Buffer | DecideResponse;
    if (out === 'protobuf') {
      const bytes = encodeDecideResponse(d);
      payload = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      reply.header('content-type', PROTOBUF);
    } else {
      payload = toJson(d);
    }
    metrics?.decideSeconds.observe({ encoding }, Number(process.hrtime.bigint() - started) / 1e9);
    return reply.send(payload);
  });

  app.post('/v1/outcomes', (req: FastifyRequest, reply: FastifyReply) => {
    const encoding = requestEncoding(req);
    const batch = decodeOutcomeBatch(req.body, encoding);
    const engine = deps.engine();
    const verdicts: DecideResponse[] = [];
    for (const o of batch.outcomes) {
      // Async-mode requests are scored late, so their blocks can reach the gateway's cache.
      if (o.request) {
        const d = engine.decide({ ...o.request, mode: 'ASYNC' });
        metrics?.decisions.inc({ action: d.action, route_class: d.routeClass, mode: 'ASYNC' });
        if (metrics) for (const r of d.reasons) metrics.reasons.inc({ reason: r });
        if (d.cache_key && d.cache_ttl_s > 0) verdicts.push(toJson(d));
      }
      engine.observe(o);
      metrics?.outcomes.inc({ status_class: `${Math.floor(o.status / 100)}xx` });
    }
    const ack = { accepted: batch.outcomes.length, verdicts };
    if (responseEncoding(req, encoding) === 'protobuf') {
      const bytes = encodeOutcomeAck(ack);
      reply.header('content-type', PROTOBUF);
      return reply.send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    }
    return reply.send(ack);
  });

  // Read-only admin view: loopback (or unix socket) clients, or the admin token.
  app.get('/v1/inventory', (req, reply) => {
    const remote = req.socket.remoteAddress;
    const local = remote === undefined || remote === '127.0.0.1' || remote === '::1' || remote === '::ffff:127.0.0.1';
    const token = deps.adminToken;
    const authorized = token !== undefined && req.headers.authorization === `Bearer ${token}`;
    if (!local && !authorized) throw new VerdictError('FORBIDDEN');
    return reply.send({ policy_version: deps.engine().policyVersion, endpoints: deps.engine().inventory.snapshot() });
  });

  app.get('/healthz', () => ({ status: 'ok', policy_version: deps.engine().policyVersion }));

  if (metrics) {
    app.get('/metrics', async (_req, reply) => {
      metrics.storeKeys.set(deps.store.size());
      reply.header('content-type', metrics.registry.contentType);
      return metrics.registry.metrics();
    });
  }
}
