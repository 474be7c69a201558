-- Multiplexed side calls (`transport = "mux"`): per worker, `mux_connections` long-lived framed
-- connections per service instance carry every decide call of the worker, pipelined.
--
-- Each connection is owned by one background timer (started from init_worker) running two light
-- threads on one cosocket (a cosocket belongs to the context that made it, so no request may
-- touch it):
--   writer (the timer itself): connects, answers the service's CHALLENGE with HELLO when a
--     secret is set (CONTRACT.md), then sends everything queued since its last send in ONE
--     send: under load the frames of many requests leave in one syscall; when idle a request's
--     enqueue wakes it through a semaphore, so nothing waits for a batch to fill. It also
--     reconnects with backoff, closes a connection that stopped answering, pings an idle one,
--     and ends with the worker.
--   reader: reads frames and hands each answer to the request waiting for it through that
--     request's ngx.semaphore; the request waits with what is left of its budget.
--
-- Matching answers to requests: the service answers each connection's frames in the order it
-- received them (CONTRACT.md), so every frame queued is paired, at the moment it is queued (no
-- yield in between), with an entry appended to the connection's FIFO; the byte order on the wire
-- is the FIFO order. Each answer settles the FIFO's oldest entry. On top of that every VERDICT
-- names its request (DecideResponse.request_id = $request_id, unique per request): one that
-- does not name the entry's request means the stream is out of step: the connection is dropped
-- and every call on it fails ("bad response"), so a request never gets another's verdict.
-- ERROR frames (DEADLINE, BAD_BODY...) carry no id: order alone matches them.
--
-- Budget: one total deadline per call, as with the pool. A call that misses it fails "timeout"
-- and leaves its FIFO entry behind, abandoned: the late answer still arrives in order and is
-- dropped here (the service also queues a cacheable late verdict for this worker's next
-- OutcomeAck: late-verdict capture works as with the pool).
--
-- Failures (the causes of client.lua): a call never waits on a connection known dead. While a
-- connection is down (the last connect was refused or failed, or the connection broke and the
-- reconnect backs off) calls fail at once with its cause ("refused", "closed", "bad response"...).
-- A connection that breaks fails every call on it at once ("closed", or "bad response" for a
-- stream out of step). While (re)connecting, calls queue and wait within their budget. At
-- MAX_IN_FLIGHT calls unanswered on one connection a call fails at once ("timeout").
--
-- Worker reload / exit: from the moment ngx.worker.exiting() is true, new calls of the old worker
-- take the per-request pool (client.lua); the writer sends what was queued, waits for the calls
-- in flight (at most DRAIN_MS), then closes the connection and its timer ends, so an old worker
-- is never kept alive by it. The new worker's init_worker opens its own connections.
--
-- Known limits: answers of one connection come back in order, so one slow decide delays the ones
-- behind it on that connection (the service decides synchronously, so this is the queueing the
-- service would do anyway); `mux_connections` > 1 spreads them.

local config = require "verdict.config"
local log = require "verdict.log"
local client = require "verdict.client"
local semaphore = require "ngx.semaphore"

local ngx = ngx
local tcp = ngx.socket.tcp
local ngx_now, update_time = ngx.now, ngx.update_time
local spawn, kill, wait = ngx.thread.spawn, ngx.thread.kill, ngx.thread.wait
local timer_at = ngx.timer.at
local exiting = ngx.worker.exiting
local byte, sub, match, tostring = string.byte, string.sub, string.match, tostring
local min, floor = math.min, math.floor
local hmac_sha1 = ngx.hmac_sha1
local ERR, WARN, NOTICE = ngx.ERR, ngx.WARN, ngx.NOTICE
local cause_of, frame_header, now_ms = client.cause_of, client.frame_header, client.now_ms

local ok_clear, clear = pcall(require, "table.clear")
if not ok_clear then clear = function(t) for k in pairs(t) do t[k] = nil end end end

local _M = { _VERSION = "0.1.0" }

local DECIDE, VERDICT, PING, PONG, CHALLENGE, HELLO, ERROR = 1, 2, 5, 6, 7, 8, 15
local MAX_FRAME = 1048576
local MAX_IN_FLIGHT = 1024     -- calls unanswered on one connection before calls fail at once
local CONNECT_MS = 1000        -- connect, and the CHALLENGE read when authenticating
local SEND_MS = 1000           -- a send stuck this long (the service stopped reading) drops the connection
local READ_MS = 3600000        -- the reader never gives up on its own: the writer ends it
local TICK_S = 0.1             -- the writer wakes at least this often (exit, stall, ping): an old
                               -- worker notices its exit within this
local STALL_MS = 5000          -- calls outstanding and nothing received for this long: reconnect
local PING_MS = 30000          -- idle this long: PING (the service closes idle connections at 75 s)
local BACKOFF_MIN_MS, BACKOFF_MAX_MS = 10, 1000
local KICK_MS = 20             -- under traffic a down connection is retried at most this often
local DRAIN_MS = 5000          -- worker exit: the longest wait for calls in flight
local SEM_POOL_MAX = 4096

local FRAME_WHAT = setmetatable({}, { __index = function(t, typ)
  local v = "unexpected frame type " .. tostring(typ) t[typ] = v return v end })

-- ------------------------------------------------------------------ semaphores

-- A semaphore returns here only when nothing can post to it any more: after its waiter took
-- the answer, or (abandoned entries) when the reader or a teardown settles the entry without
-- posting. A timed-out waiter never returns its own: a late post would wake the next user.
local free, nfree = {}, 0

local function take_sem()
  if nfree > 0 then
    local s = free[nfree]
    free[nfree] = nil
    nfree = nfree - 1
    return s
  end
  return semaphore.new(0)
end

local function give_sem(s)
  if nfree < SEM_POOL_MAX then
    nfree = nfree + 1
    free[nfree] = s
  end
end

-- ------------------------------------------------------------------ connection state

local instances = {} -- per service instance: { conns = { conn, ... }, rr = 0 }
local rotation = 0

local function new_conn(svc)
  return {
    svc = svc, label = svc.label,
    state = "connecting", cause = nil, what = nil, -- "connecting" | "ready" | "down" | "stopped"
    wake = semaphore.new(0), idle = false, posted = false,
    outq = {}, nq = 0,                 -- frame pieces not yet sent
    fifo = {}, fh = 1, ft = 0,         -- entries in wire order, oldest at fh
    live = 0,                          -- entries whose request still waits
    reader = nil, reader_done = false, read_cause = nil, read_what = nil,
    last_recv = 0, last_send = 0, fails = 0, last_attempt = 0,
  }
end

local function wake(conn)
  if not conn.posted then
    conn.posted = true
    conn.wake:post(1)
  end
end

-- the answer (or failure) of one entry; the waiter, if still waiting, is woken
local function settle(conn, e, res, err, what)
  if e.ping then return end
  if e.abandoned then
    give_sem(e.sem)
    return
  end
  e.done, e.res, e.err, e.what = true, res, err, what
  conn.live = conn.live - 1
  e.sem:post(1)
end

local function pop(conn)
  local h = conn.fh
  if h > conn.ft then return nil end
  local fifo = conn.fifo
  local e = fifo[h]
  fifo[h] = nil
  if h == conn.ft then
    conn.fh, conn.ft = 1, 0
  else
    conn.fh = h + 1
  end
  return e
end

local function fail_all(conn, cause, what)
  clear(conn.outq)
  conn.nq = 0
  local e = pop(conn)
  while e do
    settle(conn, e, nil, cause, what)
    e = pop(conn)
  end
end

-- queues one frame (head + payload) with its entry: same step, no yield, so FIFO order is
-- wire order
local function enqueue(conn, e, head, payload)
  local q, n = conn.outq, conn.nq
  q[n + 1] = head
  q[n + 2] = payload
  conn.nq = n + 2
  local t = conn.ft + 1
  conn.fifo[t] = e
  conn.ft = t
  if conn.idle then wake(conn) end
end

-- ------------------------------------------------------------------ reader

-- DecideResponse.request_id (field 1): the id, "" when absent, nil when the payload is not
-- protobuf we can walk (the handler's decoder then reports it)
local function response_id(p)
  local i, n = 1, #p
  while i <= n do
    local key, shift = 0, 1
    repeat
      local b = byte(p, i)
      if not b then return nil end
      i = i + 1
      key = key + (b % 128) * shift
      shift = shift * 128
    until b < 128
    local field, wt = floor(key / 8), key % 8
    if wt == 0 then
      repeat
        local b = byte(p, i)
        if not b then return nil end
        i = i + 1
      until b < 128
    elseif wt == 2 then
      local len
      len, shift = 0, 1
      repeat
        local b = byte(p, i)
        if not b then return nil end
        i = i + 1
        len = len + (b % 128) * shift
        shift = shift * 128
      until b < 128
      if field == 1 then return sub(p, i, i + len - 1) end
      i = i + len
    elseif wt == 1 then
      i = i + 8
    elseif wt == 5 then
      i = i + 4
    else
      return nil
    end
  end
  return ""
end

local function reader_end(conn, cause, what)
  conn.reader_done, conn.read_cause, conn.read_what = true, cause, what
  wake(conn)
end

-- ends the reader: reaped when it has returned, else killed (which closes the socket under it)
local function stop_reader(conn)
  local reader = conn.reader
  if not reader then return end
  conn.reader = nil
  if conn.reader_done then wait(reader) else kill(reader) end
end

local function read_loop(conn, sock)
  local first = true
  while true do
    local head, err = sock:receive(5)
    if not head then return reader_end(conn, cause_of(err), "receive: " .. err) end
    local b1, b2, b3, b4, typ = byte(head, 1, 5)
    local len = ((b1 * 256 + b2) * 256 + b3) * 256 + b4 - 1
    if len < 0 or len > MAX_FRAME then return reader_end(conn, "bad response", "frame length out of range") end
    local payload = ""
    if len > 0 then
      payload, err = sock:receive(len)
      if not payload then return reader_end(conn, cause_of(err), "receive: " .. err) end
    end
    conn.last_recv = ngx_now() * 1000
    -- without a secret the service's greeting is skipped here (with one, the handshake read it)
    if not (first and typ == CHALLENGE) then
      local e = pop(conn)
      if not e then return reader_end(conn, "bad response", "an answer to nothing sent") end
      if e.ping then
        -- a PING is answered PONG (a stand-in may answer ERROR: still in step)
        if typ ~= PONG and typ ~= ERROR then
          return reader_end(conn, "bad response", "stream out of step: " .. FRAME_WHAT[typ] .. " for a PING")
        end
      elseif typ == VERDICT then
        local id = response_id(payload)
        if id and id ~= "" and e.rid and id ~= e.rid then
          settle(conn, e, nil, "bad response", "verdict for another request")
          log.log(ERR, "mux out of step", "decision service connection ", conn.label,
                  " answered a verdict for another request; closing it")
          return reader_end(conn, "bad response", "stream out of step: verdict for another request")
        end
        conn.fails = 0
        settle(conn, e, payload)
      elseif typ == ERROR then
        if sub(payload, 1, 5) == "AUTH:" then
          log.log(WARN, "auth refused", "the decision service refused this gateway: ", sub(payload, 1, 200),
                  " (check that secret_file holds a key of the service's VERDICT_GATEWAY_SECRET_FILE)")
          settle(conn, e, nil, "bad response", "ERROR frame AUTH")
          return reader_end(conn, "bad response", "ERROR frame AUTH")
        end
        conn.fails = 0
        if sub(payload, 1, 9) == "DEADLINE:" then
          settle(conn, e, nil, "timeout", "ERROR frame DEADLINE")
        else
          log.log(WARN, "frame error", "the decision service answered an error frame: ", sub(payload, 1, 200))
          settle(conn, e, nil, "bad response", "ERROR frame " .. (match(payload, "^(%u[%u_]*):") or "without a code"))
        end
      else
        settle(conn, e, nil, "bad response", FRAME_WHAT[typ])
        return reader_end(conn, "bad response", "stream out of step: " .. FRAME_WHAT[typ])
      end
    end
    first = false
  end
end

-- ------------------------------------------------------------------ writer (the timer)

-- connects and authenticates; returns sock, nil, nil, hello pieces | nil, cause, what
local function open(conn)
  local svc, c = conn.svc, config.http
  local sock = tcp()
  sock:settimeouts(CONNECT_MS, SEND_MS, CONNECT_MS)
  local ok, err
  local opts = { pool = "verdict-mux:" .. svc.label } -- never pooled: a private name
  if svc.unix then
    ok, err = sock:connect(svc.host, opts)
  else
    ok, err = sock:connect(svc.host, svc.port, opts)
  end
  if not ok then return nil, cause_of(err), "connect: " .. err end
  local hello
  if c.secret then
    local head
    head, err = sock:receive(5)
    if not head then sock:close() return nil, cause_of(err), "receive: " .. err end
    local b1, b2, b3, b4, typ = byte(head, 1, 5)
    local len = ((b1 * 256 + b2) * 256 + b3) * 256 + b4 - 1
    if typ ~= CHALLENGE or len < 1 or len > 64 then
      sock:close()
      return nil, "bad response", typ == CHALLENGE and "frame length out of range" or FRAME_WHAT[typ]
    end
    local challenge
    challenge, err = sock:receive(len)
    if not challenge then sock:close() return nil, cause_of(err), "receive: " .. err end
    local proof = c.secret_kid .. hmac_sha1(c.secret, "verdict hello v1\n" .. challenge)
    hello = { frame_header(HELLO, #proof), proof }
  end
  sock:settimeouts(CONNECT_MS, SEND_MS, READ_MS)
  return sock, nil, nil, hello
end

-- runs one open connection until it breaks or the worker exits; returns cause, what
local function serve(conn, sock, hello)
  conn.reader_done, conn.read_cause, conn.read_what = false, nil, nil
  conn.last_recv = now_ms()
  conn.last_send = conn.last_recv
  conn.reader = spawn(function()
    local ok, err = pcall(read_loop, conn, sock)
    if not ok then reader_end(conn, "socket error", "mux reader error: " .. tostring(err)) end
  end)
  local spare = {}
  local drain_until
  while true do
    if conn.nq == 0 and not hello and not conn.reader_done then
      conn.idle = true
      conn.wake:wait(TICK_S)
      conn.idle, conn.posted = false, false
    end
    if conn.reader_done then
      stop_reader(conn)
      return conn.read_cause, conn.read_what
    end
    local now = now_ms()
    if exiting() then
      -- new calls take the pool now (client.call); finish what is in flight, then end
      if not drain_until then drain_until = now + DRAIN_MS end
      if conn.nq == 0 and (conn.live <= 0 or now >= drain_until) then
        stop_reader(conn)
        conn.state = "stopped"
        return "closed", "worker exiting"
      end
    elseif conn.fh <= conn.ft then
      local oldest = conn.fifo[conn.fh]
      if now - conn.last_recv > STALL_MS and now - oldest.at > STALL_MS then
        stop_reader(conn)
        return "timeout", "no answer for " .. STALL_MS .. " ms"
      end
    elseif conn.nq == 0 and now - conn.last_send > PING_MS then
      enqueue(conn, { ping = true, at = now }, frame_header(PING, 0), "")
    end
    if conn.nq > 0 or hello then
      local q = conn.outq
      conn.outq, conn.nq = spare, 0
      if hello then
        -- HELLO goes first, pipelined with the frames queued while connecting
        for i = #q, 1, -1 do q[i + 2] = q[i] end
        q[1], q[2] = hello[1], hello[2]
        hello = nil
      end
      local sent, err = sock:send(q)
      clear(q)
      spare = q
      conn.last_send = now
      if not sent then
        stop_reader(conn)
        return cause_of(err), "send: " .. err
      end
    end
  end
end

local function run(premature, conn)
  if premature then return end
  while true do
    if exiting() then
      conn.state = "stopped"
      fail_all(conn, "closed", "worker exiting")
      return
    end
    conn.state = "connecting"
    conn.last_attempt = now_ms()
    local sock, cause, what, hello = open(conn)
    if sock then
      conn.state, conn.cause, conn.what = "ready", nil, nil
      if conn.fails > 0 then
        log.log(NOTICE, "mux up", "decision service connection ", conn.label, " is up again")
      end
      local ok
      ok, cause, what = pcall(serve, conn, sock, hello)
      if not ok then
        log.log(ERR, "mux error", "decision service connection ", conn.label, ": ", cause)
        cause, what = "socket error", "mux writer error"
        stop_reader(conn)
      end
      sock:close()
      if conn.state == "stopped" then
        fail_all(conn, cause, what)
        return
      end
      -- a connection that never answered anything counts as a failed attempt (fails was reset by
      -- every answer): a service that accepts and breaks at once is retried with backoff
      conn.fails = conn.fails + 1
      conn.state = "connecting"
      conn.cause, conn.what = cause, what
      fail_all(conn, cause, what)
      if conn.fails > 1 then conn.state = "down" end
    else
      conn.fails = conn.fails + 1
      conn.state, conn.cause, conn.what = "down", cause, what
      fail_all(conn, cause, what)
    end
    if conn.state == "down" then
      log.log(ERR, "mux down", "decision service connection ", conn.label, " is down (", cause, ": ", what,
              "); calls on it fail at once until it is back")
      local backoff = min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ^ (conn.fails - 1))
      conn.posted = false
      conn.wake:wait(backoff / 1000)
      conn.posted = false
    end
  end
end

-- ------------------------------------------------------------------ calls

-- a connection of the instance to queue on (ready first, then connecting); or nil and a down one
local function pick(inst)
  local conns = inst.conns
  local k = #conns
  local connecting
  for _ = 1, k do
    local i = inst.rr % k + 1
    inst.rr = i
    local c = conns[i]
    if c.state == "ready" then return c end
    if c.state == "connecting" and not connecting then connecting = c end
  end
  if connecting then return connecting end
  return nil, conns[inst.rr]
end

-- syntax: res, err, what, instance = mux.call(body, budget_ms, request_id)
-- A decide call (DecideRequest bytes -> DecideResponse bytes) over the worker's multiplexed
-- connections, within budget_ms in total; the same returns and causes as client.call.
-- request_id: the DecideRequest's id, checked against the verdict's (see the top of this file).
function _M.call(body, budget_ms, request_id)
  local deadline = now_ms() + budget_ms
  local n = #instances
  rotation = rotation % n + 1
  local conn, down
  -- a down instance hands the call to the next one at once (nothing was sent)
  for i = 0, n - 1 do
    conn, down = pick(instances[(rotation + i - 1) % n + 1])
    if conn then break end
    if down.state == "down" and not down.posted and now_ms() - down.last_attempt >= KICK_MS then
      wake(down) -- traffic retries a down connection soon, not only on the backoff clock
    end
  end
  if not conn then
    return nil, down.cause or "closed", down.what or "not connected", down.label
  end
  if conn.ft - conn.fh + 1 >= MAX_IN_FLIGHT then
    return nil, "timeout", "mux: " .. MAX_IN_FLIGHT .. " calls unanswered on the connection", conn.label
  end
  local sem = take_sem()
  local e = { sem = sem, rid = request_id or false, at = deadline - budget_ms,
              done = false, abandoned = false, ping = false, res = nil, err = nil, what = nil }
  conn.live = conn.live + 1
  enqueue(conn, e, frame_header(DECIDE, #body), body)
  local left = deadline - now_ms()
  if left < 1 then left = 1 end -- the answer may already be in the socket buffer (client.lua, READ_GRACE_MS)
  local ok = sem:wait(left / 1000)
  if e.done then
    -- settled; a post that raced the timeout is consumed so the semaphore goes back clean
    if not ok then sem:wait(0) end
    give_sem(sem)
    if e.res then return e.res, nil, nil, conn.label end
    return nil, e.err, e.what, conn.label
  end
  -- the reader settles the entry later (drops the answer) and returns the semaphore then
  e.abandoned = true
  conn.live = conn.live - 1
  return nil, "timeout", "receive: timeout", conn.label
end

-- syntax: ok = mux.init_worker()
-- Starts this worker's connections (init_worker_by_lua, through client.init_worker); false when
-- a timer could not be started (calls then take the pool).
function _M.init_worker()
  local c = config.http
  instances = {}
  for i = 1, #c.services do
    local inst = { conns = {}, rr = 0 }
    for k = 1, c.mux_connections do
      local conn = new_conn(c.services[i])
      inst.conns[k] = conn
      local ok, err = timer_at(0, run, conn)
      if not ok then
        log.log(ERR, "mux timer", "failed to start a decision service connection (", err,
                "); calls take the per-request pool")
        return false
      end
    end
    instances[i] = inst
  end
  return true
end

-- syntax: states = mux.states()
-- Per instance label, the state of each connection (tests, diagnostics).
function _M.states()
  local out = {}
  for i = 1, #instances do
    local inst = instances[i]
    local s = {}
    for k = 1, #inst.conns do
      local conn = inst.conns[k]
      s[k] = { state = conn.state, cause = conn.cause, in_flight = conn.ft - conn.fh + 1, live = conn.live, fails = conn.fails }
    end
    out[inst.conns[1].label] = s
  end
  return out
end

return _M
