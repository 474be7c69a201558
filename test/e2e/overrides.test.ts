// Issue 16 end to end on real nginx + the Lua gateway + the real service: a client whose address
// the gateway has cached as blocked gets through on its next request after an operator's allow
// override (the revocation rides on the outcome ack of the gateway's next flush, ≤ 1 s by
// default); a block override stops a client at once and its deletion lets it back. The gateway's
// counters reach the service (console state, per gateway).
import t from 'tap';
import type { NginxHandle } from '../../scripts/lib/nginx.ts';
import { ask, sleep, untilPasses as untilPassesAt } from '../helpers/http.ts';
import { startEchoUpstream } from '../helpers/servers.ts';
import { addressCachePolicy, startService, type ServiceHandle } from '../helpers/service.ts';
import { luaVariant } from '../helpers/variants.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let service: ServiceHandle;
let nginx: NginxHandle;
let base: string;
let admin: string;

t.before(async () => {
  const upstream = await startEchoUpstream();
  service = await startService({ policy: addressCachePolicy(), env: { VERDICT_STATE_DIR: mkdtempSync(join(tmpdir(), 'verdict-state-')) } });
  nginx = await luaVariant.start({ upstream: `127.0.0.1:${upstream.port}`, service: service.addr });
  base = `http://127.0.0.1:${nginx.port}`;
  admin = `http://${service.addr}`;
  t.teardown(async () => { await nginx.stop(); await service.stop(); await upstream.close(); });
});

/** Requests `/` from `client` until one passes (helpers/http.ts untilPasses). */
const untilPasses = (client: string) => untilPassesAt(`${base}/`, client, UA);

const json = { 'content-type': 'application/json' };
const UA = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36', accept: 'text/html' };

t.test('an allow override lets a client the gateway has cached as blocked through on its next request', async (t) => {
  const client = '127.0.0.71';
  // probes until the service asks the gateway to refuse the address (sensitive_path cache_after):
  // distinct URLs, as a scanner sends (a URL once probed is refused for everyone at the gateway,
  // target key, and never reaches the service again)
  for (let i = 0; i < 8; i++) await ask(`${base}/actuator/env${i}`, { localAddress: client, headers: UA });
  await sleep(300);
  const blocked = await ask(`${base}/`, { localAddress: client, headers: UA });
  t.equal(blocked.status, 403, 'the shop page is refused from the gateway cache');
  const requestId = /"request_id":"([^"]+)"/.exec(blocked.body)?.[1] ?? '';
  t.ok(requestId, 'the 403 names its request id');

  // the operator looks the stop up: the cached verdict is tied to the decision that cached it
  let rec: { statusCode: number; body: Record<string, unknown> } = { statusCode: 0, body: {} };
  for (let i = 0; i < 30 && rec.statusCode !== 200; i++) {
    const r = await ask(`${admin}/v1/audit?request_id=${requestId}`);
    rec = { statusCode: r.status, body: JSON.parse(r.body) as Record<string, unknown> };
    if (rec.statusCode !== 200) await sleep(100);
  }
  t.equal(rec.statusCode, 200, 'the cache-enforced stop is in the audit trail');
  t.match(rec.body, { source: 'cache', action: 'BLOCK', cache_key: `ip:${client}` });
  t.ok((rec.body.reasons as string[]).some((r) => r === 'probe.sensitive_path'), `with the reasons of the decision that cached it: ${JSON.stringify(rec.body.reasons)}`);

  const made = await ask(`${admin}/v1/overrides`, { method: 'POST', headers: json, body: JSON.stringify({ key: `ip:${client}`, action: 'allow', ttl_s: 600, note: 'e2e', by: 'test' }) });
  t.equal(made.status, 201);
  const { status, ms } = await untilPasses(client);
  t.equal(status, 200, 'the next request passes');
  t.ok(ms <= 1500, `within the gateway's flush interval (1 s) plus a little: ${ms} ms`);
  // the allow revokes the cache keys of this client's stops, the URLs its own probes had refused
  // to everyone (target keys) included
  t.equal((await ask(`${base}/actuator/env0`, { localAddress: client, headers: UA })).status, 200, 'even what was blocked (the operator said allow)');
});

t.test('a block override stops a client at once; deleting it lets the client back', async (t) => {
  const client = '127.0.0.72';
  t.equal((await ask(`${base}/api/promo/info`, { localAddress: client, headers: UA })).status, 200);
  const made = await ask(`${admin}/v1/overrides`, { method: 'POST', headers: json, body: JSON.stringify({ key: `ip:${client}`, action: 'block', ttl_s: 600, note: 'abuse' }) });
  const id = (JSON.parse(made.body) as { id: string }).id;
  t.equal((await ask(`${base}/api/promo/info`, { localAddress: client, headers: UA })).status, 403, 'blocked on the next request');
  await sleep(100);
  t.equal((await ask(`${base}/`, { localAddress: client, headers: UA })).status, 403, 'and cached at the gateway (async route)');
  t.equal((await ask(`${admin}/v1/overrides/${id}`, { method: 'DELETE' })).status, 200);
  const back = await untilPasses(client);
  t.equal(back.status, 200, `back through after the delete (${back.ms} ms)`);
});

t.test('the gateway\'s counters reach the service', async (t) => {
  const state = JSON.parse((await ask(`${admin}/v1/console/state`)).body) as { gateways: Array<{ gateway: string; last_seen: number; counters: Record<string, number> }> };
  t.ok(state.gateways.length >= 1, 'the gateway is on the board');
  const g = state.gateways[0];
  t.ok(g && Date.now() - g.last_seen < 3000, 'reported within the last flush or two');
  t.equal(g?.counters.breaker_state, 0, 'breaker closed');
  t.ok((g?.counters.cache_hits_total ?? 0) >= 1, 'cache hits counted');
});
