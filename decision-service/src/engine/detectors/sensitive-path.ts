// Security misconfiguration probes: scanners asking for .env, .git, backups, actuator, admin
// consoles, swagger, path traversal. One compiled alternation, tested against path and query.
// Each probe is blocked; the gateway is asked to refuse the address outright (cache) only once
// it has probed `cache_after` times in `cache_window_s` (ten minutes) — a scanner, not someone who
// tried one URL — and until then to refuse the probed URL itself, for everyone (`target_ttl_s`):
// a scanner rotating addresses asks for the same list of URLs from each.

import { observeOnly, signal, targetCache, type DetectorFactory } from '../signal.ts';
import { sensitivePathKeys as K } from '../state-keys.ts';

export const sensitivePath: DetectorFactory = ({ policy, store }) => {
  const cfg = policy.doc.detectors.sensitive_path;
  const re = policy.sensitivePath;
  const window = cfg.cache_window_s * 1000;
  const target = targetCache(cfg.target_ttl_s);
  return {
    name: 'sensitive_path',
    inspect(f, out) {
      if (!cfg.enabled) return;
      if (re.test(f.req.path) || (f.req.query.length > 0 && re.test(f.req.query))) {
        const probes = cfg.cache ? store.incr(K.probes(f.ip), window, f.now) : 0;
        out.push(signal('probe.sensitive_path', cfg.score, observeOnly(cfg, f), probes >= cfg.cache_after ? cfg.cache : target));
      }
    },
  };
};
