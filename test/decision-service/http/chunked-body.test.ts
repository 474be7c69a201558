// Fuzzer finding 5: a body in 1-byte chunks cost the service ~6 µs and ~300 bytes of heap per
// byte (Node hands each chunk to JavaScript as a Buffer of its own): 2.7-3.1 s of CPU and
// +540 MB RSS for a 900 KB outcomes batch in 5.4 MB on the wire, stalling other clients' decides
// for ~0.4 s. Now a body in more than 4096 pieces averaging under 64 bytes is refused as soon as
// that is clear, and the connection closed (json-body.ts readBody): measured 10-20 ms of CPU and
// no RSS growth (chunked-body.measure.ts prints the numbers). The bounds here are loose enough
// for a loaded 2-core machine and still far below the old costs.

import { readFileSync } from 'node:fs';
import t from 'tap';
import { startTarget } from '../hardening-lib.ts';
import { chunkedWire, decideJson, outcomesJson, sendWire } from './chunked-body.measure.ts';

const cpuMs = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(f[11]) + Number(f[12])) * 10;
};

t.test('bodies in absurdly many tiny chunks are refused early and cheaply', async (t) => {
  const target = await startTarget();
  t.teardown(() => target.stop());
  const pid = target.child.pid ?? 0;

  // a real client's chunking (at most 4096 pieces, or larger ones) is read as before
  t.match(await sendWire(target.httpPort, chunkedWire('/v1/decide', decideJson(60_000), 15)), /^HTTP\/1.1 200/, '60 KB in 4,000 chunks of 15 bytes');
  t.match(await sendWire(target.httpPort, chunkedWire('/v1/decide', decideJson(3000), 1)), /^HTTP\/1.1 200/, '3 KB in 1-byte chunks');
  t.match(await sendWire(target.httpPort, chunkedWire('/v1/outcomes', outcomesJson(500_000), 65_536)), /^HTTP\/1.1 200/, '500 KB of outcomes in 64 KiB chunks');

  const answer = await sendWire(target.httpPort, chunkedWire('/v1/decide', decideJson(60_000), 1));
  t.match(answer, /^HTTP\/1.1 400/, `60 KB decide in 1-byte chunks: ${answer}`);

  await new Promise((r) => setTimeout(r, 300));
  const rss0 = target.rssMiB();
  const cpu0 = cpuMs(pid);
  const wire = chunkedWire('/v1/outcomes', outcomesJson(900_000), 1);
  for (let i = 0; i < 3; i++) t.match(await sendWire(target.httpPort, wire), /^HTTP\/1.1 400/, `${(wire.length / 1e6).toFixed(1)} MB on the wire in 1-byte chunks`);
  const cpu = cpuMs(pid) - cpu0;
  await new Promise((r) => setTimeout(r, 300));
  const grown = target.rssMiB() - rss0;
  t.ok(cpu < 1500, `service CPU for three of them: ${cpu} ms (was ~3 s for each)`);
  t.ok(grown < 100, `service RSS grew ${grown.toFixed(1)} MiB (was ~+300 MB for each)`);

  const r = await fetch(`http://127.0.0.1:${target.httpPort}/v1/decide`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_ip: '192.0.2.1', method: 'GET', path: '/' }) });
  t.equal(r.status, 200, 'still serving');
});
