// Account enumeration on identity routes (login, register, reset, SMS): many distinct
// identifiers from one client, a high share of "no such account" (or, on a sign-up, "already
// registered") answers (rates.ts), walks through a block of phone numbers across all clients
// (rotating proxies), one tool's not-found answers across many single-use IPs, HTTP libraries
// naming account after account site-wide, and a route answering "no such account" far above its
// baseline (a leaked list, wherever it comes from).

import { hash32 } from '../../state/distinct.ts';
import { isNotFound, isTaken, observeOnly, ramp, signal, Strongest, type DetectorFactory, type OutcomeContext, type SignalSubject } from '../signal.ts';
import { betaPrior, learnBaseline, perRoute, routeKeyMemo, shareEvidence, type BaselineRule } from '../rates.ts';
import { enumerationKeys as K, subject, type Subject } from '../state-keys.ts';
import { hasOwnHistory, sessionIssued } from './provenance.ts';

/**
 * Keys for distinct identifiers: one client (IP + fingerprint), device, session. Not the bare IP
 * or subnet: behind carrier NAT thousands of honest users share them.
 */
function fanoutKeys(f: OutcomeContext): Array<[Subject, SignalSubject, number]> {
  const keys: Array<[Subject, SignalSubject, number]> = [[subject.client(f.client), 'client', 1]];
  if (f.device) keys.push([subject.device(f.device), 'device', 1]);
  if (f.session) keys.push([subject.session(f.session), 'session', 1]);
  return keys;
}

/** Keys for "no such account" answers: rare for humans, so shared addresses count too (higher bar). */
function clientKeys(f: OutcomeContext, ipMult: number, subnetMult: number): Array<[Subject, SignalSubject, number]> {
  return [...fanoutKeys(f), [subject.ip(f.ip), 'ip', ipMult], [subject.subnet(f.subnet), 'subnet', subnetMult]];
}

/** The route's own answered requests, not-found answers and learned not-found share. */
const routeKeys = routeKeyMemo(K);

/** The route's slice without a history of its own (`enum.unknown_wave`). */
const unknownSlice = perRoute((route) => ({ requests: K.unknownRequests(route), notFound: K.unknownNotFound(route) }));

export const enumeration: DetectorFactory = ({ policy, store }) => {
  const cfg = policy.doc.detectors.enumeration;
  const W = cfg.window_s * 1000;
  const SW = cfg.slow_window_s * 1000;
  const R = cfg.rate_model;
  const rule: BaselineRule = {
    windowMs: R.window_s * 1000, minRequests: R.min_requests, initial: R.baseline, floor: R.baseline_floor,
    learningRate: R.learning_rate, learnBelowRatio: R.learn_below_ratio, spikeRatio: cfg.unknown_surge_ratio, rememberMs: R.remember_s * 1000,
  };
  const keysOf = (f: OutcomeContext) => clientKeys(f, cfg.ip_multiplier, cfg.subnet_multiplier);
  const provenanceOn = policy.doc.detectors.provenance.enabled;
  /** A request without a password that brings no history of its own (provenance.ts). */
  const unknown = (f: OutcomeContext): boolean => !f.passwordHash && !hasOwnHistory(provenanceOn, store, f);
  /** The distinct-number set of a phone number's block, and a number added to it (its count after). */
  const blockOf = (n: number) => K.numberBlock(Math.floor(n / cfg.block_size));
  const addNumber = (n: number, now: number) => store.addDistinct(blockOf(n), hash32(String(n)), W, now);
  // each key kind's strongest evidence, the engine keeps the strongest that may act (signal.ts)
  const best = new Strongest();
  /** The slow window's fan-out of one key (a low-and-slow crew's session or address). */
  const slow = (ids: number, name: SignalSubject) =>
    best.offer(ramp(ids, cfg.slow_identifiers_per_key, cfg.slow_identifiers_per_key_max), `enum.slow_fanout.${name}`, name, { count: ids, threshold: cfg.slow_identifiers_per_key });
  return {
    name: 'enumeration',
    inspect(f, out) {
      if (!cfg.enabled || f.routeClass !== 'identity' || !f.identifierHash) return;
      const now = f.now;
      const member = hash32(f.identifierHash);
      const monitor = observeOnly(cfg, f);
      best.reset();
      // Sessions and devices first: whether the request has a clean history of its own (an issued
      // session or a device id that named no other account) picks the slice of its client key it
      // is judged by. A client key (address + browser build) is many people behind a carrier NAT;
      // a crew's browser profile going down its list fills the other slice.
      let clean = f.device !== '' || (f.session !== '' && sessionIssued(provenanceOn, store, f.session, now));
      for (const [key, name, mult] of fanoutKeys(f)) {
        if (name === 'client') continue;
        const ids = store.addDistinct(K.identifiers(key), member, W, now);
        if (ids > 1) clean = false;
        best.offer(ramp(ids, cfg.identifiers_per_key * mult, cfg.identifiers_per_key_max * mult), `enum.identifier_fanout.${name}`, name, { count: ids, threshold: cfg.identifiers_per_key * mult });
        if (SW > 0) slow(store.addDistinct(K.slowIdentifiers(key), member, SW, now), name);
      }
      const client = subject.client(f.client);
      const all = store.addDistinct(K.identifiers(client), member, W, now);
      const ids = clean ? store.addDistinct(K.cleanIdentifiers(client), member, W, now) : all;
      best.offer(ramp(ids, cfg.identifiers_per_key, cfg.identifiers_per_key_max), 'enum.identifier_fanout.client', 'client', { count: ids, threshold: cfg.identifiers_per_key });
      // Over hours, only requests without a clean history of their own count on the client key: an
      // app's or a browser build's customers behind one address, each with its device id or issued
      // session, name account after account over an afternoon; their own keys answer for them.
      if (SW > 0 && !clean) slow(store.addDistinct(K.slowIdentifiers(client), member, SW, now), 'client');
      // "No such account" shares per key, against the route's own learned share (rates.ts): a
      // shared address of customers who know their accounts never fires; leaked lists, full of
      // accounts that do not exist, do.
      const route = learnBaseline(store, routeKeys(f.route.name), now, rule);
      const prior = betaPrior(route.baseline, R.prior_weight);
      const sharedPrior = betaPrior(route.baseline, R.shared_prior_weight);
      for (const [key, name, mult] of keysOf(f)) {
        const shared = name === 'ip' || name === 'subnet';
        const nf = store.count(K.notFound(key), W, now);
        const rq = store.count(K.requests(key), W, now);
        const s2 = shareEvidence(nf, rq, shared ? sharedPrior : prior, { lo: cfg.not_found_per_key * mult, hi: cfg.not_found_per_key_max * mult, pValue: R.p_value });
        if (s2 > 0) best.offer(s2, `enum.not_found.${name}`, name, { count: nf, of: rq, threshold: cfg.not_found_per_key * mult });
      }
      // A tool's header set survives User-Agent, IP and header-order rotation.
      const tool = subject.headerSet(f.headerSet);
      const toolNf = store.count(K.notFound(tool), W, now);
      const toolRq = store.count(K.requests(tool), W, now);
      const s = shareEvidence(toolNf, toolRq, sharedPrior, { lo: cfg.not_found_per_toolprint, hi: cfg.not_found_per_toolprint_max, pValue: R.p_value });
      if (s > 0) best.offer(s, 'enum.not_found.toolprint', 'tool', { count: toolNf, of: toolRq, threshold: cfg.not_found_per_toolprint });
      if (f.phoneNumber >= 0) {
        // A login or sign-up (a password) counts only once it failed (observe): a number that
        // logged in is its owner's, and a flash sale's customers from one carrier's dense block of
        // numbers, logging in, walked that block by the dozen (scorecard world 3018). A reset or
        // an SMS counts as it is asked: the site may answer all alike.
        const numbers = f.passwordHash ? store.countDistinct(blockOf(f.phoneNumber), W, now) : addNumber(f.phoneNumber, now);
        // A known client (session or device) is far less likely to be the walker.
        const s = ramp(numbers, cfg.numbers_per_block, cfg.numbers_per_block_max) * (f.session || f.device ? cfg.known_client_factor : 1);
        best.offer(s, 'enum.number_locality', 'global', { count: numbers, threshold: cfg.numbers_per_block });
      }
      if (best.max() > 0) {
        best.emit(out, cfg.score, monitor, cfg.cache, 'enum');
        store.mark(K.enumerated(f.identifierHash), now, cfg.mark_identifiers_s * 1000);
      }
      // A person names their account from a browser or the app, never from an HTTP library (logins
      // and registrations, which carry a password: cs.automation_client)
      if (f.automationClient && !f.passwordHash && cfg.automation_score > 0) out.push(signal('enum.automation_client', cfg.automation_score, monitor, undefined, 'request', 'identity.automation'));
      // Scripts naming account after account site-wide, whatever addresses and header sets they
      // rotate through: each of their requests carries it (a monitor names its test account or two).
      if (f.automationClient && !f.apiKey && cfg.automation_wave_score > 0) {
        const named = store.addDistinct(K.automationIdentifiers, member, W, now);
        const s = ramp(named, cfg.automation_identifiers, cfg.automation_identifiers_max);
        if (s > 0) out.push(signal('enum.automation_wave', cfg.automation_wave_score * s, monitor, undefined, 'request', undefined, { count: named, threshold: cfg.automation_identifiers }));
      }
      // The slice of such requests that bring no history at all, answered "no such account" far
      // above the route's share: a crew without cookies or device ids going down a list, whatever
      // it rotates. Its own evidence (it is in that slice); a person resets from a page or the app.
      if (cfg.unknown_wave_score > 0 && unknown(f)) {
        const slice = unknownSlice(f.route.name);
        const unf = store.count(slice.notFound, W, now);
        const wave = shareEvidence(unf, store.count(slice.requests, W, now), prior, { lo: cfg.unknown_not_found, hi: cfg.unknown_not_found_max, pValue: R.p_value });
        if (wave > 0) out.push(signal('enum.unknown_wave', cfg.unknown_wave_score * wave, monitor, undefined, 'request', undefined, { count: unf, threshold: cfg.unknown_not_found }));
      }
      // The route answers "no such account" far more than it learned to: a leaked list is being
      // tried, from wherever. Only unproven requests pay (the engine drops global alarms for proven ones).
      if (route.spike && cfg.unknown_surge_score > 0) {
        out.push(signal('enum.unknown_identifier_surge', cfg.unknown_surge_score, monitor, undefined, 'global'));
      }
    },
    observes: ['identity'],
    observe(o, f) {
      // Blocked or challenged: the site never answered, so nothing was learned about the account.
      if (!cfg.enabled || !f || f.routeClass !== 'identity' || !f.identifierHash || o.action === 'BLOCK' || o.action === 'CHALLENGE') return;
      // The answer that tells whether an account exists, where people rarely get it: "no such
      // account" on a login or reset, "already registered" on a sign-up (a known list tried on the
      // registration route). Each route learns its own share of them (a login never answers 409).
      const nf = isNotFound(o) || isTaken(o);
      if (f.phoneNumber >= 0 && f.passwordHash && o.status >= 400) addNumber(f.phoneNumber, f.now);
      const keys = keysOf(f);
      const tool = subject.headerSet(f.headerSet);
      for (const [key] of keys) store.incr(K.requests(key), W, f.now);
      store.incr(K.requests(tool), W, f.now);
      const route = routeKeys(f.route.name);
      store.incr(route.requests, rule.windowMs, f.now);
      const slice = cfg.unknown_wave_score > 0 && unknown(f) ? unknownSlice(f.route.name) : undefined;
      if (slice) store.incr(slice.requests, W, f.now);
      if (!nf) return;
      if (slice) store.incr(slice.notFound, W, f.now);
      for (const [key] of keys) store.incr(K.notFound(key), W, f.now);
      store.incr(K.notFound(tool), W, f.now);
      store.incr(route.events, rule.windowMs, f.now);
    },
  };
};
