-- Verdict gateway configuration.
--
-- Two levels:
--  * http level: one table given to config.init{...} from init_by_lua (validated with error() at
--    load time: nginx refuses to start and the message names the key and the fix);
--  * location level: nginx variables $verdict_<name> (declared with an empty default by
--    verdict-http.conf, set per location with `set`). Empty means the default; an invalid value
--    falls back to the default and is logged (rate-limited).

local log = require "verdict.log"

local ngx = ngx
local ngx_var = ngx.var
local tonumber, type, tostring, pairs, ipairs, error = tonumber, type, tostring, pairs, ipairs, error
local lower, find, sub, gsub, gmatch, format, match, byte = string.lower, string.find, string.sub, string.gsub, string.gmatch, string.format, string.match, string.byte
local floor = math.floor
local WARN = ngx.WARN

local _M = { _VERSION = "0.1.0" }

-- -------------------------------------------------------------- http level

-- { name, type, default, description[, min, max] }; type: string | int | number | bool | address | secret
local HTTP_OPTIONS = {
  { "service", "address", "127.0.0.1:9400", "decision service address: HTTP at \"ip:port\" (a host name is looked up once, at start, in /etc/hosts) or \"unix:/path/to.sock\"; the framed transport at \"frame:ip:port\" or \"frame:unix:/path.sock\"; several instances comma-separated (calls rotate; a refused one hands the call to the next)" },
  { "hmac_key", "secret", nil, "key for the HMAC-SHA1 hashes of passwords, session cookies, tokens and device ids (at least 16 characters; or set hmac_key_file)" },
  { "hmac_key_file", "string", nil, "file holding the HMAC key (trailing newline stripped); alternative to hmac_key" },
  { "secret", "secret", nil, "gateway secret proving this gateway to the decision service (at least 32 characters; or set secret_file); required when the service is not on loopback" },
  { "secret_file", "string", nil, "file holding the gateway secret (first line); alternative to secret" },
  { "pool_size", "int", 64, "keep-alive connections to the service kept per worker", 1, 10000 },
  { "pool_idle_timeout_ms", "int", 60000, "idle time before a pooled connection closes; keep below the service keep-alive timeout (75 s)", 1000, 3600000 },
  { "breaker_failures", "int", 5, "failed calls in a row (across workers) before the breaker may open", 1, 100000 },
  { "breaker_min_span_ms", "int", 1000, "the breaker opens only when no call has come back for this long as well: a slow service (some answers in time) or a short stall never opens it", 0, 60000 },
  { "breaker_cooldown_ms", "int", 200, "while open, a background probe every this many ms; the first answer closes the breaker", 50, 3600000 },
  { "breaker_probe_timeout_ms", "int", 1000, "deadline of one background probe", 10, 60000 },
  { "shed_timeout_share", "number", 0.2, "a worker that saw at least this share of its calls time out last second skips calls from $verdict_priority low locations and async metadata (0 = never shed)", 0, 1 },
  { "outcomes_enabled", "bool", true, "report outcomes (and async-mode requests) to /v1/outcomes from the log phase" },
  { "outcome_batch_size", "int", 200, "outcomes per POST /v1/outcomes (the service accepts at most VERDICT_OUTCOMES_MAX_BATCH, 2000 by default)", 1, 2000 },
  { "outcome_flush_ms", "int", 1000, "flush interval of the per-worker outcome buffer", 10, 600000 },
  { "outcome_buffer_max", "int", 10000, "per-worker outcome buffer bound; beyond it outcomes are dropped and counted", 1, 10000000 },
  { "outcome_timeout_ms", "int", 2000, "total deadline of one outcome POST (timer, never on a request)", 10, 60000 },
  { "metrics_flush_ms", "int", 1000, "interval at which each worker adds its counters to the shared dict (/verdict-metrics lags by at most this)", 10, 60000 },
  { "log_interval_s", "int", 5, "at most one error line per cause per worker per this many seconds", 0, 3600 },
  { "query_max_bytes", "int", 1024, "query string bytes sent in a DecideRequest", 0, 65536 },
  { "body_max_bytes", "int", 16384, "identity routes: largest in-memory body parsed for identifier/password", 0, 1048576 },
  { "header_names_max", "int", 64, "header names sent in arrival order", 0, 1000 },
  { "gateway_id", "string", nil, "diagnostic prefix of the id sent to the service (default: the host name; the worker pid and 16 random hex characters are always appended)" },
}
_M.HTTP_OPTIONS = HTTP_OPTIONS

_M.ready = false
_M.http = nil -- the validated, frozen-by-convention http options

local function bad(name, msg)
  error(format("verdict config: option %q %s", name, msg), 3)
end

-- a host name in `service` is resolved once, here, from the hosts file (cosockets would need an
-- nginx `resolver` on every call, and a name that only DNS knows is usually a mistake for a
-- side call on the request path); nil when the file does not name it
local function from_hosts(name)
  local f = io.open("/etc/hosts")
  if not f then return nil end
  local found
  for line in f:lines() do
    line = gsub(line, "#.*$", "")
    local ip, rest = line:match("^%s*(%S+)%s+(.*)$")
    if ip and find(ip, "^[%d%.]+$") then -- IPv4 entries only: "localhost" is 127.0.0.1, not ::1
      for alias in gmatch(rest, "%S+") do
        if lower(alias) == lower(name) then found = ip break end
      end
    end
    if found then break end
  end
  f:close()
  return found
end

local function ipv4(host)
  local a, b, c, d = host:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return false end
  for _, part in ipairs({ a, b, c, d }) do
    if tonumber(part) > 255 then return false end
  end
  return true
end

local name_of_service_option = "service"

local function loopback(host)
  return find(host, "^127%.") ~= nil or host == "::1"
end

-- { host, port, unix, frame, label }: frame = the framed protobuf transport, else HTTP/1.1
local FORMS = "\"ip:port\" (e.g. \"127.0.0.1:9400\"), \"unix:/path.sock\", \"frame:ip:port\" or \"frame:unix:/path.sock\""
local function parse_address(name, v)
  if find(v, "^%a[%w+.-]*://") then
    bad(name, "takes no URL scheme: write " .. FORMS .. " (got " .. v .. ")")
  end
  local frame = false
  local addr = v
  if sub(v, 1, 6) == "frame:" then
    frame = true
    addr = sub(v, 7)
  end
  if sub(addr, 1, 5) == "unix:" then
    if #addr < 7 or sub(addr, 6, 6) ~= "/" then
      bad(name, "must be \"unix:/absolute/path.sock\" or \"frame:unix:/absolute/path.sock\" (got " .. v .. ")")
    end
    return { host = addr, unix = true, frame = frame, label = v }
  end
  local host, port = addr:match("^%[([%x:]+)%]:(%d+)$") -- [v6]:port
  if not host then host, port = addr:match("^([^:%[%]/]+):(%d+)$") end
  port = tonumber(port)
  if not host or not port or port < 1 or port > 65535 then
    bad(name, "must be " .. FORMS .. " (got " .. v .. ")")
  end
  if not find(host, ":", 1, true) and not ipv4(host) then
    if find(host, "^[%d%.]+$") then bad(name, "has an invalid IPv4 address (got " .. v .. ")") end
    local ip = from_hosts(host)
    if not ip then
      bad(name, "names host \"" .. host .. "\", which /etc/hosts does not list: write its IP address "
          .. "(e.g. \"" .. (frame and "frame:" or "") .. "10.0.0.5:" .. port .. "\") or a unix socket")
    end
    host = ip
  end
  return { host = host, port = port, unix = false, frame = frame, label = v }
end

-- syntax: config.init(opts)
-- Validates and stores the http-level options; call from init_by_lua. Raises error() naming the
-- bad key and the fix (nginx then refuses to start or reload).
function _M.init(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error("verdict config: config.init() takes a table, e.g. { service = \"127.0.0.1:9400\", hmac_key = \"...\" }", 2)
  end
  local known = {}
  for i = 1, #HTTP_OPTIONS do known[HTTP_OPTIONS[i][1]] = HTTP_OPTIONS[i] end
  for k in pairs(opts) do
    if not known[k] then
      local names = {}
      for i = 1, #HTTP_OPTIONS do names[i] = HTTP_OPTIONS[i][1] end
      error(format("verdict config: unknown option %q; known options: %s", tostring(k), table.concat(names, ", ")), 2)
    end
  end
  local c = {}
  for i = 1, #HTTP_OPTIONS do
    local o = HTTP_OPTIONS[i]
    local name, typ, default = o[1], o[2], o[3]
    local v = opts[name]
    if v == nil then v = default end
    if v ~= nil then
      if typ == "int" then
        if type(v) ~= "number" or v ~= floor(v) or v < o[5] or v > o[6] then
          bad(name, format("must be an integer between %d and %d (%s)", o[5], o[6], o[4]))
        end
      elseif typ == "number" then
        if type(v) ~= "number" or v < o[5] or v > o[6] then
          bad(name, format("must be a number between %s and %s (%s)", o[5], o[6], o[4]))
        end
      elseif typ == "bool" then
        if type(v) ~= "boolean" then bad(name, "must be true or false (" .. o[4] .. ")") end
      elseif typ == "string" or typ == "secret" or typ == "address" then
        if type(v) ~= "string" or v == "" then bad(name, "must be a non-empty string (" .. o[4] .. ")") end
        if typ == "address" then
          -- one address or several, comma-separated: c.services lists them, c.service is the first
          local list = {}
          for part in gmatch(v, "[^,]+") do
            list[#list + 1] = parse_address(name, (gsub(part, "^%s*(.-)%s*$", "%1")))
          end
          if #list == 0 then bad(name, "must name at least one address") end
          c.services = list
          v = list[1]
        end
      end
    end
    c[name] = v
  end
  if c.hmac_key == nil and c.hmac_key_file then
    local f, err = io.open(c.hmac_key_file, "rb")
    if not f then bad("hmac_key_file", "cannot be read: " .. tostring(err)) end
    c.hmac_key = gsub(f:read("*a"), "%s+$", "")
    f:close()
  end
  if c.hmac_key == nil then
    bad("hmac_key", "is required: set hmac_key = \"<random secret, 16+ chars>\" or hmac_key_file = \"/etc/nginx/verdict.key\" in config.init{}")
  end
  if #c.hmac_key < 16 then
    bad("hmac_key", "must be at least 16 characters (e.g. `openssl rand -hex 32`)")
  end
  if c.secret == nil and c.secret_file then
    local f, err = io.open(c.secret_file, "rb")
    if not f then bad("secret_file", "cannot be read: " .. tostring(err)) end
    c.secret = match(f:read("*a") or "", "^%s*([^\r\n]*)") or ""
    c.secret = gsub(c.secret, "%s+$", "")
    f:close()
  end
  if c.secret ~= nil then
    if #c.secret < 32 then
      bad(c.secret_file and "secret_file" or "secret", "must hold at least 32 characters (e.g. `openssl rand -hex 32`)")
    end
    local digest = ngx.sha1_bin(c.secret)
    c.secret_kid = format("%02x%02x%02x%02x", byte(digest, 1, 4))
  else
    for i = 1, #c.services do
      local svc = c.services[i]
      if not svc.unix and not loopback(svc.host) then
        bad(name_of_service_option, "points at " .. svc.label .. ", which is not loopback: set secret_file = \"/etc/nginx/verdict.secret\" "
            .. "(the same key as the service's VERDICT_GATEWAY_SECRET_FILE) so only your gateways can ask for verdicts")
      end
    end
  end
  c.decide_path = "/v1/decide"
  c.outcomes_path = "/v1/outcomes"
  _M.http = c
  _M.ready = true
  return c
end

-- -------------------------------------------------------------- location level

local MODES = { inline = true, async = true, monitor = true, off = true }
local FAILS = { open = true, closed = true }
local PRIORITIES = { low = true, normal = true }

-- { name, kind, default, description, ... }
local LOCATION_OPTIONS = {
  { "mode", "enum", "inline", "inline | async | monitor | off", MODES },
  { "budget_ms", "int", 25, "total deadline of the decide call (connect + send + read), ms", 1, 60000 },
  { "fail", "enum", "open", "open | closed: what happens when the call fails", FAILS },
  { "priority", "enum", "normal", "low | normal: under overload (see shed_timeout_share) calls from low locations are skipped first", PRIORITIES },
  { "fail_closed_status", "status", 503, "status sent when the call fails on a fail-closed location" },
  { "block_status", "status", 403, "status of a block" },
  { "block_body", "string", "", "body of a block (default: {\"error\":\"blocked\",\"request_id\":\"<id>\"})" },
  { "challenge_status", "status", 429, "status of a challenge (when no challenge URL)" },
  { "challenge_retry_after", "int", 30, "Retry-After seconds of a challenge", 0, 86400 },
  { "challenge_url", "string", "", "when set, a challenge is a 302 to this URL" },
  { "route_tag", "string", "", "tag sent as route_tag (e.g. login)" },
  { "identity_fields", "list", "", "comma list of body fields holding the identifier; empty = not an identity route" },
  { "password_field", "string", "password", "body field holding the password (sent only as HMAC)" },
  { "device_header", "header", "x-device-id", "request header carrying a device id" },
  { "session_cookie", "string", "sid", "cookie holding the session id" },
  { "api_key_header", "header", "x-api-key", "request header carrying an API key (hashed as the principal when no Authorization)" },
  { "auth_result_header", "header", "", "upstream response header reported as the outcome's auth_result" },
}
_M.LOCATION_OPTIONS = LOCATION_OPTIONS

local OPTION_BY_NAME = {}
for i = 1, #LOCATION_OPTIONS do
  local o = LOCATION_OPTIONS[i]
  OPTION_BY_NAME[o[1]] = o
  o.var = "verdict_" .. o[1]
end

local function parse_location(o, raw)
  local kind = o[2]
  if kind == "enum" then
    raw = lower(raw)
    if o[5][raw] then return raw end
  elseif kind == "int" then
    local n = tonumber(raw)
    if n and n == floor(n) and n >= o[5] and n <= o[6] then return n end
  elseif kind == "status" then
    local n = tonumber(raw)
    if n and n == floor(n) and n >= 200 and n <= 599 then return n end
  elseif kind == "header" then
    if not find(raw, "[^%w%-_]") then return lower(raw) end
  elseif kind == "list" then
    local list = {}
    for item in raw:gmatch("[^,%s]+") do list[#list + 1] = item end
    return list
  elseif kind == "string" then
    return raw
  end
  return nil
end

-- per-worker memo: option name -> raw string -> parsed value (settings are a handful of
-- distinct strings per site, so the memo stays tiny; it is reset if it ever grows large)
local memo, memo_size = {}, 0
local defaults = {}
for i = 1, #LOCATION_OPTIONS do
  local o = LOCATION_OPTIONS[i]
  memo[o[1]] = {}
  defaults[o[1]] = o[2] == "list" and parse_location(o, o[3]) or o[3]
end

-- syntax: value = config.get(name)
-- Reads $verdict_<name> for the current request and returns the parsed value or the default.
-- Values: mode/fail strings; budget_ms, *_status, challenge_retry_after numbers; identity_fields
-- a list; header names lower-case. An invalid value yields the default and a rate-limited warning.
local worker_gateway_id

-- syntax: id = config.gateway_id()
-- The id this worker sends with its DecideRequests and OutcomeBatches (the service returns late
-- verdicts by it, so both must carry the same one): "<gateway_id option or hostname>/<pid>/<16
-- random hex>". Random per worker start: late verdicts go to whoever presents this id, so it
-- must not be guessable from the host name and pid (issue 11). Called from init_worker first
-- (the two file reads never happen on a request).
function _M.gateway_id()
  if worker_gateway_id then return worker_gateway_id end
  local base = _M.http and _M.http.gateway_id
  if not base then
    local f = io.open("/proc/sys/kernel/hostname")
    base = f and f:read("*l") or "nginx"
    if f then f:close() end
  end
  local rnd = ""
  local r = io.open("/dev/urandom", "rb")
  if r then
    rnd = r:read(8) or ""
    r:close()
  end
  if #rnd < 8 then rnd = tostring(ngx.now()) .. tostring(math.random()) end
  rnd = gsub(rnd, ".", function(ch) return format("%02x", byte(ch)) end)
  worker_gateway_id = base .. "/" .. ngx.worker.pid() .. "/" .. sub(rnd, 1, 16)
  return worker_gateway_id
end

function _M.get(name)
  local o = OPTION_BY_NAME[name]
  local raw = ngx_var[o.var]
  if raw == nil or raw == "" then return defaults[name] end
  -- free-form strings need no parsing (and may hold per-request values like $request_id)
  if o[2] == "string" then return raw end
  local m = memo[name]
  local v = m[raw]
  if v ~= nil then return v end
  v = parse_location(o, raw)
  if v == nil then
    log.log(WARN, "bad setting " .. o.var, "invalid $", o.var, " value \"", raw,
            "\" (", o[4], "); using the default \"", tostring(o[3]), "\"")
    v = defaults[name]
  end
  if memo_size > 1000 then
    for k in pairs(memo) do memo[k] = {} end
    memo_size = 0
  end
  memo_size = memo_size + 1
  m[raw] = v
  return v
end

-- syntax: t = config.defaults()
-- Returns the location defaults (for documentation and tests).
function _M.defaults()
  return defaults
end

return _M
