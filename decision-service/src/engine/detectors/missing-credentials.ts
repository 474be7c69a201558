// Unauthorized access: a route that needs credentials called without any of those that
// authenticate it (routes[].credentials: an Authorization header, an API key, a session cookie;
// any of them when the route does not say). Default deny unless the policy declares the route
// public. A session cookie is no credential on an API that authenticates by bearer token: a
// script that loads the home page for its cookie and then calls the API carries one.

import { observeOnly, signal, type DetectorFactory, type RequestFeatures } from '../signal.ts';

/** Whether the request carries a credential the route accepts. */
function authenticated(f: RequestFeatures): boolean {
  const accepts = f.route.credentials;
  return (accepts.authorization && f.req.has_authorization)
    || (accepts.apiKey && f.apiKey)
    || (accepts.session && f.req.session_hash !== undefined);
}

export const missingCredentials: DetectorFactory = ({ policy }) => {
  const cfg = policy.doc.detectors.missing_credentials;
  return {
    name: 'missing_credentials',
    inspect(f, out) {
      if (!cfg.enabled || !f.route.authRequired || authenticated(f)) return;
      out.push(signal('authz.missing_credentials', cfg.score, observeOnly(cfg, f)));
    },
  };
};
