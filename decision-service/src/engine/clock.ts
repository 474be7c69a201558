// Time for the engine comes from a Clock, so hours of simulated traffic can replay in seconds.

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = Object.freeze({ now: () => Date.now() });

/** A clock that only moves when told to: for replay and tests. */
export class VirtualClock implements Clock {
  private t: number;

  constructor(startMs = 0) {
    this.t = startMs;
  }

  now(): number {
    return this.t;
  }

  set(ms: number): void {
    if (ms > this.t) this.t = ms;
  }

  advance(ms: number): void {
    this.t += ms;
  }
}
