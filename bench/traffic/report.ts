// Scoring labelled replay results: per campaign, humans, promo — the scorecard's JSON shape
// (issue 3, kept stable: other tools read it) and its Markdown table.
//
// Challenges (issue 13): a request's `challenged` counts its first verdict, as before (the DESIGN
// targets measure that); a challenged client that solved and got through on the retry is
// `passed`; `stopped` is what never got through (blocked, or challenged and never passed) — for
// people, the lost customers; for campaigns, what their solves did not buy.

import { CUSTOMER_TYPES, customerOf, labelKind, type TrafficLine } from './format.ts';
import type { LineResult } from './replay.ts';

export interface CampaignScore {
  id: string;
  requests: number;
  blocked: number;
  challenged: number;
  /** 1-based index of the campaign's first blocked/challenged request; null if never */
  first_detection_at: number | null;
  /** share of the campaign's requests from the first detection on that were blocked or challenged */
  blocked_after_detection: number;
  /** reason → requests it fired on */
  reasons: Record<string, number>;
  // additions beyond the issue's minimal shape (readers may ignore them)
  allowed: number;
  /** simulated seconds from the campaign's first request to its first detection; null if never */
  first_detection_s: number | null;
  scenario: string;
  /** challenged requests the campaign got through by solving */
  passed: number;
  /** requests that never got through: blocked, or challenged and never passed */
  stopped: number;
  /** share of the requests from the first detection on that never got through */
  stopped_after_detection: number;
  /** proofs of work the campaign paid, their SHA-256 evaluations (2^d each; 0 for no-JS waits) and seconds */
  solves: number;
  hashes: number;
  solve_s: number;
  /** requests by the clearance state they carried (NONE left out) */
  clearance: Record<string, number>;
}

export interface HumanScore {
  requests: number;
  blocked: number;
  challenged: number;
  users: number;
  /** users with at least one blocked or challenged request */
  users_affected: number;
  /** challenged requests the person got past (solved, then let through) */
  challenged_passed: number;
  /** requests that never got through: blocked, or challenged and never passed */
  stopped: number;
  /** users with at least one stopped request */
  users_stopped: number;
  /** challenges people solved, and the seconds they spent on them */
  solves: number;
  solve_s: number;
  /** stopped requests by cause: "blocked", or "<client kind>: <why>" (challenge-clients.ts StopWhy) */
  stopped_by: Record<string, number>;
}

/** One customer type's requests (the per-customer-type table): what Verdict did to them. */
export interface CustomerScore {
  requests: number;
  blocked: number;
  challenged: number;
  /** never got through: blocked, or challenged and never passed */
  stopped: number;
  users: number;
  users_stopped: number;
}

/**
 * Requests of proven people: after their successful login, or carrying a session from before the
 * traffic starts, or a valid clearance. The issue's bar: none of them challenged.
 */
export interface ProvenScore {
  requests: number;
  blocked: number;
  challenged: number;
  stopped: number;
  users_affected: number;
}

export interface PromoScore {
  inventory: number;
  to_bots: number;
  to_humans: number;
}

export interface GuardScore {
  campaigns: CampaignScore[];
  humans: HumanScore;
  promo: PromoScore;
  /** the humans of each scenario (addition: which world hurts people) */
  humans_by_scenario: Record<string, HumanScore>;
  /** humans by customer type (format.ts CUSTOMER_TYPES; "unknown" for lines that say none) */
  humans_by_customer: Record<string, CustomerScore>;
  humans_proven: ProvenScore;
}

export interface Scorecard extends GuardScore {
  policy: string;
  baseline: GuardScore;
}

/** Accumulates scores over several scenarios' replays of one guard. */
export class ScoreBuilder {
  readonly campaigns: CampaignScore[] = [];
  readonly humans: HumanScore = noHumans();
  readonly promo: PromoScore = { inventory: 0, to_bots: 0, to_humans: 0 };
  readonly humansByScenario: Record<string, HumanScore> = {};
  readonly byCustomer: Record<string, CustomerScore> = {};
  readonly proven: ProvenScore = { requests: 0, blocked: 0, challenged: 0, stopped: 0, users_affected: 0 };

  /** `promoInventory`: count this scenario's coupons in the promo score (undefined: do not). */
  add(scenario: string, lines: readonly TrafficLine[], results: readonly LineResult[], promoInventory?: number): void {
    const byCampaign = new Map<string, { idx: number[] }>();
    const users = new Set<string>();
    const affected = new Set<string>();
    const lost = new Set<string>();
    const h = noHumans();
    const customerUsers = new Map<string, Set<string>>();
    const customerLost = new Map<string, Set<string>>();
    const provenPeople = new Set<string>();
    const provenAffected = new Set<string>();
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      const r = results[i]!;
      const kind = labelKind(line.label);
      const stopped = r.action === 'BLOCK' || r.action === 'CHALLENGE';
      if (kind === 'human') {
        const who = line.label!;
        const type = customerOf(line) ?? 'unknown';
        const c = (this.byCustomer[type] ??= { requests: 0, blocked: 0, challenged: 0, stopped: 0, users: 0, users_stopped: 0 });
        c.requests++;
        if (r.action === 'BLOCK') c.blocked++;
        if (r.action === 'CHALLENGE') c.challenged++;
        setOf(customerUsers, type).add(who);
        if (neverThrough(r)) {
          c.stopped++;
          setOf(customerLost, type).add(who);
        }
        if (line.sim?.token_user || r.clearance === 'VALID') provenPeople.add(who);
        if (provenPeople.has(who)) {
          this.proven.requests++;
          if (r.action === 'BLOCK') this.proven.blocked++;
          if (r.action === 'CHALLENGE') this.proven.challenged++;
          if (neverThrough(r)) this.proven.stopped++;
          if (stopped) provenAffected.add(who);
        }
        // a successful login proves the person from the next request on
        if (line.sim?.issues_token && r.status === 200) provenPeople.add(who);
        h.requests++;
        users.add(line.label!);
        if (r.action === 'BLOCK') h.blocked++;
        if (r.action === 'CHALLENGE') h.challenged++;
        if (stopped) affected.add(line.label!);
        if (r.action === 'CHALLENGE' && r.passed) h.challenged_passed++;
        h.solves += r.solves;
        h.solve_s += r.solveS;
        if (neverThrough(r)) {
          h.stopped++;
          lost.add(line.label!);
          const cause = r.finalAction === 'BLOCK' ? 'blocked' : `${r.client ?? 'unknown'}: ${r.why ?? 'not solved'}`;
          h.stopped_by[cause] = (h.stopped_by[cause] ?? 0) + 1;
        }
      } else if (kind === 'attack') {
        const id = line.label!.slice(7);
        let c = byCampaign.get(id);
        if (!c) byCampaign.set(id, (c = { idx: [] }));
        c.idx.push(i);
      }
      if (promoInventory !== undefined && line.method === 'POST' && line.path === '/api/promo/claim' && r.status === 200) {
        if (kind === 'attack') this.promo.to_bots++;
        else if (kind === 'human') this.promo.to_humans++;
      }
    }
    for (const [type, set] of customerUsers) this.byCustomer[type]!.users += set.size;
    for (const [type, set] of customerLost) this.byCustomer[type]!.users_stopped += set.size;
    this.proven.users_affected += provenAffected.size;
    h.users = users.size;
    h.users_affected = affected.size;
    h.users_stopped = lost.size;
    h.solve_s = round1(h.solve_s);
    this.humansByScenario[scenario] = h;
    addHumans(this.humans, h);
    if (promoInventory !== undefined) this.promo.inventory += promoInventory;

    for (const [id, { idx }] of byCampaign) {
      const s: CampaignScore = {
        id, requests: idx.length, blocked: 0, challenged: 0, first_detection_at: null, blocked_after_detection: 0, reasons: {}, allowed: 0, first_detection_s: null, scenario,
        passed: 0, stopped: 0, stopped_after_detection: 0, solves: 0, hashes: 0, solve_s: 0, clearance: {},
      };
      let after = 0;
      let stoppedAfter = 0;
      let lostAfter = 0;
      for (let k = 0; k < idx.length; k++) {
        const r = results[idx[k]!]!;
        const stopped = r.action === 'BLOCK' || r.action === 'CHALLENGE';
        if (r.action === 'BLOCK') s.blocked++;
        else if (r.action === 'CHALLENGE') s.challenged++;
        else s.allowed++;
        if (r.action === 'CHALLENGE' && r.passed) s.passed++;
        const lost = neverThrough(r);
        if (lost) s.stopped++;
        s.solves += r.solves;
        s.hashes += r.hashes;
        s.solve_s += r.solveS;
        if (r.clearance !== 'NONE') s.clearance[r.clearance] = (s.clearance[r.clearance] ?? 0) + 1;
        for (const reason of r.reasons) s.reasons[reason] = (s.reasons[reason] ?? 0) + 1;
        if (stopped && s.first_detection_at === null) {
          s.first_detection_at = k + 1;
          s.first_detection_s = Math.round((lines[idx[k]!]!.ts - lines[idx[0]!]!.ts) / 1000);
        }
        if (s.first_detection_at !== null) {
          after++;
          if (stopped) stoppedAfter++;
          if (lost) lostAfter++;
        }
      }
      s.blocked_after_detection = after > 0 ? round4(stoppedAfter / after) : 0;
      s.stopped_after_detection = after > 0 ? round4(lostAfter / after) : 0;
      s.solve_s = round1(s.solve_s);
      this.campaigns.push(s);
    }
  }

  result(): GuardScore {
    return { campaigns: this.campaigns, humans: this.humans, promo: this.promo, humans_by_scenario: this.humansByScenario, humans_by_customer: orderedCustomers(this.byCustomer), humans_proven: this.proven };
  }
}

function setOf(m: Map<string, Set<string>>, k: string): Set<string> {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  return s;
}

/** The table's order: format.ts CUSTOMER_TYPES, then anything else (lines that name no type). */
export function orderedCustomers<T>(m: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k of CUSTOMER_TYPES) if (m[k] !== undefined) out[k] = m[k];
  for (const k of Object.keys(m).sort()) if (out[k] === undefined) out[k] = m[k]!;
  return out;
}

/** The table's names for customer types. */
export const CUSTOMER_NAMES: Readonly<Record<string, string>> = { home: 'home', app: 'app', office: 'office NAT', carrier: 'carrier NAT', vpn: 'VPN', partner: 'partner', monitor: 'monitors', unknown: 'not annotated' };

/** Markdown rows of the per-customer-type table: Verdict beside the baseline. */
export function customerTable(v: Record<string, CustomerScore>, b: Record<string, CustomerScore> | undefined): string[] {
  const out: string[] = [];
  const share = (n: number, of: number) => `${((100 * n) / Math.max(1, of)).toFixed(3)}%`;
  out.push('| customer type | requests | users | blocked | challenged | challenged share | never through | never-through share | users stopped | baseline never through |');
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const [type, c] of Object.entries(orderedCustomers(v))) {
    const bc = b?.[type];
    out.push(`| ${CUSTOMER_NAMES[type] ?? type} | ${c.requests} | ${c.users} | ${c.blocked} | ${c.challenged} | ${share(c.challenged, c.requests)} | ${c.stopped} | ${share(c.stopped, c.requests)} | ${c.users_stopped} | ${bc ? `${bc.stopped} (${share(bc.stopped, bc.requests)})` : '-'} |`);
  }
  return out;
}

function noHumans(): HumanScore {
  return { requests: 0, blocked: 0, challenged: 0, users: 0, users_affected: 0, challenged_passed: 0, stopped: 0, users_stopped: 0, solves: 0, solve_s: 0, stopped_by: {} };
}

function addHumans(to: HumanScore, h: HumanScore): void {
  for (const k of ['requests', 'blocked', 'challenged', 'users', 'users_affected', 'challenged_passed', 'stopped', 'users_stopped', 'solves'] as const) to[k] += h[k];
  to.solve_s = round1(to.solve_s + h.solve_s);
  for (const [cause, n] of Object.entries(h.stopped_by)) to.stopped_by[cause] = (to.stopped_by[cause] ?? 0) + n;
}

/** Never got through: blocked, or challenged and never passed. */
function neverThrough(r: LineResult): boolean {
  return r.finalAction === 'BLOCK' || r.finalAction === 'CHALLENGE';
}

function round4(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

function detect(c: CampaignScore | undefined): string {
  if (!c || c.first_detection_at === null) return 'never';
  return `#${c.first_detection_at} (${c.first_detection_s}s)`;
}

function stoppedShare(c: CampaignScore | undefined): string {
  if (!c) return '-';
  return pct((c.blocked + c.challenged) / Math.max(1, c.requests));
}

function topReasons(c: CampaignScore): string {
  const r = Object.entries(c.reasons).sort((a, b) => b[1] - a[1]).slice(0, 3);
  return r.length === 0 ? '' : r.map(([k, v]) => `${k} ${v}`).join(', ');
}

function neverShare(c: CampaignScore): string {
  return pct(c.stopped / Math.max(1, c.requests));
}

function passedShare(c: CampaignScore): string {
  return c.passed === 0 ? '-' : pct(c.passed / Math.max(1, c.requests));
}

/** Solves paid and their SHA-256 evaluations, e.g. "412 (2.7e7)". */
function solvesPaid(c: { solves: number; hashes: number }): string {
  return c.solves === 0 ? '-' : `${c.solves} (${c.hashes === 0 ? '0' : c.hashes.toExponential(1).replace('e+', 'e')})`;
}

/** The side-by-side Markdown table (Verdict vs per-IP rate limit). */
export function renderMarkdown(card: Scorecard, meta: { seed: number; scenarios: string[]; wallS: number; lines: number }): string {
  const base = new Map(card.baseline.campaigns.map((c) => [`${c.scenario}/${c.id}`, c]));
  const out: string[] = [];
  out.push('# Detection scorecard', '');
  out.push(`Policy \`${card.policy}\`; scenarios ${meta.scenarios.map((s) => `\`${s}\``).join(', ')}; seed ${meta.seed}; ${meta.lines} requests replayed in ${meta.wallS.toFixed(1)} s.`);
  out.push('Verdict = the engine behind the modeled Lua gateway (verdict cache, inline/async locations, clearance cookie, cleared requests not waited on); baseline = per-IP nginx `limit_req` (bench/traffic/baseline.ts). "stopped" = blocked or challenged (the DESIGN targets\' measure); "detected at" = the campaign\'s first stopped request (#index, simulated seconds after its start); "after" = share stopped from then on.');
  out.push('Challenges (bench/traffic/challenge-clients.ts): browsers solve after their solve time (old ones only through the no-JS fallback), app users only with a solver build, scripts never; bots that drive browsers or carry the solver solve, paying 2^d SHA-256 per solve. "solved past" = challenged, then solved and let through; "never through" = blocked, or challenged and never passed; "solves paid" = proofs of work (their SHA-256 evaluations).', '');
  out.push('| scenario | campaign | requests | Verdict stopped | Verdict detected at | Verdict after | solved past | never through | solves paid | baseline stopped | baseline detected at | baseline after | Verdict reasons |');
  out.push('|---|---|---:|---:|---|---:|---:|---:|---:|---:|---|---:|---|');
  for (const c of card.campaigns) {
    const b = base.get(`${c.scenario}/${c.id}`);
    out.push(`| ${c.scenario} | ${c.id} | ${c.requests} | ${stoppedShare(c)} | ${detect(c)} | ${pct(c.blocked_after_detection)} | ${passedShare(c)} | ${neverShare(c)} | ${solvesPaid(c)} | ${stoppedShare(b)} | ${detect(b)} | ${b ? pct(b.blocked_after_detection) : '-'} | ${topReasons(c)} |`);
  }
  out.push('');
  const h = card.humans;
  const bh = card.baseline.humans;
  const share = (n: number, of: number) => pct(n / Math.max(1, of));
  const precise = (n: number, of: number) => `${((100 * n) / Math.max(1, of)).toFixed(3)}%`;
  out.push('"challenged share" is the DESIGN target (at most 0.1% of human requests challenged); "stopped" = never got through (blocked, or challenged and never passed): the lost customers.', '');
  out.push('| humans | requests | blocked | challenged | challenged share | challenged, passed | stopped | stopped share | users | users affected | users stopped | solves | seconds solving |');
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const [name, x] of [['Verdict', h], ['baseline', bh]] as const) {
    out.push(`| ${name} | ${x.requests} | ${x.blocked} | ${x.challenged} | ${precise(x.challenged, x.requests)} | ${x.challenged_passed} | ${x.stopped} | ${share(x.stopped, x.requests)} | ${x.users} | ${x.users_affected} | ${x.users_stopped} | ${x.solves} | ${x.solve_s.toFixed(1)} |`);
  }
  const causes = (x: HumanScore) => Object.entries(x.stopped_by).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([k, v]) => `${k} ${v}`).join(', ');
  const byScenario = Object.entries(card.humans_by_scenario ?? {});
  if (byScenario.length > 1) {
    out.push('', '| Verdict, humans per scenario | requests | challenged | challenged share | challenged, passed | stopped | stopped share | users stopped | stopped by |');
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|---|');
    for (const [name, x] of byScenario) {
      out.push(`| ${name} | ${x.requests} | ${x.challenged} | ${precise(x.challenged, x.requests)} | ${x.challenged_passed} | ${x.stopped} | ${share(x.stopped, x.requests)} | ${x.users_stopped} | ${causes(x)} |`);
    }
  } else if (h.stopped > 0) out.push('', `Humans stopped by Verdict, by cause: ${causes(h)}.`);
  if (card.humans_by_customer && Object.keys(card.humans_by_customer).length > 0) {
    out.push('', 'Humans by customer type (where and how they reach the shop; "never through" = blocked, or challenged and never passed):', '');
    out.push(...customerTable(card.humans_by_customer, card.baseline.humans_by_customer));
  }
  if (card.humans_proven) {
    const pv = card.humans_proven;
    out.push('', `Proven customers (requests after their own successful login, or with a session or a valid clearance): ${pv.requests} requests, ${pv.blocked} blocked, ${pv.challenged} challenged, ${pv.stopped} never through; ${pv.users_affected} ${pv.users_affected === 1 ? 'person' : 'people'} affected.`);
  }
  out.push('');
  const p = card.promo;
  const bp = card.baseline.promo;
  out.push('| promo | inventory | to bots | to humans | left |');
  out.push('|---|---:|---:|---:|---:|');
  out.push(`| Verdict | ${p.inventory} | ${p.to_bots} (${pct(p.to_bots / Math.max(1, p.inventory))}) | ${p.to_humans} | ${p.inventory - p.to_bots - p.to_humans} |`);
  out.push(`| baseline | ${bp.inventory} | ${bp.to_bots} (${pct(bp.to_bots / Math.max(1, bp.inventory))}) | ${bp.to_humans} | ${bp.inventory - bp.to_bots - bp.to_humans} |`);
  out.push('');
  return out.join('\n');
}
