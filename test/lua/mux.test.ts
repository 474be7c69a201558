// verdict.mux inside nginx: many calls of one worker in flight on one connection, each settled
// with its own answer, including when calls before it missed their budget and their (late)
// answers arrive first: a late answer is dropped, never handed to the next call (the semaphores
// of timed-out calls are not reused while an answer may still be posted to them).
import t, { type Test } from 'tap';
import { createServer, type Socket } from 'node:net';
import { DecideRequestType, DecideResponseType } from '../../decision-service/src/wire/codec.ts';
import { startLuaNginx } from './harness.ts';

/** Answers each DECIDE with a VERDICT naming its request, after the delay its path asks
 *  (/delay/<ms>), in arrival order (a later answer never overtakes an earlier one). */
async function startDelayingStandIn(t: Test): Promise<{ port: number; reads: number; frames: number }> {
  const state = { port: 0, reads: 0, frames: 0 };
  const sockets = new Set<Socket>();
  const srv = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let buf = Buffer.alloc(0);
    let last = 0; // when the previous answer goes out (ms, Date.now())
    // one queue per connection, drained in order (timers of different durations that expire
    // together fire in no guaranteed order: that would be the stand-in reordering its answers)
    const queue: Array<{ at: number; out: Buffer }> = [];
    let timer: NodeJS.Timeout | undefined;
    const drain = () => {
      timer = undefined;
      const now = Date.now();
      const ready: Buffer[] = [];
      while (queue.length && queue[0]!.at <= now) ready.push(queue.shift()!.out);
      if (ready.length && !sock.destroyed) sock.write(Buffer.concat(ready));
      if (queue.length) timer = setTimeout(drain, queue[0]!.at - now);
    };
    sock.on('data', (d: Buffer) => {
      state.reads++;
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const len = buf.readUInt32BE(0);
        const payload = buf.subarray(5, 4 + len);
        buf = buf.subarray(4 + len);
        state.frames++;
        const req = DecideRequestType.decode(payload) as unknown as { request_id: string; path: string };
        const delay = Number(/^\/delay\/(\d+)/.exec(req.path)?.[1] ?? 0);
        const at = Math.max(last, Date.now() + delay);
        last = at;
        const body = DecideResponseType.encode(DecideResponseType.fromObject({ request_id: req.request_id, action: 0, reasons: [req.request_id] })).finish();
        const out = Buffer.alloc(5 + body.length);
        out.writeUInt32BE(body.length + 1, 0);
        out[4] = 2;
        out.set(body, 5);
        queue.push({ at, out });
        if (!timer) timer = setTimeout(drain, at - Date.now());
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const a = srv.address();
  state.port = typeof a === 'object' && a ? a.port : 0;
  t.teardown(() => new Promise<void>((r) => { for (const s of sockets) s.destroy(); srv.close(() => r()); }));
  return state;
}

// call(id, delay, budget) from a test location: what came back, checked against the id asked
const location = `
    location = /calls {
        content_by_lua_block {
            local cjson = require "cjson.safe"
            local client = require "verdict.client"
            local codec = require "verdict.codec"
            ngx.req.read_body()
            local plan = cjson.decode(ngx.req.get_body_data())
            local function one(p)
              local body = codec.encode_decide_request({ request_id = p.id, client_ip = "192.0.2.1", method = "GET",
                path = "/delay/" .. p.delay, ts_ms = math.floor(ngx.now() * 1000), budget_ms = p.budget })
              local res, err = client.call("decide", body, p.budget, p.id)
              if not res then return { id = p.id, err = err } end
              local v = codec.decode_decide_response(res)
              return { id = p.id, got = v and v.request_id or "undecodable" }
            end
            local threads, out = {}, {}
            for i, p in ipairs(plan) do
              if p.after and p.after > 0 then ngx.sleep(p.after / 1000) end
              threads[i] = ngx.thread.spawn(one, p)
            end
            for i = 1, #threads do local _, r = ngx.thread.wait(threads[i]) out[i] = r end
            ngx.sleep(0.2) -- late answers arrive and are dropped
            local states = require("verdict.mux").states()
            ngx.print(cjson.encode({ results = out, states = states }))
        }
    }`;

interface Plan { id: string; delay: number; budget: number; after?: number }
interface Result { id: string; got?: string; err?: string }
interface Answer { results: Result[]; states: Record<string, Array<{ state: string; in_flight: number; live: number }>> }

t.test('mux: every call gets its own answer; late answers are dropped, not handed on', async (t) => {
  const stand = await startDelayingStandIn(t);
  const lua = await startLuaNginx(t, { locations: location, service: `frame:127.0.0.1:${stand.port}`, init: { transport: 'mux', outcomes_enabled: false } });

  // a call that misses its budget, then one right behind it whose answer comes after the late one
  const seq = await lua.post<Answer>('/calls', [
    { id: 'late-1', delay: 60, budget: 10 },
    { id: 'next-1', delay: 0, budget: 500, after: 20 },
  ]);
  t.same(seq.results, [{ id: 'late-1', err: 'timeout' }, { id: 'next-1', got: 'next-1' }], 'the late answer went nowhere; the next call got its own');

  // many at once, random budgets and delays: each either times out or gets exactly its own answer
  let seed = 7;
  let own = 0;
  let timedOut = 0;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
  for (let round = 0; round < 5; round++) {
    const plan: Plan[] = Array.from({ length: 60 }, (_, i) => ({
      id: `r${round}-${i}`, delay: rnd(8) === 0 ? 20 + rnd(30) : rnd(3), budget: 10 + rnd(120), after: rnd(5) === 0 ? 1 : 0,
    }));
    const a = await lua.post<Answer>('/calls', plan);
    const wrong = a.results.filter((r) => r.got !== undefined && r.got !== r.id);
    const other = a.results.filter((r) => r.got === undefined && r.err !== 'timeout');
    t.same(wrong, [], `round ${round}: no call got another's answer (${a.results.filter((r) => r.got === r.id).length} own, ${a.results.filter((r) => r.err === 'timeout').length} timed out)`);
    t.same(other, [], `round ${round}: no other failure`);
    own += a.results.filter((r) => r.got === r.id).length;
    timedOut += a.results.filter((r) => r.err === 'timeout').length;
    const conn = Object.values(a.states)[0]![0]!;
    t.equal(conn.state, 'ready', 'the connection stayed up');
    t.equal(conn.live, 0, 'no call left waiting');
  }
  t.ok(own > 0 && timedOut > 0, `both happened: ${own} answered in time, ${timedOut} timed out`);
  t.ok(stand.frames >= 302, `all frames reached the service (${stand.frames})`);
  t.ok(stand.reads < stand.frames, `frames were coalesced into fewer reads (${stand.reads} reads for ${stand.frames} frames)`);
});
