// The only reader of process.env: parse config → build app → warm up → listen.

import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { buildApp } from './app.ts';
import { parseEnv, type ServiceConfig } from './config/env.ts';
import { ConfigError } from './errors.ts';

/** Listens on a unix socket: a stale socket file left by a killed process goes first, and the new
 *  one gets VERDICT_SOCKET_MODE (connecting needs write permission; nginx runs as another user). */
async function onUnixSocket(path: string, mode: number, listen: () => Promise<unknown>): Promise<void> {
  if (existsSync(path)) unlinkSync(path);
  await listen();
  chmodSync(path, mode);
}

async function main(): Promise<void> {
  let config: ServiceConfig;
  let built: ReturnType<typeof buildApp>;
  try {
    config = parseEnv(process.env);
    built = buildApp(config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`verdict: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const { app, logger, reloadPolicy } = built;
  if (config.identifierKeyEphemeral) {
    logger.warn('VERDICT_IDENTIFIER_KEY is not set: identifier hashes use a random per-process key (fine for one instance; set it for fleets)');
  }

  // Before listening: the first real requests must not pay for compiling the code they run.
  const warmStarted = performance.now();
  try {
    await built.warmUp(config.warmup);
    if (config.warmup > 0) logger.info({ decisions: config.warmup, ms: Math.round(performance.now() - warmStarted) }, 'warmed up');
  } catch (err) {
    // Only the first requests' latency is at stake: start anyway.
    logger.warn({ err }, 'warm-up failed; the first decisions will be slower');
  }

  if (config.listen.kind === 'unix') {
    const path = config.listen.path;
    await onUnixSocket(path, config.socketMode, () => app.listen({ path }));
  } else {
    await app.listen({ host: config.listen.host, port: config.listen.port });
  }
  const fl = config.frameListen;
  if (fl) {
    const listenFrames = () => new Promise<void>((resolve, reject) => {
      built.frameServer.once('error', reject);
      if (fl.kind === 'unix') built.frameServer.listen(fl.path, resolve);
      else built.frameServer.listen(fl.port, fl.host, resolve);
    });
    if (fl.kind === 'unix') await onUnixSocket(fl.path, config.socketMode, listenFrames);
    else await listenFrames();
  }
  process.stdout.write(`verdict decision service listening on ${config.listenText} (frames: ${config.frameListenText}; policy ${config.policyFile}, version ${built.engine.policyVersion})\n`);

  process.on('SIGHUP', () => reloadPolicy());
  let closing = false;
  const stop = (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutting down');
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
    setTimeout(() => process.exit(0), 3000).unref();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  process.stderr.write(`verdict: fatal: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
