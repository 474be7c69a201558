// Security misconfiguration probes: scanners asking for .env, .git, backups, actuator, admin
// consoles, swagger, path traversal. One compiled alternation, tested against path and query.

import { observeOnly, signal, type DetectorFactory } from '../signal.ts';

export const sensitivePath: DetectorFactory = ({ policy }) => {
  const cfg = policy.doc.detectors.sensitive_path;
  const re = policy.sensitivePath;
  return {
    name: 'sensitive_path',
    inspect(f, out) {
      if (!cfg.enabled) return;
      if (re.test(f.req.path) || (f.req.query.length > 0 && re.test(f.req.query))) {
        out.push(signal('probe.sensitive_path', cfg.score, observeOnly(cfg, f), cfg.cache));
      }
    },
  };
};
