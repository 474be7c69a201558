// Issue 17: which responses need inspecting. A URL (method, path and query) whose inspected
// responses keep holding the same unmasked values, or none (a promo page, page 1 of a public
// winners list, a product list, a login's "ok"), shows nothing new to anyone: once `after`
// inspected responses in a row agreed, it is *settled*, and the service asks the gateways to
// inspect only the policy's `responses.settle.inspect` share of its responses. A response that
// disagrees (other values, more records than requested) unsettles it at once.
//
// A harvester has to ask for URLs nobody else asks for (the next page, the next id) to be given
// new values, and a customer's own profile or order is one URL with that customer's values:
// those are never settled, and the exfil detector sees each of their responses. Settled or not
// is per URL, never per endpoint template, for that reason: customers reading page 1 of a list
// must not hide a crawler reading page 2, 3, 4, …
//
// Bounded and allocated once (memory pressure has nothing to take back): a direct-mapped table of
// SLOTS URLs (12 bytes each, ~0.8 MB), a URL's slot chosen by the low bits of a 32-bit hash of it
// and tagged with the whole hash. A URL that lands on a slot another holds takes it over and
// starts again (so does the other when it comes back): sharing a slot only unsettles URLs; only
// two URLs with the same 32-bit hash (one pair in 4 billion) would share a state.

import type { CompiledResponses } from '../config/policy.ts';
import type { ResponseSample } from '../wire/schema.ts';
import { fnv1a, FNV_OFFSET, mix32 } from '../state/distinct.ts';
import { valueMember } from './exposure.ts';

/** Slots of the table (a power of two). */
const SLOTS = 1 << 16;

/** A URL's tag from its 32-bit hash: never 0 (an empty slot), unsigned as the table holds it. */
const tagOf = (h: number): number => (mix32(h ^ 0x5bd1e995) | 1) >>> 0;

/** An order-free signature of a response's unmasked values (0: none). */
export function valueSignature(sample: ResponseSample): number {
  let sum = 0;
  let xor = 0;
  for (const f of sample.findings) {
    if (f.unmasked === 0) continue;
    for (const h of f.value_hashes) {
      const m = valueMember(h);
      if (m === undefined) continue;
      sum = (sum + m) >>> 0;
      xor = (xor ^ m) >>> 0;
    }
  }
  return (sum ^ Math.imul(xor, 0x9e3779b1)) >>> 0;
}

/**
 * A request's URL as a 32-bit hash: of "<method> <path>" and "?<query>" when there is one, as the
 * gateway sent them (hash32 of that string, hashed in place: no string is made per decision).
 */
export function urlHash(method: string, path: string, query: string): number {
  const h = fnv1a(fnv1a(fnv1a(FNV_OFFSET, method), ' '), path);
  return mix32(query ? fnv1a(fnv1a(h, '?'), query) : h);
}

/** The table slot of a URL hash. */
const slotOf = (h: number): number => h & (SLOTS - 1);

export class SettledUrls {
  /** Per slot: the URL's tag (0: empty), its last response's signature, and how many agreed in a row. */
  private readonly tags = new Uint32Array(SLOTS);
  private readonly signatures = new Uint32Array(SLOTS);
  private readonly agreed = new Uint32Array(SLOTS);

  /** Counts one inspected response of the URL hashed `h` (urlHash). */
  observe(h: number, sample: ResponseSample, responses: CompiledResponses): void {
    const dump = sample.requested_limit > 0 && sample.records > responses.exposure.records_over_requested * sample.requested_limit;
    const signature = valueSignature(sample);
    const slot = slotOf(h);
    const tag = tagOf(h);
    if (this.tags[slot] !== tag) {
      this.tags[slot] = tag;
      this.signatures[slot] = signature;
      this.agreed[slot] = dump ? 0 : 1;
      return;
    }
    if (dump || this.signatures[slot] !== signature) {
      this.signatures[slot] = signature;
      this.agreed[slot] = dump ? 0 : 1;
    } else if ((this.agreed[slot] as number) < 0xffff_fff0) {
      this.agreed[slot] = (this.agreed[slot] as number) + 1;
    }
  }

  /**
   * The share of the responses of the URL hashed `h` to inspect: `share` (its route class's), or
   * the settled share when lower and the URL has settled.
   */
  share(h: number, share: number, responses: CompiledResponses): number {
    const settle = responses.settle;
    if (share <= settle.inspect || settle.after === 0) return share;
    const slot = slotOf(h);
    return this.tags[slot] === tagOf(h) && (this.agreed[slot] as number) >= settle.after ? settle.inspect : share;
  }
}
