// Embedded store: bounded in memory by an LRU over keys. Sliding windows are approximated with
// two fixed buckets (current and previous window, the previous weighted by its remaining
// overlap) — the same estimate nginx's limit_req family and Cloudflare's rate limiter use.

import { LRUCache } from 'lru-cache';
import type { Store } from './store.ts';

class Window {
  start = 0;
  current = 0;
  previous = 0;
}

function roll(w: Window, windowMs: number, now: number): void {
  const start = now - (now % windowMs);
  if (start === w.start) return;
  w.previous = start - w.start === windowMs ? w.current : 0;
  w.current = 0;
  w.start = start;
}

function estimate(w: Window, windowMs: number, now: number): number {
  const elapsed = (now - w.start) / windowMs;
  return w.current + w.previous * (1 - elapsed);
}

export interface MemoryStoreOptions {
  /** Maximum number of keys held; least recently used keys are evicted beyond it. */
  readonly maxKeys: number;
}

export class MemoryStore implements Store {
  private readonly windows: LRUCache<string, Window>;

  constructor(opts: MemoryStoreOptions = { maxKeys: 1_000_000 }) {
    this.windows = new LRUCache<string, Window>({ max: opts.maxKeys });
  }

  incr(key: string, windowMs: number, now: number, by = 1): number {
    let w = this.windows.get(key);
    if (!w) {
      w = new Window();
      w.start = now - (now % windowMs);
      this.windows.set(key, w);
    } else {
      roll(w, windowMs, now);
    }
    w.current += by;
    return estimate(w, windowMs, now);
  }

  count(key: string, windowMs: number, now: number): number {
    const w = this.windows.peek(key);
    if (!w) return 0;
    roll(w, windowMs, now);
    return estimate(w, windowMs, now);
  }

  size(): number {
    return this.windows.size;
  }
}
