// Account enumeration on identity routes (login, register, reset, SMS): many distinct
// identifiers from one client, many "no such account" answers, walks through a block of phone
// numbers across all clients (rotating proxies), and one tool's not-found answers across many
// single-use IPs.

import { hash32 } from '../../state/distinct.ts';
import { isNotFound, observeOnly, ramp, signal, type DetectorFactory, type OutcomeContext } from '../signal.ts';
import { enumerationKeys as K, subject, type Subject } from '../state-keys.ts';

/**
 * Keys for distinct identifiers: one client (IP + fingerprint), device, session. Not the bare IP
 * or subnet: behind carrier NAT thousands of honest users share them.
 */
function fanoutKeys(f: OutcomeContext): Array<[Subject, string, number]> {
  const keys: Array<[Subject, string, number]> = [[subject.client(f.client), 'client', 1]];
  if (f.device) keys.push([subject.device(f.device), 'device', 1]);
  if (f.session) keys.push([subject.session(f.session), 'session', 1]);
  return keys;
}

/** Keys for "no such account" answers: rare for humans, so shared addresses count too (higher bar). */
function clientKeys(f: OutcomeContext): Array<[Subject, string, number]> {
  return [...fanoutKeys(f), [subject.ip(f.ip), 'ip', 4], [subject.subnet(f.subnet), 'subnet', 8]];
}

export const enumeration: DetectorFactory = ({ policy, store }) => {
  const cfg = policy.doc.detectors.enumeration;
  const W = cfg.window_s * 1000;
  return {
    name: 'enumeration',
    inspect(f, out) {
      if (!cfg.enabled || f.routeClass !== 'identity' || !f.identifierHash) return;
      const now = f.now;
      const member = hash32(f.identifierHash);
      const monitor = observeOnly(cfg, f);
      let best = 0;
      let bestCode = '';
      for (const [key, name, mult] of fanoutKeys(f)) {
        const ids = store.addDistinct(K.identifiers(key), member, W, now);
        const s1 = ramp(ids, cfg.identifiers_per_key * mult, cfg.identifiers_per_key_max * mult);
        if (s1 > best) { best = s1; bestCode = `enum.identifier_fanout.${name}`; }
      }
      for (const [key, name, mult] of clientKeys(f)) {
        const nf = store.count(K.notFound(key), W, now);
        const s2 = ramp(nf, cfg.not_found_per_key * mult, cfg.not_found_per_key_max * mult);
        if (s2 > best) { best = s2; bestCode = `enum.not_found.${name}`; }
      }
      // A tool's header set survives User-Agent, IP and header-order rotation.
      const tpTotal = store.incr(K.requests(subject.headerSet(f.headerSet)), W, now);
      const tpNf = store.count(K.notFound(subject.headerSet(f.headerSet)), W, now);
      if (tpNf / Math.max(1, tpTotal) >= 0.5) {
        const s = ramp(tpNf, cfg.not_found_per_toolprint, cfg.not_found_per_toolprint_max);
        if (s > best) { best = s; bestCode = 'enum.not_found.toolprint'; }
      }
      if (f.phoneNumber >= 0) {
        const block = Math.floor(f.phoneNumber / cfg.block_size);
        const numbers = store.addDistinct(K.numberBlock(block), hash32(String(f.phoneNumber)), W, now);
        // A known client (session or device) is far less likely to be the walker.
        const s = ramp(numbers, cfg.numbers_per_block, cfg.numbers_per_block_max) * (f.session || f.device ? 0.5 : 1);
        if (s > best) { best = s; bestCode = 'enum.number_locality'; }
      }
      if (best > 0) {
        out.push(signal(bestCode, cfg.score * best, monitor, cfg.cache));
        store.mark(K.enumerated(f.identifierHash), now, cfg.mark_identifiers_s * 1000);
      }
    },
    observes: ['identity'],
    observe(o, f) {
      if (!cfg.enabled || !f || f.routeClass !== 'identity' || !isNotFound(o)) return;
      for (const [key] of clientKeys(f)) store.incr(K.notFound(key), W, f.now);
      store.incr(K.notFound(subject.headerSet(f.headerSet)), W, f.now);
    },
  };
};
