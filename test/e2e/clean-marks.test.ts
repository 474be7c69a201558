// Issue 15, no call when nothing is at stake, through the real nginx + Lua gateway and the real
// service (the default policy with clean_marks on): a clean inline decision marks the session; its next requests to an
// inline location with $verdict_cleared async are not waited on (the service scores them after
// the response, and the gateway counts them as skipped calls, and inspects their responses); a location with $verdict_cleared
// inline still calls; a probe from the marked session, scored after its response, takes the
// mark back and the session is decided inline again.
import t from 'tap';
import { ask, sleep, sumSeries } from '../helpers/http.ts';
import { startEchoUpstream } from '../helpers/servers.ts';
import { marksPolicy, startService } from '../helpers/service.ts';
import { luaVariant } from '../helpers/variants.ts';

const M = 'verdict_gateway_';
const BROWSER = {
  'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0',
  accept: 'text/html,application/json',
  'accept-language': 'en-US,en;q=0.5',
};

t.test('a clean session is not waited on where cleared clients are not, until something is found on it', async (t) => {
  const upstream = await startEchoUpstream();
  const service = await startService({ policy: marksPolicy() });
  const nginx = await luaVariant.start({
    upstream: `127.0.0.1:${upstream.port}`,
    service: service.addr,
    locations: `
    location /api/promo/ {
        set $verdict_cleared inline;
        {{guard}}
    }
    location / {
        {{guard}}
    }`,
    init: { outcome_flush_ms: 50, metrics_flush_ms: 50 },
  });
  t.teardown(async () => {
    await nginx.stop();
    await service.stop();
    await upstream.close();
  });
  const headers = { ...BROWSER, cookie: 'sid=clean-marks-e2e-1' };
  const from = { headers, localAddress: '127.0.0.21' };
  const inline = async () => sumSeries(await service.metrics(), 'verdict_decisions_total', 'mode="INLINE"');
  const asyncScored = async () => sumSeries(await service.metrics(), 'verdict_decisions_total', 'mode="ASYNC"');
  const skipped = async () => sumSeries((await ask(nginx.metricsUrl)).body, `${M}skipped_calls_total`, 'why="clean mark"');
  const eventually = async (what: () => Promise<boolean>) => {
    const until = Date.now() + 5000;
    while (Date.now() < until) {
      if (await what()) return true;
      await sleep(50);
    }
    return false;
  };

  t.equal((await ask(`${nginx.url}/`, from)).status, 200);
  t.equal(await inline(), 1, 'the first request is decided inline');
  t.match(await service.metrics(), /verdict_clean_marks_given_total 1\b/, 'and marks the session clean');
  // another worker sees a verdict stored by this one within cache.lua's REFRESH_MS (100 ms)
  await sleep(250);

  // declared routes only: requests to a path the policy does not know become authz.shadow_route
  // once the inventory has seen a few, and that is something found (it takes the mark back)
  for (let i = 0; i < 5; i++) t.equal((await ask(`${nginx.url}/promo?from=${i}`, from)).status, 200);
  const reasons = async () => [...(await service.metrics()).matchAll(/^verdict_decision_reasons_total\{reason="([^"]+)"\} (\d+)/gm)].map((m) => `${m[1]} ${m[2]}`).join(', ');
  t.equal(await inline(), 1, `the next five are not waited on (reasons so far: ${await reasons() || 'none'})`);
  t.ok(await eventually(async () => (await asyncScored()) >= 5), 'they are scored after their responses');
  t.ok(await eventually(async () => (await skipped()) === 5), 'and counted as skipped calls at the gateway');
  // issue 17: a skipped call is not the service choosing to look away — the session's JSON
  // responses are inspected (a harvester that earned a clearance would otherwise read unseen;
  // inspect_sample, 5%, is only for requests without a token, session or device)
  const inspected = async () => {
    const inv = await (await fetch(`http://${service.addr}/v1/inventory`)).json() as { endpoints: Array<{ method: string; template: string; exposure: { inspected: number } | null }> };
    return inv.endpoints.find((e) => e.method === 'GET' && e.template === '/promo')?.exposure?.inspected ?? 0;
  };
  t.ok(await eventually(async () => (await inspected()) === 5), `every skipped request's response inspected (${await inspected()} of 5)`);

  t.equal((await ask(`${nginx.url}/api/promo/info`, from)).status, 200);
  t.equal(await inline(), 2, '$verdict_cleared inline: still decided inline');
  t.equal((await ask(`${nginx.url}/`, { ...from, headers: { ...BROWSER, cookie: 'sid=another-session' } })).status, 200);
  t.equal(await inline(), 3, 'another session is not marked by this one');

  // a probe from the marked session: passes (not waited on), is found after its response, and
  // the mark is taken back: the session's next request is decided inline again
  await ask(`${nginx.url}/internal/admin`, from);
  t.ok(await eventually(async () => /verdict_clean_marks_taken_back_total 1\b/.test(await service.metrics())), 'the probe takes the mark back');
  await sleep(150); // the next OutcomeAck carries it to the gateway
  const before = await inline();
  await ask(`${nginx.url}/`, from);
  t.equal(await inline(), before + 1, 'decided inline again once the mark is gone');
});
