// Promo-abuse bots: claims per device / account / client / subnet, accounts per device, claims
// that skip the flow's precursors (promo page, info call), automation clients and header sets
// inconsistent with the claimed browser, machine-regular timing of the flow, and claims by
// accounts created minutes ago from the same client (account farms).

import { hash32 } from '../../state/distinct.ts';
import { observeOnly, ramp, signal, type DetectorFactory, type OutcomeContext, type RequestFeatures } from '../signal.ts';
import { promoAbuseKeys as K, subject, type Subject } from '../state-keys.ts';

const PRECURSOR_TTL = 30 * 60_000;

function precursorKeys(f: RequestFeatures): string[] {
  const k = [K.precursorClient(f.client)];
  if (f.session) k.push(K.precursorSession(f.session));
  if (f.principal) k.push(K.precursorPrincipal(f.principal));
  if (f.device) k.push(K.precursorDevice(f.device));
  return k;
}

const FRESH_TTL = 30 * 60_000;

/** Where a just-created account shows up next: the same client or device. */
function freshKeys(f: OutcomeContext): string[] {
  const k = [K.freshAccountClient(f.client)];
  if (f.device) k.push(K.freshAccountDevice(f.device));
  return k;
}

export const promoAbuse: DetectorFactory = ({ policy, store }) => {
  const cfg = policy.doc.detectors.promo_abuse;
  const W = cfg.window_s * 1000;
  return {
    name: 'promo_abuse',
    inspect(f, out) {
      if (!cfg.enabled) return;
      const now = f.now;
      const isPage = f.req.method === 'GET' && (f.routeClass === 'promo' || (f.routeClass === 'public' && /promo/i.test(f.req.path)));
      if (isPage) {
        for (const k of precursorKeys(f)) store.mark(k, now, PRECURSOR_TTL);
        return;
      }
      if (f.routeClass !== 'promo' || f.req.method !== 'POST') return;
      const monitor = observeOnly(cfg, f);
      let best = 0;
      let bestCode = '';
      // Per device and account; not per address, not even address + browser: a managed office
      // puts hundreds of honest participants with identical browsers behind one IP.
      const claimKeys: Array<[Subject, string, number]> = [];
      if (f.device) claimKeys.push([subject.device(f.device), 'device', 1]);
      if (f.principal) claimKeys.push([subject.principal(f.principal), 'account', 1]);
      for (const [key, name, mult] of claimKeys) {
        const n = store.incr(K.claims(key), W, now);
        const s = ramp(n, cfg.claims_per_key * mult + 0.5, cfg.claims_per_key_max * mult);
        if (s > best) { best = s; bestCode = `promo.claims.${name}`; }
      }
      if (f.device && f.principal) {
        const s = ramp(store.addDistinct(K.accountsPerDevice(f.device), hash32(f.principal), W, now), cfg.accounts_per_device + 0.5, cfg.accounts_per_device_max);
        if (s > best) { best = s; bestCode = 'promo.accounts_per_device'; }
      }
      if (best > 0) out.push(signal(bestCode, cfg.score * best, monitor));
      if (freshKeys(f).some((k) => store.marked(k, now))) out.push(signal('promo.fresh_account', cfg.fresh_account_score, monitor));
      if (!precursorKeys(f).some((k) => store.marked(k, now))) out.push(signal('promo.no_precursor', cfg.no_precursor_score, monitor));
      if (f.automationClient) out.push(signal('promo.automation_client', cfg.automation_score, monitor));
      else if (f.browserMismatch) out.push(signal('promo.header_mismatch', cfg.mismatch_score, monitor));
      const t = store.arrival(K.claimArrivals(f.fingerprint), now);
      if (t.n >= 4 && t.cv < 0.15) out.push(signal('promo.regular_timing', cfg.regular_timing_score, monitor));
    },
    observes: ['identity'],
    observe(o, f) {
      // An identity route answering 201 created an account: remember the client that did it.
      if (!cfg.enabled || !f || f.routeClass !== 'identity' || o.status !== 201) return;
      for (const k of freshKeys(f)) store.mark(k, f.now, FRESH_TTL);
    },
  };
};
