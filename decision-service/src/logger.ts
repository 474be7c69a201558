// pino with a redact list: logs never hold secrets or raw identifiers.

import pino, { type Logger } from 'pino';

export const REDACT_PATHS: readonly string[] = [
  'password', '*.password', 'password_hash', '*.password_hash',
  'identifier', '*.identifier', 'username', '*.username', 'phone', '*.phone', 'email', '*.email',
  'authorization', '*.authorization', 'req.headers.authorization', 'req.headers.cookie', 'cookie', '*.cookie',
  'token', '*.token', 'token_hash', '*.token_hash', 'session_hash', '*.session_hash', 'device_hash', '*.device_hash',
  'adminToken', '*.adminToken', 'identifierKey', '*.identifierKey', 'redisUrl', '*.redisUrl',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    { level, base: { service: 'verdict' }, redact: { paths: [...REDACT_PATHS], censor: '[redacted]' } },
    destination,
  );
}

export type { Logger };
