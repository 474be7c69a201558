-- Phase glue: access (decide and enforce) and log (report the outcome). Everything else lives in
-- the modules named after their job.
--
-- Access, per mode ($verdict_mode):
--   off      nothing at all.
--   inline   1. cached verdict? enforce it, no call; 2. breaker open? fail at once, no call;
--            3. side call within $verdict_budget_ms; 4. allow / tag / challenge / block.
--   monitor  like inline, but only counts what it would have enforced.
--   async    only cached verdicts are enforced; the log phase ships the DecideRequest.
-- On a failed call (timeout, refused, closed, socket error, http error, bad response, breaker
-- open) the request goes on with "X-Verdict-Fail-Open: <cause>" to the upstream, unless the
-- location is fail-closed ($verdict_fail = closed): then $verdict_fail_closed_status.

local config = require "verdict.config"
local request = require "verdict.request"
local codec = require "verdict.codec"
local client = require "verdict.client"
local cache = require "verdict.cache"
local breaker = require "verdict.breaker"
local outcome = require "verdict.outcome"
local metrics = require "verdict.metrics"
local log = require "verdict.log"

local ngx = ngx
local ngx_var = ngx.var
local ngx_exit = ngx.exit
local set_header = ngx.req.set_header
local ngx_header = ngx.header
local ngx_print = ngx.print
local ERR, WARN = ngx.ERR, ngx.WARN
local concat = table.concat
local tonumber, floor, gsub, match = tonumber, math.floor, string.gsub, string.match

local _M = { _VERSION = "0.1.0" }

local LOWER = { ALLOW = "allow", TAG = "tag", CHALLENGE = "challenge", BLOCK = "block" }

local function json_escape(s)
  return (gsub(s, '[%c"\\]', function(ch)
    return ch == '"' and '\\"' or ch == "\\" and "\\\\" or ""
  end))
end

local function block(v)
  local status = config.get("block_status")
  local body = config.get("block_body")
  if body == "" then
    body = '{"error":"blocked","request_id":"' .. json_escape(ngx_var.request_id or "") .. '"}'
  end
  ngx.status = status
  ngx_header["Content-Type"] = "application/json"
  ngx_header["Cache-Control"] = "no-store"
  ngx_print(body)
  return ngx_exit(status)
end

local function challenge(v)
  local url = config.get("challenge_url")
  if url ~= "" then
    ngx_header["Cache-Control"] = "no-store"
    return ngx.redirect(url, 302)
  end
  local status = config.get("challenge_status")
  local retry = config.get("challenge_retry_after")
  ngx.status = status
  ngx_header["Content-Type"] = "application/json"
  ngx_header["Cache-Control"] = "no-store"
  ngx_header["Retry-After"] = retry
  ngx_print('{"error":"challenge","request_id":"', json_escape(ngx_var.request_id or ""),
            '","retry_after":', retry, '}')
  return ngx_exit(status)
end

-- enforce (or, in monitor mode, only count) a verdict; ends the request on block/challenge
local function enforce(v, mode, source, st)
  -- the service already chose the action to enforce; dry_run only says monitor-mode rules
  -- would have acted more strongly (counted by the service), so it changes nothing here
  local action = v.action
  st.action = action
  metrics.incr("decisions_total", "action", LOWER[action] .. "\",source=\"" .. source)
  if mode == "monitor" then
    if action ~= "ALLOW" then metrics.incr("monitor_would_enforce_total", "action", LOWER[action]) end
    return
  end
  if action == "ALLOW" then return end
  if action == "TAG" then
    set_header("X-Verdict-Score", v.score or 0)
    set_header("X-Verdict-Reasons", concat(v.reasons or {}, ","))
    return
  end
  if action == "BLOCK" then return block(v) end
  if action == "CHALLENGE" then return challenge(v) end
end

local function fail(cause, mode, st)
  st.fail_open = cause
  if mode == "inline" and config.get("fail") == "closed" then
    metrics.incr("fail_closed_total", "cause", cause)
    st.action = "BLOCK"
    return ngx_exit(config.get("fail_closed_status"))
  end
  metrics.incr("fail_open_total", "cause", cause)
  set_header("X-Verdict-Fail-Open", cause)
end

-- syntax: handler.init_worker()
-- init_worker_by_lua hook: log interval, outcome flush timer.
function _M.init_worker()
  if not config.ready then
    ngx.log(ERR, "verdict: config.init{...} was not called from init_by_lua; Verdict is inactive")
    return
  end
  log.set_interval(config.http.log_interval_s)
  outcome.init_worker()
end

-- syntax: handler.access()
-- access_by_lua hook (verdict-location.conf).
function _M.access()
  if not config.ready then return end
  local mode = config.get("mode")
  if mode == "off" then return end

  local req = request.build(mode)
  local st = { req = req, mode = mode, action = "ALLOW", fail_open = nil, from_cache = false }
  ngx.ctx.verdict = st

  local hit = cache.lookup(req)
  if hit then
    st.from_cache = true
    metrics.incr("cache_hits_total")
    return enforce(hit, mode, "cache", st)
  end
  if mode == "async" then return end

  local budget = config.get("budget_ms")
  local ok, probe = breaker.allow(budget)
  if not ok then return fail(probe, mode, st) end

  local started = client.now_ms()
  local body, err = client.post(config.http.decide_path, codec.encode_decide_request(req), budget)
  local resp
  if body then
    resp, err = codec.decode_decide_response(body)
  end
  metrics.observe_call(client.now_ms() - started)
  if not resp then
    metrics.incr("calls_total", "result", err)
    breaker.failure(probe, err)
    log.log(ERR, "call " .. err, "decide call failed: ", err, " (failing ",
            (mode == "inline" and config.get("fail") == "closed") and "closed" or "open", ")")
    return fail(err, mode, st)
  end
  metrics.incr("calls_total", "result", "ok")
  breaker.success(probe)
  if cache.store(resp) then metrics.incr("cache_stores_total", "action", resp.action) end
  return enforce(resp, mode, "service", st)
end

-- syntax: handler.log()
-- log_by_lua hook: queues the outcome of a guarded request (async requests carry their
-- DecideRequest).
function _M.log()
  local st = ngx.ctx.verdict
  if not st then return end
  local c = config.http
  if not c.outcomes_enabled then return end
  local req = st.req
  local auth_result
  local h = config.get("auth_result_header")
  if h ~= "" then auth_result = ngx_var["upstream_http_" .. gsub(h, "-", "_")] end
  local up = ngx_var.upstream_response_time
  local upstream_ms
  if up then
    local first = tonumber(match(up, "^[%d%.]+"))
    if first then upstream_ms = floor(first * 1000 + 0.5) end
  end
  outcome.push({
    request_id = req.request_id,
    ts_ms = req.ts_ms,
    client_ip = req.client_ip,
    method = req.method,
    path = req.path,
    route_tag = req.route_tag,
    status = ngx.status,
    auth_result = auth_result,
    upstream_ms = upstream_ms,
    bytes_sent = tonumber(ngx_var.bytes_sent),
    action = st.action,
    fail_open = st.fail_open,
    from_cache = st.from_cache,
    request = (st.mode == "async" and not st.from_cache) and req or nil,
  })
end

return _M
