// `npm run replay -- <file.jsonl> [--policy FILE] [--json OUT] [--shop] [--app-solver-share X] [--no-frontend-solver]`
// Replays a traffic file through the decision engine (behind the modeled gateway) on a virtual
// clock and reports what the policy would have done: counts by action, reason, route and the
// top keys. Outcomes use each line's `status` (your own logs), or with --shop the in-process demo
// shop's answers (simulator files). Labelled files also get the detection scores.
// Challenged clients are modeled (challenge-clients.ts): a line's sim.client when the file has
// it, else by label and User-Agent (browsers solve; other human and unlabelled clients solve for
// --app-solver-share of them, default 0; attack lines with a browser-like UA solve, others not).

import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from '../../scripts/lib/nginx.ts';
import { ChallengeClients } from './challenge-clients.ts';
import { parseTrafficText, type TrafficLine } from './format.ts';
import { ScoreBuilder, type GuardScore } from './report.ts';
import { fileUpstream, loadPolicy, replay, ShopUpstream, sortByTime, VerdictGuard, type LineResult } from './replay.ts';

export interface ReplaySummary {
  policy: string;
  requests: number;
  from_ms: number;
  to_ms: number;
  actions: Record<string, number>;
  sources: Record<string, number>;
  reasons: Record<string, number>;
  routes: Record<string, Record<string, number>>;
  top_ips: Array<{ ip: string; requests: number; stopped: number }>;
  top_subnets: Array<{ subnet: string; requests: number; stopped: number }>;
  labelled?: GuardScore;
  /** requests by the clearance state they carried (NONE left out) */
  clearance: Record<string, number>;
  /** what challenged clients did: passed = solved and let through; stopped = never got through */
  challenges: {
    challenged: number;
    passed: number;
    stopped: number;
    solves: number;
    hashes: number;
    /** by client kind (challenge-clients.ts) */
    by_client: Record<string, { challenged: number; passed: number; solves: number }>;
  };
}

function bump(m: Record<string, number>, k: string, n = 1): void {
  m[k] = (m[k] ?? 0) + n;
}

export function summarize(policy: string, lines: readonly TrafficLine[], results: readonly LineResult[]): ReplaySummary {
  const s: ReplaySummary = {
    policy, requests: lines.length, from_ms: lines[0]?.ts ?? 0, to_ms: lines[lines.length - 1]?.ts ?? 0, actions: {}, sources: {}, reasons: {}, routes: {}, top_ips: [], top_subnets: [],
    clearance: {}, challenges: { challenged: 0, passed: 0, stopped: 0, solves: 0, hashes: 0, by_client: {} },
  };
  const ips = new Map<string, { requests: number; stopped: number }>();
  const subnets = new Map<string, { requests: number; stopped: number }>();
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const r = results[i]!;
    bump(s.actions, r.action);
    bump(s.sources, r.source);
    if (r.clearance !== 'NONE') bump(s.clearance, r.clearance);
    if (r.action === 'CHALLENGE') {
      const ch = s.challenges;
      const by = (ch.by_client[r.client ?? 'unknown'] ??= { challenged: 0, passed: 0, solves: 0 });
      ch.challenged++;
      by.challenged++;
      if (r.passed) {
        ch.passed++;
        by.passed++;
      }
      if (r.finalAction === 'CHALLENGE' || r.finalAction === 'BLOCK') ch.stopped++;
      by.solves += r.solves;
    }
    s.challenges.solves += r.solves;
    s.challenges.hashes += r.hashes;
    for (const reason of r.reasons) bump(s.reasons, reason);
    const route = `${l.method} ${l.path.replace(/\/\d+(?=\/|$)/g, '/{id}')}`;
    bump((s.routes[route] ??= {}), r.action);
    const stopped = r.action === 'BLOCK' || r.action === 'CHALLENGE' ? 1 : 0;
    const ipE = ips.get(l.ip) ?? { requests: 0, stopped: 0 };
    ipE.requests++;
    ipE.stopped += stopped;
    ips.set(l.ip, ipE);
    const sub = l.ip.includes('.') ? `${l.ip.split('.').slice(0, 3).join('.')}.0/24` : l.ip;
    const sE = subnets.get(sub) ?? { requests: 0, stopped: 0 };
    sE.requests++;
    sE.stopped += stopped;
    subnets.set(sub, sE);
  }
  const top = <K extends string>(m: Map<string, { requests: number; stopped: number }>, key: K) =>
    [...m].sort((a, b) => b[1].requests - a[1].requests).slice(0, 10).map(([k, v]) => ({ [key]: k, ...v }) as { [P in K]: string } & { requests: number; stopped: number });
  s.top_ips = top(ips, 'ip');
  s.top_subnets = top(subnets, 'subnet');
  if (lines.some((l) => l.label)) {
    const b = new ScoreBuilder();
    b.add('file', lines, results, lines.some((l) => l.path === '/api/promo/claim' && l.label?.startsWith('attack:')) ? 1000 : undefined);
    s.labelled = b.result();
  }
  return s;
}

function print(s: ReplaySummary): void {
  const table = (title: string, m: Record<string, number>) => {
    console.log(`\n${title}`);
    for (const [k, v] of Object.entries(m).sort((a, b) => b[1] - a[1])) console.log(`  ${String(v).padStart(8)}  ${k}`);
  };
  console.log(`policy ${s.policy}: ${s.requests} requests, ${new Date(s.from_ms).toISOString()} … ${new Date(s.to_ms).toISOString()}`);
  table('actions', s.actions);
  table('decided by (service = inline call, cache = gateway verdict cache, async = scored after the response, cleared = async because of a valid clearance, off = not guarded)', s.sources);
  table('clearance carried', s.clearance);
  const ch = s.challenges;
  console.log(`\nchallenges: ${ch.challenged} challenged, ${ch.passed} solved and let through, ${ch.stopped} never through; ${ch.solves} solves paid (${ch.hashes.toExponential(1)} SHA-256)`);
  for (const [kind, b] of Object.entries(ch.by_client).sort((a, b) => b[1].challenged - a[1].challenged)) console.log(`  ${kind.padEnd(14)} ${b.challenged} challenged, ${b.passed} passed, ${b.solves} solves`);
  table('reasons', s.reasons);
  console.log('\nroutes (action counts)');
  for (const [route, m] of Object.entries(s.routes).sort((a, b) => Object.values(b[1]).reduce((x, y) => x + y, 0) - Object.values(a[1]).reduce((x, y) => x + y, 0)).slice(0, 25)) {
    console.log(`  ${route.padEnd(40)} ${Object.entries(m).map(([a, n]) => `${a} ${n}`).join(', ')}`);
  }
  console.log('\ntop client IPs');
  for (const e of s.top_ips) console.log(`  ${e.ip.padEnd(40)} ${e.requests} requests, ${e.stopped} stopped`);
  console.log('\ntop /24 subnets');
  for (const e of s.top_subnets) console.log(`  ${e.subnet.padEnd(40)} ${e.requests} requests, ${e.stopped} stopped`);
  if (s.labelled) {
    console.log('\nlabelled campaigns');
    for (const c of s.labelled.campaigns) console.log(`  ${c.id.padEnd(28)} ${c.requests} requests, ${c.blocked} blocked, ${c.challenged} challenged (${c.passed} solved past), first at ${c.first_detection_at ?? 'never'}, after ${(c.blocked_after_detection * 100).toFixed(1)}%, never through ${c.stopped}, ${c.solves} solves paid`);
    const h = s.labelled.humans;
    console.log(`  humans: ${h.requests} requests, ${h.blocked} blocked, ${h.challenged} challenged (${h.challenged_passed} passed), ${h.stopped} stopped; ${h.users_affected} of ${h.users} users affected, ${h.users_stopped} stopped`);
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { policy: { type: 'string' }, json: { type: 'string' }, shop: { type: 'boolean' }, 'app-solver-share': { type: 'string' }, 'no-frontend-solver': { type: 'boolean' } },
  });
  const file = positionals[0];
  if (!file) throw new Error('usage: npm run replay -- <file.jsonl> [--policy FILE] [--json OUT] [--shop] [--app-solver-share X] [--no-frontend-solver]');
  const appSolverShare = values['app-solver-share'] !== undefined ? Number(values['app-solver-share']) : 0;
  if (!(appSolverShare >= 0 && appSolverShare <= 1)) throw new Error(`--app-solver-share must be a share between 0 and 1 (got ${values['app-solver-share']})`);
  const clients = new ChallengeClients({ appSolverShare, frontendSolver: !values['no-frontend-solver'] });
  const lines = sortByTime(parseTrafficText(readFileSync(file, 'utf8')));
  const policy = loadPolicy(values.policy ? resolve(values.policy) : join(repoRoot, 'policies/default.yaml'));
  const upstream = values.shop ? new ShopUpstream() : fileUpstream;
  const results = await replay(lines, new VerdictGuard({ policy, startMs: lines[0]?.ts ?? 0 }), upstream, { clients });
  await upstream.close();
  const s = summarize(policy.version, lines, results);
  print(s);
  if (values.json) {
    writeFileSync(values.json, `${JSON.stringify(s, null, 2)}\n`);
    console.log(`\nwritten: ${values.json}`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
