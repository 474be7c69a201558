-- Verdict cache in the `verdict_cache` shared dict (all workers), so verdicts the service marks
-- cacheable are enforced without a call, also while the service is down, for the TTL it chose.
--
-- Keys (gateway-plugin/CONTRACT.md): "ip:<client_ip>", "subnet:<a.b.c.0/24 | v6 /64>",
-- "device:<b64>", "session:<b64>", "principal:<b64>" (standard base64 of the HMAC bytes),
-- "target:<b64 SHA-1 of path?query>" (the request's path and query as the DecideRequest carries
-- them: a probe's exact URL, refused for whoever sends it; hashed so that no audit record or
-- event holds a raw URL), "client:<b64 SHA-1 of ip|User-Agent|Accept-Language|Accept-Encoding|
-- sec-ch-ua>" (the address with the browser's own headers: a tool on a VPN exit, not the people
-- behind it).
-- Value: "<ACTION>|<score>|<reason,reason>", and for CHALLENGE "|<kind>|<difficulty>|<ttl>".
-- Block and allow verdicts are both cached; on a lookup the most severe verdict among the
-- request's keys wins. A cached ALLOW is a clean mark (issue 15): the handler does not wait for
-- that client's calls where $verdict_cleared is async, and never enforces it where it is inline.
--
-- "Anything cached?" flags: most of the time the cache holds nothing of a given key type (the
-- service caches blocks, and clean marks only where the policy turns them on), and then a lookup would be pure cost (key building, base64, a
-- shared-dict lock per key). Each worker publishes, per key type, the latest expiry of what it
-- stored ("cache:until:<type>:<worker id>" in `verdict_state`: one writer per key, so no lost
-- update between workers), and keeps a merged view that it refreshes at most every
-- REFRESH_MS. A type whose expiry has passed in every worker is not looked up.
-- Known limit: a verdict stored by *another* worker is enforced from the cache after at most
-- REFRESH_MS (in inline mode the service decides the request meanwhile; in async mode it
-- passes). The storing worker sees its own stores at once.

local memo = require "verdict.memo"

local ngx = ngx
local shared = ngx.shared
local encode_base64 = ngx.encode_base64
local sha1_bin = ngx.sha1_bin
local find, sub, match, lower, format, gsub = string.find, string.sub, string.match, string.lower, string.format, string.gsub
local concat = table.concat
local tonumber = tonumber

local _M = { _VERSION = "0.1.0" }

local TYPES = { ip = true, subnet = true, client = true, device = true, session = true, principal = true, target = true }
local SEVERITY = { ALLOW = 1, TAG = 2, CHALLENGE = 3, BLOCK = 4 }
-- what a lookup returns for a clean mark (a cached ALLOW): shared, read-only
local MARK = { action = "ALLOW", score = 0, reasons = {} }

local dict
local function cache()
  if not dict then dict = shared.verdict_cache end
  return dict
end

local ngx_now = ngx.now
local worker_id = ngx.worker.id
local worker_count = ngx.worker.count

local REFRESH_MS = 100
local FLAG_TYPES = { "ip", "subnet", "client", "device", "session", "principal", "target" }
local own = { ip = 0, subnet = 0, client = 0, device = 0, session = 0, principal = 0, target = 0 }    -- this worker's stores
local merged = { ip = 0, subnet = 0, client = 0, device = 0, session = 0, principal = 0, target = 0 } -- all workers'
local next_refresh = 0
local flag_keys -- [type][worker id + 1] -> state key, built on first use

local function flag_key(typ, id)
  if not flag_keys then
    flag_keys = {}
    for i = 1, #FLAG_TYPES do flag_keys[FLAG_TYPES[i]] = {} end
  end
  local k = flag_keys[typ][id + 1]
  if not k then
    k = "cache:until:" .. typ .. ":" .. id
    flag_keys[typ][id + 1] = k
  end
  return k
end

local function refresh(now)
  next_refresh = now + REFRESH_MS
  local st = shared.verdict_state
  if not st then return end
  local n = worker_count() or 1
  for i = 1, #FLAG_TYPES do
    local typ = FLAG_TYPES[i]
    local m = own[typ]
    for id = 0, n - 1 do
      local v = st:get(flag_key(typ, id))
      if v and v > m then m = v end
    end
    merged[typ] = m
  end
end

-- syntax: any, by_header, by_target, by_client = cache.live()
-- any: some key type may have a live entry; by_header: a device, session or principal key may
-- (those need the request's headers hashed); by_target: a target key may (that needs the URL);
-- by_client: a client key may (that needs four header values, not a whole DecideRequest).
-- All false: skip the cache.
function _M.live()
  local now = ngx_now() * 1000
  if now >= next_refresh then refresh(now) end
  local by_header = merged.session > now or merged.principal > now or merged.device > now
  local by_target = merged.target > now
  local by_client = merged.client > now
  return by_header or by_target or by_client or merged.ip > now or merged.subnet > now, by_header, by_target, by_client
end

local function publish(typ, expires)
  if expires <= own[typ] then return end
  own[typ] = expires
  if expires > merged[typ] then merged[typ] = expires end
  local st = shared.verdict_state
  if not st then return end
  local id = worker_id() or 0
  -- a worker that replaced one with the same id (reload) keeps the larger expiry
  local k = flag_key(typ, id)
  local prev = st:get(k)
  if prev and prev > expires then own[typ] = prev return end
  st:set(k, expires, (expires - ngx_now() * 1000) / 1000 + 1)
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

local function unpack_verdict(v, k)
  local action, score, reasons, kind, difficulty, ttl = match(v, "^(%u+)|(%d*)|([^|]*)|?(%u*)|?(%d*)|?(%d*)$")
  local list = {}
  for r in reasons:gmatch("[^,]+") do list[#list + 1] = r end
  return { action = action, score = tonumber(score) or 0, reasons = list, cache_key = k,
           challenge_kind = kind ~= "" and kind or nil,
           challenge_difficulty = difficulty ~= "0" and tonumber(difficulty) or nil,
           clearance_ttl_s = ttl ~= "0" and tonumber(ttl) or nil }
end

-- subnet keys per client IP, memoised per worker (bounded: reset when large)
local subnet_keys, subnet_n = {}, 0
local function subnet_key(ip)
  local k = subnet_keys[ip]
  if k == nil then
    local s = _M.subnet(ip)
    k = s and ("subnet:" .. s) or false
    if subnet_n >= 10000 then subnet_keys, subnet_n = {}, 0 end
    subnet_n = subnet_n + 1
    subnet_keys[ip] = k
  end
  return k
end

-- the more severe of the best entry so far and the one under key k (multiple returns: no table)
local function consider(d, k, best, best_key, best_sev)
  local v = d:get(k)
  if v then
    local sev = SEVERITY[match(v, "^(%u+)|")] or 0
    if sev > best_sev then return v, k, sev end
  end
  return best, best_key, best_sev
end

-- "target:" keys of recent URLs, per worker (memo.lua): a SHA-1 per request otherwise, while any
-- probed URL is cached, and a site's few busiest URLs make most of its requests
local target_key = memo.new(4096)
local function target_of(url)
  return "target:" .. encode_base64(sha1_bin(url))
end

-- "client:" keys of recent clients, per worker (memo.lua): the same address and browser ask again
-- and again while a tool's verdict is cached
local client_key = memo.new(4096)
local function client_of(s)
  return "client:" .. encode_base64(sha1_bin(s))
end

-- syntax: k = cache.client_key(client_ip, user_agent, accept_language, accept_encoding, sec_ch_ua)
-- The "client:" key of an address and the browser's own headers, as the DecideRequest carries
-- them (nil: absent).
function _M.client_key(ip, ua, lang, enc, ch)
  local s = ip .. "|" .. (ua or "") .. "|" .. (lang or "") .. "|" .. (enc or "") .. "|" .. (ch or "")
  return client_key(s, client_of, s)
end

-- syntax: verdict = cache.lookup(client_ip, session_hash, token_hash, device_hash, path, query, req)
-- Looks up only the key types that may hold a live entry (cache.live()) and that the request
-- has (nil arguments are skipped). path, query: the DecideRequest's (query already cut to
-- query_max_bytes); req: the DecideRequest (its User-Agent, Accept-Language, Accept-Encoding and
-- sec-ch-ua make the "client:" key; nil: no client lookup). Returns { action, score, reasons = {...}, cache_key } of the
-- most severe cached verdict (the first found on a tie), or nil; for a clean mark (an ALLOW, the
-- least severe) a shared table with its action only.
function _M.lookup(client_ip, session_hash, token_hash, device_hash, path, query, req)
  local now = ngx_now() * 1000
  local d = cache()
  local best, best_key, best_sev = nil, nil, 0
  if session_hash and merged.session > now then
    best, best_key, best_sev = consider(d, "session:" .. encode_base64(session_hash), best, best_key, best_sev)
  end
  if token_hash and merged.principal > now then
    best, best_key, best_sev = consider(d, "principal:" .. encode_base64(token_hash), best, best_key, best_sev)
  end
  if device_hash and merged.device > now then
    best, best_key, best_sev = consider(d, "device:" .. encode_base64(device_hash), best, best_key, best_sev)
  end
  if client_ip and client_ip ~= "" then
    if merged.ip > now then
      best, best_key, best_sev = consider(d, "ip:" .. client_ip, best, best_key, best_sev)
    end
    if merged.subnet > now then
      local k = subnet_key(client_ip)
      if k then best, best_key, best_sev = consider(d, k, best, best_key, best_sev) end
    end
    if req and merged.client > now then
      local k = _M.client_key(client_ip, req.user_agent, req.accept_language, req.accept_encoding, req.sec_ch_ua)
      best, best_key, best_sev = consider(d, k, best, best_key, best_sev)
    end
  end
  if path and merged.target > now then
    local url = path .. "?" .. (query or "")
    best, best_key, best_sev = consider(d, target_key(url, target_of, url), best, best_key, best_sev)
  end
  if not best then return nil end
  -- a clean mark carries nothing the handler reads but its action: no table per request
  if best_sev == SEVERITY.ALLOW then return MARK end
  return unpack_verdict(best, best_key)
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
    .. (reasons and gsub(concat(reasons, ","), "|", "") or "")
  if resp.action == "CHALLENGE" then
    value = value .. "|" .. (resp.challenge_kind or "") .. "|" .. (resp.challenge_difficulty or 0)
      .. "|" .. (resp.clearance_ttl_s or 0)
  end
  local ok, err = cache():set(key, value, ttl)
  if not ok then return nil, err end
  publish(typ, ngx_now() * 1000 + ttl * 1000)
  return true
end

-- syntax: cache.revoke(key)
-- Drops the cached verdict under a cache key ("ip:…", "session:…"), for the revocations an
-- operator override sends in the OutcomeAck (revoked_keys). The "anything cached?" flags stay as
-- they are: at worst a lookup of an emptied type costs one miss until they expire.
function _M.revoke(key)
  if type(key) ~= "string" or key == "" then return end
  local typ = match(key, "^(%l+):.")
  if typ == "subnet" or typ == "ip" then key = lower(key) end
  cache():delete(key)
end

-- syntax: cache.unmark(key)
-- Drops a clean mark (a cached ALLOW) the service took back (OutcomeAck.unmarked_keys); any other
-- verdict under the key stays.
function _M.unmark(key)
  if type(key) ~= "string" or key == "" then return end
  local d = cache()
  local v = d:get(key)
  if v and find(v, "ALLOW|", 1, true) == 1 then d:delete(key) end
end

return _M
