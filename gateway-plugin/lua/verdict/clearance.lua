-- Challenges and clearance (gateway-plugin/CONTRACT.md, "Challenges and clearance"): signed
-- challenge nonces, proof-of-work checks, and the verdict_clearance token, all verified here with
-- no call and no shared state but the single-use record of a solved nonce.
--
-- Crypto: SHA-256 and HMAC-SHA-256 from the libcrypto nginx is linked with, through LuaJIT's FFI
-- (ngx has only SHA-1). MACs are truncated to 16 bytes, base64url without padding.
--
-- Formats (all times unix seconds):
--   nonce  c1.<kid>.<iat>.<exp>.<difficulty>.<ttl>.<nh>.<uh>.<rand>.<sig>
--   proof  <nonce>.<counter>       SHA-256(proof) has >= difficulty leading zero bits
--   token  v1.<kid>.<iat>.<exp>.<level>.<nh>.<uh>.<sig>
-- nh / uh bind both to the client's /24 (v4) or /64 (v6) and its exact User-Agent.

local ffi = require "ffi"
local cache = require "verdict.cache"

local ngx = ngx
local encode_base64 = ngx.encode_base64
local byte, sub, gsub, find, match, format = string.byte, string.sub, string.gsub, string.find, string.match, string.format
local tonumber, type, error = tonumber, type, error
local band, rshift = bit.band, bit.rshift
local ngx_time = ngx.time

local _M = { _VERSION = "0.1.0" }

ffi.cdef [[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *SHA256(const unsigned char *d, size_t n, unsigned char *md);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                    const unsigned char *d, size_t n, unsigned char *md, unsigned int *md_len);
]]
local C = ffi.C
local digest_buf = ffi.new("unsigned char[64]")
local digest_len = ffi.new("unsigned int[1]")
local SHA256_MD

-- syntax: bytes = clearance.sha256(s)
function _M.sha256(s)
  C.SHA256(s, #s, digest_buf)
  return ffi.string(digest_buf, 32)
end

-- syntax: bytes = clearance.hmac_sha256(key, s)
function _M.hmac_sha256(key, s)
  if not SHA256_MD then SHA256_MD = C.EVP_sha256() end
  C.HMAC(SHA256_MD, key, #key, s, #s, digest_buf, digest_len)
  return ffi.string(digest_buf, 32)
end
local sha256, hmac_sha256 = _M.sha256, _M.hmac_sha256

local B64U = { ["+"] = "-", ["/"] = "_" }
local function b64u(s)
  return (gsub(encode_base64(s, true), "[+/]", B64U))
end
_M.b64u = b64u

local function hex(s)
  return (gsub(s, ".", function(ch) return format("%02x", byte(ch)) end))
end

local CHALLENGE_LIFE_S = 300
local NONCE_TAG, TOKEN_TAG = "verdict-challenge-v1.", "verdict-clearance-v1."
local KID = "^[%w_%-]+$"

-- keys: { {id=, secret=}, ... }, first signs; by_id: id -> secret
local keys, by_id = nil, {}

local function mac(secret, text)
  return b64u(sub(hmac_sha256(secret, text), 1, 16))
end
_M.mac = mac

-- constant-time equality of two strings of known length
local function same(a, b)
  if #a ~= #b then return false end
  local diff = 0
  for i = 1, #a do diff = bit.bor(diff, bit.bxor(byte(a, i), byte(b, i))) end
  return diff == 0
end

-- syntax: nh = clearance.net_hash(ip)   uh = clearance.ua_hash(ua)
-- (net_hash_subnet: the same of a subnet string; an address with no subnet stands for itself)
function _M.net_hash_subnet(subnet)
  return b64u(sub(sha256("net:" .. subnet), 1, 6))
end
function _M.net_hash(ip)
  return _M.net_hash_subnet(cache.subnet(ip) or ip)
end
function _M.ua_hash(ua)
  return b64u(sub(sha256("ua:" .. (ua or "")), 1, 6))
end
local net_hash, ua_hash = _M.net_hash, _M.ua_hash

-- syntax: keys = clearance.derive_keys(hmac_key)
-- The one key used when config.init has no clearance_keys (CONTRACT.md).
function _M.derive_keys(hmac_key)
  return { { id = "h" .. sub(hex(sha256(hmac_key)), 1, 8), secret = hex(hmac_sha256(hmac_key, "verdict clearance key v1")) } }
end

-- syntax: list = clearance.parse_keys_file(text)   (nil, err on a bad line)
function _M.parse_keys_file(text)
  local list, n = {}, 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    line = gsub(line, "^%s*(.-)%s*$", "%1")
    if line ~= "" and sub(line, 1, 1) ~= "#" then
      local id, secret = match(line, "^(%S+)%s+(%S+)$")
      if not id then return nil, format("line %d: expected \"<id> <secret>\"", n) end
      list[#list + 1] = { id = id, secret = secret }
    end
  end
  return list
end

-- syntax: ok, err = clearance.check_keys(list)
function _M.check_keys(list)
  if type(list) ~= "table" or #list == 0 then return nil, "must list at least one key, e.g. { { id = \"k1\", secret = \"<32+ characters>\" } }" end
  local seen = {}
  for i = 1, #list do
    local k = list[i]
    if type(k) ~= "table" or type(k.id) ~= "string" or type(k.secret) ~= "string" then
      return nil, format("key %d must be { id = \"...\", secret = \"...\" }", i)
    end
    if #k.id > 16 or not find(k.id, KID) then return nil, format("key %d: id %q must be 1-16 of A-Z a-z 0-9 _ -", i, k.id) end
    if #k.secret < 32 then return nil, format("key %q: the secret must hold at least 32 characters (e.g. `openssl rand -hex 32`)", k.id) end
    if seen[k.id] then return nil, format("key id %q is listed twice", k.id) end
    seen[k.id] = true
  end
  return true
end

-- syntax: clearance.set_keys(list)   (checked first with check_keys)
function _M.set_keys(list)
  keys, by_id = list, {}
  for i = 1, #list do by_id[list[i].id] = list[i].secret end
end

local function signing_key()
  local k = keys and keys[1]
  if not k then error("verdict: clearance keys not set (config.init was not called)") end
  return k
end

-- 12 random bytes, b64u (16 characters): /dev/urandom, read through a per-worker buffer of
-- 64 ids so a challenge costs no file open
local random_pool, random_at = "", 1
local function random_id()
  if random_at + 11 > #random_pool then
    local f = io.open("/dev/urandom", "rb")
    random_pool = f and f:read(768) or ""
    if f then f:close() end
    random_at = 1
    if #random_pool < 768 then error("verdict: /dev/urandom cannot be read for challenge nonces") end
  end
  local s = sub(random_pool, random_at, random_at + 11)
  random_at = random_at + 12
  return b64u(s)
end

-- syntax: nonce, exp = clearance.issue_nonce(difficulty, ttl, ip, ua [, iat, rand])
-- iat defaults to now; a difficulty-0 (no-JS) nonce takes now + the wait: valid from then on.
function _M.issue_nonce(difficulty, ttl, ip, ua, now, rand)
  local k = signing_key()
  now = now or ngx_time()
  local exp = now + CHALLENGE_LIFE_S
  local body = "c1." .. k.id .. "." .. now .. "." .. exp .. "." .. difficulty .. "." .. ttl .. "."
    .. net_hash(ip) .. "." .. ua_hash(ua) .. "." .. (rand or random_id())
  return body .. "." .. mac(k.secret, NONCE_TAG .. body), exp
end

-- leading zero bits of a binary digest, at least `want`?
local function enough_zero_bits(d, want)
  local full = rshift(want, 3)
  for i = 1, full do
    if byte(d, i) ~= 0 then return false end
  end
  local rest = want - full * 8
  if rest == 0 then return true end
  return band(byte(d, full + 1), bit.lshift(0xff, 8 - rest) % 256) == 0
end

local NONCE = "^c1%.([%w_%-]+)%.(%d+)%.(%d+)%.(%d+)%.(%d+)%.([%w_%-]+)%.([%w_%-]+)%.([%w_%-]+)%.([%w_%-]+)$"

-- syntax: res, why = clearance.check_proof(proof, ip, ua, used [, now])
-- res = { level, ttl, rand, exp }; why one of CONTRACT.md's rejection names. `used(rand, exp)`
-- records the nonce as spent and returns false when it already was (checked last: only a proof
-- that passed everything else spends its nonce).
function _M.check_proof(proof, ip, ua, used, now)
  if type(proof) ~= "string" or #proof > 512 then return nil, "malformed" end
  local nonce, counter = match(proof, "^(.+)%.(%d+)$")
  if not nonce or #counter > 12 then return nil, "malformed" end
  local kid, iat, exp, difficulty, ttl, nh, uh, rand, sig = match(nonce, NONCE)
  if not kid or #kid > 16 or #iat > 12 or #exp > 12 or #difficulty > 2 or #ttl > 7 or #nh ~= 8 or #uh ~= 8
     or #rand ~= 16 or #sig ~= 22 then
    return nil, "malformed"
  end
  iat, exp, difficulty, ttl = tonumber(iat), tonumber(exp), tonumber(difficulty), tonumber(ttl)
  if difficulty > 32 then return nil, "malformed" end
  local secret = by_id[kid]
  if not secret then return nil, "unknown key" end
  if not same(sig, mac(secret, NONCE_TAG .. sub(nonce, 1, #nonce - #sig - 1))) then return nil, "bad signature" end
  now = now or ngx_time()
  if now > exp then return nil, "expired" end
  if nh ~= net_hash(ip) then return nil, "network" end
  if uh ~= ua_hash(ua) then return nil, "browser" end
  if difficulty == 0 then
    -- the no-JS fallback: no work, but not valid before iat (issue time + the wait)
    if counter ~= "0" then return nil, "work" end
    if now < iat then return nil, "too early" end
  elseif not enough_zero_bits(sha256(proof), difficulty) then
    return nil, "work"
  end
  if used and not used(rand, exp) then return nil, "reused" end
  return { level = difficulty, ttl = ttl, rand = rand, exp = exp }
end

-- syntax: token, exp = clearance.issue_token(level, ttl, ip, ua [, now])
function _M.issue_token(level, ttl, ip, ua, now)
  local k = signing_key()
  now = now or ngx_time()
  local exp = now + ttl
  local body = "v1." .. k.id .. "." .. now .. "." .. exp .. "." .. level .. "." .. net_hash(ip) .. "." .. ua_hash(ua)
  return body .. "." .. mac(k.secret, TOKEN_TAG .. body), exp
end

local TOKEN = "^v1%.([%w_%-]+)%.(%d+)%.(%d+)%.(%d+)%.([%w_%-]+)%.([%w_%-]+)%.([%w_%-]+)$"

-- syntax: state, level, age_s, why = clearance.check_token(token, ip, ua [, now])
-- state: "NONE" | "VALID" | "INVALID" | "EXPIRED" (the DecideRequest's clearance names).
function _M.check_token(token, ip, ua, now)
  if token == nil or token == "" then return "NONE", 0, 0 end
  if #token > 256 then return "INVALID", 0, 0, "malformed" end
  local kid, iat, exp, level, nh, uh, sig = match(token, TOKEN)
  if not kid or #kid > 16 or #iat > 12 or #exp > 12 or #level > 2 or #nh ~= 8 or #uh ~= 8 or #sig ~= 22 then
    return "INVALID", 0, 0, "malformed"
  end
  local secret = by_id[kid]
  if not secret then return "INVALID", 0, 0, "unknown key" end
  if not same(sig, mac(secret, TOKEN_TAG .. sub(token, 1, #token - #sig - 1))) then return "INVALID", 0, 0, "bad signature" end
  if nh ~= net_hash(ip) then return "INVALID", 0, 0, "network" end
  if uh ~= ua_hash(ua) then return "INVALID", 0, 0, "browser" end
  now = now or ngx_time()
  if now > tonumber(exp) then return "EXPIRED", 0, 0, "expired" end
  local age = now - tonumber(iat)
  return "VALID", tonumber(level), age > 0 and age or 0
end

return _M
