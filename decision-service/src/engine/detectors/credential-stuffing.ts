// Credential stuffing and password spraying on login routes: failure shares per client key
// (rates.ts; shared keys per slice, see `clean`) and failures per identifier across keys, one
// password hash failing for many identifiers, logins for identifiers
// recently enumerated, traffic on deprecated login endpoints, a global failure spike against
// its own learned baseline, and the same for the slice of logins that bring no history at all.
// An account under attack gets its logins challenged, not its owner
// blocked: the per-identifier signal is challenge-strength only.

import { hash32 } from '../../state/distinct.ts';
import { isLoginFailure, observeOnly, ramp, signal, Strongest, type DetectorFactory, type OutcomeContext, type SignalSubject } from '../signal.ts';
import { betaPrior, learnBaseline, shareEvidence, type BaselineRule } from '../rates.ts';
import { credentialStuffingKeys as K, enumerationKeys, subject, type Subject } from '../state-keys.ts';
import { crowdBuild, isLogin } from '../proven.ts';
import { firstAt, hasOwnHistory, sessionIssued } from './provenance.ts';

function clientKeys(f: OutcomeContext, ipMult: number, subnetMult: number): Array<[Subject, SignalSubject, number]> {
  const keys: Array<[Subject, SignalSubject, number]> = [[subject.client(f.client), 'client', 1], [subject.ip(f.ip), 'ip', ipMult], [subject.subnet(f.subnet), 'subnet', subnetMult]];
  if (f.device) keys.push([subject.device(f.device), 'device', 1]);
  if (f.session) keys.push([subject.session(f.session), 'session', 1]);
  return keys;
}

const GLOBAL = { requests: K.globalAttempts, events: K.globalFailures, baseline: K.globalBaseline };

export const credentialStuffing: DetectorFactory = ({ policy, store }) => {
  const cfg = policy.doc.detectors.credential_stuffing;
  const W = cfg.window_s * 1000;
  const SW = cfg.slow_window_s * 1000;
  const R = cfg.rate_model;
  const rule: BaselineRule = {
    windowMs: R.window_s * 1000, minRequests: R.min_requests, initial: R.baseline, floor: R.baseline_floor,
    learningRate: R.learning_rate, learnBelowRatio: R.learn_below_ratio, spikeRatio: cfg.global_spike_ratio, rememberMs: R.remember_s * 1000,
  };
  const provenanceOn = policy.doc.detectors.provenance.enabled;
  const keysOf = (f: OutcomeContext) => clientKeys(f, cfg.ip_multiplier, cfg.subnet_multiplier);
  const enumerationOn = policy.doc.detectors.enumeration.enabled;
  const EW = policy.doc.detectors.enumeration.window_s * 1000;
  /** Whether a session / device tried at most one account (a person retrying theirs, typos and all). */
  const oneAccount = (s: Subject, now: number): boolean =>
    enumerationOn ? store.countDistinct(enumerationKeys.identifiers(s), EW, now) <= 1 : store.count(K.failures(s), W, now) === 0;
  /**
   * A login with a clean history of its own: an issued session or a device id that tried no other
   * account. Keys many people share (client, ip, subnet, header set) are judged on the slice of their
   * logins in the request's class: a crew without cookies or device ids, or one whose sessions try
   * account after account, fills the other slice, and the customers behind the same address or
   * browser build are judged by theirs. A crew that brings a fresh identity to every attempt fills
   * the clean slice instead, and that slice fires.
   */
  const clean = (f: OutcomeContext, now: number): boolean => {
    if (!f.device && !(f.session && sessionIssued(provenanceOn, store, f.session, now))) return false;
    if (f.device && !oneAccount(subject.device(f.device), now)) return false;
    return !f.session || oneAccount(subject.session(f.session), now);
  };
  /** [failures, answered logins] of key `s` in the slice of a request that is `isClean` (shared keys), or all of them. */
  const counts = (s: Subject, shared: boolean, isClean: boolean, now: number): [number, number] => {
    const failures = store.count(K.failures(s), W, now);
    const attempts = store.count(K.attempts(s), W, now);
    if (!shared) return [failures, attempts];
    const cf = store.count(K.cleanFailures(s), W, now);
    const ca = store.count(K.cleanAttempts(s), W, now);
    return isClean ? [cf, ca] : [Math.max(0, failures - cf), Math.max(0, attempts - ca)];
  };
  /**
   * Keys whose failures also count over the slow window (hours): sessions and devices, and the
   * client key for logins without a clean history of their own (the customers behind one address
   * and build, each with an issued session or device id, fail now and then over an afternoon).
   */
  const slowKey = (name: SignalSubject, isClean: boolean) => SW > 0 && (name === 'session' || name === 'device' || (name === 'client' && !isClean));
  const RW = cfg.returning_window_s * 1000;
  const returningMs = cfg.returning_after_s * 1000;
  /**
   * A client without cookies that comes back to the one account it names (a synthetic monitor
   * checking a test account every few minutes, cold-started in the middle of a wave): a history of
   * its own. Recorded on every login; true from its first return `returning_after_s` on while it has
   * named no other account. A crew names account after account from an address it keeps, and an
   * address it uses once never returns.
   */
  const returning = (f: OutcomeContext, now: number): boolean => {
    if (returningMs <= 0 || !f.identifierHash) return false;
    const named = store.addDistinct(K.clientAccounts(f.client), hash32(f.identifierHash), RW, now);
    return now - firstAt(store, K.clientSince(f.client), now, RW) >= returningMs && named === 1;
  };
  // failures per key: each kind's strongest, the engine keeps the strongest that may act (signal.ts)
  const best = new Strongest();
  return {
    name: 'credential_stuffing',
    inspect(f, out) {
      if (!cfg.enabled || !isLogin(f)) return;
      const now = f.now;
      const monitor = observeOnly(cfg, f);
      best.reset();
      // The route's failure share against what it learned outside spikes: the global alarm, and
      // the prior every key's own share is judged against (rates.ts).
      store.incr(K.globalAttempts, rule.windowMs, now);
      const global = learnBaseline(store, GLOBAL, now, rule);
      const prior = betaPrior(global.baseline, R.prior_weight);
      const sharedPrior = betaPrior(global.baseline, R.shared_prior_weight);
      const p = R.p_value;
      const isClean = clean(f, now);
      for (const [key, name, mult] of keysOf(f)) {
        // the client key (address + browser build) is sliced too: behind a carrier NAT, many people
        const shared = name === 'ip' || name === 'subnet';
        const [failures, attempts] = counts(key, shared || name === 'client', isClean, now);
        const s = shareEvidence(failures, attempts, shared ? sharedPrior : prior, { lo: cfg.failures_per_key * mult, hi: cfg.failures_per_key_max * mult, pValue: p });
        if (s > 0) best.offer(s, `cs.failure_rate.${name}`, name, { count: failures, of: attempts, threshold: cfg.failures_per_key * mult });
        if (!slowKey(name, isClean)) continue;
        // a low-and-slow crew: one failure every few minutes per address, never five in fifteen
        const sf = store.count(K.slowFailures(key), SW, now);
        const sa = store.count(K.slowAttempts(key), SW, now);
        const ss = shareEvidence(sf, sa, prior, { lo: cfg.slow_failures_per_key, hi: cfg.slow_failures_per_key_max, pValue: p });
        if (ss > 0) best.offer(ss, `cs.slow_failure_rate.${name}`, name, { count: sf, of: sa, threshold: cfg.slow_failures_per_key });
      }
      // One tool's failures across rotating IPs: the header set survives UA, IP and order rotation.
      const [toolFailures, toolAttempts] = counts(subject.headerSet(f.headerSet), true, isClean, now);
      const s = shareEvidence(toolFailures, toolAttempts, sharedPrior, { lo: cfg.failures_per_tool, hi: cfg.failures_per_tool_max, pValue: p });
      if (s > 0) best.offer(s, 'cs.failure_rate.tool', 'tool', { count: toolFailures, of: toolAttempts, threshold: cfg.failures_per_tool });
      best.emit(out, cfg.score, monitor, undefined, 'cs.failure_rate');
      // The narrowest evidence a rotating crew leaves: its browser profile (session) or device
      // failed on one account and names another (enumeration.ts keeps the accounts each named).
      if (enumerationOn && cfg.account_hopping_score > 0 && f.identifierHash) {
        const hop: [Subject, SignalSubject] | undefined = f.session ? [subject.session(f.session), 'session'] : f.device ? [subject.device(f.device), 'device'] : undefined;
        // Accounts named at login only: a person who mistyped and then reset their password by
        // phone names their username at login and their phone at the reset (two identifiers, one
        // account); a crew's profile names account after account at login.
        const named = hop ? store.addDistinct(K.loginIdentifiers(hop[0]), hash32(f.identifierHash), EW, now) : 0;
        if (hop && named > 1 && store.count(K.failures(hop[0]), W, now) > 0) {
          out.push(signal('cs.account_hopping', cfg.account_hopping_score, monitor, undefined, hop[1]));
        }
      }
      // Spraying: challenge-strength alone, so an owner whose (weak) password is being sprayed
      // is challenged, not blocked; the sprayer's other signals make it a block.
      const known = returning(f, now) || hasOwnHistory(provenanceOn, store, f);
      const spray = known ? 0 : ramp(store.countDistinct(K.passwordIdentifiers(f.passwordHash), W, now), cfg.identifiers_per_password, cfg.identifiers_per_password_max);
      if (spray > 0) out.push(signal('cs.password_spray', cfg.spray_score, monitor, undefined, 'password'));

      if (f.identifierHash && store.count(K.failures(subject.identifier(f.identifierHash)), W, now) >= cfg.failures_per_identifier && cfg.failures_per_identifier > 0) {
        out.push(signal('cs.failure_rate.identifier', cfg.identifier_score, monitor, undefined, 'identifier'));
      }
      if (f.identifierHash && !known && store.marked(enumerationKeys.enumerated(f.identifierHash), now)) {
        out.push(signal('cs.enumerated_identifier', cfg.enumerated_identifier_score, monitor, undefined, 'identifier'));
      }
      if (f.route.deprecated) out.push(signal('cs.deprecated_login', cfg.deprecated_login_score, monitor));
      // one piece of evidence with enum.automation_client (the stronger of the two counts)
      if (f.automationClient) out.push(signal('cs.automation_client', cfg.automation_score, monitor, undefined, 'request', 'identity.automation'));
      else if (f.browserMismatch && !crowdBuild(store, f.fingerprint, now, policy.doc.proven)) out.push(signal('cs.header_mismatch', cfg.mismatch_score, monitor));
      if (!known) {
        out.push(signal('cs.no_precursor', cfg.no_precursor_score, monitor));
        if (global.spike) out.push(signal('cs.global_failure_spike', cfg.global_spike_score, monitor, undefined, 'global'));
        // The slice of logins that bring no history at all, failing far above the route's
        // baseline: a crew without cookies or device ids, however it rotates addresses and copies
        // browsers. Its own evidence (it is in that slice), so a crew that pays every challenge
        // meets a block; a person's login comes from a page that set its session, or an app's
        // device id, and is never in the slice.
        if (cfg.unknown_wave_score > 0) {
          const uf = store.count(K.unknownFailures, W, now);
          const wave = shareEvidence(uf, store.count(K.unknownAttempts, W, now), prior, { lo: cfg.unknown_failures, hi: cfg.unknown_failures_max, pValue: p });
          if (wave > 0) out.push(signal('cs.unknown_login_wave', cfg.unknown_wave_score * wave, monitor, undefined, 'request', undefined, { count: uf, threshold: cfg.unknown_failures }));
        }
      }
    },
    observes: ['identity'],
    observe(o, f) {
      // A challenged login never reached the site: neither an attempt nor a failure of its keys.
      if (!cfg.enabled || !f || !isLogin(f) || o.action === 'CHALLENGE') return;
      const keys = keysOf(f);
      const tool = subject.headerSet(f.headerSet);
      // the request's slice, as inspect saw it: before this outcome's failure counts
      const isClean = clean(f, f.now);
      const failed = isLoginFailure(o);
      if (!hasOwnHistory(provenanceOn, store, f)) {
        store.incr(K.unknownAttempts, W, f.now);
        if (failed) store.incr(K.unknownFailures, W, f.now);
      }
      for (const [key, name] of keys) {
        store.incr(K.attempts(key), W, f.now);
        if (failed) store.incr(K.failures(key), W, f.now);
        if (isClean && (name === 'ip' || name === 'subnet' || name === 'client')) {
          store.incr(K.cleanAttempts(key), W, f.now);
          if (failed) store.incr(K.cleanFailures(key), W, f.now);
        }
        if (slowKey(name, isClean)) {
          store.incr(K.slowAttempts(key), SW, f.now);
          if (failed) store.incr(K.slowFailures(key), SW, f.now);
        }
      }
      // A header set is shared by everyone on the same browser build or app version. In the
      // slice people are judged by (a clean history: an issued session, a device id) only the
      // site's own answers count: a farm with a fresh device per account, whose sign-ups Verdict
      // blocked, must not have every app user after it challenged. Blocks of logins without a
      // clean history keep counting in theirs, so a crew stays blocked rather than let through
      // whenever its failures age out.
      if (o.action !== 'BLOCK' || !isClean) {
        store.incr(K.attempts(tool), W, f.now);
        if (failed) store.incr(K.failures(tool), W, f.now);
        if (isClean) {
          store.incr(K.cleanAttempts(tool), W, f.now);
          if (failed) store.incr(K.cleanFailures(tool), W, f.now);
        }
      }
      if (!failed) {
        if (o.status >= 200 && o.status < 300) store.mark(K.loggedIn(f.client), f.now, cfg.login_memory_s * 1000);
        return;
      }
      if (f.identifierHash) {
        store.incr(K.failures(subject.identifier(f.identifierHash)), W, f.now);
        store.addDistinct(K.passwordIdentifiers(f.passwordHash), hash32(f.identifierHash), W, f.now);
      }
      store.incr(K.globalFailures, rule.windowMs, f.now);
    },
  };
};
