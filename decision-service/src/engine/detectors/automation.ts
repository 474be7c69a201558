// Generic bot signals on public pages and promo reads (GET): machine-regular request timing from one client and
// scraping volume. Requests with a principal (API keys, partners) are exempt: server-to-server
// integrations are regular by design.

import { observeOnly, signal, type DetectorFactory } from '../signal.ts';
import { automationKeys as K } from '../state-keys.ts';

const REMEMBER_MS = 30 * 60_000;

export const automation: DetectorFactory = ({ policy, store }) => {
  const cfg = policy.doc.detectors.automation;
  const W = cfg.scraping_window_s * 1000;
  return {
    name: 'automation',
    inspect(f, out) {
      if (!cfg.enabled || f.principal || f.req.method !== 'GET' || (f.routeClass !== 'public' && f.routeClass !== 'promo')) return;
      const key = f.client;
      const monitor = observeOnly(cfg, f);
      // Per client, and per fingerprint across addresses (a poller rotating a few IPs): people
      // sharing a browser build arrive as a Poisson stream, never machine-regular.
      const n = Math.min(8, cfg.min_requests);
      const t = store.arrival(K.clientArrivals(key), f.now);
      const g = store.arrival(K.fingerprintArrivals(f.fingerprint), f.now);
      const clientRegular = t.n >= n && t.cv < cfg.regular_cv;
      const toolRegular = g.n >= n && g.cv < cfg.regular_cv;
      // Once seen, remembered: requests enforced from the gateway cache never reach the rings,
      // so without the mark every cache expiry would cost another `min_requests` to relearn.
      // The mark is the CLIENT's, also when the regular stream was the fingerprint's (each
      // address of a rotating poller is marked as it polls): a fingerprint is a browser build
      // that thousands of people share, and a mark on it let ten regular requests with a popular
      // build's headers challenge everyone on that build for half an hour (issue 11).
      if (clientRegular || toolRegular) store.mark(K.regularClient(key), f.now, REMEMBER_MS);
      if (clientRegular || toolRegular || store.marked(K.regularClient(key), f.now)) {
        out.push(signal('bot.regular_timing', cfg.regular_score, monitor, cfg.cache));
      }
      const r = store.incr(K.requests(key), W, f.now);
      if (r > cfg.scraping_per_key) out.push(signal('bot.scraping_volume', cfg.scraping_score * Math.min(1, r / (2 * cfg.scraping_per_key)), monitor));
      if (f.automationClient && r > 20) out.push(signal('bot.automation_client', 30, monitor));
    },
  };
};
