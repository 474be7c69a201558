// The response-inspection contract (gateway-plugin/CONTRACT.md, "Response inspection (issue 17)"):
// the TypeScript reference (decision-service/src/gateway/sensitive.ts) against the shared vectors
// (gateway-plugin/spec/sensitive-vectors.json), whose value hashes are recomputed here from the
// hand-written normalized values. lua/verdict/inspect.lua replays the same vectors inside nginx
// (test/lua/inspect.test.ts).
import t from 'tap';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot } from '../../scripts/lib/nginx.ts';
import { BUILTIN_PATTERNS, idCheckValid, inspectResponse, luhnValid, valueHash, type SensitivePatternSpec } from '../../decision-service/src/gateway/sensitive.ts';
import { BUILTIN_SENSITIVE_KINDS, responseSampleSchema } from '../../decision-service/src/wire/schema.ts';

interface VFinding { kind: string; unmasked: number; masked: number; values: string[]; value_hashes: string[] }
interface VCase {
  name: string; body?: string; chunks?: string[]; max_bytes?: number; requested_limit?: number; patterns?: SensitivePatternSpec[];
  expect: { inspected_bytes: number; truncated: boolean; records: number; requested_limit: number; findings: VFinding[] };
}
const V = JSON.parse(readFileSync(join(repoRoot, 'gateway-plugin/spec/sensitive-vectors.json'), 'utf8')) as { key: string; cases: VCase[] };
const key = Buffer.from(V.key, 'utf8');
const bodyOf = (c: VCase) => c.body ?? (c.chunks ?? []).join('');

t.test('the vectors\' hashes are HMAC-SHA-256(key, "sv:" + kind + ":" + value), first 8 bytes', async (t) => {
  for (const c of V.cases) {
    for (const f of c.expect.findings) {
      t.equal(f.values.length, f.value_hashes.length, `${c.name}: ${f.kind} has a hash per value`);
      f.values.forEach((v, i) => {
        const want = createHmac('sha256', key).update(`sv:${f.kind}:${v}`, 'utf8').digest().subarray(0, 8).toString('hex');
        t.equal(f.value_hashes[i], want, `${c.name}: ${f.kind} ${i}`);
        t.equal(valueHash(key, f.kind, v).toString('hex'), want, `valueHash agrees (${c.name})`);
      });
    }
  }
});

t.test('the reference passes every vector', async (t) => {
  for (const c of V.cases) {
    const s = inspectResponse(bodyOf(c), { key, maxBytes: c.max_bytes, patterns: c.patterns, requestedLimit: c.requested_limit });
    t.same(
      { ...s, findings: s.findings.map((f) => ({ kind: f.kind, unmasked: f.unmasked, masked: f.masked, value_hashes: f.value_hashes.map((b) => b.toString('hex')) })) },
      { ...c.expect, findings: c.expect.findings.map(({ values: _, ...f }) => f) },
      c.name,
    );
    t.ok(responseSampleSchema.safeParse(s).success, `${c.name}: a valid ResponseSample`);
  }
});

t.test('the vectors cover what the contract names', async (t) => {
  const kinds = new Set(V.cases.flatMap((c) => c.expect.findings.map((f) => f.kind)));
  for (const k of BUILTIN_SENSITIVE_KINDS) t.ok(kinds.has(k), `kind ${k}`);
  const masked = new Set(V.cases.flatMap((c) => c.expect.findings.filter((f) => f.masked > 0).map((f) => f.kind)));
  for (const k of BUILTIN_SENSITIVE_KINDS) t.ok(masked.has(k), `masked ${k}`);
  t.ok(V.cases.some((c) => c.expect.truncated), 'truncation');
  t.ok(V.cases.some((c) => c.chunks && c.chunks.length > 2), 'chunk splits');
  t.ok(V.cases.some((c) => c.patterns?.some((p) => p.masked_regex)), 'a policy pattern with masked_regex');
  t.ok(V.cases.some((c) => c.expect.findings.some((f) => f.unmasked > f.values.length)), 'duplicates');
  t.ok(V.cases.some((c) => c.expect.findings.some((f) => f.values.length === 32 && f.unmasked > 32)), 'the 32-hash cap');
});

t.test('no raw value in what the reference returns', async (t) => {
  for (const c of V.cases) {
    const s = inspectResponse(bodyOf(c), { key, maxBytes: c.max_bytes, patterns: c.patterns });
    const text = JSON.stringify(s, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('latin1') : v));
    for (const f of c.expect.findings) for (const v of f.values) t.notOk(text.includes(v), `${c.name}: ${f.kind} value absent`);
  }
});

t.test('checks: GB 11643 check characters and Luhn', async (t) => {
  t.ok(idCheckValid('11010519491231002X'));
  t.ok(idCheckValid('11010519491231002x'));
  t.notOk(idCheckValid('110105194912310021'));
  t.ok(luhnValid('4111111111111111'));
  t.notOk(luhnValid('4111111111111112'));
});

t.test('a long body: truncated at the default 16 KB, and linear time', async (t) => {
  const item = '{"id":12345,"name":"x","phone":"13812345678","email":"a@b.cn","note":"' + '0123456789 '.repeat(20) + '"},';
  const body = '[' + item.repeat(2000) + ']';
  const started = process.hrtime.bigint();
  const s = inspectResponse(body, { key });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  t.equal(s.inspected_bytes, 16384);
  t.ok(s.truncated);
  t.ok(ms < 500, `took ${ms.toFixed(1)} ms`);
});

t.test('the Lua module runs the same regex sources as the reference', async (t) => {
  const lua = await readFile(join(repoRoot, 'gateway-plugin/lua/verdict/inspect.lua'), 'utf8');
  for (const [kind, p] of Object.entries(BUILTIN_PATTERNS)) {
    t.ok(lua.includes(`[[${p.masked}]]`), `${kind} masked`);
    t.ok(lua.includes(`[[${p.unmasked}]]`), `${kind} unmasked`);
  }
});
