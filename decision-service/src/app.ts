// Composition root: logger, store, policy, engine, metrics and routes, wired once.

import { watch, type FSWatcher } from 'node:fs';
import type { Server, Socket } from 'node:net';
import path from 'node:path';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { ServiceConfig } from './config/env.ts';
import { loadPolicyFile, type CompiledPolicy } from './config/policy.ts';
import { systemClock, type Clock } from './engine/clock.ts';
import { Engine } from './engine/engine.ts';
import { ConfigError, VerdictError } from './errors.ts';
import { registerAuthRequest } from './http/auth-request.ts';
import { registerRoutes } from './http/routes.ts';
import { registerAdmin, type PolicyEvent } from './http/admin.ts';
import { AuditLog } from './service/audit.ts';
import { ConsoleStats } from './service/console-stats.ts';
import { GatewayBoard } from './service/gateways.ts';
import { OverrideBook } from './service/overrides.ts';
import { hostname } from 'node:os';
import { Redis as IORedis, Cluster as IOCluster } from 'ioredis';
import { warmUp } from './http/warm-up.ts';
import { DecisionService } from './service/decision-service.ts';
import { RiskEvents } from './service/risk-events.ts';
import { Webhook, createWebhookMetrics } from './service/webhook.ts';
import { addStoreStats, createMetrics } from './service/metrics.ts';
import { createFrameServer } from './wire/frame-server.ts';
import { CapEntry, ConnectionCap, type EvictReason } from './wire/connection-cap.ts';
import { GatewayGuard } from './auth/guard.ts';
import { MemoryGuard, memoryLimitBytes } from './memory-guard.ts';
import { storeBytes } from './state/memory-store.ts';
import { createLogger, type Logger } from './logger.ts';
import { MemoryStore } from './state/memory-store.ts';
import { RedisStore } from './state/redis-store.ts';
import type { Store } from './state/store.ts';

export interface AppDeps {
  readonly logger?: Logger;
  readonly clock?: Clock;
  readonly store?: Store;
  readonly policy?: CompiledPolicy;
  /** Process-wide metrics (event loop, memory, GC): off for throwaway instances (warm-up). */
  readonly processMetrics?: boolean;
  /** The risk-event bus (tests subscribe to it); a new one when absent. */
  readonly events?: RiskEvents;
}

export interface VerdictApp {
  readonly app: FastifyInstance;
  readonly engine: Engine;
  readonly logger: Logger;
  /** The framed-transport server (not listening yet): the same service, no HTTP. */
  readonly frameServer: Server;
  /** Risk events of this instance (key.blocked, campaign.detected, endpoint.exposure): publishers
   *  raise them here; the webhook, when configured, delivers them. */
  readonly events: RiskEvents;
  /** Re-reads the policy file; a broken policy is rejected and the old one stays. */
  reloadPolicy(): { ok: true; version: string } | { ok: false; error: string };
  /**
   * Runs `count` synthetic decisions through a throwaway copy of this app (own engine, memory
   * store and metrics; same code), so the first real decisions run compiled code. Call before
   * listening; this app's state and metrics are untouched.
   */
  warmUp(count: number): Promise<void>;
}

export function buildApp(config: ServiceConfig, deps: AppDeps = {}): VerdictApp {
  const logger = deps.logger ?? createLogger(config.logLevel);
  const policy = deps.policy ?? loadPolicyFile(config.policyFile);
  const redisStore = !deps.store && config.redis
    ? new RedisStore({ ...config.redis, maxKeys: config.storeMaxKeys, logger: logger.child({ component: 'redis-store' }) })
    : undefined;
  const store = deps.store ?? redisStore ?? new MemoryStore({ maxKeys: config.storeMaxKeys });
  // Risk events (issue 17): raised by the audit trail and the inventory, delivered by the webhook.
  const events = deps.events ?? new RiskEvents();
  const engine = new Engine({ policy, store, clock: deps.clock ?? systemClock, identifierKey: config.identifierKey });
  const metrics = config.metrics ? createMetrics(deps.processMetrics ?? true) : undefined;
  metrics?.policyVersion.set({ version: policy.version }, 1);
  if (metrics && redisStore) addStoreStats(metrics, () => redisStore.stats());

  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // One log line per decision would cost more than the decision itself.
    logController: new LogController({ disableRequestLogging: true }),
    keepAliveTimeout: config.keepAliveTimeoutMs,
    // Slow or silent clients: a request (headers and body) must arrive within the request
    // timeout, and a new connection must start one within it. Node checks the request timeout
    // on an interval (30 s by default): make it fine enough to matter.
    connectionTimeout: config.requestTimeoutMs,
    requestTimeout: config.requestTimeoutMs,
    http: {
      headersTimeout: config.requestTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, config.requestTimeoutMs),
    },
    // The routes set their own (decide, outcomes); nothing else takes a body.
    bodyLimit: config.decideBodyLimit,
    // Request ids come from the gateway's payload; fastify's own are not needed.
    genReqId: () => '',
    return503OnClosing: false,
    // Errors met before routing (a URL with a bad %-escape, an over-long parameter) skip
    // setErrorHandler: answer them in the catalogue's shape too.
    frameworkErrors: (err: FastifyError, _req, reply: FastifyReply) => {
      const e = err.code === 'FST_ERR_BAD_URL' || err.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? new VerdictError('NOT_FOUND', `the URL cannot be decoded (${err.message})`)
        : new VerdictError('INTERNAL');
      return reply.code(e.status).send(e.toJSON());
    },
  });

  // VERDICT_MAX_CONNECTIONS per transport, by eviction (wire/connection-cap.ts): at the cap a
  // newcomer is admitted and the connection idle longest closed, so idle connections held by
  // anyone cannot lock a gateway out. (Refusing newcomers, net.Server's maxConnections, would.)
  const evicted = metrics?.connectionsEvicted;
  const httpCap = new ConnectionCap(config.maxConnections);
  const httpEntries = new WeakMap<Socket, CapEntry>();
  app.server.on('connection', (socket: Socket) => {
    const entry = new CapEntry((reason: EvictReason) => {
      evicted?.inc({ transport: 'http', reason });
      socket.destroy();
    });
    httpEntries.set(socket, entry);
    httpCap.admit(entry, true);
    socket.once('close', () => httpCap.remove(entry));
  });
  // Activity is a request (the HTTP parser reads the socket itself: no 'data' events to watch).
  app.server.on('request', (req: { socket: Socket }) => {
    const entry = httpEntries.get(req.socket);
    if (entry) httpCap.touch(entry);
  });

  // The operator's side (issue 16): audit trail, overrides, gateway board. With Redis they share
  // one small connection of their own (the store's pipelines stay undisturbed).
  const instance = `${hostname()}-${process.pid}`;
  const adminRedis = config.redis && deps.processMetrics !== false
    ? (config.redis.clusterNodes.length > 0
      ? new IOCluster(config.redis.clusterNodes.map((n) => ({ host: n.host, port: n.port })), { enableOfflineQueue: false, redisOptions: { maxRetriesPerRequest: 1 } })
      : new IORedis(config.redis.url as string, { enableOfflineQueue: false, maxRetriesPerRequest: 1 }))
    : undefined;
  adminRedis?.on('error', () => { /* health shows in the console; the store logs Redis state changes */ });
  // The webhook delivers the bus's events off the decide path; a throwaway warm-up instance has none.
  const webhookMetrics = metrics ? createWebhookMetrics(metrics.registry) : undefined;
  let webhook: Webhook | undefined;
  if (config.webhook && deps.processMetrics !== false) {
    webhook = new Webhook({ ...config.webhook, logger: logger.child({ component: 'webhook' }), metrics: webhookMetrics });
    webhook.attach(events);
    // the origin only: a path or query may hold a receiver's token
    logger.info({ webhook: new URL(config.webhook.url).origin, events: [...config.webhook.events] }, 'risk events go to the webhook');
  }
  const audit = new AuditLog({
    ring: config.audit.ring,
    allowSample: config.audit.allowSample,
    file: deps.processMetrics === false ? undefined : config.audit.file,
    fileMaxBytes: config.audit.fileMaxBytes,
    fileKeep: config.audit.fileKeep,
    redis: adminRedis,
    redisPrefix: config.redis?.prefix,
    redisMaxLen: config.audit.redisMaxLen,
    redisTtlS: config.audit.redisTtlS,
    instance,
    logger: logger.child({ component: 'audit' }),
    recorded: metrics?.auditRecords,
    dropped: metrics?.auditDropped,
    events: deps.processMetrics === false ? undefined : events,
  });
  const overrides = new OverrideBook({
    stateDir: deps.processMetrics === false ? undefined : config.stateDir,
    identifierKey: config.identifierKey,
    logger: logger.child({ component: 'overrides' }),
    redis: adminRedis,
    redisPrefix: config.redis?.prefix,
  });
  const gateways = new GatewayBoard();
  const stats = new ConsoleStats(metrics, Date.now, () => metrics?.overridesActive.set(overrides.list().length));
  const policyHistory: PolicyEvent[] = [{ at: Date.now(), version: policy.version, result: 'loaded' }];
  app.addHook('onClose', async () => {
    stats.close();
    overrides.close();
    await audit.close();
    adminRedis?.disconnect();
    await webhook?.close();
  });

  // the one service HTTP, frames and GET /v1/auth call
  const service = new DecisionService({
    engine: () => engine, metrics, logger, clock: deps.clock ?? systemClock, clockSkewMs: config.clockSkewMs,
    audit, overrides, gateways, thresholds: (cls) => livePolicy.thresholds[cls as keyof typeof livePolicy.thresholds],
    responses: () => livePolicy.responses,
    // endpoint.exposure (the inventory); a throwaway warm-up instance raises nothing
    riskEvents: deps.processMetrics === false ? undefined : events,
    settleMs: config.redis?.settleMs ?? 0,
  });
  const limitBytes = memoryLimitBytes(config.memoryLimitMb);
  metrics?.memoryLimit.set(limitBytes);
  if (!redisStore && !deps.store && storeBytes(config.storeMaxKeys) > 0.7 * limitBytes) {
    logger.warn({ store_mb: Math.round(storeBytes(config.storeMaxKeys) / 2 ** 20), limit_mb: Math.round(limitBytes / 2 ** 20) },
      'VERDICT_STORE_MAX_KEYS needs most of VERDICT_MEMORY_LIMIT_MB: lower it, or the guard will shrink the store');
  }
  // a throwaway warm-up instance (processMetrics off) needs no guard of its own
  const memoryGuard = deps.processMetrics === false ? undefined : new MemoryGuard({
    limitBytes,
    targets: { store, engine, lateVerdicts: service },
    onShed: (e) => {
      metrics?.memorySheds.inc({ reason: e.reason });
      logger.warn({ reason: e.reason, rss_mb: Math.round(e.rssBytes / 2 ** 20), limit_mb: Math.round(e.limitBytes / 2 ** 20), heap_mb: Math.round(e.heapBytes / 2 ** 20), dropped: e.dropped },
        'memory limit reached: shed the least recently used quarter of the detector state');
    },
  }).start();
  app.addHook('onClose', async () => memoryGuard?.stop());
  const guard = new GatewayGuard(config.gatewayKeys, config.authExemptLoopback, config.clockSkewMs, config.adminToken, config.adminLoopback, metrics?.authFailures);
  registerRoutes(app, {
    engine: () => engine,
    metrics,
    store,
    guard,
    service,
    limits: { decideBytes: config.decideBodyLimit, outcomesBytes: config.outcomesBodyLimit, maxOutcomes: config.maxOutcomesPerBatch },
  });
  registerAuthRequest(app, service, config.identifierKey, guard, logger);
  registerAdmin(app, {
    engine: () => engine,
    guard,
    audit,
    overrides,
    stats,
    gateways,
    metrics,
    policyHistory: () => policyHistory,
    redis: redisStore ? () => { const st = redisStore.stats(); return { connected: st.connected, lag_ms: st.lagMs, pending_keys: st.pendingKeys }; } : undefined,
    instance,
    responses: () => livePolicy.responses,
  });

  let watcher: FSWatcher | undefined;
  let current = policy.version;
  let livePolicy = policy;
  const reloadPolicy: VerdictApp['reloadPolicy'] = () => {
    try {
      const next = loadPolicyFile(config.policyFile);
      engine.setPolicy(next);
      livePolicy = next;
      if (metrics) {
        metrics.policyVersion.remove({ version: current });
        metrics.policyVersion.set({ version: next.version }, 1);
        metrics.policyReloads.inc({ result: 'ok' });
      }
      current = next.version;
      policyHistory.push({ at: Date.now(), version: next.version, result: 'ok' });
      if (policyHistory.length > 50) policyHistory.shift();
      logger.info({ version: next.version, file: config.policyFile }, 'policy reloaded');
      return { ok: true, version: next.version };
    } catch (err) {
      const message = err instanceof ConfigError ? err.message : String(err);
      metrics?.policyReloads.inc({ result: 'rejected' });
      policyHistory.push({ at: Date.now(), version: current, result: 'rejected', error: message.slice(0, 500) });
      if (policyHistory.length > 50) policyHistory.shift();
      logger.error({ file: config.policyFile }, `policy reload rejected, keeping version ${current}: ${message}`);
      return { ok: false, error: message };
    }
  };

  let settle: NodeJS.Timeout | undefined;
  if (config.policyWatch && !deps.policy) {
    // The directory, not the file: an atomic save (`mv new.yaml live.yaml`, most editors,
    // deploy tools) replaces the inode, and a watch on the file would stay on the old one and
    // miss every later edit. Kubernetes ConfigMap volumes swap a `..data` symlink instead.
    const dir = path.dirname(config.policyFile);
    const name = path.basename(config.policyFile);
    try {
      watcher = watch(dir, (_event, changed) => {
        if (changed !== null && changed !== name && changed !== '..data') return;
        // Editors write in several steps; settle before reading.
        clearTimeout(settle);
        settle = setTimeout(reloadPolicy, 200);
      });
      watcher.on('error', (err) => logger.warn({ err }, 'policy watch failed; reload with SIGHUP'));
    } catch (err) {
      logger.warn({ err }, 'cannot watch the policy directory; reload with SIGHUP');
    }
  }
  app.addHook('onClose', async () => {
    clearTimeout(settle);
    watcher?.close();
    await redisStore?.close();
  });

  const frameServer = createFrameServer({
    service,
    guard,
    metrics,
    limits: {
      decideBytes: config.decideBodyLimit,
      outcomesBytes: config.outcomesBodyLimit,
      maxOutcomes: config.maxOutcomesPerBatch,
      maxInFlight: config.frameMaxInFlight,
      idleTimeoutMs: config.keepAliveTimeoutMs,
      requestTimeoutMs: config.requestTimeoutMs,
      maxConnections: config.maxConnections,
    },
    onEvict: (reason) => evicted?.inc({ transport: 'frame', reason }),
  });
  app.addHook('onClose', async () => {
    if (frameServer.listening) await new Promise<void>((resolve) => frameServer.close(() => resolve()));
  });

  const warm: VerdictApp['warmUp'] = async (count) => {
    if (count <= 0) return;
    const scratch = buildApp(
      // its loopback warm-up clients need no proof (the code paths warmed are the same)
      { ...config, policyWatch: false, redis: undefined, metrics: true, logLevel: 'silent', gatewayKeys: [] },
      { logger: createLogger('silent'), clock: deps.clock, store: new MemoryStore({ maxKeys: 10_000 }), policy: livePolicy, processMetrics: false },
    );
    try {
      await warmUp(scratch, livePolicy, count);
    } finally {
      await scratch.app.close();
    }
  };

  return { app, engine, logger, frameServer, events, reloadPolicy, warmUp: warm };
}
