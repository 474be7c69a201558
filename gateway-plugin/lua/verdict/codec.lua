-- Hand-written protobuf codec for the Verdict wire contract
-- (decision-service/src/wire/verdict.proto, package verdict.v1).
--
-- Encoders: DecideRequest, OutcomeBatch (Outcome, nested DecideRequest and ResponseSample).
-- Decoders: DecideResponse, OutcomeAck (nested DecideResponse and SensitivePattern).
--
-- Messages are flat, so a field table per message drives both directions. proto3 semantics:
-- default values (empty string, 0, false, empty list) are not written; absent fields decode to
-- their defaults; unknown fields are skipped. Enums are Lua strings ("BLOCK") in and out; numbers
-- are accepted when encoding. Numbers are Lua doubles, exact up to 2^53 (epoch ms fit easily).
--
-- Decoder failures return nil, "bad response".

local bit = require "bit"
local band, bor, rshift, lshift = bit.band, bit.bor, bit.rshift, bit.lshift
local char, byte, sub = string.char, string.byte, string.sub
local concat = table.concat
local floor = math.floor
local type, tonumber, tostring, unpack = type, tonumber, tostring, unpack

local _M = { _VERSION = "0.1.0" }

local MODE = { INLINE = 0, ASYNC = 1, MONITOR = 2 }
local ACTION = { ALLOW = 0, TAG = 1, CHALLENGE = 2, BLOCK = 3 }
local ACTION_NAMES = { [0] = "ALLOW", "TAG", "CHALLENGE", "BLOCK" }
local CLEARANCE = { NONE = 0, VALID = 1, INVALID = 2, EXPIRED = 3 }
local CHALLENGE_KIND_NAMES = { [0] = "DEFAULT", "POW", "PAGE", "STATUS" }

-- kinds: s = string, b = bytes, u = unsigned varint, o = bool, e = enum, rs = repeated string,
-- m = message, rm = repeated message
local DECIDE_REQUEST = {
  { 1, "request_id", "s" }, { 2, "ts_ms", "u" }, { 3, "client_ip", "s" }, { 4, "method", "s" },
  { 5, "host", "s" }, { 6, "path", "s" }, { 7, "query", "s" }, { 8, "route_tag", "s" },
  { 9, "http_version", "s" }, { 10, "tls_protocol", "s" }, { 11, "tls_cipher", "s" },
  { 12, "user_agent", "s" }, { 13, "accept", "s" }, { 14, "accept_language", "s" },
  { 15, "accept_encoding", "s" }, { 16, "referer", "s" }, { 17, "origin", "s" },
  { 18, "content_type", "s" }, { 19, "sec_fetch_site", "s" }, { 20, "sec_fetch_mode", "s" },
  { 21, "sec_fetch_dest", "s" }, { 22, "sec_fetch_user", "s" }, { 23, "sec_ch_ua", "s" },
  { 24, "header_names", "rs" }, { 25, "cookie_names", "rs" }, { 26, "has_authorization", "o" },
  { 27, "auth_scheme", "s" }, { 28, "session_hash", "b" }, { 29, "token_hash", "b" },
  { 30, "device_hash", "b" }, { 31, "identifier", "s" }, { 32, "password_hash", "b" },
  { 33, "mode", "e", MODE }, { 34, "gateway_id", "s" }, { 35, "budget_ms", "u" },
  { 36, "clearance", "e", CLEARANCE }, { 37, "clearance_level", "u" }, { 38, "clearance_age_s", "u" },
}

local SENSITIVE_FINDING = {
  { 1, "kind", "s" }, { 2, "unmasked", "u" }, { 3, "masked", "u" }, { 4, "value_hashes", "rs" },
}

local RESPONSE_SAMPLE = {
  { 1, "inspected_bytes", "u" }, { 2, "truncated", "o" }, { 3, "records", "u" },
  { 4, "requested_limit", "u" }, { 5, "findings", "rm", SENSITIVE_FINDING },
}

local OUTCOME = {
  { 1, "request_id", "s" }, { 2, "ts_ms", "u" }, { 3, "client_ip", "s" }, { 4, "method", "s" },
  { 5, "path", "s" }, { 6, "route_tag", "s" }, { 7, "status", "u" }, { 8, "auth_result", "s" },
  { 9, "upstream_ms", "u" }, { 10, "bytes_sent", "u" }, { 11, "action", "e", ACTION },
  { 12, "fail_open", "s" }, { 13, "from_cache", "o" }, { 14, "request", "m", DECIDE_REQUEST },
  { 15, "response", "m", RESPONSE_SAMPLE },
}

local GATEWAY_COUNTER = {
  { 1, "name", "s" }, { 2, "value", "u" },
}

local OUTCOME_BATCH = {
  { 1, "gateway_id", "s" }, { 2, "outcomes", "rm", OUTCOME }, { 3, "counters", "rm", GATEWAY_COUNTER },
  { 4, "patterns_version", "s" },
}

local DECIDE_RESPONSE = {
  { 1, "request_id", "s" }, { 2, "action", "e", ACTION_NAMES }, { 3, "score", "u" },
  { 4, "reasons", "rs" }, { 5, "cache_key", "s" }, { 6, "cache_ttl_s", "u" },
  { 7, "policy_version", "s" }, { 8, "dry_run", "o" },
  { 9, "challenge_kind", "e", CHALLENGE_KIND_NAMES }, { 10, "challenge_difficulty", "u" },
  { 11, "clearance_ttl_s", "u" }, { 12, "inspect", "o" },
}

local SENSITIVE_PATTERN = {
  { 1, "name", "s" }, { 2, "regex", "s" }, { 3, "masked_regex", "s" },
}

local OUTCOME_ACK = {
  { 1, "accepted", "u" }, { 2, "verdicts", "rm", DECIDE_RESPONSE }, { 3, "revoked_keys", "rs" },
  { 4, "patterns_version", "s" }, { 5, "patterns", "rm", SENSITIVE_PATTERN },
  { 6, "unmarked_keys", "rs" },
}

-- ---------------------------------------------------------------- encoding
--
-- Hot path: every field's key bytes are computed once at load; small lengths come from a table
-- of one-byte strings; each nesting depth has a buffer table reused by every call (the encoder
-- never yields), and a message is joined with one table.concat.

local function varint(n)
  if n < 128 then
    return char(n)
  end
  local out, i = {}, 0
  if n < 2147483648 then
    while n >= 128 do
      i = i + 1
      out[i] = bor(band(n, 0x7f), 0x80)
      n = rshift(n, 7)
    end
  else
    -- above 2^31 LuaJIT's bit ops are signed 32-bit: fall back to arithmetic
    while n >= 128 do
      i = i + 1
      out[i] = n % 128 + 128
      n = floor(n / 128)
    end
  end
  i = i + 1
  out[i] = n
  return char(unpack(out, 1, i))
end

-- one-byte varints (0..127), and two-byte ones (128..16383) built on first use
local SMALL = {}
for i = 0, 127 do SMALL[i] = char(i) end
local function len_varint(n)
  local s = SMALL[n]
  if s then return s end
  if n < 16384 then
    s = char(bor(band(n, 0x7f), 0x80), rshift(n, 7))
    SMALL[n] = s
    return s
  end
  return varint(n)
end

-- key bytes per field, index 5 of each field spec (wire type from the kind)
local WIRE_TYPE = { s = 2, b = 2, rs = 2, m = 2, rm = 2, u = 0, o = 0, e = 0 }
local function prepare(fields)
  for i = 1, #fields do
    local f = fields[i]
    f[5] = varint(lshift(f[1], 3) + WIRE_TYPE[f[3]])
  end
end
prepare(DECIDE_REQUEST)
prepare(OUTCOME)
prepare(OUTCOME_BATCH)
prepare(GATEWAY_COUNTER)
prepare(RESPONSE_SAMPLE)
prepare(SENSITIVE_FINDING)

local TRUE_BYTE = "\1"
local buffers = {} -- depth -> reused buffer table

local encode_fields
encode_fields = function(fields, msg, depth)
  local buf = buffers[depth]
  if not buf then buf = {} buffers[depth] = buf end
  local n = 0
  for i = 1, #fields do
    local f = fields[i]
    local v = msg[f[2]]
    if v ~= nil then
      local kind = f[3]
      if kind == "s" or kind == "b" then
        if type(v) ~= "string" then v = tostring(v) end
        local l = #v
        if l > 0 then
          buf[n + 1] = f[5]
          buf[n + 2] = len_varint(l)
          buf[n + 3] = v
          n = n + 3
        end
      elseif kind == "u" then
        if type(v) ~= "number" then v = tonumber(v) or 0 end
        if v > 0 then
          buf[n + 1] = f[5]
          buf[n + 2] = varint(floor(v))
          n = n + 2
        end
      elseif kind == "o" then
        if v then
          buf[n + 1] = f[5]
          buf[n + 2] = TRUE_BYTE
          n = n + 2
        end
      elseif kind == "e" then
        if type(v) == "string" then v = f[4][v] or 0 end
        if v > 0 then
          buf[n + 1] = f[5]
          buf[n + 2] = varint(v)
          n = n + 2
        end
      elseif kind == "rs" then
        local k = f[5]
        for j = 1, #v do
          local s = v[j]
          if type(s) ~= "string" then s = tostring(s) end
          buf[n + 1] = k
          buf[n + 2] = len_varint(#s)
          buf[n + 3] = s
          n = n + 3
        end
      elseif kind == "m" then
        -- a string is the message already encoded (the log phase's ResponseSample: inspect.encode_sample)
        local s = type(v) == "string" and v or encode_fields(f[4], v, depth + 1)
        buf[n + 1] = f[5]
        buf[n + 2] = len_varint(#s)
        buf[n + 3] = s
        n = n + 3
      elseif kind == "rm" then
        local sub_fields, k = f[4], f[5]
        for j = 1, #v do
          local s = encode_fields(sub_fields, v[j], depth + 1)
          buf[n + 1] = k
          buf[n + 2] = len_varint(#s)
          buf[n + 3] = s
          n = n + 3
        end
      end
    end
  end
  local out = concat(buf, "", 1, n)
  -- drop references to the request's strings (the table itself is kept for the next call)
  for j = 1, n do buf[j] = nil end
  return out
end

-- syntax: bytes = codec.encode_decide_request(req)
-- req: table with DecideRequest field names; bytes fields are raw strings; mode "INLINE" | ...
function _M.encode_decide_request(req)
  return encode_fields(DECIDE_REQUEST, req, 1)
end

-- syntax: bytes = codec.encode_response_sample(sample)
-- sample: a ResponseSample table (inspect.sample); what inspect.encode_sample makes directly
function _M.encode_response_sample(sample)
  return encode_fields(RESPONSE_SAMPLE, sample, 1)
end

-- varint(n) and the cached length varint, for encoders written by hand (inspect.encode_sample)
_M.varint, _M.len_varint = varint, len_varint

-- syntax: bytes = codec.encode_outcome_batch(batch)
-- batch: { gateway_id = "...", outcomes = { { request_id = ..., request = <DecideRequest> }, ... },
--          counters = { { name = "fail_open_total{cause=\"timeout\"}", value = n }, ... } (optional),
--          patterns_version = "..." }; an outcome's `response` is a ResponseSample
--          { inspected_bytes, truncated, records, requested_limit, findings = { { kind, unmasked,
--          masked, value_hashes = { <8 raw bytes>, ... } }, ... } }
function _M.encode_outcome_batch(batch)
  return encode_fields(OUTCOME_BATCH, batch, 1)
end

-- ---------------------------------------------------------------- decoding

-- returns value, next position; nil on truncation or overlong varint
local function read_varint(s, pos, len)
  local b = byte(s, pos)
  if not b then return nil end
  if b < 128 then return b, pos + 1 end
  local result, mul = b - 128, 128
  for i = 1, 9 do
    b = byte(s, pos + i)
    if not b then return nil end
    if b < 128 then
      return result + b * mul, pos + i + 1
    end
    result = result + (b - 128) * mul
    mul = mul * 128
  end
  return nil
end

local decode_fields

-- index a field table by number once per module load
local function by_number(fields)
  local t = {}
  for i = 1, #fields do t[fields[i][1]] = fields[i] end
  return t
end

local RESPONSE_INDEX = by_number(DECIDE_RESPONSE)
local ACK_INDEX = by_number(OUTCOME_ACK)
local SUB_INDEX = { [DECIDE_RESPONSE] = RESPONSE_INDEX, [SENSITIVE_PATTERN] = by_number(SENSITIVE_PATTERN) }

local function defaults(fields)
  local msg = {}
  for i = 1, #fields do
    local f = fields[i]
    local kind = f[3]
    if kind == "s" or kind == "b" then msg[f[2]] = ""
    elseif kind == "u" then msg[f[2]] = 0
    elseif kind == "o" then msg[f[2]] = false
    elseif kind == "e" then msg[f[2]] = f[4][0]
    elseif kind == "rs" or kind == "rm" then msg[f[2]] = {}
    end
  end
  return msg
end

decode_fields = function(fields, index, s, pos, last)
  local msg = defaults(fields)
  while pos <= last do
    local k
    k, pos = read_varint(s, pos)
    if not k or pos - 1 > last then return nil end
    local wt = k % 8
    local num = (k - wt) / 8
    local f = index[num]
    if wt == 0 then
      local v
      v, pos = read_varint(s, pos)
      if not v or pos - 1 > last then return nil end
      if f then
        local kind = f[3]
        if kind == "u" then msg[f[2]] = v
        elseif kind == "o" then msg[f[2]] = v ~= 0
        elseif kind == "e" then msg[f[2]] = f[4][v] or v
        else return nil end
      end
    elseif wt == 2 then
      local l
      l, pos = read_varint(s, pos)
      if not l then return nil end
      local stop = pos + l - 1
      if stop > last then return nil end
      if f then
        local kind = f[3]
        if kind == "s" or kind == "b" then
          msg[f[2]] = sub(s, pos, stop)
        elseif kind == "rs" then
          local list = msg[f[2]]
          list[#list + 1] = sub(s, pos, stop)
        elseif kind == "rm" then
          local sub_msg = decode_fields(f[4], SUB_INDEX[f[4]], s, pos, stop)
          if not sub_msg then return nil end
          local list = msg[f[2]]
          list[#list + 1] = sub_msg
        else
          return nil
        end
      end
      pos = stop + 1
    elseif wt == 5 then
      pos = pos + 4
    elseif wt == 1 then
      pos = pos + 8
    else
      return nil -- groups (3, 4) and reserved wire types are not part of this contract
    end
  end
  if pos ~= last + 1 then return nil end
  return msg
end

-- syntax: resp, err = codec.decode_decide_response(bytes)
-- resp: { request_id, action = "ALLOW"|"TAG"|"CHALLENGE"|"BLOCK", score, reasons = {...},
--         cache_key, cache_ttl_s, policy_version, dry_run, ..., inspect }; failure: nil, "bad response"
function _M.decode_decide_response(s)
  if type(s) ~= "string" then return nil, "bad response" end
  local msg = decode_fields(DECIDE_RESPONSE, RESPONSE_INDEX, s, 1, #s)
  if not msg or type(msg.action) ~= "string" then return nil, "bad response" end
  return msg
end

-- syntax: ack, err = codec.decode_outcome_ack(bytes)
-- ack: { accepted = n, verdicts = { <DecideResponse>, ... }, revoked_keys = { "ip:…", ... },
--        unmarked_keys = { "session:…", ... }, patterns_version = "...", patterns = { { name, regex, masked_regex }, ... } };
-- failure: nil, "bad response"
function _M.decode_outcome_ack(s)
  if type(s) ~= "string" then return nil, "bad response" end
  local msg = decode_fields(OUTCOME_ACK, ACK_INDEX, s, 1, #s)
  if not msg then return nil, "bad response" end
  return msg
end

return _M
