// Scoring labelled replay results: per campaign, humans, promo — the scorecard's JSON shape
// (issue 3, kept stable: other tools read it) and its Markdown table.

import { labelKind, type TrafficLine } from './format.ts';
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
}

export interface HumanScore {
  requests: number;
  blocked: number;
  challenged: number;
  users: number;
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
}

export interface Scorecard extends GuardScore {
  policy: string;
  baseline: GuardScore;
}

/** Accumulates scores over several scenarios' replays of one guard. */
export class ScoreBuilder {
  readonly campaigns: CampaignScore[] = [];
  readonly humans: HumanScore = { requests: 0, blocked: 0, challenged: 0, users: 0, users_affected: 0 };
  readonly promo: PromoScore = { inventory: 0, to_bots: 0, to_humans: 0 };

  /** `promoInventory`: count this scenario's coupons in the promo score (undefined: do not). */
  add(scenario: string, lines: readonly TrafficLine[], results: readonly LineResult[], promoInventory?: number): void {
    const byCampaign = new Map<string, { idx: number[] }>();
    const users = new Set<string>();
    const affected = new Set<string>();
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      const r = results[i]!;
      const kind = labelKind(line.label);
      const stopped = r.action === 'BLOCK' || r.action === 'CHALLENGE';
      if (kind === 'human') {
        const h = this.humans;
        h.requests++;
        users.add(line.label!);
        if (r.action === 'BLOCK') h.blocked++;
        if (r.action === 'CHALLENGE') h.challenged++;
        if (stopped) affected.add(line.label!);
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
    this.humans.users += users.size;
    this.humans.users_affected += affected.size;
    if (promoInventory !== undefined) this.promo.inventory += promoInventory;

    for (const [id, { idx }] of byCampaign) {
      const s: CampaignScore = { id, requests: idx.length, blocked: 0, challenged: 0, first_detection_at: null, blocked_after_detection: 0, reasons: {}, allowed: 0, first_detection_s: null, scenario };
      let after = 0;
      let stoppedAfter = 0;
      for (let k = 0; k < idx.length; k++) {
        const r = results[idx[k]!]!;
        const stopped = r.action === 'BLOCK' || r.action === 'CHALLENGE';
        if (r.action === 'BLOCK') s.blocked++;
        else if (r.action === 'CHALLENGE') s.challenged++;
        else s.allowed++;
        for (const reason of r.reasons) s.reasons[reason] = (s.reasons[reason] ?? 0) + 1;
        if (stopped && s.first_detection_at === null) {
          s.first_detection_at = k + 1;
          s.first_detection_s = Math.round((lines[idx[k]!]!.ts - lines[idx[0]!]!.ts) / 1000);
        }
        if (s.first_detection_at !== null) {
          after++;
          if (stopped) stoppedAfter++;
        }
      }
      s.blocked_after_detection = after > 0 ? round4(stoppedAfter / after) : 0;
      this.campaigns.push(s);
    }
  }

  result(): GuardScore {
    return { campaigns: this.campaigns, humans: this.humans, promo: this.promo };
  }
}

function round4(x: number): number {
  return Math.round(x * 10_000) / 10_000;
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

/** The side-by-side Markdown table (Verdict vs per-IP rate limit). */
export function renderMarkdown(card: Scorecard, meta: { seed: number; scenarios: string[]; wallS: number; lines: number }): string {
  const base = new Map(card.baseline.campaigns.map((c) => [`${c.scenario}/${c.id}`, c]));
  const out: string[] = [];
  out.push('# Detection scorecard', '');
  out.push(`Policy \`${card.policy}\`; scenarios ${meta.scenarios.map((s) => `\`${s}\``).join(', ')}; seed ${meta.seed}; ${meta.lines} requests replayed in ${meta.wallS.toFixed(1)} s.`);
  out.push('Verdict = the engine behind the modeled Lua gateway (verdict cache, inline/async locations); baseline = per-IP nginx `limit_req` (bench/traffic/baseline.ts). "stopped" = blocked or challenged; "detected at" = the campaign\'s first stopped request (#index, simulated seconds after its start); "after" = share stopped from then on.', '');
  out.push('| scenario | campaign | requests | Verdict stopped | Verdict detected at | Verdict after | baseline stopped | baseline detected at | baseline after | Verdict reasons |');
  out.push('|---|---|---:|---:|---|---:|---:|---|---:|---|');
  for (const c of card.campaigns) {
    const b = base.get(`${c.scenario}/${c.id}`);
    out.push(`| ${c.scenario} | ${c.id} | ${c.requests} | ${stoppedShare(c)} | ${detect(c)} | ${pct(c.blocked_after_detection)} | ${stoppedShare(b)} | ${detect(b)} | ${b ? pct(b.blocked_after_detection) : '-'} | ${topReasons(c)} |`);
  }
  out.push('');
  const h = card.humans;
  const bh = card.baseline.humans;
  out.push('| humans | requests | blocked | challenged | stopped share | users | users affected |');
  out.push('|---|---:|---:|---:|---:|---:|---:|');
  out.push(`| Verdict | ${h.requests} | ${h.blocked} | ${h.challenged} | ${pct((h.blocked + h.challenged) / Math.max(1, h.requests))} | ${h.users} | ${h.users_affected} |`);
  out.push(`| baseline | ${bh.requests} | ${bh.blocked} | ${bh.challenged} | ${pct((bh.blocked + bh.challenged) / Math.max(1, bh.requests))} | ${bh.users} | ${bh.users_affected} |`);
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
