// Unauthorized access: a route that needs credentials called without any (no Authorization,
// no API key, no session cookie). Default deny unless the policy declares the route public.

import { observeOnly, signal, type DetectorFactory } from '../signal.ts';

export const missingCredentials: DetectorFactory = ({ policy }) => {
  const cfg = policy.doc.detectors.missing_credentials;
  return {
    name: 'missing_credentials',
    inspect(f, out) {
      if (!cfg.enabled || !f.route.authRequired || f.hasCredentials) return;
      out.push(signal('authz.missing_credentials', cfg.score, observeOnly(cfg, f)));
    },
  };
};
