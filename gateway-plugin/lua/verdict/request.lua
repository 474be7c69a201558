-- Builds the DecideRequest (decision-service/src/wire/verdict.proto) for the current request
-- from what nginx already knows.
-- Also strips client-supplied X-Verdict-* request headers (they are ours to set).
--
-- Header names are read from ngx.req.raw_header() to keep their arrival order (a client
-- fingerprint); the selected header values come from the same pass. HTTP/2 has no raw header,
-- so there the names come from ngx.req.get_headers() (order lost).
--
-- Secrets never leave nginx raw: the session cookie value, the bearer token / API key, the
-- device id and the submitted password are sent as HMAC-SHA1 (keyed with config hmac_key).

local config = require "verdict.config"
local memo = require "verdict.memo"
local cjson = require "cjson.safe"

local ngx = ngx
local ngx_var = ngx.var
local ngx_req = ngx.req
local raw_header = ngx_req.raw_header
local get_headers = ngx_req.get_headers
local clear_header = ngx_req.clear_header
local get_method = ngx_req.get_method
local http_version = ngx_req.http_version
local hmac_sha1 = ngx.hmac_sha1
local ngx_now = ngx.now
local re_find = ngx.re.find
local find, sub, lower, byte, match, format = string.find, string.sub, string.lower, string.byte, string.match, string.format
local floor = math.floor
local type, tostring, tonumber, pcall, pairs = type, tostring, tonumber, pcall, pairs

local _M = { _VERSION = "0.1.0" }

-- header name -> DecideRequest field
local SELECTED = {
  ["user-agent"] = "user_agent", accept = "accept", ["accept-language"] = "accept_language",
  ["accept-encoding"] = "accept_encoding", referer = "referer", origin = "origin",
  ["content-type"] = "content_type", ["sec-fetch-site"] = "sec_fetch_site",
  ["sec-fetch-mode"] = "sec_fetch_mode", ["sec-fetch-dest"] = "sec_fetch_dest",
  ["sec-fetch-user"] = "sec_fetch_user", ["sec-ch-ua"] = "sec_ch_ua",
}
local MAX_VALUE = 512 -- selected header values are capped
local MAX_IDENTIFIER = 256
local VERSIONS = { [0.9] = "0.9", [1.0] = "1.0", [1.1] = "1.1", [2.0] = "2.0", [3.0] = "3.0" }

local gateway_id

-- raw header name -> lower-case name, per worker: clients send a few dozen distinct spellings,
-- so lower() runs once per spelling, not once per header
local lower_name = memo.new(4096)
local function lname(raw_name)
  return lower_name(raw_name, lower, raw_name)
end

-- Keyed hashes of session cookies, tokens, API keys and device ids, memoized per worker (memo.lua):
-- a client sends the same ones request after request, and an HMAC (a C call, which also keeps the
-- build from being JIT-compiled) costs more than the rest of a header's handling. Passwords are
-- never memoized (hashed once, forgotten).
local id_memo, id_memo_reset = memo.new(4096)
local id_key

local function id_hash(value)
  local key = config.http.hmac_key
  if key ~= id_key then id_memo_reset() id_key = key end
  return id_memo(value, hmac_sha1, key, value)
end

-- s[a..b] without the bytes Lua's %s matches (space, \t \n \v \f \r) at either end: a, b
-- (a > b when nothing is left)
local function trim_span(s, a, b)
  local c = byte(s, a)
  while a <= b and (c == 32 or (c >= 9 and c <= 13)) do a = a + 1 c = byte(s, a) end
  c = byte(s, b)
  while b >= a and (c == 32 or (c >= 9 and c <= 13)) do b = b - 1 c = byte(s, b) end
  return a, b
end

-- per-build scratch (the build never yields while scanning headers, so module-level state is
-- safe and saves a table per request)
local cur_session_cookie, cur_device_header, cur_api_key_header, cur_api_key
local cur_spoofed, cur_nspoofed = {}, 0

local function cookies(req, value, names)
  local session_cookie = cur_session_cookie
  if not session_cookie then
    session_cookie = config.get("session_cookie")
    cur_session_cookie = session_cookie
  end
  -- one pass of plain finds over "a=1; b=2": each pair's name, trimmed, and the session
  -- cookie's value
  local n = #names
  local pos, len = 1, #value
  while pos <= len do
    local semi = find(value, ";", pos, true) or len + 1
    local eq = find(value, "=", pos, true)
    if eq and eq > semi then eq = nil end
    local a, b = trim_span(value, pos, (eq or semi) - 1)
    if a <= b then
      local name = sub(value, a, b)
      n = n + 1
      names[n] = name
      if eq and name == session_cookie and not req.session_hash then
        local va, vb = trim_span(value, eq + 1, semi - 1)
        if va <= vb then req.session_hash = id_hash(sub(value, va, vb)) end
      end
    end
    pos = semi + 1
  end
end

-- a header the DecideRequest uses (value already trimmed)
local function on_value(req, name, value)
  local field = SELECTED[name]
  if field then
    if req[field] == nil then
      req[field] = #value > MAX_VALUE and sub(value, 1, MAX_VALUE) or value
    end
  elseif name == "cookie" then
    cookies(req, value, req.cookie_names)
  elseif name == "authorization" then
    req.has_authorization = true
    local scheme, cred = match(value, "^(%S+)%s*(.*)$")
    if scheme then
      req.auth_scheme = lower(scheme)
      if cred ~= "" then req.token_hash = id_hash(cred) end
    end
  elseif name == cur_api_key_header then
    cur_api_key = value
  elseif name == cur_device_header then
    if value ~= "" and not req.device_hash then req.device_hash = id_hash(value) end
  end
end

local function wanted(name)
  return SELECTED[name] or name == "cookie" or name == "authorization"
    or name == cur_api_key_header or name == cur_device_header
end

local function spoofed(name)
  -- 120 = "x"; "x-verdict-" is ours to set
  if byte(name, 1) == 120 and byte(name, 2) == 45 and sub(name, 1, 10) == "x-verdict-" then
    cur_nspoofed = cur_nspoofed + 1
    cur_spoofed[cur_nspoofed] = name
  end
end

-- one pass over raw_header(true) ("Name: value\r\n" lines, no request line): names in order,
-- values sliced and trimmed only for the headers the DecideRequest uses
local function scan_raw(req, raw, max_names)
  local names, n = req.header_names, 0
  local pos, len = 1, #raw
  while pos <= len do
    local eol = find(raw, "\n", pos, true) or len + 1
    local colon = find(raw, ":", pos, true)
    if colon and colon < eol then
      local name = lname(sub(raw, pos, colon - 1))
      if n < max_names then n = n + 1 names[n] = name end
      if wanted(name) then
        local a, b = colon + 1, eol - 1
        local c = byte(raw, a)
        while c == 32 or c == 9 do a = a + 1 c = byte(raw, a) end
        c = byte(raw, b)
        while b >= a and (c == 13 or c == 32 or c == 9) do b = b - 1 c = byte(raw, b) end
        on_value(req, name, sub(raw, a, b))
      end
      spoofed(name)
    end
    pos = eol + 1
  end
end

local function scan_table(req, max_names)
  local headers = get_headers(100)
  local names, n = req.header_names, 0
  for name, value in pairs(headers) do
    if n < max_names then n = n + 1 names[n] = name end
    if wanted(name) then
      if type(value) == "table" then
        for i = 1, #value do on_value(req, name, value[i]) end
      else
        on_value(req, name, value)
      end
    end
    spoofed(name)
  end
end

local function clear_spoofed()
  for i = 1, cur_nspoofed do
    clear_header(cur_spoofed[i])
    cur_spoofed[i] = nil
  end
  cur_nspoofed = 0
end

-- syntax: request.strip_spoofed()
-- Removes client-sent X-Verdict-* request headers without building a DecideRequest (the path
-- taken when no call will be made): one compiled regex over the raw header, a scan only when
-- it matches.
function _M.strip_spoofed()
  local v = http_version()
  local ok, raw = pcall(raw_header, true)
  if ok and raw and v and v < 2 then
    if not re_find(raw, [[^x-verdict-]], "joim") then return end
    local pos, len = 1, #raw
    while pos <= len do
      local eol = find(raw, "\n", pos, true) or len + 1
      local colon = find(raw, ":", pos, true)
      if colon and colon < eol then spoofed(lname(sub(raw, pos, colon - 1))) end
      pos = eol + 1
    end
  else
    for name in pairs(get_headers(100)) do spoofed(name) end
  end
  clear_spoofed()
end

local function read_identity(req, fields, password_field, max)
  local method = req.method
  if method ~= "POST" and method ~= "PUT" and method ~= "PATCH" then return end
  local clen = tonumber(ngx_var.http_content_length)
  if clen and clen > max then return end
  ngx_req.read_body()
  local body = ngx_req.get_body_data()
  if not body or #body > max then return end -- nil: empty, or spooled to a file (too big)
  local ct = req.content_type or ""
  local args
  if find(ct, "json", 1, true) then
    args = cjson.decode(body)
    if type(args) ~= "table" then return end
  elseif find(ct, "application/x-www-form-urlencoded", 1, true) then
    args = ngx.decode_args(body, 32)
  else
    return
  end
  for i = 1, #fields do
    local v = args[fields[i]]
    local tv = type(v)
    if tv == "number" then v = format("%.0f", v) tv = "string" end
    if tv == "string" and v ~= "" then
      req.identifier = #v > MAX_IDENTIFIER and sub(v, 1, MAX_IDENTIFIER) or v
      break
    end
  end
  local pw = args[password_field]
  if type(pw) == "string" and pw ~= "" then
    req.password_hash = hmac_sha1(config.http.hmac_key, pw)
  end
end

local MODE_FIELD = { inline = "INLINE", async = "ASYNC", monitor = "MONITOR" }

-- syntax: q = request.query()
-- The request's query string as the DecideRequest carries it: cut to query_max_bytes (nil: none).
function _M.query()
  local query = ngx_var.args
  local max = config.http.query_max_bytes
  if query and #query > max then query = sub(query, 1, max) end
  return query
end

-- syntax: req = request.build(mode, with_identity)
-- Returns the DecideRequest table for the current request (mode: inline | async | monitor) and
-- strips client-supplied X-Verdict-* headers. with_identity: on identity routes read the body
-- for the identifier and password hash (only worth it when the request goes to the service).
-- Must run in the access phase.
function _M.build(mode, with_identity)
  local c = config.http
  if not gateway_id then gateway_id = config.gateway_id() end
  local query = _M.query()
  local v = http_version()
  local route_tag = config.get("route_tag")
  local req = {
    request_id = ngx_var.request_id,
    ts_ms = floor(ngx_now() * 1000),
    client_ip = ngx_var.remote_addr,
    method = get_method(),
    host = ngx_var.host,
    path = ngx_var.uri,
    query = query,
    route_tag = route_tag ~= "" and route_tag or nil,
    http_version = v and (VERSIONS[v] or format("%.1f", v)) or nil,
    tls_protocol = ngx_var.ssl_protocol,
    tls_cipher = ngx_var.ssl_cipher,
    user_agent = nil, accept = nil, accept_language = nil, accept_encoding = nil, referer = nil,
    origin = nil, content_type = nil, sec_fetch_site = nil, sec_fetch_mode = nil,
    sec_fetch_dest = nil, sec_fetch_user = nil, sec_ch_ua = nil,
    header_names = {},
    cookie_names = {},
    has_authorization = false,
    auth_scheme = nil, session_hash = nil, token_hash = nil, device_hash = nil,
    identifier = nil, password_hash = nil,
    mode = MODE_FIELD[mode],
    gateway_id = gateway_id,
  }
  cur_session_cookie = nil -- read on the first Cookie header only
  cur_device_header = config.get("device_header")
  cur_api_key_header = config.get("api_key_header")
  cur_api_key = nil
  local ok, raw = pcall(raw_header, true)
  if ok and raw and v and v < 2 then
    scan_raw(req, raw, c.header_names_max)
  else
    scan_table(req, c.header_names_max)
  end
  if not req.token_hash and cur_api_key and cur_api_key ~= "" then
    req.token_hash = id_hash(cur_api_key)
  end
  cur_api_key = nil
  if cur_nspoofed > 0 then clear_spoofed() end
  if with_identity then
    local fields = config.get("identity_fields")
    if #fields > 0 then
      read_identity(req, fields, config.get("password_field"), c.body_max_bytes)
    end
  end
  return req
end

-- syntax: t = request.client_fields()
-- The four header values the cache's client key is made of (cache.client_key), as build() would
-- put them in the DecideRequest (the first header of each name, capped at MAX_VALUE), read without
-- building one. t is one table per worker, refilled on each call: read it before the next.
local function capped(v)
  if v and #v > MAX_VALUE then return sub(v, 1, MAX_VALUE) end
  return v
end
local client_fields = {}
function _M.client_fields()
  local t = client_fields
  t.user_agent = capped(ngx_var.http_user_agent)
  t.accept_language = capped(ngx_var.http_accept_language)
  t.accept_encoding = capped(ngx_var.http_accept_encoding)
  t.sec_ch_ua = capped(ngx_var.http_sec_ch_ua)
  return t
end

return _M
