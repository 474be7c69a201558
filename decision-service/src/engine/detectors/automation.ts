// Generic bot signals on public routes: machine-regular request timing from one client and
// scraping volume. Requests with a principal (API keys, partners) are exempt: server-to-server
// integrations are regular by design.

import { observeOnly, signal, type DetectorFactory } from '../signal.ts';

export const automation: DetectorFactory = ({ policy, store }) => {
  const cfg = policy.doc.detectors.automation;
  const W = cfg.scraping_window_s * 1000;
  return {
    name: 'automation',
    inspect(f, out) {
      if (!cfg.enabled || f.principal || f.routeClass !== 'public') return;
      const key = `${f.client}`;
      const t = store.arrival(`au:t:${key}`, f.now);
      const monitor = observeOnly(cfg, f);
      if (t.n >= Math.min(8, cfg.min_requests) && t.cv < cfg.regular_cv) out.push(signal('bot.regular_timing', cfg.regular_score, monitor));
      const n = store.incr(`au:r:${key}`, W, f.now);
      if (n > cfg.scraping_per_key) out.push(signal('bot.scraping_volume', cfg.scraping_score * Math.min(1, n / (2 * cfg.scraping_per_key)), monitor));
      if (f.automationClient && n > 20) out.push(signal('bot.automation_client', 30, monitor));
    },
  };
};
