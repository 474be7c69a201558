// What detectors produce: namespaced reason codes with a strength, optionally asking the gateway
// to enforce the resulting verdict locally for a key and TTL.

import type { CompiledPolicy, CompiledRoute } from '../config/policy.ts';
import type { CacheKeyType, RouteClass } from '../config/policy-schema.ts';
import type { DecideRequest, Outcome } from '../wire/schema.ts';
import type { Clock } from './clock.ts';
import type { Store } from '../state/store.ts';

export interface Signal {
  /** Namespaced reason code, e.g. "authz.missing_credentials". */
  readonly code: string;
  /** 0..100; signals combine as independent evidence (noisy-or). */
  readonly score: number;
  /** The policy rule is in monitor (dry-run) mode: counted and reported, never enforced. */
  readonly monitor: boolean;
  readonly cache: { readonly key: CacheKeyType; readonly ttl_s: number } | undefined;
}

/** Everything detectors read about one request, computed once. */
export interface RequestFeatures {
  readonly req: DecideRequest;
  readonly now: number;
  readonly route: CompiledRoute;
  readonly routeClass: RouteClass;
  readonly ip: string;
  readonly subnet: string;
  readonly hasCredentials: boolean;
  readonly isInternalIp: boolean;
  /** Keyed hash of the submitted identifier (never the raw value); "" when none. */
  readonly identifierHash: string;
  /** Numeric value of a phone-like identifier, for locality; -1 when not phone-like. */
  readonly phoneNumber: number;
  /** Hash of the ordered header names + selected header shape: a client fingerprint. */
  readonly fingerprint: string;
}

export interface DetectorContext {
  readonly policy: CompiledPolicy;
  readonly store: Store;
  readonly clock: Clock;
}

export interface Detector {
  readonly name: string;
  /** Appends zero or more signals for this request. Must not throw on any valid request. */
  inspect(f: RequestFeatures, out: Signal[]): void;
  /** Learns from what the upstream answered (optional). */
  observe?(outcome: Outcome, f: RequestFeatures | undefined): void;
}

export type DetectorFactory = (ctx: DetectorContext) => Detector;

export function signal(code: string, score: number, monitor: boolean, cache?: Signal['cache']): Signal {
  return { code, score, monitor, cache };
}
