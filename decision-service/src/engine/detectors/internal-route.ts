// Unauthorized access: internal routes (admin, management) called from outside the policy's
// internal ranges.

import { observeOnly, signal, type DetectorFactory } from '../signal.ts';

export const internalRoute: DetectorFactory = ({ policy }) => {
  const cfg = policy.doc.detectors.internal_route;
  return {
    name: 'internal_route',
    inspect(f, out) {
      if (!cfg.enabled || f.routeClass !== 'internal' || f.isInternalIp) return;
      out.push(signal('authz.internal_from_outside', cfg.score, observeOnly(cfg, f)));
    },
  };
};
