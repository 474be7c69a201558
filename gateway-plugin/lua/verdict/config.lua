-- Verdict gateway configuration.
--
-- Two levels:
--  * http level: one table given to config.init{...} from init_by_lua (validated with error() at
--    load time: nginx refuses to start and the message names the key and the fix);
--  * location level: nginx variables $verdict_<name> (declared with an empty default by
--    verdict-http.conf, set per location with `set`). Empty means the default; an invalid value
--    falls back to the default and is logged (rate-limited).
--
-- The options themselves (names, types, defaults, bounds, descriptions) are data: verdict.spec,
-- generated from gateway-plugin/spec/options.json, which also generates the njs table and the
-- nginx map declarations.

local log = require "verdict.log"
local spec = require "verdict.spec"

local ngx = ngx
local ngx_var = ngx.var
local tonumber, type, tostring, pairs, ipairs, error = tonumber, type, tostring, pairs, ipairs, error
local lower, find, sub, gsub, gmatch, format, match, byte = string.lower, string.find, string.sub, string.gsub, string.gmatch, string.format, string.match, string.byte
local floor = math.floor
local WARN = ngx.WARN

local _M = { _VERSION = "0.1.0" }

-- -------------------------------------------------------------- http level

-- the config.init{} options: { name, type, default, min, max, description }, type one of
-- string | int | number | bool | address | secret
local HTTP_OPTIONS = spec.http

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

-- the clearance keys (given, from a file, or derived from hmac_key) and the challenge page
local function init_clearance(c)
  local clearance = require "verdict.clearance"
  local list = c.clearance_keys
  if list == nil and c.clearance_keys_file then
    local f, err = io.open(c.clearance_keys_file, "rb")
    if not f then bad("clearance_keys_file", "cannot be read: " .. tostring(err)) end
    local perr
    list, perr = clearance.parse_keys_file(f:read("*a") or "")
    f:close()
    if not list then bad("clearance_keys_file", c.clearance_keys_file .. ", " .. perr) end
    local ok, kerr = clearance.check_keys(list)
    if not ok then bad("clearance_keys_file", c.clearance_keys_file .. ": " .. kerr) end
  end
  clearance.set_keys(list or clearance.derive_keys(c.hmac_key))
  local ok, err = pcall(require("verdict.challenge").init, c.challenge_template)
  if not ok then bad("challenge_template", err) end
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
  for i = 1, #HTTP_OPTIONS do known[HTTP_OPTIONS[i].name] = HTTP_OPTIONS[i] end
  for k in pairs(opts) do
    if not known[k] then
      local names = {}
      for i = 1, #HTTP_OPTIONS do names[i] = HTTP_OPTIONS[i].name end
      error(format("verdict config: unknown option %q; known options: %s", tostring(k), table.concat(names, ", ")), 2)
    end
  end
  local c = {}
  for i = 1, #HTTP_OPTIONS do
    local o = HTTP_OPTIONS[i]
    local name, typ = o.name, o.type
    local v = opts[name]
    if v == nil then v = o.default end
    if v ~= nil then
      if typ == "int" then
        if type(v) ~= "number" or v ~= floor(v) or v < o.min or v > o.max then
          bad(name, format("must be an integer between %d and %d (%s)", o.min, o.max, o.description))
        end
      elseif typ == "number" then
        if type(v) ~= "number" or v < o.min or v > o.max then
          bad(name, format("must be a number between %s and %s (%s)", o.min, o.max, o.description))
        end
      elseif typ == "bool" then
        if type(v) ~= "boolean" then bad(name, "must be true or false (" .. o.description .. ")") end
      elseif typ == "enum" then
        local known_value = false
        for j = 1, #o.values do if v == o.values[j] then known_value = true end end
        if not known_value then
          bad(name, "must be one of \"" .. table.concat(o.values, "\", \"") .. "\" (" .. o.description .. ")")
        end
      elseif typ == "keys" then
        local ok, err = require("verdict.clearance").check_keys(v)
        if not ok then bad(name, err) end
      elseif typ == "string" or typ == "secret" or typ == "address" then
        if type(v) ~= "string" or v == "" then bad(name, "must be a non-empty string (" .. o.description .. ")") end
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
  -- c.mux: the transport in use ("auto" = mux wherever it can run: every instance speaks frames)
  c.mux = false
  if c.transport == "auto" then
    local all_frames = true
    for i = 1, #c.services do
      if not c.services[i].frame then all_frames = false end
    end
    c.mux = all_frames
  elseif c.transport == "mux" then
    c.mux = true
    -- the multiplexed transport pipelines frames: every instance must speak them
    for i = 1, #c.services do
      local svc = c.services[i]
      if not svc.frame then
        bad("transport", "\"mux\" multiplexes the framed transport: write service = \"frame:" .. svc.label
            .. "\" (the service's VERDICT_FRAME_LISTEN address) or use transport = \"pool\"")
      end
    end
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
  init_clearance(c)
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
  _M.http = c
  _M.ready = true
  return c
end

-- -------------------------------------------------------------- location level

-- name -> the spec entry; enums also get a set of their values
local OPTION_BY_NAME, ALLOWED = {}, {}
for i = 1, #spec.location do
  local o = spec.location[i]
  OPTION_BY_NAME[o.name] = o
  if o.values then
    local set = {}
    for j = 1, #o.values do set[o.values[j]] = true end
    ALLOWED[o.name] = set
  end
end

local function parse_location(o, raw)
  local typ = o.type
  if typ == "enum" then
    raw = lower(raw)
    if ALLOWED[o.name][raw] then return raw end
  elseif typ == "int" or typ == "status" then
    local n = tonumber(raw)
    if n and n == floor(n) and n >= o.min and n <= o.max then return n end
  elseif typ == "header" then
    if not find(raw, "[^%w%-_]") then return lower(raw) end
  elseif typ == "list" then
    local list = {}
    for item in raw:gmatch("[^,%s]+") do list[#list + 1] = item end
    return list
  elseif typ == "string" then
    return raw
  end
  return nil
end

-- per-worker memo: option name -> raw string -> parsed value (settings are a handful of
-- distinct strings per site, so the memo stays tiny; it is reset if it ever grows large)
local memo, memo_size = {}, 0
local defaults, vars = {}, {}
for name, o in pairs(OPTION_BY_NAME) do
  memo[name] = {}
  defaults[name] = o.type == "list" and parse_location(o, o.default) or o.default
  vars[name] = "verdict_" .. name
end

-- syntax: value = config.get(name)
-- Reads $verdict_<name> for the current request and returns the parsed value or the default.
-- Values: mode/fail strings; budget_ms, *_status, challenge_retry_after numbers; identity_fields
-- a list; header names lower-case. An invalid value yields the default and a rate-limited warning.
function _M.get(name)
  local o = OPTION_BY_NAME[name]
  local var = vars[name]
  local raw = ngx_var[var]
  if raw == nil or raw == "" then return defaults[name] end
  -- free-form strings need no parsing (and may hold per-request values like $request_id)
  if o.type == "string" then return raw end
  local m = memo[name]
  local v = m[raw]
  if v ~= nil then return v end
  v = parse_location(o, raw)
  if v == nil then
    log.log(WARN, "bad setting " .. var, "invalid $", var, " value \"", raw,
            "\" (", o.description, "); using the default \"", tostring(o.default), "\"")
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

return _M
