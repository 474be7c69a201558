// What a response sample costs the engine (issue 17): decide + observe 40,000 requests on an object
// route from distinct tokens, with and without the inspect case's sample (4 unmasked mobile
// numbers, 2 masked, an e-mail address: the same public values in every response), µs per
// request, three rounds. Usage: npx tsx bench/engine-responses.ts
import { createHmac } from 'node:crypto';
import { VirtualClock } from './decision-service/src/engine/clock.ts';
import { Engine } from './decision-service/src/engine/engine.ts';
import { MemoryStore } from './decision-service/src/state/memory-store.ts';
import type { Outcome, ResponseSample } from './decision-service/src/wire/schema.ts';
import { loadPolicyFile } from './decision-service/src/config/policy.ts';
const vh = (v: string) => createHmac('sha256', 'k').update(v).digest().subarray(0, 8);
const sample: ResponseSample = { inspected_bytes: 1995, truncated: false, records: 13, requested_limit: 0,
  findings: [{ kind: 'cn_mobile', unmasked: 4, masked: 2, value_hashes: ['13800131000','13800131003','13800131006','13800131009'].map(vh) },
             { kind: 'email', unmasked: 1, masked: 0, value_hashes: [vh('someone@example.com')] }] };
function run(withResp: boolean, N: number) {
  const clock = new VirtualClock(1_763_800_000_000);
  const engine = new Engine({ policy: loadPolicyFile(new URL('./policies/default.yaml', import.meta.url).pathname), store: new MemoryStore({ maxKeys: 500_000 }), clock, identifierKey: Buffer.alloc(32, 1) });
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const id = `r${i}`;
    const sess = Buffer.alloc(16); sess.writeUInt32BE(i, 0);
    const d = engine.decide({ request_id: id, ts_ms: clock.now(), client_ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, method: 'GET', host: 'shop', path: `/api/users/${1000 + (i % 5000)}/profile`, query: '', route_tag: '', http_version: '1.1', user_agent: 'Mozilla/5.0 Chrome/131', accept: 'application/json', header_names: ['host','user-agent','accept'], cookie_names: [], has_authorization: true, auth_scheme: 'bearer', token_hash: sess, mode: 'INLINE', budget_ms: 25, clearance: 'NONE', clearance_level: 0, clearance_age_s: 0 } as any);
    engine.observe({ request_id: id, status: 200, action: d.action, response: withResp ? sample : undefined } as Outcome);
    clock.advance(1);
  }
  return Number(process.hrtime.bigint() - t0) / 1000 / N;
}
const mode = process.argv[2]; for (let r = 0; r < 4; r++) console.log(mode, run(mode === "on", 40000).toFixed(2));
