import t from 'tap';
import { DONE_HOOK, luaBytes, pacingScript, parseDurationUs, parseWrkOutput, rotatingScript } from '../../bench/lib/wrk.ts';

const TEXT_REPORT = `Running 10s test @ http://127.0.0.1:8080/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  410.22us  12.31ms   88.14%
    Req/Sec    42.11k     1.20k   44.90k    71.00%
  Latency Distribution
     50%    1.45ms
     75%    1.70ms
     90%    2.01ms
     99%    3.12ms
  419001 requests in 10.00s, 61.54MB read
  Socket errors: connect 0, read 2, write 0, timeout 7
  Non-2xx or 3xx responses: 13
Requests/sec:  41897.35
Transfer/sec:      6.15MB
`;

t.test('durations in wrk units become microseconds', async (t) => {
  t.equal(parseDurationUs('410.22us'), 410.22);
  t.equal(parseDurationUs('1.5ms'), 1500);
  t.equal(parseDurationUs('2.00s'), 2_000_000);
  t.equal(parseDurationUs('1.00m'), 60_000_000);
  t.ok(Number.isNaN(parseDurationUs('fast')));
});

t.test('the text report parses (fallback without the done hook)', async (t) => {
  const r = parseWrkOutput(TEXT_REPORT);
  t.equal(r.requests, 419001);
  t.equal(r.durationS, 10);
  t.equal(r.rps, 41897.35);
  t.equal(r.latencyUs.p50, 1450);
  t.equal(r.latencyUs.p90, 2010);
  t.equal(r.latencyUs.p99, 3120);
  t.equal(r.latencyUs.mean, 1520);
  t.equal(r.latencyUs.max, 12310);
  t.same(r.errors, { connect: 0, read: 2, write: 0, timeout: 7, status: 13 });
});

t.test('the done-hook line wins over the text and is exact', async (t) => {
  const line = 'VERDICT_WRK {"requests":1000,"duration_us":2000000,"connect":1,"read":0,"write":0,"timeout":0,"status":5,"mean":812.500,"p50":700,"p90":1200,"p99":2500,"p999":4000,"max":9000}';
  const r = parseWrkOutput(`${TEXT_REPORT}${line}\n`);
  t.equal(r.requests, 1000);
  t.equal(r.durationS, 2);
  t.equal(r.rps, 500);
  t.same(r.latencyUs, { mean: 812.5, p50: 700, p90: 1200, p99: 2500, p999: 4000, max: 9000 });
  t.same(r.errors, { connect: 1, read: 0, write: 0, timeout: 0, status: 5 });
});

t.test('no report is an error, not zeros', async (t) => {
  t.throws(() => parseWrkOutput('unable to connect to 127.0.0.1:1 Connection refused\n'), /not a wrk report/);
});

t.test('the done hook prints the line the parser reads', async (t) => {
  t.match(DONE_HOOK, /function done\(summary, latency, requests\)/);
  t.match(DONE_HOOK, /VERDICT_WRK /);
  t.match(DONE_HOOK, /latency:percentile\(99\)/);
});

t.test('Lua string literals carry any bytes, digits after escapes included', async (t) => {
  t.equal(luaBytes('GET /a'), '"GET /a"');
  t.equal(luaBytes('say "hi"\\'), '"say \\034hi\\034\\092"');
  // 0x01 followed by the digit "2" must not become the escape \12
  t.equal(luaBytes(Buffer.from([1, 0x32, 0, 255])), '"\\0012\\000\\255"');
});

t.test('scripts: rotation builds requests once; pacing spreads the rate', async (t) => {
  const s = rotatingScript([{ method: 'POST', path: '/x', headers: { 'content-type': 'application/json' }, body: '{}' }, { method: 'GET', path: '/', headers: {} }]);
  t.match(s, /wrk\.format\(r\[1\], r\[2\], r\[3\], r\[4\]\)/);
  t.match(s, /\{"POST","\/x",\{\["content-type"\]="application\/json"\},"\{\}"\}/);
  t.match(s, /\{"GET","\/",\{\},nil\}/);
  t.match(pacingScript(2000), /local interval_ms = 0\.500000/);
  t.match(pacingScript(2000), /function delay\(\)/);
});

t.test('rawRequest builds the bytes wrk.format would, and rotatingFileScript reads them back in wrk', async (t) => {
  const { rawRequest, rotatingFileScript } = await import('../../bench/lib/wrk.ts');
  const { mkdtempSync, readFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { spawnSync } = await import('node:child_process');
  const post = { method: 'POST', path: '/api/auth/login', headers: { Host: 'shop.example', 'content-type': 'application/json' }, body: '{"a":1}' };
  t.equal(rawRequest(post).toString(), 'POST /api/auth/login HTTP/1.1\r\nHost: shop.example\r\ncontent-type: application/json\r\nContent-Length: 7\r\n\r\n{"a":1}');
  t.equal(rawRequest({ method: 'GET', path: '/', headers: { Host: 'h' } }).toString(), 'GET / HTTP/1.1\r\nHost: h\r\n\r\n');
  const dir = mkdtempSync(join(tmpdir(), 'verdict-wrk-test-'));
  const script = rotatingFileScript([post, { method: 'GET', path: '/x', headers: { Host: 'h' } }], join(dir, 'mix.bin'));
  t.match(readFileSync(join(dir, 'mix.bin'), 'utf8'), /^\d+\nPOST /);
  // the generated Lua must parse and rebuild both requests: run its init() under LuaJIT when present
  const luajit = spawnSync('sh', ['-c', 'command -v luajit || command -v lua5.1'], { encoding: 'utf8' }).stdout.trim();
  if (!luajit) { t.comment('no standalone Lua interpreter here: the script is exercised by the bench'); return; }
  const probe = `${script}\ninit({})\nlocal a, b = request(), request()\nio.write(#a, " ", #b)\n`;
  const r = spawnSync(luajit, ['-'], { input: probe, encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.same(r.stdout.split(' ').map(Number).sort((x, y) => x - y), [rawRequest({ method: 'GET', path: '/x', headers: { Host: 'h' } }).length, rawRequest(post).length].sort((x, y) => x - y));
});

// The paced script's latency from the intended send time (coordinated omission corrected): a
// server that takes 20 ms per request behind one connection offered 100 requests/s falls
// behind its schedule, and every request after the first waits for the one before it. wrk's own
// measure (from the actual send) stays at the service time; the corrected one grows with the queue.
t.test('pacingScript measures latency from the intended send time (real wrk, local server)', async (t) => {
  const { spawnSync } = await import('node:child_process');
  if (spawnSync('sh', ['-c', 'command -v wrk']).status !== 0) {
    t.fail('wrk is not installed (scripts/ensure-deps.mjs --wrk installs it)');
    return;
  }
  const { createServer } = await import('node:http');
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { runWrk } = await import('../../bench/lib/wrk.ts');
  const server = createServer((req, res) => {
    setTimeout(() => {
      res.writeHead(200, { 'X-Bench-Due': String(req.headers['x-bench-due'] ?? ''), 'content-length': '2' });
      res.end('ok');
    }, 20);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const dir = mkdtempSync(join(tmpdir(), 'verdict-wrk-co-'));
  const r = await runWrk({ url: `http://127.0.0.1:${port}/`, script: rotatingScript([{ method: 'GET', path: '/', headers: { Host: 'h' } }]) + pacingScript(100), durationS: 2, connections: 1, cpu: null, dir, name: 'co' });
  t.ok(r.corrected, 'the corrected latency is reported');
  const co = r.corrected!;
  t.equal(co.unmatched, 0, 'every response carried its due time back');
  t.ok(co.n >= r.requests - 1 && co.n > 50, `measured ${co.n} of ${r.requests} responses`);
  t.ok(r.latencyUs.p50 >= 19_000 && r.latencyUs.p50 < 60_000, `wrk from the actual send: p50 ${r.latencyUs.p50} µs (the service time)`);
  t.ok(co.p50 > 3 * r.latencyUs.p50, `from the intended send: p50 ${co.p50} µs, the queue behind the schedule`);
  t.ok(co.p99 > co.p50, `p99 ${co.p99} µs`);
});
