// Injection probes in the query string: SQL injection, script injection, command execution,
// template and JNDI lookups. Scanners send these on any route; a real client never does.

import { observeOnly, signal, targetCache, type DetectorFactory } from '../signal.ts';

const BUILT_IN = [
  "('|%27)\\s*(or|and)\\s*('|%27)?\\d",
  '\\bunion(\\s|%20|\\+|/\\*.*\\*/)+(all(\\s|%20|\\+)+)?select\\b',
  '\\b(sleep|benchmark|pg_sleep)\\s*(\\(|%28)',
  ';\\s*(drop|delete|insert|update)\\s',
  '(<|%3c)\\s*script',
  'javascript:',
  '\\bon(error|load)\\s*=',
  '(;|\\||%7c|`|\\$\\(|%24%28)\\s*(cat|ls|id|whoami|uname|wget|curl|nc|bash|sh)\\b',
  '\\$\\{\\s*jndi:',
  '\\{\\{.*\\}\\}',
];

export const injection: DetectorFactory = ({ policy }) => {
  const cfg = policy.doc.detectors.injection;
  const re = new RegExp([...BUILT_IN, ...cfg.extra_patterns].map((p) => `(?:${p})`).join('|'), 'i');
  // the payload's URL is refused at the gateway for everyone (a scanner replays its list from new addresses)
  const target = targetCache(cfg.target_ttl_s);
  return {
    name: 'injection',
    inspect(f, out) {
      if (!cfg.enabled || f.req.query.length === 0) return;
      let q = f.req.query;
      try {
        q = decodeURIComponent(q.replace(/\+/g, ' '));
      } catch {
        // Malformed escapes are tested as sent.
      }
      if (re.test(q)) out.push(signal('probe.injection', cfg.score, observeOnly(cfg, f), target));
    },
  };
};
