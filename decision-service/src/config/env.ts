// The service's configuration: environment → zod → frozen, typed object. Only main.ts passes
// process.env in; everything else receives a ServiceConfig. Every VERDICT_* variable must be one
// of the schema's (or of the repository tools' list below): a misspelt one is an error naming the
// closest valid name, never a setting silently left at its default.

import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { isLoopbackListen, loadGatewayKeys, type GatewayKey } from '../auth/gateway-auth.ts';
import { MAX_OUTCOMES_PER_BATCH } from '../wire/schema.ts';
import { RISK_EVENT_TYPES, type RiskEventType } from '../service/risk-events.ts';
import { readKeyLines } from './key-file.ts';

const listen = z
  .string()
  .regex(/^(unix:\/.+|(\[[0-9a-fA-F:]+\]|[0-9.]+|localhost):\d{1,5})$/, 'write host:port (e.g. 127.0.0.1:9400) or unix:/absolute/path.sock');

const boolFlag = z.enum(['0', '1', 'true', 'false']).transform((v) => v === '1' || v === 'true');

export const envSchema = z.object({
  VERDICT_LISTEN: listen.default('127.0.0.1:9400').describe('where the service listens'),
  VERDICT_FRAME_LISTEN: z.union([z.literal('off'), listen]).default('off')
    .describe('framed protobuf transport for the Lua gateway (host:port, unix:/path, or off)'),
  VERDICT_SOCKET_MODE: z.string().regex(/^0?[0-7]{3}$/, 'write an octal file mode such as 0660').default('0660')
    .describe('file mode of the unix sockets (VERDICT_LISTEN, VERDICT_FRAME_LISTEN): connecting needs write permission, so nginx\'s worker user must be the owner, in the group (0660, the default) or, with a gateway secret, anyone (0666)'),
  VERDICT_POLICY: z.string().min(1).default('policies/default.yaml').describe('policy YAML file'),
  VERDICT_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  VERDICT_KEEPALIVE_TIMEOUT_MS: z.coerce.number().int().min(1000).max(3_600_000).default(75_000)
    .describe('idle time before a connection (HTTP keep-alive or framed) is closed; keep the gateway pool idle timeout below it'),
  VERDICT_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000)
    .describe('time a client has to send one whole request or frame (and to read its answers) before the connection is closed'),
  VERDICT_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(1_000_000).default(4096)
    .describe('open connections per transport (HTTP, frames); more are closed on arrival, the open ones keep working'),
  VERDICT_DECIDE_BODY_LIMIT: z.coerce.number().int().min(4096).max(1024 * 1024).default(64 * 1024)
    .describe('largest decide body (HTTP) or frame payload in bytes; above the largest valid DecideRequest, so no valid request is refused'),
  VERDICT_OUTCOMES_BODY_LIMIT: z.coerce.number().int().min(64 * 1024).max(64 * 1024 * 1024).default(1024 * 1024)
    .describe('largest outcome batch body or frame payload in bytes'),
  VERDICT_OUTCOMES_MAX_BATCH: z.coerce.number().int().min(1).max(MAX_OUTCOMES_PER_BATCH).default(2000)
    .describe('most outcomes in one batch; keep the gateway outcome_batch_size at or below it'),
  VERDICT_FRAME_MAX_IN_FLIGHT: z.coerce.number().int().min(1).max(65_536).default(256)
    .describe('frames of one connection decoded but not yet answered before the service stops reading it'),
  VERDICT_WARMUP: z.coerce.number().int().min(0).max(100_000).default(5000)
    .describe('synthetic decisions run through a throwaway engine before listening, so the first real ones are not slow (0 = off)'),
  VERDICT_ADMIN_TOKEN: z.string().min(16, 'use at least 16 characters').optional()
    .describe('bearer token for admin endpoints from non-loopback clients'),
  VERDICT_IDENTIFIER_KEY: z.string().min(16, 'use at least 16 random characters').optional()
    .describe('HMAC key for identifiers inside the service; random per process when unset'),
  VERDICT_METRICS: boolFlag.default(true),
  VERDICT_MEMORY_LIMIT_MB: z.coerce.number().int().min(0).max(1_048_576).default(0)
    .describe('resident memory (MiB) above which detector state is shed (least recently used quarter) before the OOM killer acts; 0 = 85% of the container (cgroup) or machine memory'),
  VERDICT_GATEWAY_SECRET_FILE: z.string().min(1).optional()
    .describe('file with the gateway secret (line 1: current key, line 2: the previous one while rotating); required to listen beyond loopback'),
  VERDICT_AUTH_EXEMPT_LOOPBACK: boolFlag.default(false)
    .describe('with a gateway secret: loopback and unix-socket clients may call without proving it (handy for curl; off by default)'),
  VERDICT_ADMIN_LOOPBACK: boolFlag.default(true)
    .describe('loopback and unix-socket clients read the admin endpoints (/metrics, /v1/inventory, /v1/audit, /v1/overrides, /console) without VERDICT_ADMIN_TOKEN; changes need the token whenever it is set'),
  VERDICT_CLOCK_SKEW_MS: z.coerce.number().int().min(1000).max(600_000).default(30_000)
    .describe('largest gateway/service clock difference accepted: older signed calls are refused, request times are clamped to it'),
  VERDICT_STORE_MAX_KEYS: z.coerce.number().int().min(1000).max(50_000_000).default(500_000)
    .describe('keys each detector-state structure holds before evicting the least recently used (memory bound)'),
  VERDICT_POLICY_WATCH: boolFlag.default(true),
  VERDICT_AUDIT_RING: z.coerce.number().int().min(100).max(1_000_000).default(10_000)
    .describe('audit records kept in memory (lookup by request id, recent stops)'),
  VERDICT_AUDIT_ALLOW_SAMPLE: z.coerce.number().min(0).max(1).default(0)
    .describe('share of ALLOW verdicts also recorded in the audit trail, 0..1 (every non-ALLOW verdict is)'),
  VERDICT_AUDIT_FILE: z.string().min(1).optional()
    .describe('append audit records to this JSON Lines file (rotated by size); unset = memory (and Redis) only'),
  VERDICT_AUDIT_FILE_MAX_MB: z.coerce.number().int().min(1).max(100_000).default(64)
    .describe('size at which VERDICT_AUDIT_FILE is rotated to .1, .2, …'),
  VERDICT_AUDIT_FILE_KEEP: z.coerce.number().int().min(1).max(1000).default(5)
    .describe('rotated audit files kept'),
  VERDICT_AUDIT_REDIS_TTL_S: z.coerce.number().int().min(60).max(31 * 86_400).default(86_400)
    .describe('with Redis: how long a request id stays searchable across instances'),
  VERDICT_AUDIT_REDIS_MAXLEN: z.coerce.number().int().min(1000).max(10_000_000).default(100_000)
    .describe('with Redis: records kept in the shared audit stream (approximate cap)'),
  VERDICT_STATE_DIR: z.string().min(1).default('.verdict-state')
    .describe('directory for state that must survive restarts (overrides.json); the systemd unit uses /var/lib/verdict'),
  VERDICT_REDIS_URL: z.string().regex(/^rediss?:\/\/[^\s]+$/, 'write redis://host:port/db (e.g. redis://127.0.0.1:6379/0)').optional()
    .describe('shared state for a fleet of instances; unset = the embedded in-memory store'),
  VERDICT_REDIS_CLUSTER_NODES: z.string().regex(/^[^\s,:]+:\d{1,5}(,[^\s,:]+:\d{1,5})*$/, 'write host:port,host:port').optional()
    .describe('Redis Cluster seed nodes (comma-separated host:port); takes precedence over VERDICT_REDIS_URL'),
  VERDICT_REDIS_PREFIX: z.string().min(1).max(64).default('verdict:').describe('prefix of every Redis key'),
  VERDICT_REDIS_FLUSH_MS: z.coerce.number().int().min(10).max(10_000).default(100)
    .describe('interval of the batched writes of local deltas to Redis'),
  VERDICT_REDIS_REFRESH_MS: z.coerce.number().int().min(10).max(60_000).default(250)
    .describe('interval of the background reads of the merged view; staleness ≤ flush + refresh + 2 round trips'),
  VERDICT_REDIS_SETTLE_MS: z.coerce.number().int().min(0).max(1000).default(10)
    .describe('a decision that found something (a tag, a challenge, a block) on keys this instance had not merged yet waits at most this long (and half the request\'s budget) to read them from Redis, then is decided again; 0 = decide on the local view'),
  VERDICT_WEBHOOK_URL: z.string().regex(/^https?:\/\/[^\s/?#@]+(\/[^\s]*)?$/, 'write http(s)://host[:port]/path (e.g. https://soar.example.com/hooks/verdict), no user:password@ (the HMAC secret authenticates)').optional()
    .describe('risk events (key blocked, campaign detected, endpoint exposure) are POSTed here, HMAC-signed; unset = no webhook'),
  VERDICT_WEBHOOK_SECRET: z.string().min(16, 'use at least 16 random characters (openssl rand -hex 32)').optional()
    .describe('HMAC-SHA-256 key of X-Verdict-Signature; prefer VERDICT_WEBHOOK_SECRET_FILE'),
  VERDICT_WEBHOOK_SECRET_FILE: z.string().min(1).optional()
    .describe('file whose first line is the webhook HMAC key (at least 16 characters)'),
  VERDICT_WEBHOOK_EVENTS: z.string()
    .refine((v) => v.trim() === 'all' || v.split(',').every((t) => (RISK_EVENT_TYPES as readonly string[]).includes(t.trim())),
      `write a comma-separated list of ${RISK_EVENT_TYPES.join(', ')} (or all)`)
    .default('all')
    .describe('event types sent to the webhook'),
  VERDICT_WEBHOOK_QUEUE_MAX: z.coerce.number().int().min(1).max(1_000_000).default(1000)
    .describe('events waiting for delivery; when full the oldest is dropped (counted)'),
  VERDICT_WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(2000)
    .describe('one delivery attempt (connect, send, response headers) before it counts as failed and is retried'),
  VERDICT_WEBHOOK_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(6)
    .describe('attempts per delivery (network errors, timeouts, 429 and 5xx are retried with exponential backoff)'),
  VERDICT_WEBHOOK_BATCH_MAX: z.coerce.number().int().min(1).max(1000).default(20)
    .describe('most events in one POST (events already waiting go together; none is held back to fill a batch)'),
});

/** Variables whose value an error message must not repeat. */
const SECRET_VARIABLES: ReadonlySet<string> = new Set(['VERDICT_WEBHOOK_SECRET', 'VERDICT_ADMIN_TOKEN', 'VERDICT_IDENTIFIER_KEY']);

export interface WebhookSettings {
  readonly url: string;
  /** HMAC key (never log it). */
  readonly secret: Buffer;
  readonly events: ReadonlySet<RiskEventType>;
  readonly queueMax: number;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly batchMax: number;
}

export interface RedisConfig {
  /** Single Redis URL (may hold a password: never log it). */
  readonly url: string | undefined;
  readonly clusterNodes: ReadonlyArray<{ readonly host: string; readonly port: number }>;
  readonly prefix: string;
  readonly flushMs: number;
  readonly refreshMs: number;
  readonly settleMs: number;
}

export type ListenAddress = { readonly kind: 'tcp'; readonly host: string; readonly port: number } | { readonly kind: 'unix'; readonly path: string };

function parseListen(name: string, text: string): ListenAddress {
  if (text.startsWith('unix:')) return { kind: 'unix', path: text.slice(5) };
  const i = text.lastIndexOf(':');
  const port = Number(text.slice(i + 1));
  if (port < 1 || port > 65535) throw new ConfigError('invalid environment', [`${name}=${JSON.stringify(text)}: port must be 1-65535`]);
  return { kind: 'tcp', host: text.slice(0, i).replace(/^\[|\]$/g, ''), port };
}

export interface ServiceConfig {
  readonly listen: ListenAddress;
  /** The gateway secret's keys (current first); empty = no secret configured. */
  readonly gatewayKeys: readonly GatewayKey[];
  /** RSS limit of the memory guard in MiB; 0 = derived (memory-guard.ts defaultMemoryLimitBytes). */
  readonly memoryLimitMb: number;
  readonly authExemptLoopback: boolean;
  readonly adminLoopback: boolean;
  readonly clockSkewMs: number;
  readonly listenText: string;
  /** The framed transport's address, or undefined when off. */
  readonly frameListen: ListenAddress | undefined;
  readonly frameListenText: string;
  /** file mode given to the unix sockets the service listens on */
  readonly socketMode: number;
  readonly policyFile: string;
  readonly logLevel: string;
  readonly keepAliveTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly maxConnections: number;
  readonly decideBodyLimit: number;
  readonly outcomesBodyLimit: number;
  readonly maxOutcomesPerBatch: number;
  readonly frameMaxInFlight: number;
  /** Synthetic decisions to warm up with before listening (0 = none). */
  readonly warmup: number;
  readonly adminToken: string | undefined;
  readonly identifierKey: Buffer;
  readonly identifierKeyEphemeral: boolean;
  readonly metrics: boolean;
  /** Keys per state structure (five structures): the memory bound of the embedded store. */
  readonly storeMaxKeys: number;
  readonly policyWatch: boolean;
  readonly audit: {
    readonly ring: number;
    readonly allowSample: number;
    readonly file: string | undefined;
    readonly fileMaxBytes: number;
    readonly fileKeep: number;
    readonly redisTtlS: number;
    readonly redisMaxLen: number;
  };
  readonly stateDir: string;
  /** Shared Redis state; undefined = the embedded store. */
  readonly redis: RedisConfig | undefined;
  /** Risk events out to a webhook; undefined = off. */
  readonly webhook: WebhookSettings | undefined;
}

/**
 * VERDICT_* variables read by the repository's own tools (tests, demo, benchmarks), not by the
 * service. They are accepted and ignored, because those tools start the service with their own
 * environment (`VERDICT_NGINX_BIN=… npm test` must keep working).
 */
export const TOOL_VARIABLES: ReadonlySet<string> = new Set([
  'VERDICT_NGINX_BIN', 'VERDICT_NGINX_MODULES', 'VERDICT_REDIS_BIN', 'VERDICT_REDIS_CLI', 'VERDICT_GATEWAY_VARIANTS', 'VERDICT_KEEP_PREFIX',
  'VERDICT_DEMO_PORT', 'VERDICT_DEMO_PORT_B', 'VERDICT_DEMO_SERVICE_PORT', 'VERDICT_DEMO_FRAME_PORT', 'VERDICT_DEMO_METRICS_PORT', 'VERDICT_DEMO_STDIN',
]);

/** Variables that existed once: the message says what replaced them. */
const REMOVED_VARIABLES: Readonly<Record<string, string>> = {
  VERDICT_BODY_LIMIT: 'removed; the limits are per endpoint now: VERDICT_DECIDE_BODY_LIMIT and VERDICT_OUTCOMES_BODY_LIMIT',
};

/** Levenshtein distance (names are short: the quadratic table is fine). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length] as number;
}

/** The valid variable nearest to `name`, when near enough to be a likely typo. */
export function closestVariable(name: string): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of Object.keys(envSchema.shape)) {
    const d = editDistance(name, k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  // Beyond a third of the name it is a different word, not a typo.
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

function unknownVariables(env: NodeJS.ProcessEnv): string[] {
  const issues: string[] = [];
  for (const name of Object.keys(env)) {
    if (!name.startsWith('VERDICT_') || name in envSchema.shape || TOOL_VARIABLES.has(name)) continue;
    const removed = REMOVED_VARIABLES[name];
    if (removed) {
      issues.push(`${name}: ${removed}`);
      continue;
    }
    const near = closestVariable(name);
    issues.push(`${name}: unknown variable; ${near ? `did you mean ${near}?` : 'see the table of variables in README.md (Decision service)'}`);
  }
  return issues.sort();
}

/** Parses the environment; throws ConfigError naming each bad or unknown variable and the fix. */
export function parseEnv(env: NodeJS.ProcessEnv): ServiceConfig {
  const known = Object.keys(envSchema.shape);
  const picked: Record<string, string> = {};
  for (const k of known) {
    const v = env[k];
    if (v !== undefined && v !== '') picked[k] = v;
  }
  const unknown = unknownVariables(env);
  const parsed = envSchema.safeParse(picked);
  if (!parsed.success || unknown.length > 0) {
    throw new ConfigError('invalid environment', [
      ...unknown,
      ...(parsed.success ? [] : parsed.error.issues).map((i) => {
        const name = String(i.path[0] ?? '?');
        const desc = envSchema.shape[name as keyof typeof envSchema.shape]?.description;
        const shown = SECRET_VARIABLES.has(name) ? '(hidden)' : JSON.stringify(picked[name] ?? '');
        return `${name}=${shown}: ${i.message}${desc ? ` (${desc})` : ''}`;
      }),
    ]);
  }
  const e = parsed.data;
  const listenAt = parseListen('VERDICT_LISTEN', e.VERDICT_LISTEN);
  const frameAt = e.VERDICT_FRAME_LISTEN === 'off' ? undefined : parseListen('VERDICT_FRAME_LISTEN', e.VERDICT_FRAME_LISTEN);
  const gatewayKeys = e.VERDICT_GATEWAY_SECRET_FILE ? loadGatewayKeys(e.VERDICT_GATEWAY_SECRET_FILE) : [];
  if (gatewayKeys.length === 0) {
    const open = [['VERDICT_LISTEN', listenAt], ['VERDICT_FRAME_LISTEN', frameAt]] as const;
    const exposed = open.filter(([, a]) => a && a.kind === 'tcp' && !isLoopbackListen(a.host));
    if (exposed.length > 0) {
      throw new ConfigError('invalid environment', exposed.map(([name, a]) => `${name}=${JSON.stringify(a?.kind === 'tcp' ? `${a.host}:${a.port}` : '')}: listens beyond loopback without a gateway secret, so anyone who reaches it could change verdicts; set VERDICT_GATEWAY_SECRET_FILE=/etc/verdict/gateway.secret (openssl rand -hex 32 > that file; the gateways' secret_file holds the same key)`));
    }
  }
  return Object.freeze({
    gatewayKeys: Object.freeze(gatewayKeys),
    memoryLimitMb: e.VERDICT_MEMORY_LIMIT_MB,
    authExemptLoopback: e.VERDICT_AUTH_EXEMPT_LOOPBACK,
    adminLoopback: e.VERDICT_ADMIN_LOOPBACK,
    clockSkewMs: e.VERDICT_CLOCK_SKEW_MS,
    listen: Object.freeze(listenAt),
    listenText: e.VERDICT_LISTEN,
    frameListen: frameAt ? Object.freeze(frameAt) : undefined,
    frameListenText: e.VERDICT_FRAME_LISTEN,
    socketMode: Number.parseInt(e.VERDICT_SOCKET_MODE, 8),
    policyFile: e.VERDICT_POLICY,
    logLevel: e.VERDICT_LOG_LEVEL,
    keepAliveTimeoutMs: e.VERDICT_KEEPALIVE_TIMEOUT_MS,
    requestTimeoutMs: e.VERDICT_REQUEST_TIMEOUT_MS,
    maxConnections: e.VERDICT_MAX_CONNECTIONS,
    decideBodyLimit: e.VERDICT_DECIDE_BODY_LIMIT,
    outcomesBodyLimit: e.VERDICT_OUTCOMES_BODY_LIMIT,
    maxOutcomesPerBatch: e.VERDICT_OUTCOMES_MAX_BATCH,
    frameMaxInFlight: e.VERDICT_FRAME_MAX_IN_FLIGHT,
    warmup: e.VERDICT_WARMUP,
    adminToken: e.VERDICT_ADMIN_TOKEN,
    identifierKey: e.VERDICT_IDENTIFIER_KEY ? Buffer.from(e.VERDICT_IDENTIFIER_KEY) : randomBytes(32),
    identifierKeyEphemeral: !e.VERDICT_IDENTIFIER_KEY,
    metrics: e.VERDICT_METRICS,
    storeMaxKeys: e.VERDICT_STORE_MAX_KEYS,
    policyWatch: e.VERDICT_POLICY_WATCH,
    audit: Object.freeze({
      ring: e.VERDICT_AUDIT_RING,
      allowSample: e.VERDICT_AUDIT_ALLOW_SAMPLE,
      file: e.VERDICT_AUDIT_FILE,
      fileMaxBytes: e.VERDICT_AUDIT_FILE_MAX_MB * 2 ** 20,
      fileKeep: e.VERDICT_AUDIT_FILE_KEEP,
      redisTtlS: e.VERDICT_AUDIT_REDIS_TTL_S,
      redisMaxLen: e.VERDICT_AUDIT_REDIS_MAXLEN,
    }),
    stateDir: e.VERDICT_STATE_DIR,
    redis: redisConfig(e),
    webhook: webhookConfig(e),
  });
}

function webhookConfig(e: z.infer<typeof envSchema>): WebhookSettings | undefined {
  if (!e.VERDICT_WEBHOOK_URL) return undefined;
  const url = e.VERDICT_WEBHOOK_URL;
  const bad = (issue: string) => new ConfigError('invalid environment', [issue]);
  try {
    new URL(url);
  } catch {
    throw bad(`VERDICT_WEBHOOK_URL=${JSON.stringify(url)}: not a URL; write http(s)://host[:port]/path`);
  }
  if (e.VERDICT_WEBHOOK_SECRET && e.VERDICT_WEBHOOK_SECRET_FILE) {
    throw bad('VERDICT_WEBHOOK_SECRET and VERDICT_WEBHOOK_SECRET_FILE are both set: keep one (the file keeps the key out of the environment)');
  }
  let secret = e.VERDICT_WEBHOOK_SECRET;
  const file = e.VERDICT_WEBHOOK_SECRET_FILE;
  if (file) {
    secret = readKeyLines(file, 'VERDICT_WEBHOOK_SECRET_FILE', 'the key')[0] ?? '';
    if (secret.length < 16) throw bad(`VERDICT_WEBHOOK_SECRET_FILE=${JSON.stringify(file)}: its first line holds a key of ${secret.length} characters; use at least 16 (openssl rand -hex 32 > ${file})`);
  }
  if (!secret) {
    throw bad('VERDICT_WEBHOOK_URL is set without a key: set VERDICT_WEBHOOK_SECRET_FILE=/etc/verdict/webhook.secret (openssl rand -hex 32 > that file) or VERDICT_WEBHOOK_SECRET; the receiver verifies X-Verdict-Signature with the same key');
  }
  const events = e.VERDICT_WEBHOOK_EVENTS.trim() === 'all'
    ? new Set(RISK_EVENT_TYPES)
    : new Set(e.VERDICT_WEBHOOK_EVENTS.split(',').map((t) => t.trim() as RiskEventType));
  return Object.freeze({
    url,
    secret: Buffer.from(secret),
    events: events as ReadonlySet<RiskEventType>,
    queueMax: e.VERDICT_WEBHOOK_QUEUE_MAX,
    timeoutMs: e.VERDICT_WEBHOOK_TIMEOUT_MS,
    maxAttempts: e.VERDICT_WEBHOOK_MAX_ATTEMPTS,
    batchMax: e.VERDICT_WEBHOOK_BATCH_MAX,
  });
}

function redisConfig(e: z.infer<typeof envSchema>): RedisConfig | undefined {
  const nodes = (e.VERDICT_REDIS_CLUSTER_NODES ?? '').split(',').filter(Boolean).map((n) => {
    const i = n.lastIndexOf(':');
    const port = Number(n.slice(i + 1));
    if (port < 1 || port > 65535) {
      throw new ConfigError('invalid environment', [`VERDICT_REDIS_CLUSTER_NODES: port of ${JSON.stringify(n)} must be 1-65535`]);
    }
    return Object.freeze({ host: n.slice(0, i), port });
  });
  if (!e.VERDICT_REDIS_URL && nodes.length === 0) return undefined;
  return Object.freeze({
    url: e.VERDICT_REDIS_URL,
    clusterNodes: Object.freeze(nodes),
    prefix: e.VERDICT_REDIS_PREFIX,
    flushMs: e.VERDICT_REDIS_FLUSH_MS,
    refreshMs: e.VERDICT_REDIS_REFRESH_MS,
    settleMs: e.VERDICT_REDIS_SETTLE_MS,
  });
}
