// Data harvesting seen in the responses (issue 17): how many distinct unmasked sensitive values
// (phones, ID numbers, bank cards, e-mails: the gateway's keyed hashes, never the values) one
// token, session, device or client received, and how many of its responses brought it a value it
// had not received before ("novel responses").
//
// People see their own data again and again (their profile, their orders: the same few values),
// and everyone sees the same public values (a winners list, a support line); a harvester gets a
// new value in almost every response, one object after another, whatever address it comes from.
// So a key fires when both its distinct values and its novel responses pass their thresholds in
// the window. A value that more than `popular_after` distinct clients received is public: it is
// new to nobody any more. Keyed like traversal on who is authenticated (principal, session,
// device): one client, precise, and cacheable at the gateway. The client key (IP + fingerprint)
// is off unless `client_multiplier` is set (a carrier NAT's app users are one client key, each
// seeing their own data; scorecard worlds challenged them); when on, it acts only as far as the
// proven crowd behind it allows (proven.ts). API-key principals read customers' data by design: `api_key_multiplier`.
// An account farm keeps each token under those bars: once several young tokens have each been given
// a few new values, every such young token answers for its own (`exfil.young_harvesters`).

import { BoundedMap } from '../../state/bounded-map.ts';
import { hash32 } from '../../state/distinct.ts';
import type { ResponseSample } from '../../wire/schema.ts';
import { valueMember } from '../exposure.ts';
import { observeOnly, ramp, Strongest, type DetectorFactory, type OutcomeContext, type SignalSubject } from '../signal.ts';
import { exfilKeys as K, subject, type Subject } from '../state-keys.ts';
import { youngPrincipal } from './provenance.ts';

type Keyed = readonly [Subject, SignalSubject, number];

/** The keys a request's responses are counted under, each with its threshold multiplier. */
function keysOf(f: OutcomeContext, clientMult: number, apiKeyMult: number): Keyed[] {
  const m = f.apiKey ? apiKeyMult : 1;
  const k: Keyed[] = [];
  if (f.principal) k.push([subject.principal(f.principal), 'principal', m]);
  if (f.session) k.push([subject.session(f.session), 'session', m]);
  if (f.device) k.push([subject.device(f.device), 'device', m]);
  if (f.client && clientMult > 0) k.push([subject.client(f.client), 'client', m * clientMult]);
  return k;
}

/** The unmasked values' keyed hashes of a response (each once), as 32-bit members and the hashes. */
function unmaskedValues(r: ResponseSample, members: number[], hashes: Buffer[]): void {
  members.length = 0;
  hashes.length = 0;
  for (const finding of r.findings) {
    if (finding.unmasked === 0) continue;
    for (const h of finding.value_hashes) {
      const m = valueMember(h);
      if (m === undefined || members.includes(m)) continue;
      members.push(m);
      hashes.push(h);
    }
  }
}

/**
 * Values known to be public (more than popular_after receivers), each with the time until which
 * it is known so (a window after it was found so): skipping the store for them is most of this
 * detector's cost on busy sites, where the same public values (a winners list, a support line) are
 * in response after response, and their receiver sketches are large (an estimate over every
 * register per look). Per instance, bounded (≈ 50 bytes each): a value forgotten early is only
 * looked up in the store again.
 */
const PUBLIC_VALUES_MAX = 50_000;

export const exfil: DetectorFactory = ({ policy, store }) => {
  const cfg = policy.doc.detectors.exfil;
  const W = cfg.window_s * 1000;
  const classes = new Set(cfg.route_classes);
  const best = new Strongest();
  // scratch for observe(), filled and read synchronously
  const members: number[] = [];
  const hashes: Buffer[] = [];
  const fresh: number[] = [];
  const publicUntil = new BoundedMap<number, number>(PUBLIC_VALUES_MAX);
  const young = youngPrincipal(policy, store);
  return {
    name: 'exfil',
    inspect(f, out) {
      if (!cfg.enabled || !classes.has(f.routeClass)) return;
      best.reset();
      for (const [key, name, mult] of keysOf(f, cfg.client_multiplier, cfg.api_key_multiplier)) {
        const values = store.countDistinct(K.values(key), W, f.now);
        if (values < cfg.values_per_key * mult) continue;
        const novel = store.count(K.novel(key), W, f.now);
        const s = ramp(novel, cfg.novel_responses * mult, cfg.novel_responses_max * mult);
        if (s > 0) best.offer(s, `exfil.distinct_values.${name}`, name, { count: values, threshold: cfg.values_per_key * mult });
      }
      // An account farm: many young tokens, each given a few people's data and moving on before
      // any per-key bar. Once the farm is seen, each of its tokens answers for its own novel reads.
      if (cfg.farm_principals > 0 && f.principal && !f.apiKey) {
        const novel = store.count(K.novel(subject.principal(f.principal)), W, f.now);
        if (novel >= cfg.farm_novel && young(f)) {
          const farm = store.countDistinct(K.youngHarvesters, W, f.now);
          if (farm >= cfg.farm_principals) {
            best.offer(ramp(novel, cfg.farm_novel, cfg.farm_novel_max), 'exfil.young_harvesters', 'principal', { count: novel, threshold: cfg.farm_novel });
          }
        }
      }
      if (best.max() > 0) best.emit(out, cfg.score, observeOnly(cfg, f), cfg.cache, 'exfil');
    },
    observes: cfg.route_classes,
    observe(o, f) {
      // Blocked or challenged: the site never answered, so nothing was given away.
      if (!cfg.enabled || !f || !o.response || !classes.has(f.routeClass) || o.action === 'BLOCK' || o.action === 'CHALLENGE') return;
      unmaskedValues(o.response, members, hashes);
      if (members.length === 0) return;
      const now = f.now;
      // Public values first: received by more than `popular_after` distinct clients, they are new to nobody.
      fresh.length = 0;
      let receiver = -1;
      for (let i = 0; i < members.length; i++) {
        const m = members[i] as number;
        if (cfg.popular_after > 0 && (publicUntil.peek(m) ?? 0) > now) continue;
        if (receiver < 0) receiver = hash32(f.principal || f.session || f.device || f.client);
        const n = store.addDistinct(K.receivers((hashes[i] as Buffer).toString('hex')), receiver, W, now);
        if (cfg.popular_after === 0 || n <= cfg.popular_after) fresh.push(m);
        else publicUntil.set(m, now + W);
      }
      if (fresh.length === 0) return;
      const farmKey = cfg.farm_principals > 0 && f.principal && !f.apiKey ? subject.principal(f.principal) : undefined;
      for (const [key] of keysOf(f, cfg.client_multiplier, cfg.api_key_multiplier)) {
        const k = K.values(key);
        const before = store.countDistinct(k, W, now);
        let after = before;
        for (const m of fresh) after = store.addDistinct(k, m, W, now);
        if (after > before) {
          const novel = store.incr(K.novel(key), W, now);
          if (key === farmKey && novel >= cfg.farm_novel && young(f)) store.addDistinct(K.youngHarvesters, hash32(f.principal), W, now);
        }
      }
    },
  };
};
