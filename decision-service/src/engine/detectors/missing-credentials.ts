// Unauthorized access: a route that needs credentials called without any of those that
// authenticate it (routes[].credentials: an Authorization header, an API key, a session cookie;
// any of them when the route does not say). Default deny unless the policy declares the route
// public. A session cookie is no credential on an API that authenticates by bearer token: a
// script that loads the home page for its cookie and then calls the API carries one.

import { observeOnly, signal, type DetectorFactory, type RequestFeatures } from '../signal.ts';
import { authzKeys as K, subject } from '../state-keys.ts';

/** Whether the request carries a credential the route accepts. */
function authenticated(f: RequestFeatures): boolean {
  const accepts = f.route.credentials;
  return (accepts.authorization && f.req.has_authorization)
    || (accepts.apiKey && f.apiKey)
    || (accepts.session && f.req.session_hash !== undefined);
}

export const missingCredentials: DetectorFactory = ({ policy, store }) => {
  const cfg = policy.doc.detectors.missing_credentials;
  const RW = cfg.rejected_window_s * 1000;
  return {
    name: 'missing_credentials',
    inspect(f, out) {
      if (!cfg.enabled || !f.route.authRequired) return;
      if (!authenticated(f)) {
        out.push(signal('authz.missing_credentials', cfg.score, observeOnly(cfg, f)));
        return;
      }
      // A credential the site keeps refusing: stopped here, its holder loses nothing the site
      // would have given it (a harvester whose sign-up was stopped reads on with a token it
      // never got; a guessed or revoked token).
      if (cfg.rejected_after > 0 && f.principal) {
        const rejected = store.count(K.rejected(subject.principal(f.principal)), RW, f.now);
        if (rejected >= cfg.rejected_after) {
          out.push(signal('authz.rejected_token', cfg.rejected_score, observeOnly(cfg, f), undefined, 'principal', undefined, { count: rejected, threshold: cfg.rejected_after }));
        }
      }
    },
    observes: ['protected', 'object', 'promo', 'internal'],
    observe(o, f) {
      // only the site's own answer: a request Verdict stopped never reached it
      if (!cfg.enabled || cfg.rejected_after <= 0 || !f || !f.principal || o.action === 'BLOCK' || o.action === 'CHALLENGE') return;
      const p = subject.principal(f.principal);
      // A token the site ever accepted is not counted: when the site's own sign-in backend fails
      // and answers 401 to everyone for a while, its customers' tokens must not be refused here
      // after it recovers. What is counted is a token that never worked.
      // (renewed once half its time is gone, not on every answer: one write per token per RW / 2)
      if (o.status >= 200 && o.status < 300) {
        if (!store.marked(K.accepted(p), f.now + RW / 2)) store.mark(K.accepted(p), f.now, RW);
      } else if (o.status === 401 && !store.marked(K.accepted(p), f.now)) {
        store.incr(K.rejected(p), RW, f.now);
      }
    },
  };
};
