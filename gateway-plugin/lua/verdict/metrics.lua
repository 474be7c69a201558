-- Gateway counters served as Prometheus text by metrics.serve() (verdict-metrics.conf).
--
-- Counting is per worker, in a Lua table: a `lua_shared_dict` operation takes a lock shared by
-- all workers, and the request path would otherwise take it several times per request. Each
-- worker adds its table into the `verdict_stats` shared dict every `metrics_flush_ms` (a timer)
-- and when it serves /verdict-metrics, so a scrape sees the serving worker's counts at once and
-- the other workers' with a lag of at most `metrics_flush_ms`. Counts of a worker that dies
-- (crash, not reload: graceful exits flush) since its last flush are lost.
--
-- Dict keys are full Prometheus series ("name{label=\"v\"}"), so rendering is a scan. The call
-- latency histogram stores per-bucket (non-cumulative) counts; render() accumulates them.

local ngx = ngx
local shared = ngx.shared
local concat, sort = table.concat, table.sort
local find, sub, format = string.find, string.sub, string.format
local pairs, tostring = pairs, tostring

local _M = { _VERSION = "0.1.0" }

local PREFIX = "verdict_gateway_"

local HELP = {
  decisions_total = { "counter", "verdicts enforced (or observed in monitor mode) by action and source (service|cache)" },
  monitor_would_enforce_total = { "counter", "monitor-mode verdicts that would have blocked, challenged or tagged" },
  fail_open_total = { "counter", "requests let through because the decide call failed, by cause" },
  fail_closed_total = { "counter", "requests refused because the decide call failed on a fail-closed location, by cause" },
  cache_hits_total = { "counter", "requests decided by the local verdict cache without a call" },
  cache_stores_total = { "counter", "verdicts stored in the local verdict cache, by action" },
  calls_total = { "counter", "decide calls by result (ok or failure cause)" },
  call_duration_ms = { "histogram", "decide call duration in milliseconds (connect + send + read)" },
  breaker_opens_total = { "counter", "times the circuit breaker opened" },
  breaker_state = { "gauge", "circuit breaker: 0 closed, 1 open, 2 open with a probe in flight" },
  breaker_probes_failed_total = { "counter", "background probes of the open breaker that got no answer, by cause" },
  skipped_calls_total = { "counter", "inline requests not waited on (passed, scored after the response) because their client is cleared: a valid clearance token or a clean mark from the service, by why" },
  shed_total = { "counter", "calls skipped under overload (low-priority locations, async metadata), by what was shed" },
  outcomes_sent_total = { "counter", "outcomes accepted by the service (POST /v1/outcomes or an OUTCOMES frame)" },
  outcomes_dropped_total = { "counter", "outcomes dropped, by reason (buffer full, breaker open, send failure cause)" },
  outcome_batches_total = { "counter", "outcome batches posted, by result" },
  clearance_total = { "counter", "clearance checks of guarded requests by result (valid, invalid, expired; issued or proof rejected for X-Verdict-Proof)" },
  challenge_answers_total = { "counter", "answers at /.verdict/answer by result (issued or the rejection reason)" },
}

local BUCKETS = { 1, 2, 5, 10, 25, 50, 100, 250, 1000 }
local BUCKET_KEYS = {}
for i = 1, #BUCKETS do
  BUCKET_KEYS[i] = PREFIX .. "call_duration_ms_bucket{le=\"" .. BUCKETS[i] .. "\"}"
end
local INF_KEY = PREFIX .. "call_duration_ms_bucket{le=\"+Inf\"}"
local SUM_KEY = PREFIX .. "call_duration_ms_sum"
local COUNT_KEY = PREFIX .. "call_duration_ms_count"

local dict -- resolved lazily: the module may be required before the dict exists (tests)

local function stats()
  if not dict then dict = shared.verdict_stats end
  return dict
end

-- per-worker counts not yet added to the shared dict: series key -> number
local pending = {}
local dirty = false

-- series name cache: name -> label value -> key string (no concatenation per request)
local keys = {}

-- syntax: k = metrics.key(name, label?, value?, label2?, value2?)
-- The series key PREFIX..name{label="value"} or PREFIX..name{label="value",label2="value2"}.
-- One-label keys are memoised (incr() resolves them per call); two-label keys are built as asked:
-- their callers resolve them once at load and keep them.
local function key(name, label, value, label2, value2)
  if label2 then
    return PREFIX .. name .. "{" .. label .. "=\"" .. tostring(value) .. "\"," .. label2 .. "=\""
      .. tostring(value2) .. "\"}"
  end
  local by_name = keys[name]
  if not by_name then by_name = {} keys[name] = by_name end
  local v = value or ""
  local k = by_name[v]
  if not k then
    k = label and (PREFIX .. name .. "{" .. label .. "=\"" .. tostring(value) .. "\"}") or PREFIX .. name
    by_name[v] = k
  end
  return k
end
_M.key = key

-- syntax: metrics.add(key, n?)
-- Adds n (default 1) to a series key from metrics.key().
local function add(k, n)
  pending[k] = (pending[k] or 0) + (n or 1)
  dirty = true
end
_M.add = add

-- syntax: metrics.incr(name, label, value, n?)
-- Adds n (default 1) to series PREFIX..name{label="value"}; label may be nil for no labels.
function _M.incr(name, label, value, n)
  add(key(name, label, value), n)
end

-- gauges: name -> function returning the current value (computed at render, not counted)
local gauges = {}

-- syntax: metrics.gauge(name, fn)
-- Registers a gauge PREFIX..name whose value render() reads from fn(). The module that owns the
-- state registers it (breaker.lua: breaker_state), so this module requires none of them.
function _M.gauge(name, fn)
  gauges[name] = fn
end

-- syntax: metrics.observe_call(ms)
-- Records one decide call duration in the latency histogram.
function _M.observe_call(ms)
  local k = INF_KEY
  for i = 1, #BUCKETS do
    if ms <= BUCKETS[i] then k = BUCKET_KEYS[i] break end
  end
  pending[k] = (pending[k] or 0) + 1
  pending[SUM_KEY] = (pending[SUM_KEY] or 0) + ms
  pending[COUNT_KEY] = (pending[COUNT_KEY] or 0) + 1
  dirty = true
end

-- syntax: metrics.flush()
-- Adds this worker's pending counts into the shared dict (timer, metrics read, worker exit).
function _M.flush()
  if not dirty then return end
  local d = stats()
  if not d then return end
  dirty = false
  for k, v in pairs(pending) do
    if v ~= 0 then
      local ok, err = d:incr(k, v, 0)
      if ok then
        pending[k] = 0
      else
        dirty = true -- dict full: keep the count for the next flush
        ngx.log(ngx.ERR, "verdict: failed to flush counter ", k, ": ", err)
      end
    end
  end
end

-- syntax: metrics.init_worker(interval_ms)
-- Starts the per-worker flush timer (called from init_worker_by_lua via the handler).
function _M.init_worker(interval_ms)
  local ok, err = ngx.timer.every(interval_ms / 1000, function() _M.flush() end)
  if not ok then ngx.log(ngx.ERR, "verdict: failed to start the metrics timer: ", err) end
end

local function name_of(key)
  local b = find(key, "{", 1, true)
  local n = b and sub(key, 1, b - 1) or key
  n = sub(n, #PREFIX + 1)
  if find(n, "^call_duration_ms_") then return "call_duration_ms" end
  return n
end

-- syntax: text = metrics.render()
-- Returns every series in Prometheus text exposition format.
function _M.render()
  local d = stats()
  if not d then return "" end
  _M.flush()
  local groups = {}
  local all = d:get_keys(0)
  for i = 1, #all do
    local k = all[i]
    local v = d:get(k)
    if v then
      local n = name_of(k)
      local g = groups[n]
      if not g then g = {} groups[n] = g end
      g[k] = v
    end
  end
  for n, fn in pairs(gauges) do groups[n] = { [PREFIX .. n] = fn() } end
  -- histogram: cumulative buckets, always all of them
  local h = groups.call_duration_ms or {}
  local acc, hist = 0, {}
  for i = 1, #BUCKETS do
    acc = acc + (h[BUCKET_KEYS[i]] or 0)
    hist[#hist + 1] = BUCKET_KEYS[i] .. " " .. acc
  end
  acc = acc + (h[INF_KEY] or 0)
  hist[#hist + 1] = INF_KEY .. " " .. acc
  hist[#hist + 1] = SUM_KEY .. " " .. format("%.3f", h[SUM_KEY] or 0)
  hist[#hist + 1] = COUNT_KEY .. " " .. (h[COUNT_KEY] or 0)
  groups.call_duration_ms = nil

  local out, names = {}, {}
  for n in pairs(HELP) do names[#names + 1] = n end
  sort(names)
  for i = 1, #names do
    local n = names[i]
    local help = HELP[n]
    out[#out + 1] = "# HELP " .. PREFIX .. n .. " " .. help[2]
    out[#out + 1] = "# TYPE " .. PREFIX .. n .. " " .. help[1]
    if n == "call_duration_ms" then
      for j = 1, #hist do out[#out + 1] = hist[j] end
    else
      local g = groups[n]
      if g then
        local ks = {}
        for k in pairs(g) do ks[#ks + 1] = k end
        sort(ks)
        for j = 1, #ks do out[#out + 1] = ks[j] .. " " .. tostring(g[ks[j]]) end
      elseif help[1] ~= "counter" or n == "breaker_opens_total" or n == "cache_hits_total" then
        out[#out + 1] = PREFIX .. n .. " 0"
      end
    end
  end
  out[#out + 1] = ""
  return concat(out, "\n")
end

-- syntax: metrics.serve()
-- content_by_lua handler: writes render() as text/plain; version=0.0.4.
function _M.serve()
  ngx.header["Content-Type"] = "text/plain; version=0.0.4"
  ngx.print(_M.render())
end

return _M
