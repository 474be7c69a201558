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
// Bounded: an LRU of at most `max` URLs, ~120 bytes each; a URL forgotten is only inspected at
// its class's share again until it settles anew.

import { LRUCache } from 'lru-cache';
import type { CompiledResponses } from '../config/policy.ts';
import type { ResponseSample } from '../wire/schema.ts';
import { valueMember } from './exposure.ts';

interface UrlState {
  /** What the last inspected response held: its unmasked values, order-free (valueSignature). */
  signature: number;
  /** Inspected responses in a row with that signature. */
  agreed: number;
}

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

/** The URL key of a request: method, path and query, as the gateway sent them. */
export function urlKey(method: string, path: string, query: string): string {
  return query ? `${method} ${path}?${query}` : `${method} ${path}`;
}

export class SettledUrls {
  private readonly urls: LRUCache<string, UrlState>;

  constructor(max = 20_000) {
    this.urls = new LRUCache({ max });
  }

  /** Counts one inspected response of `url`. */
  observe(url: string, sample: ResponseSample, responses: CompiledResponses): void {
    const dump = sample.requested_limit > 0 && sample.records > responses.exposure.records_over_requested * sample.requested_limit;
    const signature = valueSignature(sample);
    const s = this.urls.get(url);
    if (!s) {
      this.urls.set(url, { signature, agreed: dump ? 0 : 1 });
      return;
    }
    if (dump || s.signature !== signature) {
      s.signature = signature;
      s.agreed = dump ? 0 : 1;
    } else if (s.agreed < 0x7fff_ffff) {
      s.agreed++;
    }
  }

  /**
   * The share of `url`'s responses to inspect: `share` (its route class's), or the settled share
   * when lower and the URL has settled.
   */
  share(url: string, share: number, responses: CompiledResponses): number {
    const settle = responses.settle;
    if (share <= settle.inspect || settle.after === 0) return share;
    const s = this.urls.peek(url);
    return s !== undefined && s.agreed >= settle.after ? settle.inspect : share;
  }

  get size(): number {
    return this.urls.size;
  }

  /** Memory pressure: forgets everything (settling starts again). */
  clear(): void {
    this.urls.clear();
  }
}
