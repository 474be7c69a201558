// Credential stuffing and password spraying on login routes: failures per client key and per
// identifier across keys, one password hash failing for many identifiers, logins for identifiers
// recently enumerated, traffic on deprecated login endpoints, and a global failure spike against
// its own learned baseline. An account under attack gets its logins challenged, not its owner
// blocked: the per-identifier signal is challenge-strength only.

import { hash32 } from '../../state/distinct.ts';
import { isLoginFailure, observeOnly, ramp, signal, type DetectorFactory, type OutcomeContext } from '../signal.ts';
import { credentialStuffingKeys as K, enumerationKeys, subject, type Subject } from '../state-keys.ts';

function clientKeys(f: OutcomeContext): Array<[Subject, string, number]> {
  const keys: Array<[Subject, string, number]> = [[subject.client(f.client), 'client', 1], [subject.ip(f.ip), 'ip', 8], [subject.subnet(f.subnet), 'subnet', 16]];
  if (f.device) keys.push([subject.device(f.device), 'device', 1]);
  if (f.session) keys.push([subject.session(f.session), 'session', 1]);
  return keys;
}

const GLOBAL_WINDOW = 300_000;
const DAY = 86_400_000;

export const credentialStuffing: DetectorFactory = ({ policy, store }) => {
  const cfg = policy.doc.detectors.credential_stuffing;
  const W = cfg.window_s * 1000;
  const isLogin = (f: OutcomeContext) => f.routeClass === 'identity' && f.passwordHash !== '' && f.method === 'POST';
  return {
    name: 'credential_stuffing',
    inspect(f, out) {
      if (!cfg.enabled || !isLogin(f)) return;
      const now = f.now;
      const monitor = observeOnly(cfg, f);
      let best = 0;
      let bestCode = '';
      for (const [key, name, mult] of clientKeys(f)) {
        const s = ramp(store.count(K.failures(key), W, now), cfg.failures_per_key * mult, cfg.failures_per_key_max * mult);
        if (s > best) { best = s; bestCode = `cs.failure_rate.${name}`; }
      }
      // One tool's failures across rotating IPs: the header set survives UA, IP and order rotation.
      const toolAll = store.incr(K.attempts(subject.headerSet(f.headerSet)), W, now);
      const toolFail = store.count(K.failures(subject.headerSet(f.headerSet)), W, now);
      if (toolFail >= 0.5 * toolAll) {
        const s = ramp(toolFail, cfg.failures_per_tool, cfg.failures_per_tool_max);
        if (s > best) { best = s; bestCode = 'cs.failure_rate.tool'; }
      }
      if (best > 0) out.push(signal(bestCode, cfg.score * best, monitor));
      // Spraying: challenge-strength alone, so an owner whose (weak) password is being sprayed
      // is challenged, not blocked; the sprayer's other signals make it a block.
      const known = f.session !== '' || f.device !== '' || store.marked(K.loggedIn(f.client), now);
      const spray = known ? 0 : ramp(store.countDistinct(K.passwordIdentifiers(f.passwordHash), W, now), cfg.identifiers_per_password, cfg.identifiers_per_password_max);
      if (spray > 0) out.push(signal('cs.password_spray', cfg.spray_score, monitor));

      if (f.identifierHash && store.count(K.failures(subject.identifier(f.identifierHash)), W, now) >= cfg.failures_per_identifier && cfg.failures_per_identifier > 0) {
        out.push(signal('cs.failure_rate.identifier', cfg.identifier_score, monitor));
      }
      if (f.identifierHash && !known && store.marked(enumerationKeys.enumerated(f.identifierHash), now)) {
        out.push(signal('cs.enumerated_identifier', cfg.enumerated_identifier_score, monitor));
      }
      if (f.route.deprecated) out.push(signal('cs.deprecated_login', cfg.deprecated_login_score, monitor));
      if (f.automationClient) out.push(signal('cs.automation_client', cfg.automation_score, monitor));
      else if (f.browserMismatch) out.push(signal('cs.header_mismatch', cfg.mismatch_score, monitor));

      const all = store.incr(K.globalAttempts, GLOBAL_WINDOW, now);
      const share = store.count(K.globalFailures, GLOBAL_WINDOW, now) / Math.max(1, all);
      const base = store.swap(K.globalBaseline, 0, now, DAY) ?? 0.15;
      const spike = all >= 20 && share > cfg.global_spike_ratio * Math.max(0.05, base);
      // The baseline learns only outside spikes, slowly, so an attack cannot teach it.
      store.swap(K.globalBaseline, spike || all < 20 ? base : 0.99 * base + 0.01 * share, now, DAY);
      if (!known) {
        out.push(signal('cs.no_precursor', cfg.no_precursor_score, monitor));
        if (spike) out.push(signal('cs.global_failure_spike', cfg.global_spike_score, monitor));
      }
    },
    observes: ['identity'],
    observe(o, f) {
      if (!cfg.enabled || !f || !isLogin(f)) return;
      if (!isLoginFailure(o)) {
        if (o.status >= 200 && o.status < 300) store.mark(K.loggedIn(f.client), f.now, DAY);
        return;
      }
      for (const [key] of clientKeys(f)) store.incr(K.failures(key), W, f.now);
      store.incr(K.failures(subject.headerSet(f.headerSet)), W, f.now);
      if (f.identifierHash) {
        store.incr(K.failures(subject.identifier(f.identifierHash)), W, f.now);
        store.addDistinct(K.passwordIdentifiers(f.passwordHash), hash32(f.identifierHash), W, f.now);
      }
      store.incr(K.globalFailures, GLOBAL_WINDOW, f.now);
    },
  };
};
