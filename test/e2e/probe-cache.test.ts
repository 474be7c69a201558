// A scanner rotating addresses through an async location (issue 14): the service scores a probe
// after the response, its verdict carries the probed URL as the cache key ("target:<path>?<query>",
// gateway-plugin/CONTRACT.md), and the real nginx + Lua gateway refuses that exact URL from then on,
// whoever asks (the scanner's next address asks for the same list), while every other URL of the
// location, the same path with another query included, still goes through.
import t from 'tap';
import { ask, sleep } from '../helpers/http.ts';
import { startAsyncLuaStack } from '../helpers/stack.ts';

t.test('a probed URL is refused at the gateway once scored, also on an async location', async (t) => {
  // the default policy: the address itself is never cached for probes, only the probed URLs
  const nginx = await startAsyncLuaStack();
  t.teardown(() => nginx.stop());

  for (const [path, query] of [['/.git/config', ''], ['/search', "q=%3Cscript%3Ealert(1)%3C/script%3E"]] as const) {
    const u = `${nginx.url}${path}${query ? `?${query}` : ''}`;
    t.equal((await ask(u)).status, 200, `${path}: the first ask is not waited on (async)`);
    let status = 0;
    const until = Date.now() + 5000;
    while (Date.now() < until) {
      status = (await ask(u)).status;
      if (status !== 200) break;
      await sleep(50);
    }
    t.equal(status, 403, `${path}: refused from the gateway's cache once scored`);
  }
  t.equal((await ask(`${nginx.url}/.git/config?x=1`)).status, 200, 'the same path with another query is another URL');
  t.equal((await ask(`${nginx.url}/search?q=shoes`)).status, 200, 'an ordinary search goes through');
  t.equal((await ask(`${nginx.url}/`)).status, 200, 'the home page goes through');
});
