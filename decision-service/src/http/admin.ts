// The operator's endpoints, all behind admin-guard.ts: the API inventory, the audit trail, the
// overrides, and the console (an HTML page and the JSON it refreshes from).
//
//   GET    /v1/inventory                       learned endpoints (shadow, zombie, account oracles,
//                                              what their responses give away)
//   GET    /v1/audit?request_id=ID             one request's record (any instance's, with Redis)
//   GET    /v1/audit?filter=stops|overrides|all&limit=N    recent records, newest first
//   GET    /v1/overrides                       overrides in force
//   POST   /v1/overrides   {key, action, ttl_s, note, by}    (token whenever one is set)
//   DELETE /v1/overrides/:id                                 (token whenever one is set)
//   GET    /console, GET /v1/console/state

import type { FastifyInstance } from 'fastify';
import type { GatewayGuard } from '../auth/guard.ts';
import type { CompiledResponses } from '../config/policy.ts';
import type { Engine } from '../engine/engine.ts';
import { VerdictError } from '../errors.ts';
import type { AuditLog } from '../service/audit.ts';
import type { ConsoleStats } from '../service/console-stats.ts';
import type { GatewayBoard } from '../service/gateways.ts';
import type { ServiceMetrics } from '../service/metrics.ts';
import { overrideInput, type Override, type OverrideBook } from '../service/overrides.ts';
import { adminHooks } from './admin-guard.ts';
import { consolePage } from './console-page.ts';

export interface PolicyEvent {
  readonly at: number;
  readonly version: string;
  readonly result: 'loaded' | 'ok' | 'rejected';
  readonly error?: string;
}

export interface AdminDeps {
  readonly engine: () => Engine;
  readonly guard: GatewayGuard;
  readonly audit: AuditLog;
  readonly overrides: OverrideBook;
  readonly stats: ConsoleStats;
  readonly gateways: GatewayBoard;
  readonly metrics: ServiceMetrics | undefined;
  readonly policyHistory: () => readonly PolicyEvent[];
  /** Redis health for the console; undefined = the embedded store. */
  readonly redis: (() => { connected: boolean; lag_ms: number; pending_keys: number }) | undefined;
  readonly instance: string;
  /** Issue 17: the policy's `responses` section in force (exposure flags); absent = no exposure views. */
  readonly responses?: () => CompiledResponses;
}

/** Endpoints the console lists (by requests); its Exposure section lists those with a sample. */
const CONSOLE_ENDPOINTS = 200;

const FILTERS = new Set(['all', 'stops', 'overrides']);

export function registerAdmin(app: FastifyInstance, deps: AdminDeps): void {
  const { read, write } = adminHooks(deps.guard);
  const { audit, overrides } = deps;

  app.get('/v1/inventory', { preHandler: read }, (_req, reply) => {
    const rp = deps.responses?.();
    return reply.send({
      policy_version: deps.engine().policyVersion,
      patterns_version: rp?.patternsVersion ?? null,
      endpoints: deps.engine().inventory.snapshot(rp),
    });
  });

  app.get('/v1/audit', { preHandler: read }, async (req, reply) => {
    const q = req.query as Record<string, string | undefined>;
    if (q.request_id !== undefined) {
      if (!q.request_id || q.request_id.length > 128) throw new VerdictError('INVALID_FIELD', 'request_id: give the id from the 403 page or the X-Request-Id header (1-128 characters)');
      const r = await audit.lookup(q.request_id);
      if (!r) throw new VerdictError('NOT_FOUND', `no audit record for request_id ${JSON.stringify(q.request_id)} (ALLOW verdicts are recorded only by sample: VERDICT_AUDIT_ALLOW_SAMPLE; the ring holds VERDICT_AUDIT_RING records)`);
      return reply.send(r);
    }
    const filter = q.filter ?? 'stops';
    if (!FILTERS.has(filter)) throw new VerdictError('INVALID_FIELD', 'filter: one of stops, overrides, all');
    const limit = q.limit === undefined ? 50 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new VerdictError('INVALID_FIELD', 'limit: an integer 1-1000');
    return reply.send({ records: await audit.fleetRecent(limit, filter as 'all' | 'stops' | 'overrides') });
  });

  app.get('/v1/overrides', { preHandler: read }, (_req, reply) => reply.send({ overrides: overrides.list() }));

  app.post('/v1/overrides', { preHandler: write, bodyLimit: 8192 }, (req, reply) => {
    const parsed = overrideInput.safeParse(req.body);
    if (!parsed.success) {
      throw new VerdictError('INVALID_FIELD', parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')
        + ' (send {"key":"ip:203.0.113.7","action":"allow","ttl_s":3600,"note":"why","by":"who"})');
    }
    let o: Override;
    try {
      o = overrides.add(parsed.data, req.adminVia ?? '');
    } catch (err) {
      throw new VerdictError('INVALID_FIELD', (err as Error).message);
    }
    audit.override({ ts: o.created, change: 'create', id: o.id, key: o.key, action: o.action, expires: o.expires, note: o.note, by: o.by, via: o.via, peer: req.socket.remoteAddress ?? 'unix' });
    deps.metrics?.overrideChanges.inc({ change: 'create', action: o.action });
    // An allow must reach gateways that cached a stop for this client under any of its keys: the
    // key itself and the cache keys of the audited stops that carry it.
    if (o.action === 'ALLOW') overrides.revoke([o.key, ...audit.matching(o.key).map((r) => r.cache_key).filter(Boolean)]);
    return reply.code(201).send(o);
  });

  app.delete('/v1/overrides/:id', { preHandler: write }, (req, reply) => {
    const id = (req.params as { id: string }).id;
    const o = overrides.remove(id);
    if (!o) throw new VerdictError('NOT_FOUND', `no override ${JSON.stringify(id)} (GET /v1/overrides lists them)`);
    audit.override({ ts: Date.now(), change: 'delete', id: o.id, key: o.key, action: o.action, expires: o.expires, note: o.note, by: o.by, via: req.adminVia ?? '', peer: req.socket.remoteAddress ?? 'unix' });
    deps.metrics?.overrideChanges.inc({ change: 'delete', action: o.action });
    if (o.action === 'BLOCK') overrides.revoke([o.key]);
    return reply.send({ deleted: o });
  });

  app.get('/v1/console/state', { preHandler: read }, async (_req, reply) => {
    return reply.send(await consoleState(deps));
  });

  app.get('/console', { preHandler: read }, async (_req, reply) => {
    reply.header('content-type', 'text/html; charset=utf-8');
    reply.header('content-security-policy', "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'");
    reply.header('x-content-type-options', 'nosniff');
    reply.header('cache-control', 'no-store');
    return reply.send(consolePage(await consoleState(deps), deps.guard.adminTokenSet));
  });
}

export async function consoleState(deps: AdminDeps): Promise<Record<string, unknown>> {
  const engine = deps.engine();
  const endpoints = engine.inventory.snapshot(deps.responses?.());
  return {
    instance: deps.instance,
    now: Date.now(),
    policy_version: engine.policyVersion,
    policy_history: deps.policyHistory(),
    series: deps.stats.series(),
    top_reasons: deps.stats.topReasons(10),
    latency: await deps.stats.latency(),
    redis: deps.redis ? deps.redis() : null,
    gateways: deps.gateways.list(),
    stops: await deps.audit.fleetRecent(30, 'stops'),
    override_log: deps.audit.recent(20, 'overrides'),
    overrides: deps.overrides.list(),
    inventory: endpoints.slice(0, CONSOLE_ENDPOINTS),
    // flagged endpoints first, then the most inspected
    exposure: endpoints
      .filter((e) => e.exposure !== null)
      .sort((a, b) => (b.exposure?.flags.length ?? 0) - (a.exposure?.flags.length ?? 0) || (b.exposure?.inspected ?? 0) - (a.exposure?.inspected ?? 0))
      .slice(0, CONSOLE_ENDPOINTS),
  };
}
