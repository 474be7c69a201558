-- Phase glue: access (decide and enforce) and log (report the outcome). Everything else lives in
-- the modules named after their job.
--
-- Access, per mode ($verdict_mode):
--   off      nothing but removing client-sent X-Verdict-* headers (they are ours to set).
--   inline   1. cached verdict? enforce it, no call; 2. breaker open? fail at once, no call;
--            3. overloaded and $verdict_priority low? skip the call ("shed");
--            4. side call within $verdict_budget_ms; 5. allow / tag / challenge / block.
--   monitor  like inline, but only counts what it would have enforced.
--   async    only cached verdicts are enforced; the log phase ships the DecideRequest (not
--            while this worker is overloaded: shed first).
-- Not waited on (inline handled as async, where $verdict_cleared is async): a request with a
-- valid clearance token, and one whose client the service marked clean (a cached ALLOW under its
-- principal, session or device: issue 15); counted in skipped_calls_total.
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
local clearance = require "verdict.clearance"
local challenge = require "verdict.challenge"
local inspect = require "verdict.inspect"

local ngx = ngx
local ngx_var = ngx.var
local ngx_exit = ngx.exit
local set_header = ngx.req.set_header
local ngx_header = ngx.header
local ngx_print = ngx.print
local ERR = ngx.ERR
local concat = table.concat
local tonumber, floor, gsub, match = tonumber, math.floor, string.gsub, string.match
local get = config.get
local now_ms = client.now_ms
local add, key, incr = metrics.add, metrics.key, metrics.incr
local decode_decide_response, encode_decide_request = codec.decode_decide_response, codec.encode_decide_request

local _M = { _VERSION = "0.2.0" }

local LOWER = { ALLOW = "allow", TAG = "tag", CHALLENGE = "challenge", BLOCK = "block" }
local CLEARANCE_RESULT = { VALID = "valid", INVALID = "invalid", EXPIRED = "expired" }

-- series keys resolved once per worker
local DECISIONS = { service = {}, cache = {} }
for action, l in pairs(LOWER) do
  DECISIONS.service[action] = key("decisions_total", "action", l, "source", "service")
  DECISIONS.cache[action] = key("decisions_total", "action", l, "source", "cache")
end
local CACHE_HITS = key("cache_hits_total")
local CALLS_OK = key("calls_total", "result", "ok")
local DROPPED_BREAKER = key("outcomes_dropped_total", "reason", "breaker open")
local SHED_LOW = key("shed_total", "what", "low priority call")
local SHED_ASYNC = key("shed_total", "what", "async metadata")
local SKIPPED = { clearance = key("skipped_calls_total", "why", "clearance"),
                  mark = key("skipped_calls_total", "why", "clean mark") }
local CALL_CAUSE = setmetatable({}, { __index = function(t, k) local v = "call " .. k t[k] = v return v end })
local AUTH_VAR = setmetatable({}, { __index = function(t, h)
  local v = "upstream_http_" .. gsub(h, "-", "_") t[h] = v return v end })

local function json_escape(s)
  return (gsub(s, '[%c"\\]', function(ch)
    return ch == '"' and '\\"' or ch == "\\" and "\\\\" or ""
  end))
end

local function block()
  local status = get("block_status")
  local body = get("block_body")
  if body == "" then
    body = '{"error":"blocked","request_id":"' .. json_escape(ngx_var.request_id or "") .. '"}'
  end
  ngx.status = status
  ngx_header["Content-Type"] = "application/json"
  ngx_header["Cache-Control"] = "no-store"
  ngx_print(body)
  return ngx_exit(status)
end

-- enforce (or, in monitor mode, only count) a verdict; ends the request on block/challenge
local function enforce(v, mode, source, st)
  -- the service already chose the action to enforce; dry_run only says monitor-mode rules
  -- would have acted more strongly (counted by the service), so it changes nothing here
  local action = v.action
  st.action = action
  add(DECISIONS[source][action])
  if mode == "monitor" then
    if action ~= "ALLOW" then incr("monitor_would_enforce_total", "action", LOWER[action]) end
    return
  end
  if action == "ALLOW" then return end
  if action == "TAG" then
    set_header("X-Verdict-Score", v.score or 0)
    set_header("X-Verdict-Reasons", concat(v.reasons or {}, ","))
    return
  end
  if action == "BLOCK" then return block() end
  if action == "CHALLENGE" then return challenge.respond(v, ngx_var.remote_addr, ngx_var.http_user_agent or "") end
end

-- The client's clearance: a proof in X-Verdict-Proof (checked and spent here; the response sets
-- the cookie) or the verdict_clearance cookie. Returns state, level, age (the DecideRequest's
-- clearance fields). Costs two variable reads when the client carries neither.
local function clearance_of()
  local proof = ngx_var.http_x_verdict_proof
  local token = ngx_var.cookie_verdict_clearance
  if not proof and not token then return "NONE", 0, 0 end
  local ip, ua = ngx_var.remote_addr, ngx_var.http_user_agent or ""
  if proof then
    local issued, level, ttl = challenge.redeem(proof, ip, ua)
    if issued then
      challenge.set_cookie(issued, ttl)
      incr("clearance_total", "result", "issued")
      return "VALID", level, 0
    end
    incr("clearance_total", "result", "proof rejected")
  end
  local state, level, age = clearance.check_token(token, ip, ua)
  if state ~= "NONE" then incr("clearance_total", "result", CLEARANCE_RESULT[state]) end
  return state, level, age
end

-- a cached CHALLENGE is already answered by a clearance of at least its difficulty
local function satisfied(hit, cstate, clevel)
  if hit.action ~= "CHALLENGE" or cstate ~= "VALID" then return false end
  local base = get("challenge_difficulty")
  local want = hit.challenge_difficulty or base
  -- level 0 is the no-JS fallback, offered only at the base difficulty: it paid that, by waiting
  return (clevel == 0 and base or clevel) >= want
end

-- the fallback of a failed call: `closed` was decided before the call
local function fail(cause, closed, st)
  st.fail_open = cause
  if closed then
    incr("fail_closed_total", "cause", cause)
    st.action = "BLOCK"
    return ngx_exit(get("fail_closed_status"))
  end
  incr("fail_open_total", "cause", cause)
  set_header("X-Verdict-Fail-Open", cause)
end

-- syntax: handler.init_worker()
-- init_worker_by_lua hook: log interval, metrics and outcome flush timers.
function _M.init_worker()
  if not config.ready then
    ngx.log(ERR, "verdict: config.init{...} was not called from init_by_lua; Verdict is inactive")
    return
  end
  log.set_interval(config.http.log_interval_s)
  config.gateway_id() -- drawn once per worker start, before any request
  metrics.init_worker(config.http.metrics_flush_ms)
  outcome.init_worker()
  breaker.init_worker()
  client.init_worker() -- transport "mux": this worker's multiplexed connections
end

-- syntax: handler.access()
-- access_by_lua hook (verdict-location.conf).
--
-- Cost by situation: breaker open and no cached key type that needs headers -> no request is
-- built (only the spoofed-header strip, an IP cache lookup if IPs are cached); nothing cached
-- -> no cache lookup; outcomes off or breaker open -> nothing kept for the log phase.
function _M.access()
  if not config.ready then return end
  local mode = get("mode")
  if mode == "off" then return request.strip_spoofed() end
  local c = config.http
  -- a proven browser is not waited on where the location says so ($verdict_cleared async)
  local cstate, clevel, cage = clearance_of()
  local skipped -- why an inline request is not waited on (SKIPPED)
  if cstate == "VALID" and mode == "inline" and get("cleared") == "async" then mode, skipped = "async", SKIPPED.clearance end

  -- the fallback first: what a failure answers, and whether a call may go out at all
  local closed = mode == "inline" and get("fail") == "closed"
  local open = breaker.is_open()
  local report = c.outcomes_enabled and not open
  if c.outcomes_enabled and open then add(DROPPED_BREAKER) end
  local call = mode ~= "async" and not open
  local any_cached, header_cached, target_cached, client_cached = cache.live()

  local req
  if call or report or header_cached then
    req = request.build(mode, call)
  else
    request.strip_spoofed()
  end

  -- st is also the Outcome the log phase reports (codec field names)
  if req then req.clearance, req.clearance_level, req.clearance_age_s = cstate, clevel, cage end

  local st = {
    request_id = nil, ts_ms = nil, client_ip = nil, method = nil, path = nil, route_tag = nil,
    status = 0, auth_result = nil, upstream_ms = nil, bytes_sent = nil,
    action = "ALLOW", fail_open = nil, from_cache = false, request = nil, response = nil,
    mode = mode, req = req,
    inspect = nil, scan = nil, -- the service's DecideResponse.inspect (nil: not called); verdict.inspect's state
  }
  if report then
    st.request_id, st.ts_ms, st.client_ip = req.request_id, req.ts_ms, req.client_ip
    st.method, st.path, st.route_tag = req.method, req.path, req.route_tag
    ngx.ctx.verdict = st
  end

  if any_cached then
    local hit
    if req then
      hit = cache.lookup(req.client_ip, req.session_hash, req.token_hash, req.device_hash, req.path, req.query, req)
    else
      -- the URL is read only while a probed one may be cached, the client's four header values
      -- only while a client key may be (the breaker is open: no DecideRequest is built)
      local path, query
      if target_cached then path, query = ngx_var.uri, request.query() end
      hit = cache.lookup(ngx_var.remote_addr, nil, nil, nil, path, query, client_cached and request.client_fields() or nil)
    end
    if hit and hit.action == "ALLOW" then
      -- a clean mark: not waited on where cleared clients are not, and only while the request can
      -- still be scored after the response; elsewhere decided as if nothing were cached
      if mode == "inline" and report and get("cleared") == "async" then
        mode, skipped = "async", SKIPPED.mark
        st.mode = mode
      end
    elseif hit and not satisfied(hit, cstate, clevel) then
      st.from_cache = true
      add(CACHE_HITS)
      return enforce(hit, mode, "cache", st)
    end
  end
  if mode == "async" then
    if report then
      if breaker.overloaded() then
        add(SHED_ASYNC)
      else
        st.request = req
      end
    end
    if skipped then
      add(skipped)
      -- a cleared client's call is skipped, not what the service would ask of its response: a
      -- request with a token, session or device (whom the exfil detector counts) is inspected as
      -- a decided one on an unsettled URL would be; one without follows inspect_sample (issue 17)
      if req and (req.token_hash or req.session_hash or req.device_hash) then st.inspect = true end
    end
    return
  end
  if open then return fail("breaker open", closed, st) end
  if breaker.overloaded() and get("priority") == "low" then
    add(SHED_LOW)
    return fail("shed", closed, st)
  end

  local budget = get("budget_ms")
  local started = now_ms()
  -- The deadline the service judges by: ts_ms + budget_ms. ts_ms is re-read now, not the
  -- event loop's cached time taken when the request was built: at saturation that cache lags
  -- the clock by tens of ms, and the service dropped calls as expired that were not (issue 10).
  req.ts_ms = floor(started)
  req.budget_ms = budget -- the service drops the call unanswered once this has passed
  local body, err, what, instance = client.call("decide", encode_decide_request(req), budget, req.request_id)
  local resp
  if body then
    resp, err = decode_decide_response(body)
    if not resp then
      what = "undecodable DecideResponse"
    elseif resp.request_id and resp.request_id ~= "" and resp.request_id ~= req.request_id then
      -- an answer names the request it decides: a verdict for another request is never enforced
      resp, err, what = nil, "bad response", "verdict for another request"
    end
  end
  metrics.observe_call(now_ms() - started)
  if not resp then
    incr("calls_total", "result", err)
    breaker.observe(err == "timeout")
    breaker.failure(err)
    log.log(ERR, CALL_CAUSE[err], "decide call to ", instance, " failed: ", err,
            " (", what, "); failing ", closed and "closed" or "open")
    return fail(err, closed, st)
  end
  add(CALLS_OK)
  breaker.observe(false)
  breaker.success()
  if cache.store(resp) then incr("cache_stores_total", "action", resp.action) end
  st.inspect = resp.inspect
  return enforce(resp, mode, "service", st)
end

-- syntax: handler.header_filter() / handler.body_filter()
-- header_filter_by_lua / body_filter_by_lua hooks: response inspection (verdict.inspect); nothing
-- but an ngx.ctx read for a response that is not inspected.
_M.header_filter = inspect.header_filter
_M.body_filter = inspect.body_filter

-- syntax: handler.log()
-- log_by_lua hook: queues the outcome of a guarded request (async requests carry their
-- DecideRequest). Nothing to do (and ngx.ctx untouched) when outcomes are off or the breaker
-- is open.
function _M.log()
  local c = config.http
  if not c or not c.outcomes_enabled or breaker.is_open() then return end
  local st = ngx.ctx.verdict
  if not st then return end
  local h = get("auth_result_header")
  if h ~= "" then st.auth_result = ngx_var[AUTH_VAR[h]] end
  local up = ngx_var.upstream_response_time
  if up then
    local first = tonumber(match(up, "^[%d%.]+"))
    if first then st.upstream_ms = floor(first * 1000 + 0.5) end
  end
  st.status = ngx.status
  st.bytes_sent = tonumber(ngx_var.bytes_sent)
  st.req = nil
  if st.scan then inspect.finish(st) end
  outcome.push(st)
end

return _M
