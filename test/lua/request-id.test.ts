// $request_id is one id per request as Lua reads it: nginx draws fresh random bytes on every read
// of a variable the configuration never references, so verdict-http.conf references it. Without
// that, the id in a block body or challenge page is not the id the service decided.
import t from 'tap';
import { startLuaNginx } from './harness.ts';

t.test('ngx.var.request_id reads the same id all through a request', async (t) => {
  const lua = await startLuaNginx(t, {
    locations: `
    location = /ids {
        content_by_lua_block {
            local a, b, c = ngx.var.request_id, ngx.var.request_id, ngx.var.request_id
            ngx.say(require("cjson").encode({ a, b, c }))
        }
    }`,
  });
  const ids = await lua.post<string[]>('/ids');
  t.match(ids[0], /^[0-9a-f]{32}$/);
  t.equal(ids[1], ids[0]);
  t.equal(ids[2], ids[0]);
  const next = await lua.post<string[]>('/ids');
  t.not(next[0], ids[0], 'and another for the next request');
});
