-- Builds the DecideRequest for the current request from what nginx already knows (DESIGN §3).
-- Also strips client-supplied X-Verdict-* request headers (they are ours to set).
--
-- Header names are read from ngx.req.raw_header() to keep their arrival order (a client
-- fingerprint); the selected header values come from the same pass. HTTP/2 has no raw header,
-- so there the names come from ngx.req.get_headers() (order lost).
--
-- Secrets never leave nginx raw: the session cookie value, the bearer token / API key, the
-- device id and the submitted password are sent as HMAC-SHA1 (keyed with config hmac_key).

local config = require "verdict.config"
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

local gateway_id

local function trim(s)
  return match(s, "^%s*(.-)%s*$")
end

local function cookies(req, value, session_cookie, names)
  for pair in value:gmatch("[^;]+") do
    local eq = find(pair, "=", 1, true)
    local name = trim(eq and sub(pair, 1, eq - 1) or pair)
    if name ~= "" then
      names[#names + 1] = name
      if name == session_cookie and not req.session_hash then
        local v = trim(eq and sub(pair, eq + 1) or "")
        if v ~= "" then req.session_hash = hmac_sha1(config.http.hmac_key, v) end
      end
    end
  end
end

local function on_header(req, st, name, value)
  local field = SELECTED[name]
  if field then
    if req[field] == nil then
      req[field] = #value > MAX_VALUE and sub(value, 1, MAX_VALUE) or value
    end
  elseif name == "cookie" then
    cookies(req, value, st.session_cookie, req.cookie_names)
  elseif name == "authorization" then
    req.has_authorization = true
    local scheme, cred = match(value, "^(%S+)%s*(.*)$")
    if scheme then
      req.auth_scheme = lower(scheme)
      if cred ~= "" then req.token_hash = hmac_sha1(config.http.hmac_key, cred) end
    end
  elseif name == st.api_key_header then
    st.api_key = value
  elseif name == st.device_header then
    if value ~= "" then req.device_hash = hmac_sha1(config.http.hmac_key, value) end
  end
  if byte(name, 1) == 120 and sub(name, 1, 10) == "x-verdict-" then -- 120 = "x"
    st.spoofed = st.spoofed or {}
    st.spoofed[#st.spoofed + 1] = name
  end
end

local function scan_raw(req, st, raw, max_names)
  local names, n = req.header_names, 0
  local pos = 1 -- raw_header(true): header lines only, no request line
  local len = #raw
  while pos <= len do
    local eol = find(raw, "\n", pos, true) or len + 1
    local colon = find(raw, ":", pos, true)
    if colon and colon < eol then
      local name = lower(sub(raw, pos, colon - 1))
      local value = trim(sub(raw, colon + 1, eol - 1))
      if n < max_names then n = n + 1 names[n] = name end
      on_header(req, st, name, value)
    end
    pos = eol + 1
  end
end

local function scan_table(req, st, max_names)
  local headers = get_headers(100)
  local names, n = req.header_names, 0
  for name, value in pairs(headers) do
    if n < max_names then n = n + 1 names[n] = name end
    if type(value) == "table" then
      for i = 1, #value do on_header(req, st, name, value[i]) end
    else
      on_header(req, st, name, value)
    end
  end
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

-- syntax: req = request.build(mode)
-- Returns the DecideRequest table for the current request (mode: inline | async | monitor) and
-- strips client-supplied X-Verdict-* headers. Must run in the access phase (reads the body on
-- identity routes).
function _M.build(mode)
  local c = config.http
  if not gateway_id then
    gateway_id = c.gateway_id or ((ngx_var.hostname or "nginx") .. "/" .. ngx.worker.pid())
  end
  local query = ngx_var.args
  if query and #query > c.query_max_bytes then query = sub(query, 1, c.query_max_bytes) end
  local v = http_version()
  local req = {
    request_id = ngx_var.request_id,
    ts_ms = floor(ngx_now() * 1000),
    client_ip = ngx_var.remote_addr,
    method = get_method(),
    host = ngx_var.host,
    path = ngx_var.uri,
    query = query,
    route_tag = config.get("route_tag"),
    http_version = v and format("%.1f", v) or nil,
    tls_protocol = ngx_var.ssl_protocol,
    tls_cipher = ngx_var.ssl_cipher,
    header_names = {},
    cookie_names = {},
    has_authorization = false,
    mode = MODE_FIELD[mode],
    gateway_id = gateway_id,
  }
  local st = {
    session_cookie = config.get("session_cookie"),
    device_header = config.get("device_header"),
    api_key_header = config.get("api_key_header"),
  }
  local ok, raw = pcall(raw_header, true)
  if ok and raw and v and v < 2 then
    scan_raw(req, st, raw, c.header_names_max)
  else
    scan_table(req, st, c.header_names_max)
  end
  if not req.token_hash and st.api_key and st.api_key ~= "" then
    req.token_hash = hmac_sha1(c.hmac_key, st.api_key)
  end
  if st.spoofed then
    for i = 1, #st.spoofed do clear_header(st.spoofed[i]) end
  end
  local fields = config.get("identity_fields")
  if #fields > 0 then
    read_identity(req, fields, config.get("password_field"), c.body_max_bytes)
  end
  return req
end

return _M
