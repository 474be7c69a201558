// Issue 14, point 6: the numbers that sat in detector code are policy knobs now, and their
// defaults are the values the code had, so moving them changed no decision.

import t from 'tap';
import { policy } from '../../helpers/policy.ts';

t.test('defaults of the knobs moved out of detector code equal the old constants', async (t) => {
  const d = policy().doc.detectors;
  t.equal(d.sensitive_path.cache_window_s, 600, 'sensitive-path.ts WINDOW_MS');
  t.equal(d.automation.remember_s, 1800, 'automation.ts REMEMBER_MS');
  t.equal(d.automation.automation_client_after, 20, 'automation.ts: r > 20');
  t.equal(d.automation.automation_client_score, 30, 'automation.ts: bot.automation_client 30');
  t.equal(d.automation.scraping_per_key_max, undefined, 'automation.ts: 2 × scraping_per_key when absent');
  t.equal(d.promo_abuse.precursor_s, 1800, 'promo-abuse.ts PRECURSOR_TTL');
  t.equal(d.promo_abuse.fresh_account_s, 3600, 'promo-abuse.ts FRESH_TTL: proven.young_account_s');
  t.equal(d.promo_abuse.precursor_pattern, 'promo', 'promo-abuse.ts /promo/i');
  t.equal(d.promo_abuse.regular_min_claims, 8, 'promo-abuse.ts t.n >= 8: a full ring of gaps');
  t.equal(d.promo_abuse.regular_cv, 0.15, 'promo-abuse.ts t.cv < 0.15');
  t.equal(d.credential_stuffing.ip_multiplier, 8);
  t.equal(d.credential_stuffing.subnet_multiplier, 16);
  t.equal(d.credential_stuffing.login_memory_s, 86_400, 'credential-stuffing.ts DAY');
  t.equal(d.credential_stuffing.rate_model.window_s, 300, 'credential-stuffing.ts GLOBAL_WINDOW');
  t.equal(d.credential_stuffing.rate_model.min_requests, 20, 'credential-stuffing.ts all >= 20');
  t.equal(d.credential_stuffing.rate_model.baseline, 0.15, 'credential-stuffing.ts ?? 0.15');
  t.equal(d.credential_stuffing.rate_model.baseline_floor, 0.05, 'credential-stuffing.ts Math.max(0.05, base)');
  t.equal(d.credential_stuffing.rate_model.remember_s, 86_400, 'credential-stuffing.ts baseline TTL DAY');
  t.equal(d.enumeration.ip_multiplier, 4);
  t.equal(d.enumeration.subnet_multiplier, 8);
  t.equal(d.enumeration.known_client_factor, 0.5, 'enumeration.ts: × 0.5 with a session or device');
  t.equal(d.traversal.sequential_step, 2, 'traversal.ts: step <= 2');
});

t.test('the new knobs validate their ranges', async (t) => {
  t.throws(() => policy({ detectors: { credential_stuffing: { rate_model: { prior_weight: 1 } } } }), /prior_weight/);
  t.throws(() => policy({ detectors: { enumeration: { rate_model: { p_value: 0 } } } }), /p_value/);
  t.throws(() => policy({ detectors: { promo_abuse: { regular_min_claims: 9 } } }), /regular_min_claims/);
  t.throws(() => policy({ detectors: { provenance: { remember_s: 10 } } }), /remember_s/);
  t.doesNotThrow(() => policy({ detectors: { traversal: { young_surge_ratio: 0 }, enumeration: { unknown_surge_ratio: 0 } } }), '0 turns the surges off');
});
