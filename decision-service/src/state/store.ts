// The store interface every detector uses for its state. The embedded in-memory store is the
// default; a Redis-backed store implements the same contract for fleets.
//
// Windows are two fixed buckets (current and previous): counters weight the previous bucket by
// its remaining overlap; distinct counts take the union of both buckets, so they cover between
// one and two windows. Every structure is bounded (LRU by key), whatever the number of keys.

export interface IntervalStats {
  /** Number of inter-arrival gaps recorded (requests − 1, capped by the ring size). */
  readonly n: number;
  readonly meanMs: number;
  /** Coefficient of variation of the gaps (stddev / mean): near 0 = machine-regular. */
  readonly cv: number;
}

export interface Store {
  /** Adds `by` to a sliding-window counter and returns the window's count after adding. */
  incr(key: string, windowMs: number, now: number, by?: number): number;
  /** Reads a sliding-window counter without changing it. */
  count(key: string, windowMs: number, now: number): number;
  /** Adds a member (a 32-bit hash) to a windowed distinct set; returns the distinct count. */
  addDistinct(key: string, member: number, windowMs: number, now: number): number;
  /** Reads a windowed distinct count without changing it. */
  countDistinct(key: string, windowMs: number, now: number): number;
  /** Marks a key until now + ttlMs (e.g. "this identifier was enumerated"). */
  mark(key: string, now: number, ttlMs: number): void;
  /** Whether a key is marked at `now`. */
  marked(key: string, now: number): boolean;
  /** Records an arrival for a key and returns the stats of its recent inter-arrival gaps. */
  arrival(key: string, now: number): IntervalStats;
  /** Remembers a number under a key (last object id, baselines); returns the previous or undefined. */
  swap(key: string, value: number, now: number, ttlMs: number): number | undefined;
  /** Number of keys held across all structures (for metrics and memory bounds). */
  size(): number;
  /**
   * Memory pressure (memory-guard.ts): gives up the least recently used `fraction` (0..1) of each
   * structure's keys and the memory they held; returns how many keys were dropped.
   */
  shed(fraction: number): number;
  /** A store shared by a fleet whose reads can be behind the other instances (RedisStore). */
  readonly settling?: Settling;
}

/** The entries one decision read before this instance had their merged view, and its writes. */
export interface Unsettled {
  readonly size: number;
}

/**
 * Deciding again on the fleet's view (issue 14, fleets): a decision records which keys it read
 * before this instance had merged the other instances' contribution (a key new to it, or one it
 * had stopped refreshing), and its own writes. A decision that found something on such a view is
 * undone, the keys are read from the shared store, and it is decided again.
 */
export interface Settling {
  /** Starts recording; false when nothing can be behind (alone, or the shared store unreachable). */
  begin(): boolean;
  /** Stops recording: the unsettled keys read (undefined when none); valid until the next begin(). */
  end(): Unsettled | undefined;
  /** Takes back the recorded decision's writes. */
  undo(u: Unsettled): void;
  /** Reads the keys from the shared store (taken from `u` at once); resolves when they are merged or after timeoutMs. */
  settle(u: Unsettled, timeoutMs: number): Promise<void>;
}
