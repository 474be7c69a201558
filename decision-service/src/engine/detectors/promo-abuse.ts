// Promo-abuse bots: claims per device / account, fresh accounts' claims per address, accounts per
// device, claims that skip the flow's precursors (promo page, info call) or go through them hollow
// (seconds before the claim), automation clients and header sets inconsistent with the claimed
// browser, machine-regular timing of the flow, and the account / device graph of farms that rotate
// addresses: accounts created minutes ago from the same client, device or session, account tokens
// whose first request is the claim, devices first seen minutes before it (first sightings:
// provenance.ts).

import { hash32 } from '../../state/distinct.ts';
import { isLoginFailure, observeOnly, ramp, signal, Strongest, type DetectorFactory, type OutcomeContext, type RequestFeatures, type Signal, type SignalSubject } from '../signal.ts';
import { promoAbuseKeys as K, subject, type Subject } from '../state-keys.ts';
import { crowdBuild, isLogin } from '../proven.ts';
import { firstSeen } from './provenance.ts';

/** The identities a promo page view and the claim after it share: the client first, then the narrow ones. */
function precursorKeys(f: RequestFeatures): Subject[] {
  const k = [subject.client(f.client)];
  if (f.session) k.push(subject.session(f.session));
  if (f.principal) k.push(subject.principal(f.principal));
  if (f.device) k.push(subject.device(f.device));
  return k;
}

/** Where a just-created account shows up next: the same client, device or session. */
function freshKeys(f: OutcomeContext): Subject[] {
  const k = [subject.client(f.client)];
  if (f.device) k.push(subject.device(f.device));
  if (f.session) k.push(subject.session(f.session));
  return k;
}

/**
 * Promo evidence an honest newcomer to a sale may carry: that the customer is new (fresh account,
 * new device, other new accounts claiming from the same address), and that their browser sends an
 * unusual header set (an old Android browser without Accept-Language: a trait of the browser
 * build, not of what this client does).
 */
const NEWNESS = new Set(['promo.fresh_account', 'promo.new_device', 'promo.fresh_claims.ip', 'promo.header_mismatch']);

/**
 * A claim whose promo signals (from `first` on) are all newness ones: their strengths scaled down
 * together so that they combine (noisy-or) to at most `max`, each keeping its share of the
 * evidence. Any other promo signal (a farm's behaviour) leaves them as they are.
 */
export function capNewness(out: Signal[], first: number, max: number): void {
  let miss = 1;
  for (let i = first; i < out.length; i++) {
    const s = out[i]!;
    if (!s.code.startsWith('promo.')) continue;
    if (!NEWNESS.has(s.code)) return;
    miss *= 1 - s.score / 100;
  }
  const combined = 1 - miss;
  if (combined * 100 <= max || miss <= 0) return;
  // (1 - s')/1 = (1 - s)^k for every signal: the product becomes 1 - max/100
  const k = Math.log(1 - max / 100) / Math.log(miss);
  for (let i = first; i < out.length; i++) {
    const s = out[i]!;
    if (NEWNESS.has(s.code)) out[i] = { ...s, score: 100 * (1 - (1 - s.score / 100) ** k) };
  }
}

export const promoAbuse: DetectorFactory = ({ policy, store }) => {
  const cfg = policy.doc.detectors.promo_abuse;
  const W = cfg.window_s * 1000;
  const P = cfg.precursor_s * 1000;
  const pagePattern = new RegExp(cfg.precursor_pattern, 'i');
  const prov = policy.doc.detectors.provenance;
  /** When the flow's precursor was last seen for `s` (undefined: not within precursor_s); reads without changing it. */
  const lastPrecursor = (s: Subject, now: number): number | undefined => {
    const key = K.precursor(s);
    // a value needs a write to be read: 0 with a 1 ms life, put back at once with its own expiry
    const t = store.swap(key, 0, now, 1);
    if (t === undefined || t <= 0) return undefined;
    store.swap(key, t, now, Math.max(1, t + P - now));
    return t;
  };
  const best = new Strongest();
  /** Claims counted on a key, against the per-key thresholds times `mult`. */
  const offerClaims = (n: number, mult: number, code: string, about: SignalSubject) =>
    best.offer(ramp(n, cfg.claims_per_key * mult + 0.5, cfg.claims_per_key_max * mult), code, about, { count: n, threshold: cfg.claims_per_key * mult });
  /** Distinct accounts claiming from one device or browser session, against accounts_per_device. */
  const offerAccounts = (n: number, code: string, about: SignalSubject) =>
    best.offer(ramp(n, cfg.accounts_per_device + 0.5, cfg.accounts_per_device_max), code, about, { count: n, threshold: cfg.accounts_per_device });
  return {
    name: 'promo_abuse',
    inspect(f, out) {
      if (!cfg.enabled) return;
      const now = f.now;
      const isPage = f.req.method === 'GET' && (f.routeClass === 'promo' || (f.routeClass === 'public' && pagePattern.test(f.req.path)));
      if (isPage) {
        for (const k of precursorKeys(f)) store.swap(K.precursor(k), now, now, P);
        return;
      }
      if (f.routeClass !== 'promo' || f.req.method !== 'POST') return;
      const monitor = observeOnly(cfg, f);
      const first = out.length;
      best.reset();
      // Per device and account; not per address, not even address + browser: a managed office puts
      // hundreds of honest participants with identical browsers behind one IP.
      if (f.device) offerClaims(store.incr(K.claims(subject.device(f.device)), W, now), 1, 'promo.claims.device', 'device');
      if (f.principal) offerClaims(store.incr(K.claims(subject.principal(f.principal)), W, now), 1, 'promo.claims.account', 'principal');
      // ...except the claims of accounts made minutes ago by the very device or browser profile
      // that claims (an account farm: a fresh device and profile per account, a handful of exits),
      // counted per address at `ip_multiplier` times the threshold. An office's customers claim
      // with accounts of their own; a new customer among them is one claim.
      const freshDevice = f.device !== '' && store.marked(K.freshAccount(subject.device(f.device)), now);
      const freshSession = f.session !== '' && store.marked(K.freshAccount(subject.session(f.session)), now);
      if ((freshDevice || freshSession) && cfg.ip_multiplier > 0) {
        offerClaims(store.incr(K.freshClaims(subject.ip(f.ip)), W, now), cfg.ip_multiplier, 'promo.fresh_claims.ip', 'ip');
      }
      // A browser has no device id: its session cookie is its device. One browser profile claiming
      // for account after account (a farm logging each of its accounts in through the same cookie
      // jar, whatever exit it uses) is the same evidence; a couple sharing a laptop is two.
      if (f.principal) {
        const account = hash32(f.principal);
        if (f.device) offerAccounts(store.addDistinct(K.accountsPerDevice(f.device), account, W, now), 'promo.accounts_per_device', 'device');
        if (f.session) offerAccounts(store.addDistinct(K.accountsPerSession(f.session), account, W, now), 'promo.accounts_per_session', 'session');
      }
      // each key kind's strongest; the engine keeps the strongest that may act (signal.ts)
      best.emit(out, cfg.score, monitor, undefined, 'promo.claims');
      // the broadest of the request's keys that created an account: its client, device or session
      const fresh: SignalSubject | undefined = store.marked(K.freshAccount(subject.client(f.client)), now) ? 'client'
        : freshDevice ? 'device' : freshSession ? 'session' : undefined;
      if (fresh) out.push(signal('promo.fresh_account', cfg.fresh_account_score, monitor, undefined, fresh));
      // The claim's own precursor: that of its session, account or device when one of them has
      // one; the client's only when none does. Behind an office or carrier NAT the client is
      // everyone's, and someone else's page a second ago says nothing of how this person read it.
      const keys = precursorKeys(f);
      let precursorAt = -1;
      for (let i = 1; i < keys.length; i++) precursorAt = Math.max(precursorAt, lastPrecursor(keys[i]!, now) ?? -1);
      if (precursorAt < 0) precursorAt = lastPrecursor(keys[0]!, now) ?? -1; // keys[0]: the client
      if (precursorAt < 0) out.push(signal('promo.no_precursor', cfg.no_precursor_score, monitor));
      // Present but hollow: the page was fetched seconds before the claim, not read.
      else if (now - precursorAt < cfg.hollow_precursor_s * 1000) out.push(signal('promo.hollow_precursor', cfg.hollow_precursor_score, monitor));
      if (f.automationClient) out.push(signal('promo.automation_client', cfg.automation_score, monitor));
      else if (f.browserMismatch && !crowdBuild(store, f.fingerprint, now, policy.doc.proven)) out.push(signal('promo.header_mismatch', cfg.mismatch_score, monitor));
      const t = store.arrival(K.claimArrivals(f.fingerprint), now);
      if (t.n >= cfg.regular_min_claims && t.cv < cfg.regular_cv) out.push(signal('promo.regular_timing', cfg.regular_timing_score, monitor, undefined, 'fingerprint'));
      // The account / device graph (provenance.ts keeps the first sightings; the claim itself
      // is one, so a token first seen now did nothing between its login and the claim).
      if (prov.enabled && f.principal && firstSeen(store, subject.principal(f.principal), now, prov.remember_s * 1000) === now) {
        out.push(signal('promo.first_action_claim', cfg.first_action_claim_score, monitor, undefined, 'principal'));
      }
      if (prov.enabled && f.device && now - firstSeen(store, subject.device(f.device), now, prov.remember_s * 1000) < cfg.new_device_s * 1000) {
        out.push(signal('promo.new_device', cfg.new_device_score, monitor, undefined, 'device'));
      }
      capNewness(out, first, cfg.newness_alone_max);
    },
    observes: ['identity'],
    observe(o, f) {
      if (!cfg.enabled || !f || f.routeClass !== 'identity') return;
      const fresh = cfg.fresh_account_s * 1000;
      // An identity route answering 201 created an account: remember the client that did it, and
      // the account.
      if (o.status === 201) {
        for (const k of freshKeys(f)) store.mark(K.freshAccount(k), f.now, fresh);
        if (f.identifierHash) store.mark(K.freshIdentifier(f.identifierHash), f.now, fresh);
        return;
      }
      // A login to that account from anywhere else (a farm signs up through one exit and browser
      // profile, logs in and claims through another): the session or device it logged in with
      // claims for a fresh account too. Not the client: behind a carrier NAT it is everyone's.
      if (o.status >= 200 && o.status < 300 && isLogin(f) && !isLoginFailure(o) && f.identifierHash && store.marked(K.freshIdentifier(f.identifierHash), f.now)) {
        if (f.device) store.mark(K.freshAccount(subject.device(f.device)), f.now, fresh);
        if (f.session) store.mark(K.freshAccount(subject.session(f.session)), f.now, fresh);
      }
    },
  };
};
