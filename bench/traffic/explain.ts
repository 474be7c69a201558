// `npm run explain -- FILE.jsonl | --scenario NAME | --world N  [options]`
// Why did Verdict stop this person? Replays the traffic (as `npm run replay` does) and, for every
// human request that was blocked or challenged, shows the reason, the key the reason's evidence is
// about and the evidence: who else was behind that key in the minutes before (people, campaigns,
// their login failures and not-founds), and for verdicts served from the gateway's cache, which
// request stored that verdict and why.
//
// Options: --seed N (scenario) · --policy FILE · --shop (a file replayed against the demo shop) ·
// --human LABEL (only that person) · --reason CODE (only requests that reason fired on) ·
// --limit N (requests shown in full; default 20, 0 = all) · --window-s S (evidence window; 600) ·
// --json OUT (every stopped human request, with its evidence) · --app-solver-share X.

import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DETECTORS } from '../../decision-service/src/engine/detectors/index.ts';
import type { DetectorFactory, RequestFeatures, Signal } from '../../decision-service/src/engine/signal.ts';
import { repoRoot } from '../../scripts/lib/nginx.ts';
import { ChallengeClients } from './challenge-clients.ts';
import { customerOf, labelKind, parseTrafficText, type TrafficLine } from './format.ts';
import { CUSTOMER_NAMES } from './report.ts';
import { fileUpstream, loadPolicy, replay, ShopUpstream, sortByTime, VerdictGuard, type Attempt, type Check, type Guard, type LineResult, type Upstream } from './replay.ts';
import { DEFAULT_SEED, generateScenario, scenarioByName, SCENARIOS } from './scenarios.ts';
import { drawWorld } from './worlds.ts';

/** The keys a request carries, as the engine computed them (hashes shortened for display). */
export interface RequestKeys {
  ip: string;
  subnet: string;
  client: string;
  tool: string;
  fingerprint: string;
  identifier: string;
  principal: string;
  session: string;
  device: string;
  password: string;
  route: string;
}

const SUBJECTS = ['session', 'device', 'principal', 'client', 'ip', 'subnet', 'tool', 'fingerprint', 'password', 'identifier'] as const;
type KeyName = (typeof SUBJECTS)[number];

/** One signal as a detector emitted it. */
export interface Fired {
  detector: string;
  code: string;
  score: number;
  /** the key its evidence is about: the signal's subject, else read from the code's suffix */
  subject: string;
  /** any further fields the detector put on the signal (evidence counts, thresholds) */
  extra: Record<string, unknown>;
}

/** What the replay recorded of one request's first attempt. */
interface Decided {
  keys: RequestKeys | undefined;
  fired: Fired[];
  /** the gateway cache entry that answered it, and who had stored it */
  cacheKey: string | undefined;
  cacheOrigin: Stored | undefined;
}

/** Who stored a cached verdict: the request and its reasons. */
interface Stored {
  index: number;
  ts: number;
  label: string;
  action: string;
  reasons: readonly string[];
}

/** A key for display: addresses in full, hashes (and fingerprints made of them) cut to 12 characters. */
const short = (s: string): string => {
  const bar = s.indexOf('|');
  if (bar > 0) return `${s.slice(0, bar)}|${short(s.slice(bar + 1))}`; // a client: address | fingerprint
  if (/^(ip:|subnet:)?[0-9a-f.:/]+$/i.test(s) && !/^[A-Za-z0-9+/=]{20,}$/.test(s)) return s;
  const colon = s.indexOf(':');
  const [prefix, rest] = colon > 0 && colon < 12 ? [s.slice(0, colon + 1), s.slice(colon + 1)] : ['', s];
  return rest.length > 14 ? `${prefix}${rest.slice(0, 12)}…` : s;
};

function keysOf(f: RequestFeatures): RequestKeys {
  const g = f as unknown as Record<string, unknown>;
  const str = (k: string) => (typeof g[k] === 'string' ? (g[k] as string) : '');
  return {
    ip: str('ip'), subnet: str('subnet'), client: str('client'), tool: str('headerSet'), fingerprint: str('fingerprint'), identifier: str('identifierHash'),
    principal: str('principal'), session: str('session'), device: str('device'), password: str('passwordHash'), route: `${f.routeClass} ${f.route?.name ?? ''}`.trim(),
  };
}

/** The subject of a signal: its own (issue 14 signals name it), else the code's suffix (`cs.failure_rate.ip`), else the request. */
export function subjectOf(s: Signal): string {
  const own = (s as unknown as { subject?: unknown }).subject;
  if (typeof own === 'string') return own;
  const tail = s.code.slice(s.code.lastIndexOf('.') + 1);
  return (SUBJECTS as readonly string[]).includes(tail) ? tail : 'request';
}

/** Records, per request, the signals each detector fired and the request's keys. */
export class Recorder {
  index = -1;
  retry = 0;
  readonly decided = new Map<number, Decided>();
  readonly stored = new Map<string, Stored>();

  wrap(factories: readonly DetectorFactory[]): DetectorFactory[] {
    return factories.map((make) => (ctx) => {
      const d = make(ctx);
      const rec = this;
      return {
        name: d.name,
        observes: d.observes,
        observe: d.observe ? (o, f) => d.observe!(o, f) : undefined,
        inspect(f, out) {
          const n = out.length;
          d.inspect(f, out);
          const e = rec.entry();
          if (!e) return;
          e.keys ??= keysOf(f);
          for (let i = n; i < out.length; i++) {
            const s = out[i]!;
            const { code, score, monitor, cache, ...rest } = s as Signal & Record<string, unknown>;
            void cache;
            if (monitor) continue;
            const extra = Object.fromEntries(Object.entries(rest).filter(([k, v]) => k !== 'subject' && v !== undefined));
            e.fired.push({ detector: d.name, code, score, subject: subjectOf(s), extra });
          }
        },
      };
    });
  }

  /** The record of the request being decided (first attempts only). */
  entry(): Decided | undefined {
    if (this.retry !== 0 || this.index < 0) return undefined;
    let e = this.decided.get(this.index);
    if (!e) this.decided.set(this.index, (e = { keys: undefined, fired: [], cacheKey: undefined, cacheOrigin: undefined }));
    return e;
  }
}

/** VerdictGuard with a recorder: which request is being decided, what the cache answered and who stored it. */
export class ExplainGuard implements Guard {
  readonly name = 'verdict';
  readonly inner: VerdictGuard;

  constructor(readonly rec: Recorder, opts: ConstructorParameters<typeof VerdictGuard>[0], private readonly lines: readonly TrafficLine[]) {
    this.inner = new VerdictGuard({ ...opts, detectors: rec.wrap(opts.detectors ?? DETECTORS) });
    const cache = this.inner.cache;
    const store = cache.store.bind(cache);
    const lookup = cache.lookup.bind(cache);
    cache.store = (resp, now) => {
      const ok = store(resp, now);
      if (ok) {
        const key = /^(ip|subnet):/.test(resp.cache_key) ? resp.cache_key.toLowerCase() : resp.cache_key;
        const line = this.lines[rec.index];
        this.rec.stored.set(key, { index: rec.index, ts: now, label: line?.label ?? '(unlabelled)', action: resp.action, reasons: resp.reasons });
      }
      return ok;
    };
    cache.lookup = (req, now) => {
      const hit = lookup(req, now);
      const e = rec.entry();
      if (e) {
        e.cacheKey = hit?.cacheKey;
        e.cacheOrigin = hit ? rec.stored.get(hit.cacheKey) : undefined;
      }
      return hit;
    };
  }

  check(line: TrafficLine, index: number, attempt?: Attempt): Check | Promise<Check> {
    this.rec.index = index;
    this.rec.retry = attempt?.retry ?? 0;
    return this.inner.check(line, index, attempt);
  }

  after(line: TrafficLine, index: number, result: LineResult, body?: string): void | Promise<void> {
    return this.inner.after(line, index, result, body);
  }

  issue(line: TrafficLine, level: number, ttlS: number, nowMs: number): string {
    return this.inner.issue(line, level, ttlS, nowMs);
  }
}

/** Who was behind one key in the window before a request. */
export interface Evidence {
  subject: string;
  key: string;
  window_s: number;
  requests: number;
  people: number;
  campaigns: Record<string, number>;
  logins: number;
  login_failures: number;
  login_failures_by_campaigns: number;
  not_found: number;
  /** distinct paths (objects, for object routes) those requests asked for */
  paths: number;
}

/** Evidence per key: an index from (subject, value) to the requests that carried it. */
export class EvidenceIndex {
  private readonly byKey = new Map<string, number[]>();

  constructor(private readonly lines: readonly TrafficLine[], private readonly results: readonly LineResult[], decided: ReadonlyMap<number, Decided>) {
    for (const [i, d] of [...decided].sort((a, b) => a[0] - b[0])) {
      if (!d.keys) continue;
      for (const s of SUBJECTS) {
        const v = d.keys[s];
        if (!v) continue;
        const k = `${s}\n${v}`;
        let list = this.byKey.get(k);
        if (!list) this.byKey.set(k, (list = []));
        list.push(i);
      }
    }
  }

  /** Requests carrying `subject` = `value` from `windowS` before request `at` up to it. */
  of(subject: string, value: string, at: number, windowS: number): Evidence {
    const ev: Evidence = { subject, key: value, window_s: windowS, requests: 0, people: 0, campaigns: {}, logins: 0, login_failures: 0, login_failures_by_campaigns: 0, not_found: 0, paths: 0 };
    const list = this.byKey.get(`${subject}\n${value}`) ?? [];
    const until = this.lines[at]!.ts;
    const from = until - windowS * 1000;
    const people = new Set<string>();
    const paths = new Set<string>();
    for (const i of list) {
      if (i > at) break;
      const l = this.lines[i]!;
      if (l.ts < from) continue;
      const r = this.results[i]!;
      ev.requests++;
      paths.add(l.path);
      const kind = labelKind(l.label);
      if (kind === 'human') people.add(l.label!);
      else if (kind === 'attack') ev.campaigns[l.label!.slice(7)] = (ev.campaigns[l.label!.slice(7)] ?? 0) + 1;
      if (l.method === 'POST' && /\/login$/.test(l.path)) {
        ev.logins++;
        if (r.status === 401 || r.status === 404) {
          ev.login_failures++;
          if (kind === 'attack') ev.login_failures_by_campaigns++;
        }
      } else if (r.status === 404) ev.not_found++;
    }
    ev.people = people.size;
    ev.paths = paths.size;
    return ev;
  }
}

/** One stopped human request, explained. */
export interface Explanation {
  index: number;
  ts: string;
  label: string;
  customer: string;
  method: string;
  path: string;
  ip: string;
  action: string;
  source: string;
  /** what the person finally got: through after solving, or never */
  fate: string;
  reasons: readonly string[];
  /** for each reason a detector fired: its score, the key and the evidence behind that key */
  signals: ExplainedSignal[];
  /** served from the gateway's verdict cache: the key, the request that stored it, and that request's signals */
  cache: (Stored & { key: string; signals: ExplainedSignal[] }) | undefined;
}

export type ExplainedSignal = Fired & { key: string; evidence: Evidence | undefined };

export function explainAll(lines: readonly TrafficLine[], results: readonly LineResult[], rec: Recorder, opts: { windowS: number }): Explanation[] {
  const ev = new EvidenceIndex(lines, results, rec.decided);
  const out: Explanation[] = [];
  results.forEach((r, i) => {
    const line = lines[i]!;
    if (labelKind(line.label) !== 'human' || (r.action !== 'BLOCK' && r.action !== 'CHALLENGE')) return;
    const d = rec.decided.get(i);
    const stored = r.source === 'cache' ? d?.cacheOrigin : undefined;
    const signals = r.source === 'cache' ? [] : explainSignals(i);
    out.push({
      index: i + 1,
      ts: new Date(line.ts).toISOString(),
      label: line.label!,
      customer: customerOf(line) ?? 'unknown',
      method: line.method,
      path: line.path,
      ip: line.ip,
      action: r.action,
      source: r.source,
      fate: r.finalAction === 'BLOCK' ? 'never through (blocked)' : r.passed ? 'solved, then through' : `never through (${r.client ?? 'client'}: ${r.why ?? 'not solved'})`,
      reasons: r.reasons,
      signals,
      cache: stored && d?.cacheKey ? { ...stored, key: d.cacheKey, signals: explainSignals(stored.index) } : undefined,
    });
  });
  return out;

  /** The signals request `i` fired, each with its key and the evidence behind that key. */
  function explainSignals(i: number): ExplainedSignal[] {
    const line = lines[i]!;
    const d = rec.decided.get(i);
    return (d?.fired ?? []).map((f) => {
      const key = f.subject === 'request' ? `${line.method} ${line.path}` : f.subject === 'global' ? d?.keys?.route ?? '' : (d?.keys?.[f.subject as KeyName] ?? '');
      const evidence = f.subject !== 'request' && f.subject !== 'global' && key ? ev.of(f.subject, key, i, opts.windowS) : undefined;
      return { ...f, key, evidence };
    });
  }
}

function evidenceText(e: Evidence): string {
  const campaigns = Object.entries(e.campaigns).sort((a, b) => b[1] - a[1]);
  const who = [`${e.people} ${e.people === 1 ? 'person' : 'people'}`, campaigns.length > 0 ? `${campaigns.length} campaign${campaigns.length > 1 ? 's' : ''} (${campaigns.slice(0, 3).map(([k, v]) => `${k} ${v}`).join(', ')})` : 'no campaign'].join(' and ');
  const logins = e.logins > 0 ? `; ${e.logins} logins, ${e.login_failures} failed (${e.login_failures_by_campaigns} of those by campaigns)` : '';
  const nf = e.not_found > 0 ? `; ${e.not_found} not-found answers` : '';
  return `${e.requests} request${e.requests === 1 ? '' : 's'} to ${e.paths} path${e.paths === 1 ? '' : 's'} in the ${Math.round(e.window_s / 60)} min before, from ${who}${logins}${nf}`;
}

export function renderExplanation(x: Explanation): string {
  const out: string[] = [];
  out.push(`#${x.index} ${x.ts} ${x.label} (${CUSTOMER_NAMES[x.customer] ?? x.customer}) ${x.method} ${x.path} from ${x.ip}`);
  out.push(`  ${x.action} ${x.source === 'cache' ? 'from the gateway verdict cache' : 'by the service'} → ${x.fate}`);
  const signal = (s: ExplainedSignal, indent: string) => {
    const extra = Object.keys(s.extra).length > 0 ? ` ${JSON.stringify(s.extra)}` : '';
    out.push(`${indent}reason ${s.code} (score ${Math.round(s.score * 10) / 10}, ${s.detector})${extra}`);
    out.push(`${indent}  key ${s.subject}${s.key ? ` ${short(s.key)}` : ''}${s.evidence ? `: ${evidenceText(s.evidence)}` : ''}`);
  };
  if (x.cache) {
    out.push(`  cache key ${short(x.cache.key)}: stored by #${x.cache.index + 1} (${x.cache.label}, ${new Date(x.cache.ts).toISOString()}) as ${x.cache.action} for ${x.cache.reasons.join(', ')}`);
    for (const s of x.cache.signals) signal(s, '    ');
  } else if (x.source === 'cache') out.push(`  cache: verdict for ${x.reasons.join(', ')} (stored before the recorder saw it)`);
  for (const s of x.signals) signal(s, '  ');
  const fromEngine = x.reasons.filter((r) => !r.startsWith('dry_run:') && !x.signals.some((s) => s.code === r));
  if (x.source !== 'cache' && fromEngine.length > 0) out.push(`  reason ${fromEngine.join(', ')} (the engine: clearance or policy)`);
  return out.join('\n');
}

/** Counts of stopped human requests by reason and key, and by customer type. */
export function summary(xs: readonly Explanation[]): { byReason: Array<[string, number]>; byCustomer: Array<[string, number]> } {
  const byReason = new Map<string, number>();
  const byCustomer = new Map<string, number>();
  for (const x of xs) {
    byCustomer.set(x.customer, (byCustomer.get(x.customer) ?? 0) + 1);
    const keys = x.source === 'cache' ? [`(cache) ${x.cache?.key.split(':')[0] ?? '?'} key, stored for ${x.reasons.join(', ')}`] : x.signals.map((s) => `${s.code} on ${s.subject}`);
    for (const k of new Set(keys)) byReason.set(k, (byReason.get(k) ?? 0) + 1);
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  return { byReason: sorted(byReason), byCustomer: sorted(byCustomer) };
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      scenario: { type: 'string' }, world: { type: 'string' }, seed: { type: 'string' }, policy: { type: 'string' }, shop: { type: 'boolean' },
      human: { type: 'string' }, reason: { type: 'string' }, limit: { type: 'string' }, 'window-s': { type: 'string' }, json: { type: 'string' }, 'app-solver-share': { type: 'string' },
    },
  });
  const usage = 'usage: npm run explain -- FILE.jsonl [--shop] | --scenario NAME [--seed N] | --world N   [--human LABEL] [--reason CODE] [--limit N] [--window-s S] [--json OUT] [--policy FILE]';
  const policy = loadPolicy(values.policy ? resolve(values.policy) : join(repoRoot, 'policies/default.yaml'));
  let lines: TrafficLine[];
  let upstream: Upstream;
  let seed = 1;
  let title: string;
  if (values.world !== undefined) {
    if (!Number.isInteger(Number(values.world))) throw new Error(`--world must be an integer (got ${values.world})`);
    const w = drawWorld(Number(values.world));
    seed = w.seed;
    lines = generateScenario(w, w.seed);
    upstream = new ShopUpstream(w.shop);
    title = `${w.name}: ${w.description}`;
  } else if (values.scenario !== undefined) {
    const s = scenarioByName(values.scenario);
    if (!s) throw new Error(`unknown scenario "${values.scenario}"; known: ${SCENARIOS.map((x) => x.name).join(', ')}`);
    seed = values.seed !== undefined ? Number(values.seed) : DEFAULT_SEED;
    lines = generateScenario(s, seed);
    upstream = new ShopUpstream(s.shop);
    title = `scenario ${s.name}, seed ${seed}`;
  } else if (positionals[0]) {
    lines = sortByTime(parseTrafficText(readFileSync(positionals[0], 'utf8')));
    upstream = values.shop ? new ShopUpstream() : fileUpstream;
    title = positionals[0];
  } else throw new Error(usage);
  const appSolverShare = values['app-solver-share'] !== undefined ? Number(values['app-solver-share']) : 0;
  const rec = new Recorder();
  const guard = new ExplainGuard(rec, { policy, startMs: lines[0]?.ts ?? 0 }, lines);
  const results = await replay(lines, guard, upstream, { clients: new ChallengeClients({ seed, appSolverShare }) });
  await upstream.close();
  const windowS = values['window-s'] !== undefined ? Number(values['window-s']) : 600;
  let xs = explainAll(lines, results, rec, { windowS });
  const humans = lines.filter((l) => labelKind(l.label) === 'human').length;
  console.log(`${title}\npolicy ${policy.version}: ${xs.length} of ${humans} human requests stopped (blocked or challenged)`);
  if (values.human) xs = xs.filter((x) => x.label === values.human);
  if (values.reason) xs = xs.filter((x) => x.reasons.includes(values.reason!));
  const s = summary(xs);
  console.log('\nby customer type');
  for (const [k, v] of s.byCustomer) console.log(`  ${String(v).padStart(7)}  ${CUSTOMER_NAMES[k] ?? k}`);
  console.log('\nby reason and the key it acted on');
  for (const [k, v] of s.byReason.slice(0, 25)) console.log(`  ${String(v).padStart(7)}  ${k}`);
  const limit = values.limit !== undefined ? Number(values.limit) : 20;
  const shown = limit === 0 ? xs : xs.slice(0, limit);
  console.log(`\n${shown.length} of ${xs.length} in full${shown.length < xs.length ? ' (--limit N, --human LABEL, --reason CODE, --json OUT for more)' : ''}:\n`);
  for (const x of shown) console.log(`${renderExplanation(x)}\n`);
  if (values.json) {
    writeFileSync(values.json, `${JSON.stringify(xs, null, 2)}\n`);
    console.log(`written: ${values.json}`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
