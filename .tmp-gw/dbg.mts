import { startNginx } from '/work/main/scripts/lib/nginx.ts';
import { readFileSync } from 'node:fs';
const n = await startNginx({ upstream: '127.0.0.1:9', service: '127.0.0.1:9', init: { outcomes_enabled: false }, locations: `location = /decode { content_by_lua_block {
  local codec = require "verdict.codec"; ngx.req.read_body(); local m, e = codec.decode_decide_response(ngx.req.get_body_data()); ngx.say(require("cjson").encode(m or {e})) } }` });
const r = await fetch(n.url + '/decode', { method: 'POST', body: readFileSync('/work/main/test/vectors/decide_response_allow_unknown_fields.bin') });
console.log(r.status, await r.text());
console.log(n.errorLog());
await n.stop();
