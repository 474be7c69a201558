// A poller on an address that people share (a VPN exit, a carrier NAT): the service finds its
// machine-regular timing after the responses (async location), and the default policy caches
// that verdict on the poller's client key ("client:", gateway-plugin/CONTRACT.md: the address
// with its own User-Agent, Accept-Language, Accept-Encoding and sec-ch-ua). The real nginx + Lua
// gateway then refuses the poller from its cache, and a person's browser behind the same address
// still goes through. (Cached on `ip`, as before, scorecard world 3002 had six customers behind a
// VPN exit blocked for a scraper there.)
import t from 'tap';
import { ask, sleep } from '../helpers/http.ts';
import { startAsyncLuaStack } from '../helpers/stack.ts';

const TOOL = { 'user-agent': 'python-httpx/0.25.2', accept: '*/*', 'accept-encoding': 'gzip, deflate' };
const BROWSER = {
  'user-agent': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  'accept-language': 'en-US,en;q=0.9',
  'accept-encoding': 'gzip, deflate, br',
  'sec-ch-ua': '"Chromium";v="120", "Google Chrome";v="120"',
  'sec-fetch-mode': 'navigate',
};

t.test('a machine-regular poller is refused from the gateway cache on its client key; a browser at its address is not', async (t) => {
  const nginx = await startAsyncLuaStack();
  t.teardown(() => nginx.stop());

  const address = '127.0.0.61';
  let status = 0;
  let polls = 0;
  const until = Date.now() + 15_000;
  while (Date.now() < until) {
    status = (await ask(`${nginx.url}/`, { localAddress: address, headers: TOOL })).status;
    polls++;
    if (status !== 200) break;
    await sleep(200);
  }
  t.not(status, 200, `the poller is refused from the gateway cache (after ${polls} polls)`);
  t.not((await ask(`${nginx.url}/`, { localAddress: address, headers: TOOL })).status, 200, 'and stays refused');
  for (let i = 0; i < 3; i++) {
    const r = await ask(`${nginx.url}/`, { localAddress: address, headers: BROWSER });
    t.equal(r.status, 200, `a browser behind the same address goes through (${i + 1})`);
  }
  t.equal((await ask(`${nginx.url}/`, { localAddress: '127.0.0.62', headers: TOOL })).status, 200, 'the same tool from another address is another client');
});
