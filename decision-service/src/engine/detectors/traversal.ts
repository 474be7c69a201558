// Data traversal (BOLA) on object routes: many distinct object ids per principal / client, more
// ids of an owner's route (a profile) than one user owns per token (routes[].objects_per_token),
// sequential walks through id space, a high share of not-found / forbidden answers (rates.ts), and
// a surge of not-found answers to young principals (an account farm, each token under every bar).
// Server-to-server integrations (API keys) read many objects by design: their thresholds are
// `api_key_multiplier` times higher.

import { hash32 } from '../../state/distinct.ts';
import { observeOnly, ramp, signal, Strongest, type DetectorFactory, type OutcomeContext, type SignalSubject } from '../signal.ts';
import { betaPrior, learnBaseline, routeKeyMemo, shareEvidence, type BaselineRule } from '../rates.ts';
import { subject, traversalKeys as K, type Subject } from '../state-keys.ts';
import { firstSeen, youngPrincipal } from './provenance.ts';

// Keyed on who is authenticated first: object routes need credentials. The client key (address +
// browser build) catches an account farm whose tokens each stay under every bar behind one
// address; behind a carrier NAT it carries thousands of honest users, so it is counted at
// `client_multiplier` times the thresholds and the engine lets a key proven customers share only
// add to other evidence (proven.ts). Never for API keys: partners' jobs run from a few servers;
// `clientMultiplier` 0: no client key.
function keys(f: OutcomeContext, apiKeyMultiplier: number, clientMultiplier: number): Array<[Subject, SignalSubject, number]> {
  const k: Array<[Subject, SignalSubject, number]> = [];
  if (f.principal) k.push([subject.principal(f.principal), 'principal', f.apiKey ? apiKeyMultiplier : 1]);
  if (f.session) k.push([subject.session(f.session), 'session', 1]);
  if (f.device) k.push([subject.device(f.device), 'device', 1]);
  if (clientMultiplier > 0 && !f.apiKey) k.push([subject.client(f.client), 'client', clientMultiplier]);
  return k;
}

/** A token's own keys (not its address): its evidence marks it as having walked. */
const NARROW: readonly SignalSubject[] = ['principal', 'session', 'device'];

/** One object route's reads by young principals, their not-found answers and its learned share. */
const routeKeys = routeKeyMemo(K);

export const traversal: DetectorFactory = ({ policy, store }) => {
  const cfg = policy.doc.detectors.traversal;
  const W = cfg.window_s * 1000;
  const OW = cfg.owner_window_s * 1000;
  const walkMs = Math.max(W, cfg.walk_memory_s * 1000);
  const R = cfg.rate_model;
  const rule: BaselineRule = {
    windowMs: R.window_s * 1000, minRequests: R.min_requests, initial: R.baseline, floor: R.baseline_floor,
    learningRate: R.learning_rate, learnBelowRatio: R.learn_below_ratio, spikeRatio: cfg.young_surge_ratio, rememberMs: R.remember_s * 1000,
  };
  const prov = policy.doc.detectors.provenance;
  /** A principal first seen within `young_principal_s` (provenance.ts keeps first sightings): an account farm's fresh tokens. */
  const young = youngPrincipal(policy, store);
  /**
   * A principal with a history: first seen at least `established_after_s` ago, whose reads were
   * never evidence before (a walk starts at once; a partner's sync job reads for minutes first),
   * and whose reads mostly found their objects (a partner reads the orders it ships; a walker
   * guesses). Its object fan-out is judged `established_multiplier` times higher.
   */
  const established = (f: OutcomeContext, s: Subject): boolean => {
    if (!prov.enabled || cfg.established_after_s <= 0 || store.marked(K.walked(s), f.now)) return false;
    if (f.now - firstSeen(store, s, f.now, prov.remember_s * 1000) < cfg.established_after_s * 1000) return false;
    return store.count(K.notFound(s), W, f.now) <= cfg.established_not_found_share * store.count(K.requests(s), W, f.now);
  };
  const best = new Strongest();
  return {
    name: 'traversal',
    inspect(f, out) {
      if (!cfg.enabled || f.routeClass !== 'object' || !f.objectId) return;
      const now = f.now;
      const pr = f.principal ? subject.principal(f.principal) : undefined;
      const settled = pr !== undefined && established(f, pr);
      const member = hash32(`${f.route.name}/${f.objectId}`);
      best.reset();
      // Not-found shares are judged against what young principals of this route get (rates.ts).
      const route = learnBaseline(store, routeKeys(f.route.name), now, rule);
      const prior = betaPrior(route.baseline, R.prior_weight);
      // an established customer's reads count on its own keys only; a fresh token's also on its address
      for (const [key, name, mult] of keys(f, cfg.api_key_multiplier, settled ? 0 : cfg.client_multiplier)) {
        const fan = name === 'principal' && settled ? mult * cfg.established_multiplier : mult;
        let objects = store.addDistinct(K.objects(key), member, W, now);
        // behind a client key, each reader's first few objects are its own (a crowd reading its
        // own profiles and orders); only what readers read beyond that is fan-out
        if (name === 'client' && cfg.objects_per_reader > 0) {
          const reader = f.principal || f.session || f.device;
          const readers = reader ? store.addDistinct(K.readers(key), hash32(reader), W, now) : 0;
          objects = Math.max(0, objects - cfg.objects_per_reader * readers);
        }
        best.offer(ramp(objects, cfg.objects_per_key * fan, cfg.objects_per_key_max * fan), `bola.object_fanout.${name}`, name, { count: objects, threshold: cfg.objects_per_key * fan });
        // a walk is one client's: behind one address the farm's tokens interleave
        if (f.objectNumber >= 0 && name !== 'client') {
          const prev = store.swap(K.lastObject(key, f.route.name), f.objectNumber, now, walkMs);
          const step = prev === undefined ? -1 : Math.abs(f.objectNumber - prev);
          // the same object again (a reload, or the request sent again after a solved challenge)
          // neither continues nor breaks a walk: interleaved repeats must not reset it
          const last = store.swap(K.sequentialRun(key), 0, now, walkMs) ?? 0;
          const run = step === 0 ? last : step > 0 && step <= cfg.sequential_step ? last + 1 : 0;
          store.swap(K.sequentialRun(key), run, now, walkMs);
          best.offer(ramp(run, cfg.sequential_run * mult, cfg.sequential_run_max * mult), `bola.sequential_walk.${name}`, name, { count: run, threshold: cfg.sequential_run * mult });
        }
        const nf = store.count(K.notFound(key), W, now);
        const rq = store.count(K.requests(key), W, now);
        const s3 = shareEvidence(nf, rq, prior, { lo: cfg.not_found_per_key * mult, hi: cfg.not_found_per_key_max * mult, pValue: R.p_value });
        if (s3 > 0) best.offer(s3, `bola.not_found.${name}`, name, { count: nf, of: rq, threshold: cfg.not_found_per_key * mult });
      }
      // A route whose objects each belong to one user (routes[].objects_per_token): a token that
      // reads more of its ids than one user owns is reading other people's, however slowly and
      // from however many addresses (a farm's tokens each stay under every fan-out bar above).
      const own = f.route.objectsPerToken;
      const token: [Subject, SignalSubject] | undefined = own <= 0 ? undefined
        : pr ? [pr, 'principal'] : f.session ? [subject.session(f.session), 'session'] : f.device ? [subject.device(f.device), 'device'] : undefined;
      if (token) {
        const limit = own * (f.apiKey ? cfg.api_key_multiplier : 1);
        const read = store.addDistinct(K.routeObjects(token[0], f.route.name), member, OW, now);
        best.offer(ramp(read, limit + 1, 2 * limit), `bola.foreign_objects.${token[1]}`, token[1], { count: read, threshold: limit + 1 });
      }
      const monitor = observeOnly(cfg, f);
      const found = best.max() > 0;
      // each key kind's strongest; the engine keeps the strongest that may act (signal.ts)
      if (found) best.emit(out, cfg.score, monitor, cfg.cache, 'bola');
      // evidence on a principal not yet established (its own, or its session's or device's; not a
      // crowd's client key): it never will be while this is remembered
      if (found && pr !== undefined && !settled && best.maxOf(NARROW) > 0) store.mark(K.walked(pr), now, prov.remember_s * 1000);
      // Young principals of this route get far more not-found answers than they learned to: an
      // account farm guessing ids, each token below every per-key bar. Only young principals pay.
      if (route.spike && cfg.young_surge_score > 0 && young(f)) {
        out.push(signal('bola.young_not_found_surge', cfg.young_surge_score, monitor, undefined, 'global'));
      }
    },
    observes: ['object'],
    observe(o, f) {
      // Blocked or challenged: the site never answered, so nothing was learned about the object.
      if (!cfg.enabled || !f || f.routeClass !== 'object' || o.action === 'BLOCK' || o.action === 'CHALLENGE') return;
      const nf = o.status === 404 || o.status === 403;
      const ks = keys(f, cfg.api_key_multiplier, cfg.client_multiplier);
      for (const [key] of ks) store.incr(K.requests(key), W, f.now);
      if (nf) for (const [key] of ks) store.incr(K.notFound(key), W, f.now);
      if (young(f)) {
        const route = routeKeys(f.route.name);
        store.incr(route.requests, rule.windowMs, f.now);
        if (nf) store.incr(route.events, rule.windowMs, f.now);
      }
    },
  };
};
