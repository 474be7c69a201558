// API inventory drift: calls to routes the policy does not declare (shadow) and to routes it
// declares deprecated (zombie). Alone they only tag; with other evidence they tip the score.

import { observeOnly, signal, type DetectorFactory } from '../signal.ts';

export const shadowZombie: DetectorFactory = ({ policy }) => {
  const cfg = policy.doc.detectors.shadow_zombie;
  return {
    name: 'shadow_zombie',
    inspect(f, out) {
      if (!cfg.enabled) return;
      if (f.route === policy.fallbackRoute) out.push(signal('authz.shadow_route', cfg.shadow_score, observeOnly(cfg, f)));
      else if (f.route.deprecated) out.push(signal('authz.zombie_route', cfg.zombie_score, observeOnly(cfg, f)));
    },
  };
};
