// config.init validation inside nginx: each mistake is named with the option and the fix.
// (The options themselves, their types, defaults and bounds, are checked against the spec by
// test/spec/options.test.ts.)
import t from 'tap';
import { startLuaNginx, type LuaNginx } from './harness.ts';

const locations = `
    location = /config {
        content_by_lua_block {
            local cjson = require "cjson.safe"
            local config = require "verdict.config"
            ngx.req.read_body()
            local saved = config.http
            local out = {}
            for i, opts in ipairs(cjson.decode(ngx.req.get_body_data())) do
                local ok, err = pcall(config.init, opts)
                out[i] = ok and "ok" or tostring(err)
            end
            config.http = saved
            ngx.print(cjson.encode(out))
        }
    }`;

let lua: LuaNginx;
t.before(async () => {
  lua = await startLuaNginx(t, { locations, init: { outcomes_enabled: false } });
});

t.test('config.init validation names the option and the fix', async (t) => {
  const key = 'k'.repeat(32);
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ hmac_key: key }, /^ok$/],
    [{ hmac_key: key, pool_sise: 1 }, /unknown option "pool_sise"/],
    [{ hmac_key: key, pool_size: 0 }, /"pool_size" must be an integer between 1 and 10000/],
    [{ hmac_key: key, breaker_failures: 1.5 }, /"breaker_failures" must be an integer/],
    [{ hmac_key: key, shed_timeout_share: -0.1 }, /"shed_timeout_share" must be a number between 0 and 1/],
    [{ hmac_key: key, outcomes_enabled: 'yes' }, /"outcomes_enabled" must be true or false/],
    [{ hmac_key: key, service: 'http://127.0.0.1:9400' }, /takes no URL scheme/],
    [{ hmac_key: key, service: '10.1.2.3:9400' }, /not loopback: set secret_file/],
    [{ hmac_key: key, service: '10.1.2.3:9400', secret: 's'.repeat(32) }, /^ok$/],
    [{ hmac_key: key, service: '[::1]:9400' }, /^ok$/],
    [{ hmac_key: key, service: 'frame:unix:/run/v.sock, 127.0.0.1:9400' }, /^ok$/],
    [{ hmac_key: key, service: 'unix:rel.sock' }, /must be "unix:\/absolute\/path.sock"/],
    [{}, /"hmac_key" is required/],
  ];
  const got = await lua.post<string[]>('/config', cases.map(([o]) => o));
  cases.forEach(([o, re], i) => t.match(got[i], re, JSON.stringify(o)));
});
