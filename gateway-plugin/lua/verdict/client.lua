-- Side call to the decision service over nginx cosockets (non-blocking), with a per-worker
-- keep-alive pool, to "ip:port" or "unix:/path".
--
-- One total deadline bounds connect + send + read: before each socket operation the remaining
-- milliseconds are computed and set with sock:settimeouts(). No retry after a timeout. At most
-- one retry when a pooled connection (getreusedtimes() > 0) turns out closed by the peer.
--
-- Minimal HTTP/1.1: one POST, response framed by Content-Length (chunked responses are
-- reported as "bad response"; the service always sends Content-Length).
--
-- Failure causes (fixed list, counted by metrics):
--   "timeout"       the deadline passed (connect, send or read)
--   "refused"       nothing listens (ECONNREFUSED, missing unix socket)
--   "closed"        the service closed the connection mid-exchange
--   "socket error"  any other socket failure
--   "http error"    the service answered with a non-200 status
--   "bad response"  the answer is not HTTP/1.x with a Content-Length (or body too large)

local config = require "verdict.config"

local ngx = ngx
local tcp = ngx.socket.tcp
local ngx_now = ngx.now
local update_time = ngx.update_time
local find, sub, lower, match = string.find, string.sub, string.lower, string.match
local tonumber, ceil = tonumber, math.ceil

local _M = { _VERSION = "0.1.0" }

local MAX_BODY = 1048576

local function now_ms()
  update_time()
  return ngx_now() * 1000
end
_M.now_ms = now_ms

local function cause_of(err)
  if err == "timeout" then return "timeout" end
  if err == "closed" then return "closed" end
  if find(err, "refused", 1, true) or find(err, "No such file", 1, true)
     or find(err, "no such file", 1, true) then
    return "refused"
  end
  if find(err, "reset", 1, true) or find(err, "broken pipe", 1, true) then return "closed" end
  return "socket error"
end

local connect_opts -- built once per worker (pool name and size never change after init)

local function opts()
  if connect_opts then return connect_opts end
  local c = config.http
  connect_opts = { pool = "verdict:" .. c.service.label, pool_size = c.pool_size }
  return connect_opts
end

-- one attempt; returns body, nil | nil, cause, reused
local function attempt(c, request, deadline)
  local sock = tcp()
  local left = deadline - now_ms()
  if left <= 0 then return nil, "timeout", false end
  left = ceil(left)
  sock:settimeouts(left, left, left)
  local svc = c.service
  local ok, err
  if svc.unix then
    ok, err = sock:connect(svc.host, opts())
  else
    ok, err = sock:connect(svc.host, svc.port, opts())
  end
  if not ok then return nil, cause_of(err), false end
  local reused = sock:getreusedtimes() > 0

  left = deadline - now_ms()
  if left <= 0 then sock:close() return nil, "timeout", reused end
  left = ceil(left)
  sock:settimeouts(left, left, left)
  local sent
  sent, err = sock:send(request)
  if not sent then sock:close() return nil, cause_of(err), reused end

  left = deadline - now_ms()
  if left <= 0 then sock:close() return nil, "timeout", reused end
  left = ceil(left)
  sock:settimeouts(left, left, left)
  local read_head = sock:receiveuntil("\r\n\r\n")
  local head
  head, err = read_head()
  if not head then sock:close() return nil, cause_of(err), reused end

  -- status line: HTTP/1.x NNN
  local status = tonumber(match(head, "^HTTP/1%.%d (%d%d%d)"))
  if not status then sock:close() return nil, "bad response", false end
  local lhead = lower(head)
  local len = tonumber(match(lhead, "\r\ncontent%-length:%s*(%d+)"))
  if not len or len > MAX_BODY then sock:close() return nil, "bad response", false end
  local keep = not find(lhead, "\r\nconnection:%s*close")

  local body = ""
  if len > 0 then
    left = deadline - now_ms()
    if left <= 0 then sock:close() return nil, "timeout", false end
    left = ceil(left)
    sock:settimeouts(left, left, left)
    body, err = sock:receive(len)
    if not body then sock:close() return nil, cause_of(err), false end
  end
  if keep then
    sock:setkeepalive(c.pool_idle_timeout_ms)
  else
    sock:close()
  end
  if status ~= 200 then return nil, "http error", false end
  return body, nil, false
end

-- syntax: body, err = client.post(path, body, budget_ms)
-- POSTs a protobuf body to the decision service within budget_ms in total.
-- Returns the response body, or nil and a cause from the list above.
function _M.post(path, body, budget_ms)
  local c = config.http
  local deadline = now_ms() + budget_ms
  local request = "POST " .. path .. " HTTP/1.1\r\nHost: verdict\r\n"
    .. "Content-Type: application/x-protobuf\r\nAccept: application/x-protobuf\r\n"
    .. "Content-Length: " .. #body .. "\r\n\r\n" .. body
  local res, err, reused = attempt(c, request, deadline)
  if res then return res end
  -- a pooled connection the service closed while idle: one retry on a fresh one
  if reused and err == "closed" then
    res, err = attempt(c, request, deadline)
    if res then return res end
  end
  return nil, err
end

return _M
