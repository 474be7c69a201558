// Where a request's session, device and account token came from — evidence that rotating
// addresses and copied browsers cannot hide. It remembers when each was first seen (promo-abuse
// reads devices first seen at the sale and accounts whose first action is the claim; traversal
// reads young principals) and fires `session.never_issued` for a login, registration or claim
// carrying a session cookie the site never issued.
//
// The gateway does not report Set-Cookie, so "issued" is inferred: a session is issued when it
// comes with a GET (a page load or an API read the site served), or when it is first seen on a
// POST right after a page load from the same client (the page set it, as it does for every
// visitor). A script that makes up a cookie and posts straight away has neither. A crew that
// loads the home page before each attempt passes this check; its other traces (the session's
// failures, fan-out, clearance) are the other detectors'.

import type { CompiledPolicy } from '../../config/policy.ts';
import type { Store } from '../../state/store.ts';
import { observeOnly, signal, type DetectorFactory, type OutcomeContext } from '../signal.ts';
import { credentialStuffingKeys, provenanceKeys as K, subject, type Subject } from '../state-keys.ts';

/**
 * When `s` was first seen (ms; `now` when this is the first time), recording this sighting: the
 * first-seen time is kept for `ttlMs` after the last one. A read-modify-write: two instances of
 * a fleet seeing a new identity at the same moment may each record their own time.
 */
export function firstSeen(store: Store, s: Subject, now: number, ttlMs: number): number {
  return firstAt(store, K.firstSeen(s), now, ttlMs);
}

/** firstSeen under any store key (a value kept `ttlMs` after the last sighting). */
export function firstAt(store: Store, key: string, now: number, ttlMs: number): number {
  const prev = store.swap(key, now, now, ttlMs);
  if (prev === undefined || prev >= now) return now;
  store.swap(key, prev, now, ttlMs);
  return prev;
}

export const provenance: DetectorFactory = ({ policy, store }) => {
  const cfg = policy.doc.detectors.provenance;
  const remember = cfg.remember_s * 1000;
  const pageWindow = cfg.page_window_s * 1000;
  return {
    name: 'provenance',
    inspect(f, out) {
      if (!cfg.enabled) return;
      const now = f.now;
      if (f.device) firstSeen(store, subject.device(f.device), now, remember);
      if (f.principal) firstSeen(store, subject.principal(f.principal), now, remember);
      if (f.method === 'GET' || f.method === 'HEAD') {
        if (f.routeClass === 'public') store.mark(K.pageLoad(f.client), now, pageWindow);
        if (f.session) {
          firstSeen(store, subject.session(f.session), now, remember);
          store.mark(K.issued(f.session), now, remember);
        }
        return;
      }
      if (!f.session) return;
      const seen = firstSeen(store, subject.session(f.session), now, remember);
      if (store.marked(K.issued(f.session), now)) {
        store.mark(K.issued(f.session), now, remember);
        return;
      }
      // First seen on this POST, right after the client loaded a page: the page set it.
      if (seen === now && store.marked(K.pageLoad(f.client), now)) {
        store.mark(K.issued(f.session), now, remember);
        return;
      }
      if (f.routeClass === 'identity' || f.routeClass === 'promo') {
        out.push(signal('session.never_issued', cfg.never_issued_score, observeOnly(cfg, f), undefined, 'session'));
      }
    },
  };
};

/** Whether the site issued this session (provenance.ts); true when that detector is off. */
export function sessionIssued(enabled: boolean, store: Store, session: string, now: number): boolean {
  return !enabled || store.marked(K.issued(session), now);
}

/**
 * A request's history of its own: a session the site issued, a device id, or an earlier
 * successful login from its client (credential-stuffing.ts marks those). What a crew without
 * cookies or device ids lacks; credential-stuffing.ts and enumeration.ts judge the slice without it.
 */
export function hasOwnHistory(provenanceOn: boolean, store: Store, f: OutcomeContext): boolean {
  return (f.session !== '' && sessionIssued(provenanceOn, store, f.session, f.now)) || f.device !== ''
    || store.marked(credentialStuffingKeys.loggedIn(f.client), f.now);
}

/**
 * `isYoung(f)`: the request's principal (not an API key) was first seen less than
 * traversal.young_principal_s ago — an account farm's fresh token, or a customer who just logged
 * in. Records the sighting (firstSeen). Always false with provenance off.
 */
export function youngPrincipal(policy: CompiledPolicy, store: Store): (f: OutcomeContext) => boolean {
  const prov = policy.doc.detectors.provenance;
  const rememberMs = prov.remember_s * 1000;
  const youngMs = policy.doc.detectors.traversal.young_principal_s * 1000;
  return (f) => prov.enabled && f.principal !== '' && !f.apiKey && f.now - firstSeen(store, subject.principal(f.principal), f.now, rememberMs) < youngMs;
}
