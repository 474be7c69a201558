// The service's configuration: environment → zod → frozen, typed object. Only main.ts passes
// process.env in; everything else receives a ServiceConfig.

import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ConfigError } from '../errors.ts';

const listen = z
  .string()
  .regex(/^(unix:\/.+|(\[[0-9a-fA-F:]+\]|[0-9.]+|localhost):\d{1,5})$/, 'write host:port (e.g. 127.0.0.1:9400) or unix:/absolute/path.sock');

const boolFlag = z.enum(['0', '1', 'true', 'false']).transform((v) => v === '1' || v === 'true');

export const envSchema = z.object({
  VERDICT_LISTEN: listen.default('127.0.0.1:9400').describe('where the service listens'),
  VERDICT_POLICY: z.string().min(1).default('policies/default.yaml').describe('policy YAML file'),
  VERDICT_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  VERDICT_KEEPALIVE_TIMEOUT_MS: z.coerce.number().int().min(1000).max(3_600_000).default(75_000)
    .describe('keep-alive idle timeout; keep the gateway pool idle timeout below it'),
  VERDICT_BODY_LIMIT: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(4 * 1024 * 1024),
  VERDICT_ADMIN_TOKEN: z.string().min(16, 'use at least 16 characters').optional()
    .describe('bearer token for admin endpoints from non-loopback clients'),
  VERDICT_IDENTIFIER_KEY: z.string().min(16, 'use at least 16 random characters').optional()
    .describe('HMAC key for identifiers inside the service; random per process when unset'),
  VERDICT_METRICS: boolFlag.default(true),
  VERDICT_POLICY_WATCH: boolFlag.default(true),
});

export interface ServiceConfig {
  readonly listen: { readonly kind: 'tcp'; readonly host: string; readonly port: number } | { readonly kind: 'unix'; readonly path: string };
  readonly listenText: string;
  readonly policyFile: string;
  readonly logLevel: string;
  readonly keepAliveTimeoutMs: number;
  readonly bodyLimit: number;
  readonly adminToken: string | undefined;
  readonly identifierKey: Buffer;
  readonly identifierKeyEphemeral: boolean;
  readonly metrics: boolean;
  readonly policyWatch: boolean;
}

/** Parses the environment; throws ConfigError naming each bad variable and the fix. */
export function parseEnv(env: NodeJS.ProcessEnv): ServiceConfig {
  const known = Object.keys(envSchema.shape);
  const picked: Record<string, string> = {};
  for (const k of known) {
    const v = env[k];
    if (v !== undefined && v !== '') picked[k] = v;
  }
  const parsed = envSchema.safeParse(picked);
  if (!parsed.success) {
    throw new ConfigError(
      'invalid environment',
      parsed.error.issues.map((i) => {
        const name = String(i.path[0] ?? '?');
        const desc = envSchema.shape[name as keyof typeof envSchema.shape]?.description;
        return `${name}=${JSON.stringify(picked[name] ?? '')}: ${i.message}${desc ? ` (${desc})` : ''}`;
      }),
    );
  }
  const e = parsed.data;
  let listenCfg: ServiceConfig['listen'];
  if (e.VERDICT_LISTEN.startsWith('unix:')) {
    listenCfg = { kind: 'unix', path: e.VERDICT_LISTEN.slice(5) };
  } else {
    const i = e.VERDICT_LISTEN.lastIndexOf(':');
    const port = Number(e.VERDICT_LISTEN.slice(i + 1));
    if (port < 1 || port > 65535) {
      throw new ConfigError('invalid environment', [`VERDICT_LISTEN=${JSON.stringify(e.VERDICT_LISTEN)}: port must be 1-65535`]);
    }
    listenCfg = { kind: 'tcp', host: e.VERDICT_LISTEN.slice(0, i).replace(/^\[|\]$/g, ''), port };
  }
  return Object.freeze({
    listen: Object.freeze(listenCfg),
    listenText: e.VERDICT_LISTEN,
    policyFile: e.VERDICT_POLICY,
    logLevel: e.VERDICT_LOG_LEVEL,
    keepAliveTimeoutMs: e.VERDICT_KEEPALIVE_TIMEOUT_MS,
    bodyLimit: e.VERDICT_BODY_LIMIT,
    adminToken: e.VERDICT_ADMIN_TOKEN,
    identifierKey: e.VERDICT_IDENTIFIER_KEY ? Buffer.from(e.VERDICT_IDENTIFIER_KEY) : randomBytes(32),
    identifierKeyEphemeral: !e.VERDICT_IDENTIFIER_KEY,
    metrics: e.VERDICT_METRICS,
    policyWatch: e.VERDICT_POLICY_WATCH,
  });
}
