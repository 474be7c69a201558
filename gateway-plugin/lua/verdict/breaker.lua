-- Circuit breaker shared by all workers (`verdict_state` shared dict).
--
-- closed:    calls go out; each failed call increments a shared consecutive-failure count, each
--            successful one resets it. At `breaker_failures` failures spanning at least
--            `breaker_min_span_ms` the breaker opens: a momentary stall of the service (a GC pause
--            that times out every call in flight at once) costs those calls, not a cool-down.
-- open:      for `breaker_cooldown_ms` no call is made: allow() fails at once with
--            "breaker open" (the handler fails open / closed as the location says).
-- half-open: after the cool-down exactly one request (dict:add wins) probes the service; success
--            closes the breaker, failure opens it for another cool-down. The probe key expires on
--            its own so a worker that dies mid-probe cannot wedge the breaker.
--
-- Each worker remembers the open window it last read (`open_until`), so while the breaker is
-- open a request costs no shared-dict lock at all; the window only ends early in the worker that
-- probed, so a worker may keep skipping calls until the cool-down it saw ends, never longer.
--
-- Known race: calls already in flight when the breaker opens still complete and report; their
-- failures only bump the count, their successes reset it (the service answered, so it is up).

local config = require "verdict.config"
local metrics = require "verdict.metrics"
local log = require "verdict.log"

local ngx = ngx
local shared = ngx.shared
local ngx_now = ngx.now
local ERR, NOTICE = ngx.ERR, ngx.NOTICE

local _M = { _VERSION = "0.1.0" }

local FAILS = "breaker:fails"
local OPEN_UNTIL = "breaker:open_until"
local PROBE = "breaker:probe"
local FIRST_FAIL = "breaker:first_fail"

local dict
local function state()
  if not dict then dict = shared.verdict_state end
  return dict
end

-- per worker: end (ms) of the open window this worker last saw; 0 = none known
local open_until_seen = 0

-- syntax: open = breaker.is_open()
-- True while the breaker is open (cool-down running): no call may go out. False when closed
-- or half-open (allow() then decides who probes). Costs no lock while the window is known.
function _M.is_open()
  local now = ngx_now() * 1000
  if now < open_until_seen then return true end
  local open_until = state():get(OPEN_UNTIL)
  if open_until and now < open_until then
    open_until_seen = open_until
    return true
  end
  return false
end

-- syntax: ok, probe_or_err = breaker.allow(budget_ms)
-- Returns true (and true when this call is the half-open probe), or nil, "breaker open".
function _M.allow(budget_ms)
  local now = ngx_now() * 1000
  if now < open_until_seen then return nil, "breaker open" end
  local d = state()
  local open_until = d:get(OPEN_UNTIL)
  if not open_until then return true, false end
  if now < open_until then
    open_until_seen = open_until
    return nil, "breaker open"
  end
  -- half-open: the probe key outlives the probe's own budget by a second at most
  local ok = d:add(PROBE, true, (budget_ms + 1000) / 1000)
  if ok then return true, true end
  return nil, "breaker open"
end

-- syntax: breaker.success(probe)
-- Reports a successful call; a successful probe closes the breaker.
function _M.success(probe)
  local d = state()
  if probe then
    open_until_seen = 0
    d:delete(OPEN_UNTIL)
    d:delete(PROBE)
    d:set(FAILS, 0)
    d:delete(FIRST_FAIL)
    log.log(NOTICE, "breaker closed", "decision service answered the probe; breaker closed")
    return
  end
  -- read before write: the common case (already 0) then costs no write lock contention
  local n = d:get(FAILS)
  if n and n ~= 0 then
    d:set(FAILS, 0)
    d:delete(FIRST_FAIL)
  end
end

-- syntax: breaker.failure(probe, cause)
-- Reports a failed call; opens the breaker at the threshold or when the probe failed.
function _M.failure(probe, cause)
  local d = state()
  local c = config.http
  local until_ms = ngx_now() * 1000 + c.breaker_cooldown_ms
  if probe then
    d:set(OPEN_UNTIL, until_ms)
    open_until_seen = until_ms
    d:delete(PROBE)
    metrics.incr("breaker_opens_total")
    log.log(ERR, "breaker open", "breaker probe failed (", cause, "); open again for ",
            c.breaker_cooldown_ms, " ms")
    return
  end
  local now_ms = ngx_now() * 1000
  local n = d:incr(FAILS, 1, 0)
  if n == 1 then d:set(FIRST_FAIL, now_ms) end
  local first = d:get(FIRST_FAIL) or now_ms
  if n and n >= c.breaker_failures and now_ms - first >= c.breaker_min_span_ms then
    -- add, not set: of all workers crossing the threshold together only one opens it
    if d:add(OPEN_UNTIL, until_ms) then
      open_until_seen = until_ms
      metrics.incr("breaker_opens_total")
      log.log(ERR, "breaker open", n, " consecutive failed calls (last: ", cause,
              "); breaker open for ", c.breaker_cooldown_ms, " ms, requests fail open without a call")
    end
  end
end

-- syntax: code = breaker.state_code()
-- 0 closed, 1 open, 2 half-open (cool-down over, next request probes).
function _M.state_code()
  local d = state()
  if not d then return 0 end
  local open_until = d:get(OPEN_UNTIL)
  if not open_until then return 0 end
  if ngx_now() * 1000 < open_until then return 1 end
  return 2
end

return _M
