// Risk events out to the rest of a security stack (issue 17, point 4): a subscriber of the
// RiskEvents bus that POSTs them, HMAC-signed, to VERDICT_WEBHOOK_URL.
//
// The decide path only enqueues (a bounded ring; when full the oldest event is dropped and
// counted). One delivery is in flight at a time, so a receiver sees events in the order they were
// raised: a POST carries every event already waiting, up to VERDICT_WEBHOOK_BATCH_MAX, as
// `{"events":[…]}`; nothing is held back to fill a batch. Network errors, timeouts, 429 and 5xx
// are retried with exponential backoff and full jitter (a Retry-After is honoured when longer),
// up to VERDICT_WEBHOOK_MAX_ATTEMPTS; any other answer outside 2xx is final (rejected). Retries
// send the same body and X-Verdict-Event-Id with a fresh signature time.
//
// Signature (Stripe-style, so receivers can refuse replays):
//   X-Verdict-Signature: t=<unix seconds>,v1=<hex HMAC-SHA-256(secret, "<t>.<raw body>")>
//
// Known limit: the queue is in memory. Events still queued when the process is killed, or not
// delivered within the shutdown flush (CLOSE_FLUSH_MS), are lost (counted as dropped).

import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { Agent, request } from 'undici';
import type { WebhookSettings } from '../config/env.ts';
import type { RiskEvents, RiskEventWithTime } from './risk-events.ts';

export const WEBHOOK_USER_AGENT = 'verdict-webhook/1';
/** How long close() keeps delivering what is queued before it gives up (main exits at 3 s). */
export const CLOSE_FLUSH_MS = 1500;

/** Per event: queued (accepted from the bus), delivered (2xx), retried (per retry), rejected (final
 *  non-2xx), failed (attempts exhausted), dropped (queue full or shutdown). */
export type WebhookResult = 'queued' | 'delivered' | 'retried' | 'rejected' | 'failed' | 'dropped';

export interface WebhookMetrics {
  readonly events: Counter<'type' | 'result'>;
  /** The queue the depth gauge reads at scrape time (the webhook sets it; 0 without one). */
  depth: () => number;
}

/**
 * verdict_webhook_events_total{type,result} and verdict_webhook_queue_depth on the service's
 * registry. Registered whether or not a webhook is configured, so dashboards and alert rules
 * find the series (empty) on every instance.
 */
export function createWebhookMetrics(registry: Registry): WebhookMetrics {
  const registers = [registry];
  const m: WebhookMetrics = {
    events: new Counter({
      name: 'verdict_webhook_events_total',
      help: 'Risk events for the webhook by type and result (queued, delivered, retried: per retry, rejected: final non-2xx answer, failed: attempts exhausted, dropped: queue full or shutdown)',
      labelNames: ['type', 'result'],
      registers,
    }),
    depth: () => 0,
  };
  new Gauge({ name: 'verdict_webhook_queue_depth', help: 'Risk events waiting for webhook delivery', registers, collect() { this.set(m.depth()); } });
  return m;
}

export interface WebhookOptions extends WebhookSettings {
  readonly logger: Logger;
  /** Where to count (createWebhookMetrics on the service's registry); uncounted when absent. */
  readonly metrics?: WebhookMetrics;
  /** First retry delay before jitter (doubles per attempt). */
  readonly retryBaseMs?: number;
  /** Longest wait between attempts, Retry-After included. */
  readonly retryMaxMs?: number;
  readonly random?: () => number;
  readonly now?: () => number;
}

/** `t=<unix>,v1=<hex>` for `body` signed at `t` (seconds). */
export function signature(secret: Buffer | string, t: number, body: string): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

/**
 * What a receiver does: true when `header` signs exactly `body` with `secret` and its time is
 * within `toleranceS` of `nowS` (older deliveries are refused as replays).
 */
export function verifySignature(secret: Buffer | string, header: string, body: string, nowS = Math.floor(Date.now() / 1000), toleranceS = 300): boolean {
  const parts = new Map(header.split(',').map((p) => {
    const i = p.indexOf('=');
    return [p.slice(0, i).trim(), p.slice(i + 1).trim()] as const;
  }));
  const t = Number(parts.get('t'));
  const v1 = parts.get('v1') ?? '';
  if (!Number.isInteger(t) || Math.abs(nowS - t) > toleranceS || !/^[0-9a-f]{64}$/.test(v1)) return false;
  const want = createHmac('sha256', secret).update(`${t}.${body}`).digest();
  return timingSafeEqual(want, Buffer.from(v1, 'hex'));
}

type Attempt =
  | { readonly kind: 'delivered' }
  | { readonly kind: 'rejected'; readonly status: number }
  | { readonly kind: 'retry'; readonly cause: string; readonly retryAfterMs: number };

/** Retry-After in ms: delta seconds or an HTTP date; 0 when absent or unreadable. */
export function retryAfterMs(value: string | string[] | undefined, nowMs: number): number {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return 0;
  if (/^\s*\d+\s*$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - nowMs) : 0;
}

export class Webhook {
  // a ring: publish is O(1) even when full (the oldest is overwritten)
  private readonly ring: (RiskEventWithTime | undefined)[];
  private head = 0;
  private size = 0;
  /** The delivery loop while it runs (close() waits for it). */
  private pumping: Promise<void> | undefined;
  private scheduled = false;
  private closing = false;
  /** Set by close(): when the shutdown flush gives up. */
  private deadline = Infinity;
  private wake: (() => void) | undefined;
  /** Aborts an attempt still in flight when the shutdown flush ends. */
  private readonly stop = new AbortController();
  private readonly agent: Agent;
  private readonly origin: string;
  private readonly counts = new Map<string, number>();
  private readonly counter: Counter<'type' | 'result'> | undefined;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;

  constructor(private readonly opts: WebhookOptions) {
    this.ring = new Array<RiskEventWithTime | undefined>(opts.queueMax).fill(undefined);
    this.agent = new Agent({ connect: { timeout: opts.timeoutMs }, keepAliveTimeout: 30_000, connections: 2 });
    this.origin = new URL(opts.url).origin;
    this.random = opts.random ?? Math.random;
    this.now = opts.now ?? Date.now;
    this.retryBaseMs = opts.retryBaseMs ?? 500;
    this.retryMaxMs = opts.retryMaxMs ?? 60_000;
    this.counter = opts.metrics?.events;
    if (opts.metrics) opts.metrics.depth = () => this.size;
  }

  /** Subscribes to `bus`; returns the unsubscribe function. */
  attach(bus: RiskEvents): () => void {
    return bus.subscribe((e) => this.enqueue(e));
  }

  /** Queues one event (the decide path's only cost): filtered by type, O(1), never waits. */
  enqueue(e: RiskEventWithTime): void {
    if (!this.opts.events.has(e.type) || this.closing) return;
    const cap = this.ring.length;
    if (this.size === cap) {
      const old = this.ring[this.head] as RiskEventWithTime;
      this.head = (this.head + 1) % cap;
      this.size -= 1;
      this.count(old.type, 'dropped');
    }
    this.ring[(this.head + this.size) % cap] = e;
    this.size += 1;
    this.count(e.type, 'queued');
    if (!this.pumping && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        void this.pump();
      });
    }
  }

  /** Events waiting (not counting a batch in flight). */
  get depth(): number {
    return this.size;
  }

  /** Counts by "type|result" (the same numbers as the Prometheus counter; for tests and logs). */
  stats(): Readonly<Record<string, number>> {
    return Object.fromEntries(this.counts);
  }

  /** Stops taking events, delivers what is queued for at most `flushMs`, drops (counts) the rest. */
  async close(flushMs = CLOSE_FLUSH_MS): Promise<void> {
    this.closing = true;
    this.deadline = this.now() + flushMs;
    this.wake?.();
    const cut = setTimeout(() => this.stop.abort(), flushMs);
    if (!this.pumping && this.size > 0) void this.pump();
    await this.pumping?.catch(() => undefined); // the loop's own failure is not the shutdown's
    clearTimeout(cut);
    if (this.size > 0) {
      this.opts.logger.warn({ events: this.size, webhook: this.origin }, 'webhook events not delivered before shutdown');
      for (const e of this.take(this.size)) this.count(e.type, 'dropped');
    }
    await this.agent.close().catch(() => undefined);
  }

  private count(type: string, result: WebhookResult, n = 1): void {
    const k = `${type}|${result}`;
    this.counts.set(k, (this.counts.get(k) ?? 0) + n);
    this.counter?.inc({ type, result }, n);
  }

  private take(n: number): RiskEventWithTime[] {
    const out: RiskEventWithTime[] = [];
    const cap = this.ring.length;
    while (out.length < n && this.size > 0) {
      out.push(this.ring[this.head] as RiskEventWithTime);
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) % cap;
      this.size -= 1;
    }
    return out;
  }

  /** The delivery loop, started unless it runs; resolves when it stops. */
  private pump(): Promise<void> {
    this.pumping ??= this.deliverAll().finally(() => { this.pumping = undefined; });
    return this.pumping;
  }

  private async deliverAll(): Promise<void> {
    while (this.size > 0 && this.now() < this.deadline) await this.deliver(this.take(this.opts.batchMax));
  }

  private async deliver(batch: RiskEventWithTime[]): Promise<void> {
    const body = JSON.stringify({ events: batch });
    const ids = batch.map((e) => e.id).join(',');
    for (let attempt = 1; ; attempt++) {
      const a = await this.attempt(body, ids);
      if (a.kind === 'delivered') {
        for (const e of batch) this.count(e.type, 'delivered');
        return;
      }
      if (a.kind === 'rejected') {
        for (const e of batch) this.count(e.type, 'rejected');
        this.opts.logger.warn({ webhook: this.origin, status: a.status, events: batch.length }, 'webhook receiver rejected events (not retried: fix the receiver or the secret)');
        return;
      }
      const backoff = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** (attempt - 1)) * (0.5 + this.random() / 2);
      const wait = Math.min(this.retryMaxMs, Math.max(backoff, a.retryAfterMs));
      if (attempt >= this.opts.maxAttempts || this.now() + wait >= this.deadline) {
        for (const e of batch) this.count(e.type, this.closing ? 'dropped' : 'failed');
        this.opts.logger.warn({ webhook: this.origin, cause: a.cause, attempts: attempt, events: batch.length }, 'webhook delivery gave up');
        return;
      }
      for (const e of batch) this.count(e.type, 'retried');
      await this.sleep(wait);
    }
  }

  /** Waits `ms`; cut short by close() when the wait would end after the shutdown deadline (one last try instead). */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const end = this.now() + ms;
      const finish = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      this.wake = () => {
        if (end > this.deadline) finish();
      };
    });
  }

  private async attempt(body: string, ids: string): Promise<Attempt> {
    const t = Math.floor(this.now() / 1000);
    try {
      const res = await request(this.opts.url, {
        method: 'POST',
        dispatcher: this.agent,
        headers: {
          'content-type': 'application/json',
          'user-agent': WEBHOOK_USER_AGENT,
          'x-verdict-event-id': ids,
          'x-verdict-signature': signature(this.opts.secret, t, body),
        },
        body,
        headersTimeout: this.opts.timeoutMs,
        bodyTimeout: this.opts.timeoutMs,
        signal: AbortSignal.any([AbortSignal.timeout(this.opts.timeoutMs), this.stop.signal]),
      });
      await res.body.dump().catch(() => undefined);
      const s = res.statusCode;
      if (s >= 200 && s < 300) return { kind: 'delivered' };
      if (s === 429 || s >= 500) return { kind: 'retry', cause: `http ${s}`, retryAfterMs: retryAfterMs(res.headers['retry-after'], this.now()) };
      return { kind: 'rejected', status: s };
    } catch (err) {
      const e = err as { name?: string; code?: string };
      const cause = e.name === 'TimeoutError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_CONNECT_TIMEOUT' ? 'timeout' : e.code ?? e.name ?? 'error';
      return { kind: 'retry', cause, retryAfterMs: 0 };
    }
  }
}
