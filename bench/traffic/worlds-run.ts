// Replays random worlds (worlds.ts) through Verdict and the per-IP baseline, a world per child
// process (`jobs` at a time: a world's replay is single-threaded CPU work, so one process per
// core), and hands the results to worlds-report.ts. `npm run scorecard -- --worlds N` runs it.

import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ChallengeClients } from './challenge-clients.ts';
import { labelKind } from './format.ts';
import { ScoreBuilder } from './report.ts';
import { BaselineGuard, loadPolicy, replay, ShopUpstream, VerdictGuard, type LineResult } from './replay.ts';
import { generateScenario } from './scenarios.ts';
import { FleetGuard } from './fleet.ts';
import { drawWorld, type World } from './worlds.ts';
import { describeCampaigns, type WorldResult } from './worlds-report.ts';

/**
 * Generates world `w`'s traffic and replays it through both guards, each against a fresh demo
 * shop. With `redisUrl`, Verdict is two instances sharing that Redis (fleet.ts, round-robin).
 */
export async function runWorld(w: World, policyFile: string, redisUrl?: string): Promise<WorldResult> {
  const t0 = Date.now();
  const cpu0 = process.cpuUsage();
  const policy = loadPolicy(policyFile);
  const lines = generateScenario(w, w.seed);
  const promo = w.shop.promoInventory;

  const verdict = new ScoreBuilder();
  const vShop = new ShopUpstream(w.shop);
  const startMs = lines[0]?.ts ?? 0;
  const guard = redisUrl ? new FleetGuard({ policy, redisUrl, prefix: `w${w.seed}:${Date.now()}:`, startMs }) : new VerdictGuard({ policy, startMs });
  const vr = await replay(lines, guard, vShop, { clients: new ChallengeClients({ seed: w.seed }) });
  if (guard instanceof FleetGuard) await guard.close();
  await vShop.close();
  verdict.add(w.name, lines, vr, promo);

  const baseline = new ScoreBuilder();
  const bShop = new ShopUpstream(w.shop);
  baseline.add(w.name, lines, await replay(lines, new BaselineGuard(), bShop), promo);
  await bShop.close();

  return {
    seed: w.seed,
    name: w.name,
    traits: w.traits,
    campaigns: describeCampaigns(w),
    lines: lines.length,
    wall_s: Math.round((Date.now() - t0) / 100) / 10,
    cpu_s: Math.round(process.cpuUsage(cpu0).user / 100_000) / 10,
    verdict: { ...verdict.result() },
    baseline: { ...baseline.result() },
    human_reasons: humanReasons(lines.map((l) => l.label), vr),
  };
}

/** Reasons on the human requests a guard stopped (blocked or challenged): reason → requests. */
export function humanReasons(labels: ReadonlyArray<string | undefined>, results: readonly LineResult[]): Record<string, number> {
  const out: Record<string, number> = {};
  results.forEach((r, i) => {
    if (labelKind(labels[i]) !== 'human' || (r.action !== 'BLOCK' && r.action !== 'CHALLENGE')) return;
    for (const reason of r.reasons) out[reason] = (out[reason] ?? 0) + 1;
  });
  return out;
}

export interface RunWorldsOptions {
  policyFile: string;
  /** child processes at a time (1: in this process) */
  jobs: number;
  /** Verdict as a fleet of two instances sharing this Redis */
  redisUrl?: string;
  log?: (msg: string) => void;
}

/** Worlds `seeds`, replayed `jobs` at a time; results in seed order. */
export async function runWorlds(seeds: readonly number[], opts: RunWorldsOptions): Promise<WorldResult[]> {
  const log = opts.log ?? (() => {});
  const done = (r: WorldResult) => log(`  w${r.seed}: ${r.lines} requests, replayed twice in ${r.wall_s.toFixed(1)} s (${r.cpu_s.toFixed(1)} s CPU); humans ${r.verdict.humans.stopped} never through, ${r.verdict.humans.challenged} challenged`);
  if (opts.jobs <= 1) {
    const out: WorldResult[] = [];
    for (const seed of seeds) {
      const r = await runWorld(drawWorld(seed), opts.policyFile, opts.redisUrl);
      done(r);
      out.push(r);
    }
    return out;
  }
  const queue = [...seeds];
  const results = new Map<number, WorldResult>();
  const worker = async (): Promise<void> => {
    // the child runs under the same loader as this process (tsx): same execArgv
    const child = fork(fileURLToPath(import.meta.url), ['--world-child'], { execArgv: process.execArgv, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    try {
      for (let seed = queue.shift(); seed !== undefined; seed = queue.shift()) {
        const r = await ask(child, { seed, policyFile: opts.policyFile, redisUrl: opts.redisUrl });
        done(r);
        results.set(seed, r);
      }
    } finally {
      child.kill();
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.jobs, seeds.length) }, worker));
  return seeds.map((s) => results.get(s)!);
}

type Reply = { ok: true; result: WorldResult } | { ok: false; error: string };

interface Job { seed: number; policyFile: string; redisUrl: string | undefined }

function ask(child: ChildProcess, job: Job): Promise<WorldResult> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`world ${job.seed}: its process exited (${code}) before answering`));
    child.once('exit', onExit);
    child.once('message', (m: Reply) => {
      child.off('exit', onExit);
      if (m.ok) resolve(m.result);
      else reject(new Error(`world ${job.seed}: ${m.error}`));
    });
    child.send(job);
  });
}

if (process.argv.includes('--world-child') && process.send) {
  process.on('message', (job: Job) => {
    runWorld(drawWorld(job.seed), job.policyFile, job.redisUrl).then(
      (result) => process.send!({ ok: true, result } satisfies Reply),
      (err: unknown) => process.send!({ ok: false, error: err instanceof Error ? err.stack ?? err.message : String(err) } satisfies Reply),
    );
  });
}
