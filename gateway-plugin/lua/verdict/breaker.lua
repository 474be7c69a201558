-- Circuit breaker shared by all workers (`verdict_state` shared dict), and the per-worker
-- overload gauge that sheds low-priority calls.
--
-- The breaker tells a DEAD service from a SLOW one. A slow service still answers some calls in
-- time; skipping every call then would unprotect the site for nothing (issue 10: under two
-- 32-connection loads the old breaker, which counted timeouts like refusals, failed 81% of
-- requests open as "breaker open" against a healthy service). So:
--
-- closed: calls go out. Every successful call refreshes `last_ok` (all workers). The breaker
--         opens when at least `breaker_failures` calls failed in a row AND no call has succeeded
--         for `breaker_min_span_ms` (nothing comes back at all): a refused port, a crashed or
--         SIGSTOPped process, a black hole. A momentary stall (a GC pause) costs the calls in
--         flight, not an open breaker.
-- open:   no request makes a call: requests fail open (or closed) at once with "breaker open".
--         A background timer in every worker probes the service (an empty OutcomeBatch, the
--         cheapest call both transports answer) every `breaker_cooldown_ms`, one probe at a time
--         across workers, each with its own deadline `breaker_probe_timeout_ms`. The first
--         answer closes the breaker: a restarted service is deciding again within one probe
--         interval of answering (default 200 ms), whatever the request rate.
--
-- Overload: each worker keeps the share of its decide calls that timed out in the last full
-- second. At `shed_timeout_share` or more, calls from locations with `$verdict_priority low`
-- are skipped (fail open, cause "shed") and async requests ship no metadata, so the calls that
-- protect what matters get the service's time first. Counted in fail_open_total{cause="shed"}
-- and shed_total.

local config = require "verdict.config"
local metrics = require "verdict.metrics"
local log = require "verdict.log"

local ngx = ngx
local shared = ngx.shared
local ngx_now = ngx.now
local update_time = ngx.update_time
local ERR, NOTICE = ngx.ERR, ngx.NOTICE

local _M = { _VERSION = "0.2.0" }

local OPEN = "breaker:open"             -- ms the breaker opened; absent = closed
local FAILS = "breaker:fails"           -- failed calls in a row, all workers
local FIRST_FAIL = "breaker:first_fail" -- ms of the first of them
local LAST_OK = "breaker:last_ok"       -- ms of the last successful call, all workers
local PROBING = "breaker:probing"       -- lock: one probe in flight across workers
local NEXT_PROBE = "breaker:next_probe" -- ms before which no probe starts

local TICK_S = 0.05 -- probe timer period per worker (a shared-dict read when closed)

local dict
local function state()
  if not dict then dict = shared.verdict_state end
  return dict
end

local function now_ms()
  return ngx_now() * 1000
end

-- syntax: open = breaker.is_open()
-- True while the breaker is open: no call may go out.
function _M.is_open()
  return state():get(OPEN) ~= nil
end

-- per worker: last_ok written at most every 10 ms (a write takes the dict's lock)
local last_ok_written = 0

-- syntax: breaker.success()
-- Reports a call that came back in time.
function _M.success()
  local d = state()
  local now = now_ms()
  if now - last_ok_written >= 10 then
    last_ok_written = now
    d:set(LAST_OK, now)
  end
  -- read before write: the common case (already 0) costs no write lock
  local n = d:get(FAILS)
  if n and n ~= 0 then
    d:set(FAILS, 0)
    d:delete(FIRST_FAIL)
  end
end

local function open(d, now, n, cause)
  -- add, not set: of all workers crossing the threshold together only one opens it
  if d:add(OPEN, now) then
    local c = config.http
    d:set(NEXT_PROBE, now + c.breaker_cooldown_ms)
    metrics.incr("breaker_opens_total")
    log.log(ERR, "breaker open", n, " failed calls in a row and no answer for ",
            c.breaker_min_span_ms, " ms (last: ", cause, "); breaker open, requests fail open ",
            "without a call; probing every ", c.breaker_cooldown_ms, " ms")
  end
end

-- syntax: breaker.failure(cause)
-- Reports a failed call; opens the breaker when nothing has come back for long enough.
function _M.failure(cause)
  local d = state()
  local c = config.http
  local now = now_ms()
  local n = d:incr(FAILS, 1, 0)
  if n == 1 then d:set(FIRST_FAIL, now) end
  if not n or n < c.breaker_failures then return end
  local since = d:get(FIRST_FAIL) or now
  local last_ok = d:get(LAST_OK)
  if last_ok and last_ok > since then since = last_ok end
  if now - since >= c.breaker_min_span_ms then open(d, now, n, cause) end
end

-- one probe (timer context); closes the breaker when the service answers
local function probe(client, codec, gateway_id)
  local d = state()
  local c = config.http
  local body = codec.encode_outcome_batch({ gateway_id = gateway_id, outcomes = {} })
  local res, err = client.call("outcomes", body, c.breaker_probe_timeout_ms)
  if res then
    update_time()
    local now = now_ms()
    d:delete(OPEN)
    d:set(FAILS, 0)
    d:delete(FIRST_FAIL)
    d:set(LAST_OK, now)
    log.log(NOTICE, "breaker closed", "decision service answered the probe; breaker closed")
  else
    metrics.incr("breaker_probes_failed_total", "cause", err)
  end
  d:delete(PROBING)
end

local function tick(premature, client, codec)
  if premature then return end
  local d = state()
  if not d:get(OPEN) then return end
  local c = config.http
  local now = now_ms()
  if now < (d:get(NEXT_PROBE) or 0) then return end
  -- the lock outlives a probe's deadline by a second at most (a worker that dies mid-probe
  -- cannot wedge the breaker)
  if not d:add(PROBING, true, c.breaker_probe_timeout_ms / 1000 + 1) then return end
  d:set(NEXT_PROBE, now + c.breaker_cooldown_ms)
  local ok, err = pcall(probe, client, codec, config.gateway_id())
  if not ok then
    d:delete(PROBING)
    log.log(ERR, "breaker probe", "breaker probe failed: ", err)
  end
end

-- syntax: breaker.init_worker()
-- Starts this worker's probe timer (init_worker_by_lua, through the handler).
function _M.init_worker()
  local client = require "verdict.client"
  local codec = require "verdict.codec"
  local ok, err = ngx.timer.every(TICK_S, tick, client, codec)
  if not ok then log.log(ERR, "breaker timer", "failed to start the breaker probe timer: ", err) end
end

-- syntax: code = breaker.state_code()
-- 0 closed, 1 open, 2 open with a probe in flight.
function _M.state_code()
  local d = state()
  if not d or not d:get(OPEN) then return 0 end
  if d:get(PROBING) then return 2 end
  return 1
end
metrics.gauge("breaker_state", _M.state_code)

-- ------------------------------------------------------------------ overload (per worker)

local window_start, calls, timeouts = 0, 0, 0
local share = 0 -- timed-out share of the decide calls of the last full second

-- syntax: breaker.observe(timed_out)
-- Counts one decide call of this worker for the overload gauge.
function _M.observe(timed_out)
  local now = ngx_now()
  if now - window_start >= 1 then
    -- a window with no calls says nothing about the service: the old share decays to 0
    share = calls > 0 and timeouts / calls or 0
    if now - window_start >= 2 then share = 0 end
    window_start, calls, timeouts = now, 0, 0
  end
  calls = calls + 1
  if timed_out then timeouts = timeouts + 1 end
end

-- syntax: yes = breaker.overloaded()
-- True when this worker saw at least shed_timeout_share of its calls time out last second.
function _M.overloaded()
  if share == 0 then return false end
  if ngx_now() - window_start >= 2 then share = 0 return false end
  local threshold = config.http.shed_timeout_share
  return threshold > 0 and share >= threshold
end

return _M
