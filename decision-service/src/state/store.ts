// The store interface every detector uses for its state. The embedded in-memory store is the
// default; a Redis-backed store implements the same contract for fleets.

export interface Store {
  /** Adds `by` to a sliding-window counter and returns the window's count after adding. */
  incr(key: string, windowMs: number, now: number, by?: number): number;
  /** Reads a sliding-window counter without changing it. */
  count(key: string, windowMs: number, now: number): number;
  /** Number of entries held (for metrics and memory bounds). */
  size(): number;
}
