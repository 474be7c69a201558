// Composition root: logger, store, policy, engine, metrics and routes, wired once.

import { watch, type FSWatcher } from 'node:fs';
import type { Server } from 'node:net';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { ServiceConfig } from './config/env.ts';
import { loadPolicyFile, type CompiledPolicy } from './config/policy.ts';
import { systemClock, type Clock } from './engine/clock.ts';
import { Engine } from './engine/engine.ts';
import { ConfigError } from './errors.ts';
import { addStoreStats, createMetrics } from './http/metrics.ts';
import { registerAuthRequest } from './http/auth-request.ts';
import { Handlers } from './http/handlers.ts';
import { registerRoutes } from './http/routes.ts';
import { createFrameServer } from './wire/frame-server.ts';
import { createLogger, type Logger } from './logger.ts';
import { MemoryStore } from './state/memory-store.ts';
import { RedisStore } from './state/redis-store.ts';
import type { Store } from './state/store.ts';

export interface AppDeps {
  readonly logger?: Logger;
  readonly clock?: Clock;
  readonly store?: Store;
  readonly policy?: CompiledPolicy;
}

export interface VerdictApp {
  readonly app: FastifyInstance;
  readonly engine: Engine;
  readonly logger: Logger;
  /** The framed-transport server (not listening yet): same handlers, no HTTP. */
  readonly frameServer: Server;
  /** Re-reads the policy file; a broken policy is rejected and the old one stays. */
  reloadPolicy(): { ok: true; version: string } | { ok: false; error: string };
}

export function buildApp(config: ServiceConfig, deps: AppDeps = {}): VerdictApp {
  const logger = deps.logger ?? createLogger(config.logLevel);
  const policy = deps.policy ?? loadPolicyFile(config.policyFile);
  const redisStore = !deps.store && config.redis
    ? new RedisStore({ ...config.redis, maxKeys: config.storeMaxKeys, logger: logger.child({ component: 'redis-store' }) })
    : undefined;
  const store = deps.store ?? redisStore ?? new MemoryStore({ maxKeys: config.storeMaxKeys });
  const engine = new Engine({ policy, store, clock: deps.clock ?? systemClock, identifierKey: config.identifierKey });
  const metrics = config.metrics ? createMetrics(true) : undefined;
  metrics?.policyVersion.set({ version: policy.version }, 1);
  if (metrics && redisStore) addStoreStats(metrics, () => redisStore.stats());

  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // One log line per decision would cost more than the decision itself.
    logController: new LogController({ disableRequestLogging: true }),
    keepAliveTimeout: config.keepAliveTimeoutMs,
    bodyLimit: config.bodyLimit,
    // Request ids come from the gateway's payload; fastify's own are not needed.
    genReqId: () => '',
    return503OnClosing: false,
  });

  const handlers = new Handlers(() => engine, metrics);
  registerRoutes(app, { engine: () => engine, metrics, store, adminToken: config.adminToken, handlers });
  registerAuthRequest(app, () => engine, config.identifierKey, metrics);

  let watcher: FSWatcher | undefined;
  let current = policy.version;
  const reloadPolicy: VerdictApp['reloadPolicy'] = () => {
    try {
      const next = loadPolicyFile(config.policyFile);
      engine.setPolicy(next);
      if (metrics) {
        metrics.policyVersion.remove({ version: current });
        metrics.policyVersion.set({ version: next.version }, 1);
        metrics.policyReloads.inc({ result: 'ok' });
      }
      current = next.version;
      logger.info({ version: next.version, file: config.policyFile }, 'policy reloaded');
      return { ok: true, version: next.version };
    } catch (err) {
      const message = err instanceof ConfigError ? err.message : String(err);
      metrics?.policyReloads.inc({ result: 'rejected' });
      logger.error({ file: config.policyFile }, `policy reload rejected, keeping version ${current}: ${message}`);
      return { ok: false, error: message };
    }
  };

  if (config.policyWatch && !deps.policy) {
    let timer: NodeJS.Timeout | undefined;
    try {
      watcher = watch(config.policyFile, () => {
        // Editors write in several steps; settle before reading.
        clearTimeout(timer);
        timer = setTimeout(reloadPolicy, 200);
      });
    } catch (err) {
      logger.warn({ err }, 'cannot watch the policy file; reload with SIGHUP');
    }
  }
  app.addHook('onClose', async () => {
    watcher?.close();
    await redisStore?.close();
  });

  const frameServer = createFrameServer({ handlers, metrics, logger, maxFrame: config.bodyLimit });
  app.addHook('onClose', async () => {
    if (frameServer.listening) await new Promise<void>((resolve) => frameServer.close(() => resolve()));
  });

  return { app, engine, logger, frameServer, reloadPolicy };
}
