import { createHmac } from 'node:crypto';
import { openOutcomeBatch } from './decision-service/src/wire/codec.ts';
import * as P from './decision-service/src/wire/codec.ts';
const vh = (v: string) => createHmac('sha256', 'k').update(v).digest().subarray(0, 8);
const sample = { inspected_bytes: 1995, truncated: false, records: 13, requested_limit: 0,
  findings: [{ kind: 'cn_mobile', unmasked: 4, masked: 2, value_hashes: ['13800131000','13800131003','13800131006','13800131009'].map(vh) },
             { kind: 'email', unmasked: 1, masked: 0, value_hashes: [vh('someone@example.com')] }] };
const T = (P as any).OutcomeBatchType;
function batch(withS: boolean) {
  const outcomes = Array.from({ length: 20 }, (_, i) => ({ request_id: `0123456789abcdef0123456789abcd${i % 10}${i % 10}`, ts_ms: 1_763_800_000_000 + i, client_ip: '10.1.2.3', method: 'GET', path: `/api/users/${1000 + i}/profile`, status: 200, upstream_ms: 1, bytes_sent: 2200, action: 1, ...(withS ? { response: sample } : {}) }));
  return Buffer.from(T.encode(T.fromObject({ gateway_id: 'g1', outcomes })).finish());
}
const a = batch(false), b = batch(true);
console.log('bytes', a.length, b.length);
function run(buf: Buffer, N: number) { const t0 = process.hrtime.bigint(); let s = 0; for (let k = 0; k < N; k++) { const p = openOutcomeBatch(buf, 'protobuf'); for (let i = 0; i < p.count; i++) s += p.outcome(i).status; } return Number(process.hrtime.bigint() - t0) / 1000 / (N * 20); }
for (let r = 0; r < 5; r++) console.log('off', run(a, 5000).toFixed(2), 'on', run(b, 5000).toFixed(2), 'us per outcome');
