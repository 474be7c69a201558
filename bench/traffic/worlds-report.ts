// The worlds report (bench/results/detection-worlds.{md,json}): per campaign family its worst and
// median world, humans' worst and median world, the promo inventory bots took, per customer type
// what was stopped — Verdict beside the per-IP limit_req baseline.
//
// Arithmetic, stated once: a family's result in a world is its worst campaign there (latest
// detection; lowest share stopped after detection; "never" detected is worse than any index).
// Across worlds, "worst" is the worst world and "median" the world at rank floor(N/2) from the
// best (the true median for odd N; of the two middle worlds of an even N, the worse one), so
// every reported number is one real world's, and the world is named.

import { FAMILIES, FAMILY_OF, type Family } from './campaigns/index.ts';
import { CUSTOMER_NAMES, customerTable, orderedCustomers, type CampaignScore, type CustomerScore, type GuardScore } from './report.ts';
import type { World } from './worlds.ts';

/** One world's replay: what it drew, and both guards' scores. */
export interface WorldResult {
  seed: number;
  name: string;
  traits: Readonly<Record<string, string>>;
  campaigns: Array<{ id: string; kind: string; family: Family; client: string; about: string }>;
  lines: number;
  /** wall seconds to generate and replay it (both guards), and the CPU seconds that took */
  wall_s: number;
  cpu_s: number;
  verdict: GuardScore;
  baseline: GuardScore;
  /** reasons that fired on the human requests Verdict stopped: reason → requests */
  human_reasons: Record<string, number>;
}

/** A family's result in one world (its worst campaign there). */
export interface FamilyOutcome {
  world: number;
  campaign: string;
  about: string;
  requests: number;
  /** 1-based index of the first stopped request; null: never */
  detected_at: number | null;
  detected_s: number | null;
  /** share of its requests from the first detection on that never got through (0 when never detected) */
  stopped_after: number;
  /** challenged requests it solved its way past */
  passed: number;
}

/** A metric's worst and median world. */
export interface Spread<T> {
  worst: T;
  median: T;
}

export interface FamilyReport {
  worlds: FamilyOutcome[];
  detected_at: Spread<FamilyOutcome>;
  stopped_after: Spread<FamilyOutcome>;
  baseline_detected_at: Spread<FamilyOutcome>;
  baseline_stopped_after: Spread<FamilyOutcome>;
  /** the worst world by detection, then by share stopped after */
  worst_world: FamilyOutcome;
}

/** Humans of one world. */
export interface HumanOutcome {
  world: number;
  requests: number;
  blocked: number;
  challenged: number;
  challenged_share: number;
  /** never got through */
  stopped: number;
  stopped_share: number;
  users_stopped: number;
  proven_challenged: number;
  proven_stopped: number;
}

export interface PromoOutcome {
  world: number;
  inventory: number;
  to_bots: number;
  bot_share: number;
}

export interface WorldsReport {
  policy: string;
  worlds: number[];
  families: Record<Family, FamilyReport>;
  humans: { worlds: HumanOutcome[]; blocked: Spread<HumanOutcome>; challenged_share: Spread<HumanOutcome>; stopped_share: Spread<HumanOutcome>; proven_challenged: Spread<HumanOutcome>; baseline_stopped_share: Spread<HumanOutcome> };
  promo: { worlds: PromoOutcome[]; bot_share: Spread<PromoOutcome>; baseline_bot_share: Spread<PromoOutcome> };
  /** summed over the worlds, and each type's worst world by never-through share */
  customers: Record<string, CustomerScore & { worst_world: number; worst_stopped_share: number }>;
  baseline_customers: Record<string, CustomerScore>;
  /** reasons that fired on stopped human requests, summed over worlds: reason → requests */
  human_reasons: Record<string, number>;
  /** the Done-when bars of issue 14 on the worst world */
  targets: Record<string, boolean>;
  lines: number;
  wall_s: number;
  cpu_s: number;
}

/**
 * Worst and median of `xs` under `worse(a, b) > 0` when a is worse than b. The median is the
 * element at rank floor(N/2) from the best (see the file comment). Ties keep world order.
 */
export function spread<T>(xs: readonly T[], worse: (a: T, b: T) => number): Spread<T> {
  if (xs.length === 0) throw new Error('spread of no worlds');
  const sorted = [...xs].sort((a, b) => worse(a, b));
  return { worst: sorted[sorted.length - 1]!, median: sorted[Math.floor(sorted.length / 2)]! };
}

/** Later detection is worse; never is worst. */
export function laterDetection(a: { detected_at: number | null }, b: { detected_at: number | null }): number {
  const x = a.detected_at ?? Infinity;
  const y = b.detected_at ?? Infinity;
  return x === y ? 0 : x > y ? 1 : -1;
}

/** A lower share stopped after detection is worse. */
export function lessStopped(a: { stopped_after: number }, b: { stopped_after: number }): number {
  return b.stopped_after - a.stopped_after;
}

/** Later detection is worse; at the same detection, less stopped after it. */
export function worseOutcome(a: FamilyOutcome, b: FamilyOutcome): number {
  return laterDetection(a, b) || lessStopped(a, b);
}

function outcome(world: number, c: CampaignScore, about: string): FamilyOutcome {
  return {
    world, campaign: c.id, about, requests: c.requests, detected_at: c.first_detection_at, detected_s: c.first_detection_s,
    stopped_after: c.first_detection_at === null ? 0 : c.stopped_after_detection, passed: c.passed,
  };
}

/** A family's result in one world: the worst of its campaigns there (latest detection, then least stopped). */
export function familyOutcome(world: WorldResult, family: Family, guard: 'verdict' | 'baseline'): FamilyOutcome | undefined {
  const mine = world.campaigns.filter((c) => c.family === family);
  const scores = world[guard].campaigns;
  let worst: FamilyOutcome | undefined;
  for (const c of mine) {
    const s = scores.find((x) => x.id === c.id);
    if (!s) continue;
    const o = outcome(world.seed, s, c.about);
    if (!worst || worseOutcome(o, worst) > 0) worst = o;
  }
  return worst;
}

function humanOutcome(world: number, g: GuardScore): HumanOutcome {
  const h = g.humans;
  return {
    world, requests: h.requests, blocked: h.blocked, challenged: h.challenged, challenged_share: h.challenged / Math.max(1, h.requests),
    stopped: h.stopped, stopped_share: h.stopped / Math.max(1, h.requests), users_stopped: h.users_stopped,
    proven_challenged: g.humans_proven?.challenged ?? 0, proven_stopped: g.humans_proven?.stopped ?? 0,
  };
}

function promoOutcome(world: number, g: GuardScore): PromoOutcome {
  return { world, inventory: g.promo.inventory, to_bots: g.promo.to_bots, bot_share: g.promo.to_bots / Math.max(1, g.promo.inventory) };
}

const by = <T>(f: (x: T) => number) => (a: T, b: T) => f(a) - f(b);

export function aggregate(policy: string, results: readonly WorldResult[]): WorldsReport {
  const humanReasons: Record<string, number> = {};
  for (const w of results) for (const [k, v] of Object.entries(w.human_reasons)) humanReasons[k] = (humanReasons[k] ?? 0) + v;
  const families = {} as Record<Family, FamilyReport>;
  for (const f of FAMILIES) {
    const v = results.map((w) => familyOutcome(w, f, 'verdict')).filter((x): x is FamilyOutcome => x !== undefined);
    const b = results.map((w) => familyOutcome(w, f, 'baseline')).filter((x): x is FamilyOutcome => x !== undefined);
    if (v.length === 0) continue;
    families[f] = { worlds: v, detected_at: spread(v, laterDetection), stopped_after: spread(v, lessStopped), baseline_detected_at: spread(b, laterDetection), baseline_stopped_after: spread(b, lessStopped), worst_world: spread(v, worseOutcome).worst };
  }
  const hv = results.map((w) => humanOutcome(w.seed, w.verdict));
  const hb = results.map((w) => humanOutcome(w.seed, w.baseline));
  const pv = results.map((w) => promoOutcome(w.seed, w.verdict));
  const pb = results.map((w) => promoOutcome(w.seed, w.baseline));
  const customers: WorldsReport['customers'] = {};
  const baselineCustomers: Record<string, CustomerScore> = {};
  for (const w of results) {
    for (const [type, c] of Object.entries(w.verdict.humans_by_customer ?? {})) {
      const t = (customers[type] ??= { requests: 0, blocked: 0, challenged: 0, stopped: 0, users: 0, users_stopped: 0, worst_world: w.seed, worst_stopped_share: -1 });
      for (const k of ['requests', 'blocked', 'challenged', 'stopped', 'users', 'users_stopped'] as const) t[k] += c[k];
      const share = c.stopped / Math.max(1, c.requests);
      if (share > t.worst_stopped_share) {
        t.worst_stopped_share = share;
        t.worst_world = w.seed;
      }
    }
    for (const [type, c] of Object.entries(w.baseline.humans_by_customer ?? {})) {
      const t = (baselineCustomers[type] ??= { requests: 0, blocked: 0, challenged: 0, stopped: 0, users: 0, users_stopped: 0 });
      for (const k of ['requests', 'blocked', 'challenged', 'stopped', 'users', 'users_stopped'] as const) t[k] += c[k];
    }
  }
  const humans = {
    worlds: hv,
    blocked: spread(hv, by((x) => x.blocked)),
    challenged_share: spread(hv, by((x) => x.challenged_share)),
    stopped_share: spread(hv, by((x) => x.stopped_share)),
    proven_challenged: spread(hv, by((x) => x.proven_challenged)),
    baseline_stopped_share: spread(hb, by((x) => x.stopped_share)),
  };
  const promo = { worlds: pv, bot_share: spread(pv, by((x) => x.bot_share)), baseline_bot_share: spread(pb, by((x) => x.bot_share)) };
  const targets: Record<string, boolean> = {};
  for (const f of FAMILIES) {
    const r = families[f];
    if (!r) continue;
    targets[`${f}: detected within 20 requests`] = r.detected_at.worst.detected_at !== null && r.detected_at.worst.detected_at <= 20;
    targets[`${f}: ≥ 95% stopped after detection`] = r.stopped_after.worst.stopped_after >= 0.95;
  }
  targets['humans: 0 blocked'] = humans.blocked.worst.blocked === 0;
  targets['humans: ≤ 0.1% of requests challenged'] = humans.challenged_share.worst.challenged_share <= 0.001;
  targets['proven customers: none challenged'] = humans.proven_challenged.worst.proven_challenged === 0;
  targets['promo: bots < 5% of the inventory'] = promo.bot_share.worst.bot_share < 0.05;
  return {
    policy,
    worlds: results.map((w) => w.seed),
    families,
    humans,
    promo,
    customers: orderedCustomers(customers),
    baseline_customers: orderedCustomers(baselineCustomers),
    human_reasons: Object.fromEntries(Object.entries(humanReasons).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))),
    targets,
    lines: results.reduce((n, w) => n + w.lines, 0),
    wall_s: Math.round(results.reduce((n, w) => n + w.wall_s, 0) * 10) / 10,
    cpu_s: Math.round(results.reduce((n, w) => n + w.cpu_s, 0) * 10) / 10,
  };
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const pct3 = (x: number) => `${(x * 100).toFixed(3)}%`;
const people = (n: number) => `${n} ${n === 1 ? 'person' : 'people'}`;

function det(o: FamilyOutcome): string {
  return o.detected_at === null ? 'never' : `#${o.detected_at}`;
}

function at(o: { world: number }): string {
  return `w${o.world}`;
}

/** The World's result as the report and the tests need it (the campaigns' families from their kinds). */
export function describeCampaigns(w: World): WorldResult['campaigns'] {
  return w.campaigns.map((c) => ({ id: c.id, kind: c.kind, family: FAMILY_OF[c.kind], client: c.client ?? 'script', about: c.about }));
}

export function renderWorldsMarkdown(r: WorldsReport, results: readonly WorldResult[], meta: { from: number; wallS: number; jobs: number; fleet?: boolean }): string {
  const out: string[] = [];
  const n = r.worlds.length;
  out.push(meta.fleet ? '# Detection on random worlds — two instances sharing Redis (traffic split round-robin)' : '# Detection on random worlds', '');
  out.push(`Policy \`${r.policy}\`; worlds ${meta.from}–${meta.from + n - 1} (\`npm run scorecard -- --worlds ${n} --world-seed-from ${meta.from}${meta.fleet ? ' --fleet' : ''}\`); ${r.lines} requests replayed through Verdict and the per-IP \`limit_req\` baseline in ${meta.wallS.toFixed(0)} s wall with ${meta.jobs} processes (${r.cpu_s.toFixed(0)} s of CPU: about ${(r.cpu_s / meta.jobs).toFixed(0)} s on ${meta.jobs} idle cores).`);
  out.push('Each world draws its population and its attackers at random (bench/traffic/worlds.ts). Worlds 1–10 are for tuning; reported tables come from worlds 1001–1020, which nobody tunes to.');
  out.push(`A family's result in a world is its worst campaign there. "worst" = the worst of the ${n} worlds; "median" = the world at rank ⌊N/2⌋ from the best (of two middle worlds, the worse). "detected at" = index of the first stopped request (page loads of disguised bots count); "stopped after" = share of its requests from then on that never got through (blocked, or challenged and not solved). (wN) names the world.`, '');

  out.push('## Campaign families', '');
  out.push('| family | detected at: worst | median | stopped after: worst | median | baseline detected at: worst | baseline stopped after: worst | worst world\'s campaign |');
  out.push('|---|---:|---:|---:|---:|---:|---:|---|');
  for (const f of FAMILIES) {
    const x = r.families[f];
    if (!x) continue;
    const worst = x.worst_world;
    out.push(`| ${f} | ${det(x.detected_at.worst)} (${at(x.detected_at.worst)}) | ${det(x.detected_at.median)} (${at(x.detected_at.median)}) | ${pct(x.stopped_after.worst.stopped_after)} (${at(x.stopped_after.worst)}) | ${pct(x.stopped_after.median.stopped_after)} (${at(x.stopped_after.median)}) | ${det(x.baseline_detected_at.worst)} | ${pct(x.baseline_stopped_after.worst.stopped_after)} | ${at(worst)} \`${worst.campaign}\`: ${worst.about} |`);
  }
  out.push('');

  out.push('## Humans and the promo', '');
  const h = r.humans;
  out.push('| measure | worst | median | baseline worst |');
  out.push('|---|---:|---:|---:|');
  out.push(`| humans blocked (requests) | ${h.blocked.worst.blocked} (${at(h.blocked.worst)}) | ${h.blocked.median.blocked} (${at(h.blocked.median)}) | 0 |`);
  out.push(`| humans challenged (share of requests) | ${pct3(h.challenged_share.worst.challenged_share)} (${at(h.challenged_share.worst)}) | ${pct3(h.challenged_share.median.challenged_share)} (${at(h.challenged_share.median)}) | - |`);
  out.push(`| humans never through (share of requests) | ${pct3(h.stopped_share.worst.stopped_share)} (${at(h.stopped_share.worst)}, ${people(h.stopped_share.worst.users_stopped)}) | ${pct3(h.stopped_share.median.stopped_share)} (${at(h.stopped_share.median)}) | ${pct3(h.baseline_stopped_share.worst.stopped_share)} (${at(h.baseline_stopped_share.worst)}) |`);
  out.push(`| proven customers challenged (requests) | ${h.proven_challenged.worst.proven_challenged} (${at(h.proven_challenged.worst)}) | ${h.proven_challenged.median.proven_challenged} (${at(h.proven_challenged.median)}) | - |`);
  const p = r.promo;
  out.push(`| promo inventory to bots | ${pct(p.bot_share.worst.bot_share)} (${at(p.bot_share.worst)}: ${p.bot_share.worst.to_bots} of ${p.bot_share.worst.inventory}) | ${pct(p.bot_share.median.bot_share)} (${at(p.bot_share.median)}) | ${pct(p.baseline_bot_share.worst.bot_share)} (${at(p.baseline_bot_share.worst)}) |`);
  out.push('');

  out.push('## Humans by customer type (all worlds)', '');
  out.push(...customerTable(r.customers, r.baseline_customers));
  out.push('');
  const worstTypes = Object.entries(r.customers).filter(([, c]) => c.worst_stopped_share > 0).map(([t, c]) => `${CUSTOMER_NAMES[t] ?? t} ${pct3(c.worst_stopped_share)} (${at({ world: c.worst_world })})`);
  if (worstTypes.length > 0) out.push(`Worst world per type, never-through share: ${worstTypes.join('; ')}.`, '');

  const reasons = Object.entries(r.human_reasons).slice(0, 12);
  if (reasons.length > 0) {
    out.push('Reasons on human requests Verdict stopped (all worlds; `npm run explain -- --world N` shows each request\'s key and evidence): ' + reasons.map(([k, v]) => `\`${k}\` ${v}`).join(', ') + '.', '');
  }

  out.push('## Issue 14 bars, on the worst world', '');
  for (const [k, ok] of Object.entries(r.targets)) out.push(`- ${ok ? 'met' : '**not met**'}: ${k}`);
  out.push('');

  out.push('## Per world', '');
  out.push(`| world | requests | humans challenged | humans never through | promo to bots | ${FAMILIES.join(' | ')} |`);
  out.push(`|---|---:|---:|---:|---:|${FAMILIES.map(() => '---').join('|')}|`);
  for (const w of results) {
    const hv = humanOutcome(w.seed, w.verdict);
    const pv = promoOutcome(w.seed, w.verdict);
    const cells = FAMILIES.map((f) => {
      const o = familyOutcome(w, f, 'verdict');
      return o ? `${det(o)} / ${pct(o.stopped_after)}` : '-';
    });
    out.push(`| ${w.seed} | ${w.lines} | ${pct3(hv.challenged_share)} | ${hv.stopped} (${people(hv.users_stopped)}) | ${pct(pv.bot_share)} | ${cells.join(' | ')} |`);
  }
  out.push('', 'Cells: detected at / stopped after.', '');

  out.push('## What each world drew', '');
  for (const w of results) {
    out.push(`- **w${w.seed}**: ${Object.entries(w.traits).map(([k, v]) => `${k} ${v}`).join('; ')}`);
    for (const c of w.campaigns) out.push(`  - \`${c.id}\` (${c.family}): ${c.about}`);
  }
  out.push('');
  return out.join('\n');
}
