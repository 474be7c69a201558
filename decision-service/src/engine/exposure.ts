// What one endpoint gives away (issue 17): from the response samples gateways report
// (Outcome.response: counts and keyed hashes, never values), per sensitive kind how many inspected
// responses held it unmasked / masked and how many values; records and bytes per response, with
// a baseline; and the flags the inventory shows. Bounded: at most MAX_KINDS kinds per endpoint and
// a fixed histogram, so an endpoint's stats stay a few hundred bytes whatever the traffic.

import type { CompiledResponses } from '../config/policy.ts';
import type { EndpointExposure } from '../service/risk-events.ts';
import { mix32 } from '../state/distinct.ts';
import type { ResponseSample } from '../wire/schema.ts';

/** Kinds kept per endpoint: the built-in four and 16 policy patterns, with room for a reload's renames. */
export const MAX_KINDS = 24;
/** Power-of-two buckets of records per response: 0, 1, 2–3, 4–7, …, 65536 and more. */
const RECORD_BUCKETS = 18;
/** Responses over which the records and bytes baselines are plain means before they become EWMAs. */
const BASELINE_SPAN = 20;
/** A value's keyed hash (8 bytes from the gateway) as a 32-bit member; undefined for a short one. */
export function valueMember(h: Buffer): number | undefined {
  if (h.length < 4) return undefined;
  return mix32(h.readUInt32BE(0) ^ (h.length >= 8 ? h.readUInt32BE(4) : 0));
}

/** Where the inventory reports as it learns (the decision service: metrics, risk events). */
export interface ExposureSink {
  /**
   * The counter of inspected responses holding `kind` (masked or not) on `endpoint`: asked once
   * per endpoint, kind and masking (and sink); the function returned is called per response.
   */
  sensitive(endpoint: string, kind: string, masked: boolean): () => void;
  /** `endpoint` was first flagged as returning `kind` unmasked. */
  exposed(event: EndpointExposure): void;
}

class KindStats {
  unmaskedResponses = 0;
  maskedResponses = 0;
  unmaskedValues = 0;
  maskedValues = 0;
  /** The endpoint.exposure event for this kind went out. */
  announced = false;
  /** The sink the counters below came from, and its counters (unmasked, masked). */
  sink: ExposureSink | undefined = undefined;
  countUnmasked: (() => void) | undefined = undefined;
  countMasked: (() => void) | undefined = undefined;
  constructor(readonly kind: string) {}
}

export interface KindView {
  readonly kind: string;
  /** Inspected responses that held values of this kind in full / masked. */
  readonly unmasked_responses: number;
  readonly masked_responses: number;
  /** Values of this kind counted in those responses. */
  readonly unmasked_values: number;
  readonly masked_values: number;
  /** Typical values per response that held the kind (mean). */
  readonly values_per_response: number;
  /** Share of the inspected responses that held it unmasked. */
  readonly unmasked_share: number;
}

export interface ExposureView {
  /** Responses inspected (sampled by the gateways) on this endpoint. */
  readonly inspected: number;
  /** Of those, longer than the gateway's inspect_max_bytes (the rest was not scanned). */
  readonly truncated: number;
  /** Records (JSON objects, nested ones included) per response: the baseline (mean, then EWMA) and
   *  percentiles as upper bounds of power-of-two buckets. */
  readonly records_mean: number;
  readonly records_p50: number;
  readonly records_p95: number;
  /** Bytes sent per response (mean, then EWMA). */
  readonly bytes_mean: number;
  /** Responses with more records than `records_over_requested` × the request's own limit. */
  readonly over_requested: number;
  /** Responses without a limit with more than `records_over_baseline` × the endpoint's usual records. */
  readonly over_baseline: number;
  readonly kinds: readonly KindView[];
  /** `unmasked:<kind>`, `masked_inconsistently:<kind>`, `more_records_than_requested`. */
  readonly flags: readonly string[];
}

const round = (x: number, digits = 3): number => Math.round(x * 10 ** digits) / 10 ** digits;

function bucketOf(records: number): number {
  return records <= 0 ? 0 : Math.min(RECORD_BUCKETS - 1, 32 - Math.clz32(records));
}

export class EndpointExposureStats {
  /** @param endpoint the endpoint's name in metrics and events ("GET /api/users/{id}/profile") */
  constructor(private readonly endpoint: string) {}

  inspected = 0;
  truncated = 0;
  recordsMean = 0;
  bytesMean = 0;
  /** Responses folded into the baselines (outliers are not). */
  learned = 0;
  overRequested = 0;
  overBaseline = 0;
  readonly recordsHist = new Uint32Array(RECORD_BUCKETS);
  readonly kinds = new Map<string, KindStats>();

  /**
   * Counts one inspected response. Findings of kinds the policy does not define (a gateway still
   * on an older pattern set, a hostile one) are ignored: they would have no name an operator set.
   */
  add(sample: ResponseSample, bytesSent: number, settings: CompiledResponses, sink: ExposureSink | undefined): void {
    const ex = settings.exposure;
    const endpoint = this.endpoint;
    this.inspected++;
    if (sample.truncated) this.truncated++;
    const records = sample.records;
    const recordsIdx = bucketOf(records);
    this.recordsHist[recordsIdx] = (this.recordsHist[recordsIdx] ?? 0) + 1;
    let outlier = false;
    if (sample.requested_limit > 0) {
      if (records > ex.records_over_requested * sample.requested_limit) {
        this.overRequested++;
        outlier = true;
      }
    } else if (this.learned >= ex.min_responses && records > ex.records_over_baseline * Math.max(1, this.recordsMean)) {
      this.overBaseline++;
      outlier = true;
    }
    // an outlier is not learned from, or one dump would raise the bar for the next
    if (!outlier) {
      this.learned++;
      const w = 1 / Math.min(this.learned, BASELINE_SPAN);
      this.recordsMean += (records - this.recordsMean) * w;
      this.bytesMean += (bytesSent - this.bytesMean) * w;
    }
    for (const f of sample.findings) {
      if (!settings.kinds.has(f.kind) || (f.unmasked === 0 && f.masked === 0)) continue;
      let k = this.kinds.get(f.kind);
      if (!k) {
        if (this.kinds.size >= MAX_KINDS) continue;
        k = new KindStats(f.kind);
        this.kinds.set(f.kind, k);
      }
      if (sink && k.sink !== sink) {
        k.sink = sink;
        k.countUnmasked = sink.sensitive(endpoint, f.kind, false);
        k.countMasked = sink.sensitive(endpoint, f.kind, true);
      }
      if (f.unmasked > 0) {
        k.unmaskedResponses++;
        k.unmaskedValues += f.unmasked;
        if (sink) k.countUnmasked?.();
      }
      if (f.masked > 0) {
        k.maskedResponses++;
        k.maskedValues += f.masked;
        if (sink) k.countMasked?.();
      }
    }
    if (!sink) return;
    for (const k of this.kinds.values()) {
      if (k.announced || !this.unmaskedFlag(k, settings)) continue;
      k.announced = true;
      sink.exposed({ type: 'endpoint.exposure', route: endpoint, kind: k.kind, responses: this.inspected, unmasked_share: round(k.unmaskedResponses / this.inspected) });
    }
  }

  /** "returns unmasked <kind>": enough responses inspected, and enough of them held it in full. */
  private unmaskedFlag(k: KindStats, settings: CompiledResponses): boolean {
    const ex = settings.exposure;
    return this.inspected >= ex.min_responses && k.unmaskedResponses >= Math.max(1, Math.ceil(ex.unmasked_min_share * this.inspected));
  }

  /** Kinds some response of this endpoint showed masked (for masked_inconsistently across endpoints). */
  maskedKinds(into: Set<string>): void {
    for (const k of this.kinds.values()) if (k.maskedResponses > 0) into.add(k.kind);
  }

  /** The JSON view; `maskedSomewhere`: kinds shown masked by any endpoint (this one included). */
  view(settings: CompiledResponses, maskedSomewhere: ReadonlySet<string>): ExposureView {
    const flags: string[] = [];
    const kinds: KindView[] = [];
    for (const k of this.kinds.values()) {
      const held = k.unmaskedResponses + k.maskedResponses;
      kinds.push({
        kind: k.kind,
        unmasked_responses: k.unmaskedResponses,
        masked_responses: k.maskedResponses,
        unmasked_values: k.unmaskedValues,
        masked_values: k.maskedValues,
        values_per_response: held > 0 ? round((k.unmaskedValues + k.maskedValues) / held, 2) : 0,
        unmasked_share: round(k.unmaskedResponses / Math.max(1, this.inspected)),
      });
      if (this.unmaskedFlag(k, settings)) {
        flags.push(`unmasked:${k.kind}`);
        // shown masked somewhere (elsewhere, or in other responses of this very endpoint): the
        // masking exists and this endpoint skips it
        if (maskedSomewhere.has(k.kind)) flags.push(`masked_inconsistently:${k.kind}`);
      }
    }
    if (this.overRequested > 0 || this.overBaseline > 0) flags.push('more_records_than_requested');
    kinds.sort((a, b) => b.unmasked_responses - a.unmasked_responses || b.masked_responses - a.masked_responses);
    return {
      inspected: this.inspected,
      truncated: this.truncated,
      records_mean: round(this.recordsMean, 2),
      records_p50: this.percentile(0.5),
      records_p95: this.percentile(0.95),
      bytes_mean: Math.round(this.bytesMean),
      over_requested: this.overRequested,
      over_baseline: this.overBaseline,
      kinds,
      flags,
    };
  }

  /** Upper bound of the bucket holding the q-quantile of records per response. */
  private percentile(q: number): number {
    const want = q * this.inspected;
    let seen = 0;
    for (let b = 0; b < RECORD_BUCKETS; b++) {
      seen += this.recordsHist[b] ?? 0;
      if (seen >= want && seen > 0) return b === 0 ? 0 : b === RECORD_BUCKETS - 1 ? 2 ** (b - 1) : 2 ** b - 1;
    }
    return 0;
  }
}
