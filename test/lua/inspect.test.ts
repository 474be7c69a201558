// verdict.inspect inside nginx against gateway-plugin/spec/sensitive-vectors.json, the vectors the
// TypeScript reference passes too (test/spec/sensitive.test.ts). Each body is fed as the vector's
// chunks, byte by byte and in 7-byte chunks: the results must not depend on where nginx cuts the
// body; the log phase's hand-written encoding of a sample must give the codec's bytes. Also:
// policy patterns (a bad one is skipped, not fatal), and the codec's ResponseSample,
// DecideResponse.inspect and OutcomeAck patterns against the proto.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../scripts/lib/nginx.ts';
import { DecideResponseType, OutcomeAckType, OutcomeBatchType } from '../../decision-service/src/wire/codec.ts';
import { startLuaNginx } from './harness.ts';

interface VCase {
  name: string; body?: string; chunks?: string[]; max_bytes?: number; requested_limit?: number;
  patterns?: Array<{ name: string; regex: string; masked_regex?: string }>;
  expect: { inspected_bytes: number; truncated: boolean; records: number; requested_limit: number; findings: Array<{ kind: string; unmasked: number; masked: number; values?: string[]; value_hashes: string[] }> };
}
const V = JSON.parse(readFileSync(join(repoRoot, 'gateway-plugin/spec/sensitive-vectors.json'), 'utf8')) as { key: string; cases: VCase[] };

const locations = `
    location = /run {
        client_body_buffer_size 8m;
        client_max_body_size 8m;
        content_by_lua_block {
            local cjson = require "cjson.safe"
            local inspect = require "verdict.inspect"
            ngx.req.read_body()
            local hex = function(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end
            local out = {}
            for i, c in ipairs(cjson.decode(ngx.req.get_body_data())) do
                out[i] = { installed = inspect.set_patterns(c.patterns and "v-test" or "", c.patterns or {}) }
                local scan = inspect.new_scan(c.max_bytes, c.requested_limit, c.key)
                for j, chunk in ipairs(c.chunks) do inspect.feed(scan, ngx.decode_base64(chunk), j == #c.chunks) end
                local s = inspect.sample(scan)
                -- the log phase's direct encoding: the same bytes as the codec's encoding of the table
                local again = inspect.new_scan(c.max_bytes, c.requested_limit, c.key)
                for j, chunk in ipairs(c.chunks) do inspect.feed(again, ngx.decode_base64(chunk), j == #c.chunks) end
                out[i].encoded = ngx.encode_base64(inspect.encode_sample(again))
                out[i].codec = ngx.encode_base64(require("verdict.codec").encode_response_sample(s))
                local findings = {}
                for k, f in ipairs(s.findings) do
                    local hs = {}
                    for m, h in ipairs(f.value_hashes) do hs[m] = hex(h) end
                    findings[k] = { kind = f.kind, unmasked = f.unmasked, masked = f.masked, value_hashes = hs }
                end
                out[i].sample = { inspected_bytes = s.inspected_bytes, truncated = s.truncated, records = s.records,
                                  requested_limit = s.requested_limit, findings = findings }
            end
            inspect.set_patterns("", {})
            ngx.header["Content-Type"] = "application/json"
            ngx.print(cjson.encode(out))
        }
    }
    location = /codec {
        content_by_lua_block {
            local cjson = require "cjson.safe"
            local codec = require "verdict.codec"
            ngx.req.read_body()
            local q = cjson.decode(ngx.req.get_body_data())
            local batch = codec.encode_outcome_batch({ gateway_id = "g", patterns_version = "v7", outcomes = {
                { request_id = "r1", status = 200, response = { inspected_bytes = 300, truncated = true, records = 4,
                  requested_limit = 20, findings = { { kind = "cn_mobile", unmasked = 3, masked = 1,
                  value_hashes = { "\\1\\2\\3\\4\\5\\6\\7\\8", "abcdefgh" } } } } },
                { request_id = "r2", status = 200 } } })
            local resp = codec.decode_decide_response(ngx.decode_base64(q.decide))
            local ack = codec.decode_outcome_ack(ngx.decode_base64(q.ack))
            ngx.print(cjson.encode({ batch = ngx.encode_base64(batch), inspect = resp.inspect,
                                     patterns_version = ack.patterns_version, patterns = ack.patterns }))
        }
    }
    location = /patterns {
        content_by_lua_block {
            local inspect = require "verdict.inspect"
            local n = inspect.set_patterns("v2", {
                { name = "good", regex = "G[0-9]{4}", masked_regex = "" },
                { name = "broken", regex = "([0-9", masked_regex = "" },
                { name = "Bad Name", regex = "x", masked_regex = "" },
                { name = "good", regex = "again", masked_regex = "" },
                { name = "badmask", regex = "M[0-9]+", masked_regex = "(*" },
            })
            local scan = inspect.new_scan(1000, 0, "k")
            inspect.feed(scan, '{"a":"G1234","b":"M12","c":"again"}', true)
            local s = inspect.sample(scan)
            local version = inspect.patterns_version()
            inspect.set_patterns("", {})
            ngx.say(n, " ", version, " ", #s.findings, " ", s.findings[1] and s.findings[1].kind or "-")
        }
    }`;

const chunked = (body: string, size: number): Buffer[] => {
  const b = Buffer.from(body, 'utf8');
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out.length ? out : [Buffer.alloc(0)];
};

t.test('verdict.inspect passes the shared vectors, however the body is cut into chunks', async (t) => {
  const lua = await startLuaNginx(t, { locations });
  for (const split of ['as given', 'byte by byte', '7-byte chunks'] as const) {
    // chunks travel as base64 of their bytes: a byte split can cut a UTF-8 character in two
    const cases = V.cases.map((c) => {
      const body = c.body ?? (c.chunks ?? []).join('');
      const chunks = split === 'as given' ? (c.chunks ?? [body]).map((x) => Buffer.from(x, 'utf8')) : chunked(body, split === 'byte by byte' ? 1 : 7);
      return { key: V.key, max_bytes: c.max_bytes ?? 16384, requested_limit: c.requested_limit ?? 0, patterns: c.patterns, chunks: chunks.map((b) => b.toString('base64')) };
    });
    const res = await lua.post<Array<{ installed: number; sample: VCase['expect']; encoded: string; codec: string }>>('/run', cases);
    V.cases.forEach((c, i) => {
      const got = res[i]?.sample;
      t.equal(res[i]?.encoded, res[i]?.codec, `${c.name} (${split}): encode_sample makes the codec's bytes`);
      // cjson writes an empty table as {}
      if (got && !Array.isArray(got.findings)) got.findings = [];
      for (const f of got?.findings ?? []) if (!Array.isArray(f.value_hashes)) f.value_hashes = [];
      t.same(got, { ...c.expect, findings: c.expect.findings.map(({ values: _, ...f }) => f) }, `${c.name} (${split})`);
      if (c.patterns) t.equal(res[i]?.installed, c.patterns.length, `${c.name}: its patterns installed`);
    });
  }
  t.notMatch(lua.nginx.errorLog(), /\[error\]/, 'no error logged');
});

t.test('policy patterns: bad ones are logged and skipped, the rest run', async (t) => {
  const lua = await startLuaNginx(t, { locations });
  const r = await fetch(`${lua.nginx.url}/patterns`);
  t.equal((await r.text()).trim(), '1 v2 1 good', 'one of five installed; it finds its value');
  const log = lua.nginx.errorLog();
  t.match(log, /sensitive pattern 2 \(broken\) skipped: regex: /, 'a regex PCRE refuses');
  t.match(log, /sensitive pattern 3 \(Bad Name\) skipped: a name is/, 'a bad name');
  t.match(log, /sensitive pattern 4 \(good\) skipped: the name is taken/, 'a repeated name');
  t.match(log, /sensitive pattern 5 \(badmask\) skipped: masked_regex: /, 'a bad masked_regex');
});

t.test('codec: ResponseSample out, DecideResponse.inspect and OutcomeAck patterns in, as the proto says', async (t) => {
  const lua = await startLuaNginx(t, { locations });
  const decide = Buffer.from(DecideResponseType.encode(DecideResponseType.fromObject({ request_id: 'r', action: 0, inspect: true })).finish()).toString('base64');
  const ack = Buffer.from(OutcomeAckType.encode(OutcomeAckType.fromObject({
    accepted: 1, patterns_version: 'p3', patterns: [{ name: 'passport', regex: '[EG][0-9]{8}', masked_regex: '\\*' }, { name: 'plain', regex: 'x' }],
  })).finish()).toString('base64');
  const r = await lua.post<{ batch: string; inspect: boolean; patterns_version: string; patterns: unknown[] }>('/codec', { decide, ack });
  t.equal(r.inspect, true, 'DecideResponse.inspect');
  t.equal(r.patterns_version, 'p3');
  t.same(r.patterns, [{ name: 'passport', regex: '[EG][0-9]{8}', masked_regex: '\\*' }, { name: 'plain', regex: 'x', masked_regex: '' }]);
  const batch = OutcomeBatchType.toObject(OutcomeBatchType.decode(Buffer.from(r.batch, 'base64')), { longs: Number, defaults: false }) as {
    patterns_version: string; outcomes: Array<{ request_id: string; response?: Record<string, unknown> }>;
  };
  t.equal(batch.patterns_version, 'v7');
  t.same(batch.outcomes[0]?.response, {
    inspected_bytes: 300, truncated: true, records: 4, requested_limit: 20,
    findings: [{ kind: 'cn_mobile', unmasked: 3, masked: 1, value_hashes: [Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]), Buffer.from('abcdefgh')] }],
  });
  t.equal(batch.outcomes[1]?.response, undefined, 'an outcome without a sample has none');
});
