-- Side call to the decision service over nginx cosockets (non-blocking), with a per-worker
-- keep-alive pool, to "ip:port" / "unix:/path" (HTTP/1.1) or "frame:ip:port" /
-- "frame:unix:/path" (the framed protobuf transport).
-- With the mux transport (`transport = "mux"`, or "auto" over frame: addresses) decide calls go over the worker's multiplexed frame connections
-- instead (verdict.mux); outcome batches and breaker probes keep the pool, as do the calls of a
-- worker that is exiting (its mux connections are draining).
--
-- One total deadline bounds connect + send + read: before each socket operation the remaining
-- milliseconds are computed and set with sock:settimeouts(). No retry after a timeout. At most
-- one retry when a pooled connection (getreusedtimes() > 0) turns out closed by the peer.
--
-- HTTP: one POST, response framed by Content-Length (chunked responses are reported as
-- "bad response"; the service always sends Content-Length).
-- Frames (decision-service/src/wire/frame-server.ts): uint32 big-endian length of what follows,
-- uint8 type, protobuf payload. DECIDE 1 -> VERDICT 2, OUTCOMES 3 -> ACK 4, ERROR 15 (text);
-- CHALLENGE 7 (the service's first frame on a connection) and HELLO 8 (the gateway's proof).
-- Authentication (gateway-plugin/CONTRACT.md): with a `secret`, HTTP calls carry a signed
-- X-Verdict-Auth header and each fresh frame connection answers the service's challenge.
-- One call at a time per connection (a connection leaves the pool for the call), so the answer
-- read is the answer to the frame sent. A connection whose call did not finish cleanly is
-- closed, never pooled: a late answer on it would be read as the next call's.
--
-- Failure causes (fixed list, counted by metrics):
--   "timeout"       the deadline passed (connect, send or read)
--   "refused"       nothing listens (ECONNREFUSED, missing unix socket)
--   "closed"        the service closed the connection mid-exchange
--   "socket error"  any other socket failure
--   "http error"    the service answered with a non-200 status
--   "bad response"  HTTP: not HTTP/1.x with a Content-Length (or body too large);
--                   frames: an ERROR frame, an unexpected frame type, a bad length
-- With the cause a failed call returns what happened, for the operator's log: the operation and
-- the socket's own error ("connect: connection refused", "receive: timeout"), or what was wrong
-- with the answer ("HTTP 503", "ERROR frame DEADLINE"); and the instance ("127.0.0.1:9400",
-- "unix:/run/verdict.sock", as configured). Neither ever holds request data or a secret.

local config = require "verdict.config"
local log = require "verdict.log"

local ngx = ngx
local tcp = ngx.socket.tcp
local ngx_now = ngx.now
local update_time = ngx.update_time
local find, sub, lower, match, byte, char = string.find, string.sub, string.lower, string.match, string.byte, string.char
local tonumber, tostring, ceil, floor = tonumber, tostring, math.ceil, math.floor
local WARN = ngx.WARN
local hmac_sha1, encode_base64 = ngx.hmac_sha1, ngx.encode_base64

local _M = { _VERSION = "0.2.0" }

local MAX_BODY = 1048576

-- what a call is: HTTP path, frame type sent, frame type expected back
local KINDS = {
  decide = { path = "/v1/decide", send = 1, expect = 2 },
  outcomes = { path = "/v1/outcomes", send = 3, expect = 4 },
}
local FRAME_ERROR, FRAME_CHALLENGE, FRAME_HELLO = 15, 7, 8
-- frame type -> "unexpected frame type N" (what a failed call reports), built on first use
local FRAME_WHAT = setmetatable({}, { __index = function(t, typ)
  local v = "unexpected frame type " .. tostring(typ) t[typ] = v return v end })

local function now_ms()
  update_time()
  return ngx_now() * 1000
end
_M.now_ms = now_ms

local function cause_of(err)
  if not err then return "socket error" end
  if err == "timeout" then return "timeout" end
  if err == "closed" then return "closed" end
  if find(err, "refused", 1, true) or find(err, "No such file", 1, true)
     or find(err, "no such file", 1, true) then
    return "refused"
  end
  if find(err, "reset", 1, true) or find(err, "broken pipe", 1, true) then return "closed" end
  return "socket error"
end

_M.cause_of = cause_of

-- a failed socket operation: nil, cause, reused, "<operation>: <the socket's error>"
local function failed(op, err, reused)
  return nil, cause_of(err), reused, op .. ": " .. err
end

-- connect options per service, built once per worker (pool name and size never change after init)
local function opts(svc)
  local o = svc.connect_opts
  if o then return o end
  o = { pool = "verdict:" .. svc.label, pool_size = config.http.pool_size }
  svc.connect_opts = o
  return o
end

-- sets the remaining time on sock; false when the deadline has passed
local function arm(sock, deadline)
  local left = deadline - now_ms()
  if left <= 0 then return false end
  left = ceil(left)
  sock:settimeouts(left, left, left)
  return true
end

-- Arms a read of the answer to what this call has sent. Past the deadline it still allows
-- READ_GRACE_MS: an answer that arrived while this worker waited for the CPU (a core shared with
-- the service and the upstream) is already in the socket buffer and is read without waiting;
-- one that has not arrived fails a millisecond later. Refusing to read it was most of the
-- "timeouts" on a healthy service sharing a core with nginx (issue 10): the service had answered
-- within the budget, the worker woke after the deadline, read the frame header and then gave up
-- on the body sitting right behind it. Connects and sends stay strictly within the deadline.
local READ_GRACE_MS = 1
local function arm_read(sock, deadline)
  local left = ceil(deadline - now_ms())
  if left < READ_GRACE_MS then left = READ_GRACE_MS end
  sock:settimeouts(left, left, left)
end

-- returns sock | nil, cause, false, what happened
local function connect(svc, deadline)
  local sock = tcp()
  if not arm(sock, deadline) then return nil, "timeout", false, "connect: deadline passed" end
  local ok, err
  if svc.unix then
    ok, err = sock:connect(svc.host, opts(svc))
  else
    ok, err = sock:connect(svc.host, svc.port, opts(svc))
  end
  if not ok then return failed("connect", err, false) end
  return sock
end

-- connects (or takes a pooled connection) and sends req (a table of strings) within the deadline;
-- returns sock, nil, reused | nil, cause, reused, what happened
local function open_and_send(svc, deadline, req)
  local sock, cause, _, what = connect(svc, deadline)
  if not sock then return nil, cause, false, what end
  local reused = sock:getreusedtimes() > 0
  if not arm(sock, deadline) then sock:close() return nil, "timeout", reused, "send: deadline passed" end
  local sent, err = sock:send(req)
  if not sent then sock:close() return failed("send", err, reused) end
  return sock, nil, reused
end

-- ------------------------------------------------------------------ HTTP/1.1

local HTTP_HEAD = " HTTP/1.1\r\nHost: verdict\r\n"
  .. "Content-Type: application/x-protobuf\r\nAccept: application/x-protobuf\r\n"

-- "X-Verdict-Auth: <kid>:<ts_ms>:<base64 HMAC-SHA1(secret, "verdict http v1\n" ts "\n" path
-- "\n" body)>" (CONTRACT.md, authentication); "" without a secret
local function http_auth(c, path, body)
  if not c.secret then return "" end
  local ts = tostring(floor(ngx_now() * 1000))
  return "X-Verdict-Auth: " .. c.secret_kid .. ":" .. ts .. ":"
    .. encode_base64(hmac_sha1(c.secret, "verdict http v1\n" .. ts .. "\n" .. path .. "\n" .. body)) .. "\r\n"
end

-- one attempt; returns body | nil, cause, reused, what happened
-- The request pieces are a table of this call's own (sent without concatenating the body): the
-- connect and the send yield, and another request of this worker runs meanwhile, so nothing
-- that describes one call may live in a table shared by calls (issue 10: crossed verdicts).
local function http_attempt(c, svc, kind, body, deadline)
  local sock, err, reused, what = open_and_send(svc, deadline,
    { "POST ", kind.path, HTTP_HEAD, http_auth(c, kind.path, body), "Content-Length: ", tostring(#body),
      "\r\n\r\n", body })
  if not sock then return nil, err, reused, what end

  arm_read(sock, deadline)
  local read_head = sock:receiveuntil("\r\n\r\n")
  local head
  head, err = read_head()
  if not head then sock:close() return failed("receive", err, reused) end

  -- status line: HTTP/1.x NNN
  local status = tonumber(match(head, "^HTTP/1%.%d (%d%d%d)"))
  if not status then sock:close() return nil, "bad response", false, "no HTTP/1.x status line" end
  local lhead = lower(head)
  local len = tonumber(match(lhead, "\r\ncontent%-length:%s*(%d+)"))
  if not len then sock:close() return nil, "bad response", false, "no Content-Length" end
  if len > MAX_BODY then sock:close() return nil, "bad response", false, "Content-Length over 1 MiB" end
  local keep = not find(lhead, "\r\nconnection:%s*close")

  local res = ""
  if len > 0 then
    arm_read(sock, deadline)
    res, err = sock:receive(len)
    if not res then sock:close() return failed("receive", err, false) end
  end
  if keep then
    sock:setkeepalive(c.pool_idle_timeout_ms)
  else
    sock:close()
  end
  if status ~= 200 then
    if status == 401 then
      log.log(WARN, "auth refused", "the decision service refused this gateway's credentials (HTTP 401): ",
              "check that secret_file holds a key of the service's VERDICT_GATEWAY_SECRET_FILE")
    end
    -- 504 DEADLINE: the service saw our deadline pass before it started (a timeout, told)
    if status == 504 then return nil, "timeout", false, "HTTP 504 DEADLINE" end
    return nil, "http error", false, "HTTP " .. status
  end
  return res
end

-- ------------------------------------------------------------------ frames

local function frame_header(type_, n)
  local len = n + 1
  return char(floor(len / 16777216) % 256, floor(len / 65536) % 256, floor(len / 256) % 256,
              len % 256, type_)
end

_M.frame_header = frame_header

-- reads one frame; returns type, payload | nil, cause, in_body (the failure came after the
-- header), what happened
local function read_frame(sock, deadline)
  arm_read(sock, deadline)
  local head, err = sock:receive(5)
  if not head then return failed("receive", err, false) end
  local b1, b2, b3, b4, typ = byte(head, 1, 5)
  local len = ((b1 * 256 + b2) * 256 + b3) * 256 + b4 - 1
  if len < 0 or len > MAX_BODY then return nil, "bad response", true, "frame length out of range" end
  local res = ""
  if len > 0 then
    arm_read(sock, deadline)
    res, err = sock:receive(len)
    if not res then return failed("receive", err, true) end
  end
  return typ, res
end

-- one attempt; returns payload | nil, cause, reused, what happened
-- (the frame's pieces are this call's own table, for the reason given at http_attempt)
-- On a fresh connection the service first sends a CHALLENGE; with a secret the gateway answers
-- it with HELLO (kid + HMAC of the challenge) pipelined with the request; without one the
-- CHALLENGE is skipped where the answer is read.
local function frame_attempt(c, svc, kind, body, deadline)
  local sock, err, _, what = connect(svc, deadline)
  if not sock then return nil, err, false, what end
  local reused = sock:getreusedtimes() > 0
  local req
  if c.secret and not reused then
    local typ, challenge, _, cwhat = read_frame(sock, deadline)
    if not typ then sock:close() return nil, challenge, false, cwhat end
    if typ ~= FRAME_CHALLENGE then sock:close() return nil, "bad response", false, FRAME_WHAT[typ] end
    local proof = c.secret_kid .. hmac_sha1(c.secret, "verdict hello v1\n" .. challenge)
    req = { frame_header(FRAME_HELLO, #proof), proof, frame_header(kind.send, #body), body }
  else
    req = { frame_header(kind.send, #body), body }
  end
  if not arm(sock, deadline) then sock:close() return nil, "timeout", reused, "send: deadline passed" end
  local sent
  sent, err = sock:send(req)
  if not sent then sock:close() return failed("send", err, reused) end

  local typ, res, in_body, rwhat = read_frame(sock, deadline)
  if typ == FRAME_CHALLENGE and not reused then typ, res, in_body, rwhat = read_frame(sock, deadline) end
  if not typ then sock:close() return nil, res, reused and not in_body, rwhat end
  if typ == kind.expect then
    sock:setkeepalive(c.pool_idle_timeout_ms)
    return res
  end
  if typ == FRAME_ERROR then
    if sub(res, 1, 5) == "AUTH:" then
      -- the service closes the connection after an authentication error
      sock:close()
      log.log(WARN, "auth refused", "the decision service refused this gateway: ", sub(res, 1, 200),
              " (check that secret_file holds a key of the service's VERDICT_GATEWAY_SECRET_FILE)")
      return nil, "bad response", false, "ERROR frame AUTH"
    end
    -- the frame stream is intact after any other ERROR: the connection stays usable
    sock:setkeepalive(c.pool_idle_timeout_ms)
    if sub(res, 1, 9) == "DEADLINE:" then
      -- the service saw our deadline pass before it started: a timeout, told rather than silent
      return nil, "timeout", false, "ERROR frame DEADLINE"
    end
    log.log(WARN, "frame error", "the decision service answered an error frame: ", sub(res, 1, 200))
    -- the call reports the code of "CODE: message" only: what it reports must not depend on what
    -- a service writes in a message (the warning above has the message)
    return nil, "bad response", false, "ERROR frame " .. (match(res, "^(%u[%u_]*):") or "without a code")
  end
  sock:close() -- not the answer to what we sent: the stream cannot be trusted
  return nil, "bad response", false, FRAME_WHAT[typ]
end

-- ------------------------------------------------------------------ calls

local rotation = 0 -- per worker: index of the instance the last call started with
local mux -- verdict.mux when the transport is mux (config.http.mux) and its connections started
local exiting = ngx.worker.exiting

-- syntax: client.init_worker()
-- Starts the multiplexed connections when the transport is mux (init_worker_by_lua, through the
-- handler). Without them (transport "pool", or a timer that could not start) calls take the pool.
function _M.init_worker()
  if not config.http.mux then return end
  local m = require "verdict.mux"
  if m.init_worker() then mux = m end
end

-- syntax: res, err, what, instance = client.call(kind, body, budget_ms, request_id?)
-- kind: "decide" (DecideRequest -> DecideResponse) or "outcomes" (OutcomeBatch -> OutcomeAck).
-- Sends the protobuf body over the configured transport within budget_ms in total.
-- Returns the answer's protobuf bytes, nil, nil and the instance that answered; or nil, a cause
-- from the list above, what happened and the instance (for the log; see the top of this file).
-- After refusals handed the call on, what and instance are the last instance's.
-- request_id (decide): the DecideRequest's id; the mux transport checks each verdict names it.
function _M.call(kind_name, body, budget_ms, request_id)
  if mux and kind_name == "decide" and not exiting() then
    return mux.call(body, budget_ms, request_id)
  end
  local c = config.http
  local kind = KINDS[kind_name]
  local deadline = now_ms() + budget_ms
  local services = c.services
  local n = #services
  -- several instances: calls rotate per worker; a refused connection (instant) hands the call to
  -- the next instance within the same deadline, each tried at most once
  rotation = rotation % n + 1
  local res, err, what, svc
  for i = 0, n - 1 do
    svc = services[(rotation + i - 1) % n + 1]
    local attempt = svc.frame and frame_attempt or http_attempt
    local reused
    res, err, reused, what = attempt(c, svc, kind, body, deadline)
    if res then return res, nil, nil, svc.label end
    -- a pooled connection the service closed while idle: one retry on a fresh one
    if reused and err == "closed" then
      res, err, reused, what = attempt(c, svc, kind, body, deadline)
      if res then return res, nil, nil, svc.label end
    end
    if err ~= "refused" then break end
  end
  return nil, err, what, svc.label
end

return _M
