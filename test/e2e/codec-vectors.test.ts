// Wire vectors: bytes written by the Lua codec (codec.lua, inside a real nginx) decode in
// protobufjs and equal the checked-in vectors byte for byte; bytes written by protobufjs decode
// in Lua to the vector's message (unknown fields skipped, defaults filled in).
import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { repoRoot, startNginx, type NginxHandle } from '../../scripts/lib/nginx.ts';

const vectorsDir = join(repoRoot, 'test/vectors');
const root = new protobuf.Root().loadSync(join(repoRoot, 'decision-service/src/wire/verdict.proto'), { keepCase: true });

interface VectorFile { type: string; direction: 'encode' | 'decode'; message: Record<string, unknown> }
const vectors = readdirSync(vectorsDir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => {
    const name = f.replace(/\.json$/, '');
    const v = JSON.parse(readFileSync(join(vectorsDir, f), 'utf8')) as VectorFile;
    return { name, ...v, bin: readFileSync(join(vectorsDir, `${name}.bin`)) };
  });

// Lua side: /encode turns a JSON vector into bytes with codec.lua; /decode turns bytes into JSON.
const locations = `
    location = /encode {
        content_by_lua_block {
            local cjson = require "cjson.safe"
            local codec = require "verdict.codec"
            ngx.req.read_body()
            local v = cjson.decode(ngx.req.get_body_data())
            local BYTES = { "session_hash", "token_hash", "device_hash", "password_hash" }
            local function unb64(req)
                for _, f in ipairs(BYTES) do
                    if req[f] then req[f] = ngx.decode_base64(req[f]) end
                end
            end
            local bytes
            if v.type == "verdict.v1.DecideRequest" then
                unb64(v.message)
                bytes = codec.encode_decide_request(v.message)
            elseif v.type == "verdict.v1.OutcomeBatch" then
                for _, o in ipairs(v.message.outcomes or {}) do
                    if o.request then unb64(o.request) end
                end
                bytes = codec.encode_outcome_batch(v.message)
            else
                return ngx.exit(400)
            end
            ngx.header["Content-Type"] = "application/x-protobuf"
            ngx.print(bytes)
        }
    }
    location = /decode {
        content_by_lua_block {
            local cjson = require "cjson.safe"
            local codec = require "verdict.codec"
            ngx.req.read_body()
            local body = ngx.req.get_body_data() or ""
            local msg, err
            if ngx.var.arg_type == "DecideResponse" then
                msg, err = codec.decode_decide_response(body)
            else
                msg, err = codec.decode_outcome_ack(body)
            end
            if not msg then
                ngx.status = 422
                return ngx.say(err)
            end
            ngx.header["Content-Type"] = "application/json"
            ngx.print(cjson.encode(msg))
        }
    }`;

let nginx: NginxHandle;
t.before(async () => {
  nginx = await startNginx({ upstream: '127.0.0.1:9', service: '127.0.0.1:9', locations, init: { outcomes_enabled: false } });
});
t.teardown(async () => { await nginx?.stop(); });

t.ok(vectors.length >= 6, 'vectors are checked in');

for (const v of vectors.filter((x) => x.direction === 'encode')) {
  t.test(`Lua encodes ${v.name} exactly like protobufjs`, async (t) => {
    const res = await fetch(`${nginx.url}/encode`, { method: 'POST', body: JSON.stringify(v) });
    t.equal(res.status, 200);
    const bytes = Buffer.from(await res.arrayBuffer());
    const type = root.lookupType(v.type);
    const decoded = type.toObject(type.decode(bytes), { enums: String, longs: Number, bytes: String });
    t.same(decoded, v.message, 'protobufjs decodes the Lua bytes to the vector');
    t.equal(bytes.toString('hex'), v.bin.toString('hex'), 'same bytes as the checked-in vector');
  });
}

for (const v of vectors.filter((x) => x.direction === 'decode')) {
  t.test(`Lua decodes ${v.name}`, async (t) => {
    const short = v.type.replace('verdict.v1.', '');
    const res = await fetch(`${nginx.url}/decode?type=${short}`, { method: 'POST', body: v.bin });
    t.equal(res.status, 200, await res.clone().text());
    // Debian's lua-cjson writes an empty Lua table as {}: read that back as the empty list
    const got = JSON.parse(await res.text(), (k, val) =>
      (k === 'reasons' || k === 'verdicts') && val && typeof val === 'object' && !Array.isArray(val) && Object.keys(val).length === 0 ? [] : val);
    const type = root.lookupType(v.type);
    const want = type.toObject(type.fromObject(v.message), { enums: String, longs: Number, bytes: String, defaults: true, arrays: true });
    t.same(got, want, 'Lua reads what protobufjs wrote (defaults filled, unknown fields skipped)');
  });
}

t.test('Lua rejects truncated and junk bytes as "bad response"', async (t) => {
  const block = vectors.find((x) => x.name === 'decide_response_block')!;
  for (const body of [block.bin.subarray(0, block.bin.length - 3), Buffer.from('HTTP/1.1 200 OK\r\n'), Buffer.from([0xff, 0xff, 0xff])]) {
    const res = await fetch(`${nginx.url}/decode?type=DecideResponse`, { method: 'POST', body });
    t.equal(res.status, 422);
    t.equal((await res.text()).trim(), 'bad response');
  }
});
