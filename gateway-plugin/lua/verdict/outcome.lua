-- Outcome reporter. The log phase pushes one Outcome per guarded request into a per-worker
-- buffer; a timer (never a request) sends them in batches (POST /v1/outcomes or an OUTCOMES
-- frame, per the configured transport). Async-mode requests carry their DecideRequest inside the
-- Outcome so the service scores them late; the verdicts in the OutcomeAck go into the verdict
-- cache.
--
-- The buffer is bounded (outcome_buffer_max): when full, outcomes are dropped and counted.
-- A failed batch is dropped and counted too (no retry: outcomes are feedback, not a ledger).
-- While the circuit breaker is open nothing is buffered (the handler counts those as dropped,
-- reason "breaker open") and a flush drops what is left instead of sending into a dead service.
--
-- Operator side (issue 16): every tick sends a batch even with no outcomes (a heartbeat), so the
-- service can hand back revocations (OutcomeAck.revoked_keys: cached verdicts an operator
-- override made wrong, dropped here at once) within outcome_flush_ms, and each batch carries this
-- gateway's counters (fail-open causes, breaker state, cache hits, calls) for the service's console.
--
-- Response inspection (issue 17): each batch names the version of the policy's sensitive patterns
-- this worker runs; an ack with another version carries the service's patterns, installed here
-- (verdict.inspect compiles them; a bad one is logged and skipped).

local config = require "verdict.config"
local client = require "verdict.client"
local codec = require "verdict.codec"
local cache = require "verdict.cache"
local metrics = require "verdict.metrics"
local breaker = require "verdict.breaker"
local log = require "verdict.log"
local inspect = require "verdict.inspect"

local ngx = ngx
local shared = ngx.shared
local find, sub = string.find, string.sub
local timer_at, timer_every = ngx.timer.at, ngx.timer.every
local ERR = ngx.ERR

local _M = { _VERSION = "0.1.0" }

local buffer, n = {}, 0
local flushing = false
local kicked = false
local gateway_id

-- syntax: ok, err = outcome.push(o)
-- Queues an Outcome table (codec field names). Returns true, or nil, "buffer full".
function _M.push(o)
  local c = config.http
  if n >= c.outcome_buffer_max then
    metrics.incr("outcomes_dropped_total", "reason", "buffer full")
    return nil, "buffer full"
  end
  n = n + 1
  buffer[n] = o
  if n >= c.outcome_batch_size and not kicked and not flushing then
    -- a full batch goes out now rather than at the next tick
    kicked = true
    local ok = timer_at(0, _M.flush)
    if not ok then kicked = false end
  end
  return true
end

-- counters the console shows, by metric name (the gateway's Prometheus names without the prefix)
local REPORTED = {
  fail_open_total = true, fail_closed_total = true, breaker_opens_total = true, cache_hits_total = true,
  calls_total = true, decisions_total = true, shed_total = true, skipped_calls_total = true, outcomes_dropped_total = true,
}
local PREFIX = "verdict_gateway_"
local MAX_COUNTERS = 60

-- the gateway's counters (all workers: the verdict_stats dict) plus the breaker state
local function counters()
  metrics.flush()
  local out = { { name = "breaker_state", value = breaker.state_code() or 0 } }
  local d = shared.verdict_stats
  if not d then return out end
  local keys = d:get_keys(200)
  for i = 1, #keys do
    local k = keys[i]
    local b = find(k, "{", 1, true)
    local name = sub(k, #PREFIX + 1, b and b - 1 or #k)
    if REPORTED[name] then
      local v = d:get(k)
      if v and v > 0 then out[#out + 1] = { name = sub(k, #PREFIX + 1), value = v } end
      if #out >= MAX_COUNTERS then break end
    end
  end
  return out
end

-- ctr: the gateway's counters, on the first batch of a flush only (reading them walks the stats
-- dict under its lock; the service keeps a gateway's last counters when a batch has none)
local function send(batch, count, ctr)
  local c = config.http
  local body = codec.encode_outcome_batch({ gateway_id = gateway_id, outcomes = batch, counters = ctr,
                                            patterns_version = inspect.patterns_version() })
  local res, err, what, instance = client.call("outcomes", body, c.outcome_timeout_ms)
  if not res then
    metrics.incr("outcome_batches_total", "result", err)
    metrics.incr("outcomes_dropped_total", "reason", err, count)
    log.log(ERR, "outcomes " .. err, "outcome batch to ", instance, " failed: ", err,
            " (", what, "); ", count, " outcomes dropped")
    return
  end
  metrics.incr("outcome_batches_total", "result", "ok")
  metrics.incr("outcomes_sent_total", nil, nil, count)
  local ack, derr = codec.decode_outcome_ack(res)
  if not ack then
    log.log(ERR, "outcome ack", "failed to decode the outcome ack from ", instance, ": ", derr)
    return
  end
  local verdicts = ack.verdicts
  for i = 1, #verdicts do
    if cache.store(verdicts[i]) then
      metrics.incr("cache_stores_total", "action", verdicts[i].action)
    end
  end
  -- after the stores: a revocation wins over a verdict of the same ack
  local revoked = ack.revoked_keys
  for i = 1, #revoked do cache.revoke(revoked[i]) end
  -- clean marks taken back (issue 15): the client's next requests are decided inline again
  local unmarked = ack.unmarked_keys
  for i = 1, #unmarked do cache.unmark(unmarked[i]) end
  -- an ack names a version only when this worker's differs (an absent field decodes as ""): an
  -- ack without one changes nothing
  local version = ack.patterns_version
  if version ~= "" and version ~= inspect.patterns_version() then
    local n = inspect.set_patterns(version, ack.patterns)
    ngx.log(ngx.NOTICE, "verdict: sensitive patterns version ", version, " installed (", n, " of ", #ack.patterns, ")")
  end
end

-- syntax: outcome.flush(premature)
-- Timer callback: posts everything buffered, in batches of outcome_batch_size. Also runs
-- (premature) when the worker exits, so a reload or graceful stop sends what is left.
function _M.flush(premature)
  kicked = false
  if flushing or (n == 0 and premature) then return end
  flushing = true
  local c = config.http
  if not gateway_id then gateway_id = config.gateway_id() end
  local size = c.outcome_batch_size
  -- take the whole buffer; new pushes during the sends go into a fresh one
  local all, total = buffer, n
  buffer, n = {}, 0
  if breaker.is_open() then
    metrics.incr("outcomes_dropped_total", "reason", "breaker open", total)
    flushing = false
    return
  end
  local ok, err = pcall(function()
    local ctr = counters()
    if total == 0 then
      send({}, 0, ctr) -- heartbeat: counters out, revocations back
      return
    end
    local i = 1
    while i <= total do
      local last = i + size - 1
      if last > total then last = total end
      local batch = {}
      for j = i, last do batch[#batch + 1] = all[j] end
      send(batch, last - i + 1, ctr)
      ctr = nil
      i = last + 1
    end
  end)
  flushing = false
  if not ok then log.log(ERR, "outcome flush", "outcome flush failed: ", err) end
end

-- syntax: outcome.init_worker()
-- Starts the per-worker flush timer (called from init_worker_by_lua via the handler).
function _M.init_worker()
  local c = config.http
  if not c.outcomes_enabled then return end
  gateway_id = config.gateway_id()
  local ok, err = timer_every(c.outcome_flush_ms / 1000, _M.flush)
  if not ok then log.log(ERR, "outcome timer", "failed to start the outcome timer: ", err) end
end

return _M
