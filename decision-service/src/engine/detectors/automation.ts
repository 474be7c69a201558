// Generic bot signals on public pages and promo reads (GET): machine-regular request timing from one client and
// scraping volume. Requests with a principal (API keys, partners) are exempt: server-to-server
// integrations are regular by design.

import { hash32 } from '../../state/distinct.ts';
import { observeOnly, signal, type DetectorFactory } from '../signal.ts';
import { automationKeys as K } from '../state-keys.ts';

/** Gaps the store's arrival ring holds (store.ts: 9 arrivals): `min_requests` above it means a full ring. */
const RING_GAPS = 8;

export const automation: DetectorFactory = ({ policy, store }) => {
  const cfg = policy.doc.detectors.automation;
  const W = cfg.scraping_window_s * 1000;
  const remember = cfg.remember_s * 1000;
  const scrapingMax = cfg.scraping_per_key_max ?? 2 * cfg.scraping_per_key;
  return {
    name: 'automation',
    inspect(f, out) {
      if (!cfg.enabled || f.principal || f.req.method !== 'GET' || (f.routeClass !== 'public' && f.routeClass !== 'promo')) return;
      const key = f.client;
      const monitor = observeOnly(cfg, f);
      // Per client, and per fingerprint across addresses (a poller rotating a few IPs): people
      // sharing a browser build arrive as a Poisson stream, never machine-regular.
      const n = Math.min(RING_GAPS, cfg.min_requests);
      const t = store.arrival(K.clientArrivals(key), f.now);
      const g = store.arrival(K.fingerprintArrivals(f.fingerprint), f.now);
      // An uptime check is machine-regular too, but each of its few fixed addresses calls slowly:
      // a client's own regular stream with gaps of at least `monitor_min_gap_s`, or a build's
      // regular stream from at most `monitor_max_addresses` addresses that each call that
      // seldom, is not evidence (a rotating poller's stream comes from many addresses).
      // (An address a rotating poller used once has no gaps of its own to show.)
      const slowMs = cfg.monitor_min_gap_s * 1000;
      const slowClient = slowMs > 0 && t.n >= 2 && t.meanMs >= slowMs;
      const clientRegular = t.n >= n && t.cv < cfg.regular_cv && !slowClient;
      let toolRegular = g.n >= n && g.cv < cfg.regular_cv;
      if (toolRegular && slowClient && store.addDistinct(K.regularAddresses(f.fingerprint), hash32(f.ip), W, f.now) <= cfg.monitor_max_addresses) toolRegular = false;
      // Once seen, remembered: requests enforced from the gateway cache never reach the rings,
      // so without the mark every cache expiry would cost another `min_requests` to relearn.
      // The marks are the CLIENT's, never the fingerprint's: a fingerprint is a browser build that
      // thousands of people share (a mark on it let ten regular requests with a popular build's
      // headers challenge everyone on that build for half an hour, issue 11).
      // A client seen within the build's stream (each address of a rotating poller) is marked
      // apart: that evidence is the build's (proven.ts: it acts, and is cached on the address, only
      // where no proven clients share the build; elsewhere only next to the client's own evidence).
      // A marked client that keeps coming stays marked: while the gateway answers it from the
      // cache, the pace the service sees is the cache's TTL, which would pass for an uptime check's.
      // (An uptime check is never marked: it is slow from its first checks.)
      if (clientRegular || store.marked(K.regularClient(key), f.now)) {
        store.mark(K.regularClient(key), f.now, remember);
        out.push(signal('bot.regular_timing', cfg.regular_score, monitor, cfg.cache, 'client'));
      } else if (toolRegular || store.marked(K.regularByBuild(key), f.now)) {
        store.mark(K.regularByBuild(key), f.now, remember);
        out.push(signal('bot.regular_timing', cfg.regular_score, monitor, cfg.cache, 'fingerprint'));
      }
      const r = store.incr(K.requests(key), W, f.now);
      if (r > cfg.scraping_per_key) out.push(signal('bot.scraping_volume', cfg.scraping_score * Math.min(1, r / Math.max(1, scrapingMax)), monitor, undefined, 'client', undefined, { count: r, threshold: cfg.scraping_per_key }));
      if (f.automationClient && r > cfg.automation_client_after) out.push(signal('bot.automation_client', cfg.automation_client_score, monitor));
    },
  };
};
