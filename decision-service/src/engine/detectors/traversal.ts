// Data traversal (BOLA) on object routes: many distinct object ids per principal / client,
// sequential walks through id space, and a high count of not-found / forbidden answers.
// Server-to-server integrations (API keys) read many objects by design: their thresholds are
// `api_key_multiplier` times higher.

import { hash32 } from '../../state/distinct.ts';
import { observeOnly, ramp, signal, type DetectorFactory, type OutcomeContext } from '../signal.ts';
import { subject, traversalKeys as K, type Subject } from '../state-keys.ts';

// Keyed on who is authenticated, not where from: object routes need credentials, and behind
// carrier NAT one IP (even one IP + browser) carries thousands of honest users.
function keys(f: OutcomeContext, apiKeyMultiplier: number): Array<[Subject, string, number]> {
  const k: Array<[Subject, string, number]> = [];
  if (f.principal) k.push([subject.principal(f.principal), 'principal', f.apiKey ? apiKeyMultiplier : 1]);
  if (f.session) k.push([subject.session(f.session), 'session', 1]);
  if (f.device) k.push([subject.device(f.device), 'device', 1]);
  return k;
}

export const traversal: DetectorFactory = ({ policy, store }) => {
  const cfg = policy.doc.detectors.traversal;
  const W = cfg.window_s * 1000;
  return {
    name: 'traversal',
    inspect(f, out) {
      if (!cfg.enabled || f.routeClass !== 'object' || !f.objectId) return;
      const now = f.now;
      const member = hash32(`${f.route.name}/${f.objectId}`);
      let best = 0;
      let bestCode = '';
      for (const [key, name, mult] of keys(f, cfg.api_key_multiplier)) {
        const s1 = ramp(store.addDistinct(K.objects(key), member, W, now), cfg.objects_per_key * mult, cfg.objects_per_key_max * mult);
        if (s1 > best) { best = s1; bestCode = `bola.object_fanout.${name}`; }
        if (f.objectNumber >= 0) {
          const prev = store.swap(K.lastObject(key, f.route.name), f.objectNumber, now, W);
          const step = prev === undefined ? 0 : Math.abs(f.objectNumber - prev);
          const run = step > 0 && step <= 2 ? (store.swap(K.sequentialRun(key), 0, now, W) ?? 0) + 1 : 0;
          store.swap(K.sequentialRun(key), run, now, W);
          const s2 = ramp(run, cfg.sequential_run * mult, cfg.sequential_run_max * mult);
          if (s2 > best) { best = s2; bestCode = `bola.sequential_walk.${name}`; }
        }
        const s3 = ramp(store.count(K.notFound(key), W, now), cfg.not_found_per_key * mult, cfg.not_found_per_key_max * mult);
        if (s3 > best) { best = s3; bestCode = `bola.not_found.${name}`; }
      }
      if (best > 0) out.push(signal(bestCode, cfg.score * best, observeOnly(cfg, f), cfg.cache));
    },
    observes: ['object'],
    observe(o, f) {
      if (!cfg.enabled || !f || f.routeClass !== 'object') return;
      if (o.status !== 404 && o.status !== 403) return;
      for (const [key] of keys(f, cfg.api_key_multiplier)) store.incr(K.notFound(key), W, f.now);
    },
  };
};
