import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { proxyTargets, parseArgs } from '../../bench/run.ts';
import { histogramQuantileUs } from '../../bench/cases/service-alone.ts';
import { planFor } from '../../bench/lib/proc.ts';
import { median, renderMarkdown, summarizeProxy, writeResults, type BenchResults, type ProxyRound } from '../../bench/lib/results.ts';
import type { WrkResult } from '../../bench/lib/wrk.ts';

const wrk = (rps: number, p50 = 1000, p99 = 3000, status = 0): WrkResult => ({
  requests: rps * 10,
  durationS: 10,
  rps,
  latencyUs: { mean: p50, p50, p90: (p50 + p99) / 2, p99, p999: p99, max: p99 * 2 },
  errors: { connect: 0, read: 0, write: 0, timeout: 0, status },
});

const rounds: ProxyRound[] = [
  { round: 1, cases: { plain: wrk(10_000), inline: wrk(7_000, 1200, 3500), 'auth-request': wrk(4_000) } },
  { round: 2, cases: { plain: wrk(8_000), inline: wrk(6_000, 1300, 3600, 600), 'auth-request': wrk(3_000) } },
  { round: 3, cases: { plain: wrk(12_000), inline: wrk(6_600, 1100, 3400), 'auth-request': wrk(5_000) } },
];
const infos = [
  { id: 'plain', title: '1. plain' },
  { id: 'inline', title: '2. inline' },
  { id: 'auth-request', title: '4. auth_request' },
  { id: 'modsecurity', title: '5. modsec', unavailable: 'not available on this distribution' },
];

function sample(): BenchResults {
  return {
    meta: {
      date: '2026-01-01T00:00:00.000Z', command: 'npm run bench', quick: false, rounds: 3, durationS: 10, connections: 64,
      machine: { cpu: 'Test CPU', cores: 2, memGiB: 4, kernel: '6.1', node: 'v20', nginx: '1.22.1', wrk: 'wrk 4.1.0' },
      pinning: 'CPU 0 servers, CPU 1 wrk', notes: ['a note'],
    },
    proxy: { rounds, summary: summarizeProxy(rounds, infos, 'plain'), census: { plain: { '200': 2000 }, inline: { '200': 1990, '403': 10 } } },
    underLoad: [
      { share: 0.25, rate: 2500, caseId: 'plain', title: '1. plain', achievedRps: 2495, p50Us: 300, p99Us: 800, addedP50Us: 0, addedP99Us: 0, coP50Us: 500, coP99Us: 1000, addedCoP50Us: 0, addedCoP99Us: 0 },
      { share: 0.25, rate: 2500, caseId: 'inline', title: '2. inline', achievedRps: 2490, p50Us: 400, p99Us: 1200, addedP50Us: 100, addedP99Us: 400, coP50Us: 700, coP99Us: 1800, addedCoP50Us: 200, addedCoP99Us: 800 },
      { share: 0.5, rate: 5000, caseId: 'plain', title: '1. plain', achievedRps: 4990, p50Us: 400, p99Us: 900, addedP50Us: 0, addedP99Us: 0, coP50Us: 600, coP99Us: 1100, addedCoP50Us: 0, addedCoP99Us: 0 },
      { share: 0.5, rate: 5000, caseId: 'inline', title: '2. inline', achievedRps: 4985, p50Us: 600, p99Us: 2100, addedP50Us: 200, addedP99Us: 1200, coP50Us: 850, coP99Us: 2900, addedCoP50Us: 250, addedCoP99Us: 1800 },
    ],
    sections: [{ id: 'memory', title: '8. memory', columns: ['after', 'RSS MiB'], rows: [['1M keys', 300]], notes: ['bounded'] }],
    targets: [{ target: 'memory bound', measured: '300 MiB', met: true }, { target: 'service ≥ 40k/s', measured: '20k/s', met: false }],
  };
}

t.test('median of odd and even counts ignores NaN', async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2.5);
  t.equal(median([Number.NaN, 5]), 5);
  t.ok(Number.isNaN(median([])));
});

t.test('summary: medians over rounds, ratio per round against that round\'s plain proxy', async (t) => {
  const s = summarizeProxy(rounds, infos, 'plain');
  const inline = s.find((r) => r.id === 'inline')!;
  t.equal(inline.rps, 6_600);
  // per-round ratios 0.7, 0.75, 0.55 → median 0.7 (not 6600/10000)
  t.equal(inline.ratio, 0.7);
  t.equal(inline.p50Us, 1200);
  t.equal(inline.rounds, 3);
  t.equal(inline.errorShare, 600 / (70_000 + 60_000 + 66_000));
  t.equal(s.find((r) => r.id === 'plain')!.ratio, 1);
  const modsec = s.find((r) => r.id === 'modsecurity')!;
  t.equal(modsec.unavailable, 'not available on this distribution');
  t.equal(modsec.ratio, null);
});

t.test('proxy targets come from the same rounds', async (t) => {
  const targets = proxyTargets(sample());
  const byName = (s: string) => targets.find((x) => x.target.includes(s))!;
  t.equal(byName('≥ 0.6× plain').met, true);
  // from the corrected columns, at a quarter and at half of saturation
  t.equal(byName('added p50 ≤ 0.3 ms at a quarter').met, true);
  t.equal(byName('added p99 ≤ 1 ms at a quarter').met, true);
  t.equal(byName('added p50 ≤ 0.3 ms at half').met, true);
  t.equal(byName('added p99 ≤ 1 ms at half').met, false);
  t.equal(byName('added p99 ≤ 1 ms at half').measured, '1.800 ms');
  t.equal(byName('route mix').met, null, 'not measured when the case did not run');
  // inline/auth per round: 1.75, 2, 1.32 → median 1.75
  t.equal(byName('auth_request').measured, '1.75×');
  t.equal(byName('auth_request').met, true);
});

t.test('markdown shows every table, unavailable cases and unmet targets', async (t) => {
  const md = renderMarkdown(sample());
  t.match(md, /\| 2\. inline \| 6,600 \| 0\.70× \| 1\.200 \|/);
  t.match(md, /\| 5\. modsec \| not available on this distribution \|/);
  t.match(md, /200: 99\.5%, 403: 0\.5%/);
  t.match(md, /\| 50% \| 5,000 \| 2\. inline \| 4,985 \| 0\.850 \| 2\.900 \| \+0\.250 \| \+1\.800 \| 0\.600 \| 2\.100 \| \+0\.200 \| \+1\.200 \|/);
  t.match(md, /## 8\. memory/);
  t.match(md, /\*\*no\*\*/);
  t.match(md, /Test CPU, 2 cores/);
  t.notMatch(md, /quick run/);
  t.match(renderMarkdown({ ...sample(), meta: { ...sample().meta, quick: true } }), /quick run/);
});

t.test('writer: perf.md and perf.json, NaN written as null', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'verdict-bench-test-'));
  const res = sample();
  const files = writeResults(dir, res);
  t.equal(files.md, join(dir, 'perf.md'));
  const json = JSON.parse(readFileSync(files.json, 'utf8')) as BenchResults;
  t.equal(json.proxy.summary.find((r) => r.id === 'modsecurity')!.rps, null);
  t.equal(json.proxy.summary.find((r) => r.id === 'inline')!.rps, 6_600);
  t.equal(readFileSync(files.md, 'utf8'), renderMarkdown(res));
  const quick = writeResults(dir, res, 'perf-quick');
  t.equal(quick.json, join(dir, 'perf-quick.json'));
});

t.test('arguments: quick defaults, --only, bounds', async (t) => {
  const q = parseArgs(['--quick', '--only', 'plain,inline']);
  t.equal(q.quick, true);
  t.equal(q.rounds, 1);
  t.same(q.only, ['plain', 'inline']);
  t.equal(parseArgs([]).rounds, 3);
  t.throws(() => parseArgs(['--rounds', '0']), /--rounds/);
  t.equal(parseArgs([]).layout, 'shared');
  t.equal(parseArgs(['--layout', 'spread']).layout, 'spread');
  t.throws(() => parseArgs(['--layout', 'wide']), /--layout must be shared .* or spread/);
});

t.test('CPU layouts: shared puts the service on nginx\'s core; spread gives it one of its own', async (t) => {
  const shared = planFor('shared', 2);
  t.equal(shared.cpu.service, shared.cpu.server, 'shared: one core for the server side');
  t.not(shared.cpu.load, shared.cpu.server);
  const two = planFor('spread', 2);
  t.not(two.cpu.service, two.cpu.server, 'spread on 2 cores: the service off nginx\'s core');
  t.equal(two.workers, 1);
  t.match(two.plan, /sharing it with wrk/);
  const four = planFor('spread', 8);
  t.same([four.cpu.server, four.cpu.service, four.cpu.load, four.workers], ['0-1', 2, 3, 2], 'spread on 4+: 2 workers on two cores, the service and the load one each');
});

t.test('histogram quantile: the bucket bound holding the quantile, from two scrapes', async (t) => {
  const scrape = (c: number[]) => ['0.0001', '0.00025', '0.0005', '+Inf'].map((le, i) => `verdict_decide_duration_seconds_bucket{le="${le}",encoding="protobuf"} ${c[i]}`).join('\n');
  const before = scrape([10, 10, 10, 10]);
  const after = scrape([60, 108, 110, 110]);
  t.equal(histogramQuantileUs(before, after, 'verdict_decide_duration_seconds', 0.5), 100);
  t.equal(histogramQuantileUs(before, after, 'verdict_decide_duration_seconds', 0.99), 500);
  t.ok(Number.isNaN(histogramQuantileUs(after, after, 'verdict_decide_duration_seconds', 0.5)));
});
