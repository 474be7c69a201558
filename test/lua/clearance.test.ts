// verdict.clearance inside nginx against gateway-plugin/spec/clearance-vectors.json, the vectors
// the TypeScript reference (test/spec/clearance.test.ts) and njs (test/e2e/clearance-njs.test.ts)
// pass too: key derivation, the network and browser hashes, MACs, nonces and tokens issued
// byte for byte, and every proof and token check with its verdict.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { startLuaNginx } from './harness.ts';

interface Key { id: string; secret: string }
interface Vectors {
  derive: Array<{ hmac_key: string; id: string; secret: string }>;
  net_hash: Array<{ ip: string | null; subnet: string; nh: string }>;
  ua_hash: Array<{ ua: string; uh: string }>;
  mac: Array<{ secret: string; text: string; mac: string }>;
  nonces: Array<{ name: string; key: Key; iat: number; difficulty: number; ttl: number; client_ip: string; ua: string; rand: string; nonce: string }>;
  proof_checks: Array<{ name: string; keys: Key[]; now: number; client_ip: string; ua: string; used: boolean; proof: string; expect: Record<string, unknown> }>;
  tokens: Array<{ name: string; key: Key; now: number; level: number; ttl: number; client_ip: string; ua: string; token: string }>;
  token_checks: Array<{ name: string; keys: Key[]; now: number; client_ip: string; ua: string; token: string; expect: Record<string, unknown> }>;
}
const V = JSON.parse(readFileSync(new URL('../../gateway-plugin/spec/clearance-vectors.json', import.meta.url), 'utf8')) as Vectors;

// One location runs a list of operations through verdict.clearance and answers their results.
const locations = `
    location = /run {
        client_body_buffer_size 4m;
        client_max_body_size 4m;
        content_by_lua_block {
            local cjson = require "cjson.safe"
            local c = require "verdict.clearance"
            ngx.req.read_body()
            local out = {}
            for i, s in ipairs(cjson.decode(ngx.req.get_body_data())) do
                if s.op == "derive" then
                    local k = c.derive_keys(s.hmac_key)[1]
                    out[i] = { id = k.id, secret = k.secret }
                elseif s.op == "net" then
                    out[i] = { c.net_hash(s.ip), c.net_hash_subnet(s.subnet) }
                elseif s.op == "ua" then
                    out[i] = c.ua_hash(s.ua)
                elseif s.op == "mac" then
                    out[i] = c.mac(s.secret, s.text)
                elseif s.op == "nonce" then
                    c.set_keys({ s.key })
                    out[i] = (c.issue_nonce(s.difficulty, s.ttl, s.client_ip, s.ua, s.iat, s.rand))
                elseif s.op == "token" then
                    c.set_keys({ s.key })
                    out[i] = (c.issue_token(s.level, s.ttl, s.client_ip, s.ua, s.now))
                elseif s.op == "proof" then
                    c.set_keys(s.keys)
                    local used = function() return not s.used end
                    local res, why = c.check_proof(s.proof, s.client_ip, s.ua, used, s.now)
                    if res then
                        out[i] = { ok = true, level = res.level, ttl = res.ttl, rand = res.rand, exp = res.exp }
                    else
                        out[i] = { ok = false, why = why }
                    end
                elseif s.op == "check" then
                    c.set_keys(s.keys)
                    local state, level, age, why = c.check_token(s.token, s.client_ip, s.ua, s.now)
                    local r = { state = string.lower(state) }
                    if state == "VALID" then r.level, r.age_s = level, age end
                    if state == "INVALID" then r.why = why end
                    out[i] = r
                end
            end
            ngx.header["Content-Type"] = "application/json"
            ngx.print(cjson.encode(out))
        }
    }`;

t.test('verdict.clearance passes the shared clearance vectors', async (t) => {
  const lua = await startLuaNginx(t, { locations });
  const run = <T,>(ops: unknown[]) => lua.post<T[]>('/run', ops);

  const derived = await run<Key>(V.derive.map((d) => ({ op: 'derive', hmac_key: d.hmac_key })));
  V.derive.forEach((d, i) => t.same(derived[i], { id: d.id, secret: d.secret }, `derive: ${d.hmac_key}`));

  const nets = await run<[string, string]>(V.net_hash.map((n) => ({ op: 'net', ip: n.ip ?? n.subnet, subnet: n.subnet })));
  V.net_hash.forEach((n, i) => {
    if (n.ip !== null) t.equal(nets[i]?.[0], n.nh, `net_hash of ${n.ip}`);
    t.equal(nets[i]?.[1], n.nh, `net_hash of subnet ${n.subnet}`);
  });
  const uas = await run<string>(V.ua_hash.map((u) => ({ op: 'ua', ua: u.ua })));
  V.ua_hash.forEach((u, i) => t.equal(uas[i], u.uh, `ua_hash ${JSON.stringify(u.ua).slice(0, 40)}`));
  const macs = await run<string>(V.mac.map((m) => ({ op: 'mac', secret: m.secret, text: m.text })));
  V.mac.forEach((m, i) => t.equal(macs[i], m.mac, `mac of ${JSON.stringify(m.text).slice(0, 40)}`));

  const nonces = await run<string>(V.nonces.map((n) => ({ op: 'nonce', ...n })));
  V.nonces.forEach((n, i) => t.equal(nonces[i], n.nonce, `nonce: ${n.name}`));
  const tokens = await run<string>(V.tokens.map((k) => ({ op: 'token', ...k })));
  V.tokens.forEach((k, i) => t.equal(tokens[i], k.token, `token: ${k.name}`));

  const proofs = await run<Record<string, unknown>>(V.proof_checks.map((p) => ({ op: 'proof', ...p })));
  V.proof_checks.forEach((p, i) => t.same(proofs[i], p.expect, `proof: ${p.name}`));
  const checks = await run<Record<string, unknown>>(V.token_checks.map((c) => ({ op: 'check', ...c })));
  V.token_checks.forEach((c, i) => t.same(checks[i], c.expect, `token check: ${c.name}`));
  t.ok(V.proof_checks.length > 50 && V.token_checks.length > 30, 'the vectors cover the checks');
});
