// Data harvesting in the simulator (issue 17): the campaign is one token walking other users'
// data from rotating exits with a real browser's headers; replayed against the demo shop, its
// responses are inspected (Outcome.response) and the exfil detector stops it within 20 requests,
// while the same shop's people reading their own data are never stopped.

import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { compilePolicy, loadPolicyFile } from '../../decision-service/src/config/policy.ts';
import { promoWinners } from '../../scripts/demo-shop/app.ts';
import { repoRoot } from '../../scripts/lib/nginx.ts';
import { harvest } from '../../bench/traffic/campaigns/harvest.ts';
import type { TrafficLine } from '../../bench/traffic/format.ts';
import { replay, ShopUpstream, VerdictGuard } from '../../bench/traffic/replay.ts';
import { inspectResponse } from '../../bench/traffic/response-sample.ts';
import { GenContext, makeEnv, timeOrder } from '../../bench/traffic/simulator.ts';

const SHOP = { seed: 42, users: 600, promoInventory: 50 };

function campaign(target: 'profiles' | 'orders' | 'winners'): TrafficLine[] {
  const env = makeEnv({ seed: 7, hours: 2, shop: SHOP });
  const out: TrafficLine[] = [];
  const ctx = new GenContext(env, `harvest-${target}`, `attack:harvest-${target}`, out, 'script');
  harvest(ctx, { startH: 0.1, durationH: 1.5, target, requests: 60, pageSize: 20, pool: { kind: 'proxies', size: 50, singleShare: 0.8 }, tools: [], disguise: { headers: 'browser', precursors: 'complete' }, pacing: { kind: 'rate' }, account: 1 });
  return timeOrder(out);
}

t.test('the campaign: one token, rotating exits, browser headers, a person\'s pace', async (t) => {
  const lines = campaign('profiles');
  const reads = lines.filter((l) => l.path.startsWith('/api/users/'));
  t.equal(reads.length, 60);
  const tokens = new Set(reads.map((l) => l.headers.find(([n]) => n === 'authorization')?.[1]));
  t.equal(tokens.size, 1, 'one token');
  t.ok(new Set(reads.map((l) => l.ip)).size > 20, 'rotating exits');
  t.ok(reads.every((l) => /Mozilla\/5\.0/.test(l.headers.find(([n]) => n === 'user-agent')?.[1] ?? '')), 'a browser\'s User-Agent');
  const gaps = reads.slice(1).map((l, i) => l.ts - reads[i]!.ts);
  t.ok(gaps.reduce((a, b) => a + b, 0) / gaps.length > 30_000, 'slower than one read every 30 s on average');
  const winners = campaign('winners').filter((l) => l.path === '/api/promo/winners');
  const pages = Math.ceil(promoWinners(makeEnv({ seed: 7, hours: 2, shop: SHOP }).users).length / 20);
  t.ok(pages > 1 && pages < 60);
  t.equal(winners.length, pages, 'the crew stops at the list\'s last page');
  t.match(winners[0]?.query, /page=0&size=20/);
});

t.test('the response adapter reports unmasked and masked phones as counts and keyed hashes, never the values', async (t) => {
  const s = inspectResponse(JSON.stringify({ a: '13800001234', b: '138****5678', c: 'x@example.com', d: '13800001234' }), { key: Buffer.from('k') });
  const mobile = s.findings.find((f) => f.kind === 'cn_mobile');
  t.equal(mobile?.unmasked, 2);
  t.equal(mobile?.masked, 1);
  t.equal(mobile?.value_hashes.length, 1, 'distinct values');
  t.equal(mobile?.value_hashes[0]?.length, 8);
  t.notOk(JSON.stringify(s).includes('13800001234'), 'no raw value');
});

t.test('replayed against the demo shop, profile and order harvests are stopped within 20 requests', async (t) => {
  const file = join(repoRoot, 'policies/default.yaml');
  // the default policy stops a profile harvest on the route's owner limit (bola.foreign_objects)
  // before the responses add up; without that limit, what the responses gave away must stop it
  const responsesAlone = compilePolicy(parse(readFileSync(file, 'utf8').replace(/, objects_per_token: \d+/g, '')), file);
  t.equal(responsesAlone.routes.find((r) => r.name === 'user-profile')?.objectsPerToken, 0, 'the owner limit is off in the second policy');
  for (const [name, policy] of [['default', loadPolicyFile(file)], ['responses alone', responsesAlone]] as const) {
    for (const target of ['profiles', 'orders'] as const) {
      const lines = campaign(target);
      const shop = new ShopUpstream(SHOP);
      const guard = new VerdictGuard({ policy, startMs: lines[0]!.ts });
      const results = await replay(lines, guard, shop);
      await shop.close();
      const reads = results.map((r, i) => ({ r, l: lines[i]! })).filter(({ l }) => l.method === 'GET' && l.path.startsWith('/api/'));
      const first = reads.findIndex(({ r }) => r.action === 'BLOCK' || r.action === 'CHALLENGE');
      t.ok(first >= 0 && first < 20, `${name}, ${target}: stopped at read ${first + 1}`);
      if (name === 'responses alone' || target === 'orders') {
        t.ok(reads.some(({ r }) => r.reasons.some((x) => x.startsWith('exfil.distinct_values.'))), `${name}, ${target}: exfil named`);
      } else {
        t.ok(reads[first]?.r.reasons.some((x) => x.startsWith('bola.foreign_objects.')), `${name}, ${target}: the owner limit named first`);
      }
      const through = reads.slice(first).filter(({ r }) => r.status === 200).length;
      t.ok(through <= 3, `${name}, ${target}: ${through} reads got through after`);
    }
  }
});
