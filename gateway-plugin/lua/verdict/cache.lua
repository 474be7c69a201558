-- Verdict cache in the `verdict_cache` shared dict (all workers), so verdicts the service marks
-- cacheable are enforced without a call, also while the service is down, for the TTL it chose.
--
-- Keys (gateway-plugin/CONTRACT.md): "ip:<client_ip>", "subnet:<a.b.c.0/24 | v6 /64>",
-- "device:<b64>", "session:<b64>", "principal:<b64>" (standard base64 of the HMAC bytes).
-- Value: "<ACTION>|<score>|<reason,reason>". Block and allow verdicts are both cached; on a
-- lookup the most severe verdict among the request's keys wins.

local ngx = ngx
local shared = ngx.shared
local encode_base64 = ngx.encode_base64
local find, sub, match, lower, format = string.find, string.sub, string.match, string.lower, string.format
local concat = table.concat
local tonumber = tonumber

local _M = { _VERSION = "0.1.0" }

local TYPES = { ip = true, subnet = true, device = true, session = true, principal = true }
local SEVERITY = { ALLOW = 1, TAG = 2, CHALLENGE = 3, BLOCK = 4 }

local dict
local function cache()
  if not dict then dict = shared.verdict_cache end
  return dict
end

-- syntax: s = cache.subnet(ip)
-- "a.b.c.0/24" for IPv4, "g1:g2:g3:g4::/64" for IPv6 (lower-case, no leading zeros); nil if
-- the address is not recognised.
function _M.subnet(ip)
  local a, b, c = match(ip, "^(%d+)%.(%d+)%.(%d+)%.%d+$")
  if a then return a .. "." .. b .. "." .. c .. ".0/24" end
  if not find(ip, ":", 1, true) then return nil end
  -- expand "::" into zero groups, then keep the first four
  local head, tail = match(ip, "^(.-)::(.*)$")
  local groups = {}
  local function add(part)
    for g in part:gmatch("[^:]+") do
      if find(g, ".", 1, true) then return false end -- embedded IPv4 in the low bits: ignore
      groups[#groups + 1] = g
    end
    return true
  end
  if head then
    local hs, ts = {}, {}
    for g in head:gmatch("[^:]+") do hs[#hs + 1] = g end
    for g in tail:gmatch("[^:]+") do ts[#ts + 1] = g end
    for i = 1, #hs do groups[#groups + 1] = hs[i] end
    for _ = 1, 8 - #hs - #ts do groups[#groups + 1] = "0" end
    for i = 1, #ts do groups[#groups + 1] = ts[i] end
  else
    add(ip)
  end
  if #groups < 4 then return nil end
  local out = {}
  for i = 1, 4 do
    local n = tonumber(groups[i], 16)
    if not n then return nil end
    out[i] = format("%x", n)
  end
  return concat(out, ":") .. "::/64"
end

-- syntax: keys = cache.keys(req)
-- The cache keys a DecideRequest matches, most specific first.
function _M.keys(req)
  local keys, n = {}, 0
  if req.session_hash then n = n + 1 keys[n] = "session:" .. encode_base64(req.session_hash) end
  if req.token_hash then n = n + 1 keys[n] = "principal:" .. encode_base64(req.token_hash) end
  if req.device_hash then n = n + 1 keys[n] = "device:" .. encode_base64(req.device_hash) end
  local ip = req.client_ip
  if ip and ip ~= "" then
    n = n + 1 keys[n] = "ip:" .. ip
    local s = _M.subnet(ip)
    if s then n = n + 1 keys[n] = "subnet:" .. s end
  end
  return keys
end

-- syntax: verdict = cache.lookup(req)
-- Returns { action, score, reasons = {...}, cache_key } of the most severe cached verdict for
-- the request's keys, or nil.
function _M.lookup(req)
  local d = cache()
  local keys = _M.keys(req)
  local best, best_key, best_sev = nil, nil, 0
  for i = 1, #keys do
    local v = d:get(keys[i])
    if v then
      local action = match(v, "^(%u+)|")
      local sev = SEVERITY[action] or 0
      if sev > best_sev then best, best_key, best_sev = v, keys[i], sev end
    end
  end
  if not best then return nil end
  local action, score, reasons = match(best, "^(%u+)|(%d*)|(.*)$")
  local list = {}
  for r in reasons:gmatch("[^,]+") do list[#list + 1] = r end
  return { action = action, score = tonumber(score) or 0, reasons = list, cache_key = best_key }
end

-- syntax: ok, err = cache.store(resp)
-- Stores a DecideResponse when it carries a valid cache_key and cache_ttl_s > 0.
-- Returns true, or nil and "not cacheable" / the shared dict error.
function _M.store(resp)
  local key, ttl = resp.cache_key, resp.cache_ttl_s
  if not key or key == "" or not ttl or ttl <= 0 then
    return nil, "not cacheable"
  end
  local typ = match(key, "^(%l+):.")
  if not typ or not TYPES[typ] then return nil, "not cacheable" end
  if typ == "subnet" or typ == "ip" then key = lower(key) end
  local reasons = resp.reasons
  local value = resp.action .. "|" .. (resp.score or 0) .. "|"
    .. (reasons and concat(reasons, ",") or "")
  local ok, err = cache():set(key, value, ttl)
  if not ok then return nil, err end
  return true
end

return _M
