-- Response inspection (gateway-plugin/CONTRACT.md, "Response inspection (issue 17)").
--
-- header_filter decides whether this response is inspected; body_filter reads its first
-- inspect_max_bytes chunk by chunk as they pass (never buffering, changing or delaying them);
-- the log phase (finish) turns what was found into the Outcome's ResponseSample: counts per
-- kind, masked or not, and keyed 8-byte hashes of distinct unmasked values. Raw values never
-- leave this module: not in the outcome, not in a log line.
--
-- Streaming: no value contains a JSON structural byte (" , : { } [ ] tab CR LF), so each chunk is
-- scanned (together with what was carried) up to its last such byte and only the bytes after it
-- are carried to the next chunk: a value cut in two by a chunk boundary is found once, whole.
-- The TypeScript reference (decision-service/src/gateway/sensitive.ts) scans whole bodies; the
-- shared vectors (spec/sensitive-vectors.json) hold both to the same results.
--
-- Cost: a request that is not inspected pays one ngx.ctx read per filter call. Regexes are
-- compiled once per worker ("jo"); the claim map is one FFI buffer per worker, used between no
-- yields (body filters do not yield), so it is never shared by two requests at once.

local ffi = require "ffi"
local config = require "verdict.config"
local clearance = require "verdict.clearance"
local log = require "verdict.log"

local ngx = ngx
local ngx_var = ngx.var
local re_find = ngx.re.find
local byte, sub, find, lower, upper, gsub, match = string.byte, string.sub, string.find, string.lower, string.upper, string.gsub, string.match
local tonumber, tostring, type, random, ipairs = tonumber, tostring, type, math.random, ipairs
local ffi_fill = ffi.fill
local hmac_sha256 = clearance.hmac_sha256
local ERR, WARN = ngx.ERR, ngx.WARN

local _M = { _VERSION = "0.1.0" }

local MAX_FINDINGS, MAX_VALUE_HASHES, MAX_PATTERNS = 16, 32, 32
local MAX_UINT32 = 4294967295

-- the same regex sources as BUILTIN_PATTERNS in decision-service/src/gateway/sensitive.ts
local BUILTIN = {
  { kind = "cn_id",
    masked = [[(?<![0-9*])[1-9][0-9]{0,5}\*+[0-9]{0,3}[0-9Xx](?![0-9*])]],
    unmasked = [[(?<![0-9])[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx](?![0-9])]] },
  { kind = "cn_mobile",
    masked = [[(?<![0-9*])(?:(?:\+|00)?86[ -]?)?1[3-9][0-9]\*{3,5}[0-9]{3,4}(?![0-9*])]],
    unmasked = [[(?<![0-9])(?:(?:\+|00)?86[ -]?)?1[3-9][0-9]{9}(?![0-9])]] },
  { kind = "bank_card",
    masked = [[(?<![0-9*])[0-9]{4,6}[ -]?(?:\*[ -]?){4,}[0-9]{4}(?![0-9*])]],
    unmasked = [[(?<![0-9])(?:[0-9]{13,19}|[0-9]{4,6}(?:[ -][0-9]{3,6}){2,4})(?![0-9])]] },
  { kind = "email",
    masked = [[(?<![A-Za-z0-9._%+*-])[A-Za-z0-9._%+-]*\*[A-Za-z0-9._%+*-]*@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}(?![A-Za-z0-9-])]],
    unmasked = [[(?<![A-Za-z0-9._%+*-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}(?![A-Za-z0-9-])]] },
}

-- ---------------------------------------------------------------- checks (match -> normalized | nil)

local ID_WEIGHTS = { 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2 }
local ID_CHECK = { [0] = 49, 48, 88, 57, 56, 55, 54, 53, 52, 51, 50 } -- "10X98765432" as bytes

local function id_valid(m)
  local sum = 0
  for i = 1, 17 do sum = sum + (byte(m, i) - 48) * ID_WEIGHTS[i] end
  local last = byte(m, 18)
  if last == 120 then last = 88 end -- x -> X
  return ID_CHECK[sum % 11] == last
end

local function luhn_valid(d)
  local sum, double = 0, false
  for i = #d, 1, -1 do
    local v = byte(d, i) - 48
    if double then
      v = v * 2
      if v > 9 then v = v - 9 end
    end
    sum = sum + v
    double = not double
  end
  return sum % 10 == 0
end

local function accept(m) return m end
local function id_masked(m) if #m == 18 then return m end end
local function id_unmasked(m) if id_valid(m) then return upper(m) end end
local function mobile_unmasked(m)
  local d = gsub(m, "%D", "")
  return sub(d, -11)
end
local function card_unmasked(m)
  local d = gsub(m, "%D", "")
  local n = #d
  if n >= 13 and n <= 19 and luhn_valid(d) then return d end
end
local CHECKS = {
  cn_id = { id_masked, id_unmasked }, cn_mobile = { accept, mobile_unmasked },
  bank_card = { accept, card_unmasked }, email = { accept, lower },
}

-- searches: { kind, masked (bool), regex, check, masked_regex, kind_index, email }, in claim order;
-- replaced (never mutated) when the policy's patterns change, so a scan keeps the list it began with
local kinds_builtin = #BUILTIN
local function builtin_searches()
  local list = {}
  for i = 1, kinds_builtin do
    local b = BUILTIN[i]
    local email = b.kind == "email"
    list[#list + 1] = { kind = b.kind, masked = true, regex = b.masked, check = CHECKS[b.kind][1], masked_regex = false, kind_index = i, email = email, star = true }
    list[#list + 1] = { kind = b.kind, masked = false, regex = b.unmasked, check = CHECKS[b.kind][2], masked_regex = false, kind_index = i, email = email, star = false }
  end
  return list
end
local searches, kind_count = builtin_searches(), kinds_builtin
local patterns_version = ""

-- ---------------------------------------------------------------- policy patterns

-- syntax: version = inspect.patterns_version()
-- The version of the policy patterns this worker runs ("" = none yet); sent in each OutcomeBatch.
function _M.patterns_version()
  return patterns_version
end

-- syntax: installed = inspect.set_patterns(version, patterns)
-- Replaces this worker's policy patterns (OutcomeAck.patterns: { name, regex, masked_regex }).
-- A pattern with a bad name or a regex PCRE refuses is logged and skipped, never fatal.
-- Returns how many were installed.
function _M.set_patterns(version, list)
  local next_searches = builtin_searches()
  local n, names = kinds_builtin, {}
  for i = 1, #(list or {}) do
    local p = list[i]
    local name, regex, masked = p.name, p.regex, p.masked_regex
    local why
    if type(name) ~= "string" or not find(name, "^[a-z][a-z0-9_]*$") or #name > 32 then
      why = "a name is [a-z][a-z0-9_]{0,31}"
    elseif names[name] or CHECKS[name] then
      why = "the name is taken"
    elseif n - kinds_builtin >= MAX_PATTERNS then
      why = "more than 32 patterns"
    elseif type(regex) ~= "string" or regex == "" then
      why = "no regex"
    else
      local _, _, err = re_find("", regex, "jo")
      if err then why = "regex: " .. err end
      if not why and masked and masked ~= "" then
        _, _, err = re_find("", masked, "jo")
        if err then why = "masked_regex: " .. err end
      end
    end
    if why then
      -- not rate-limited: patterns change rarely, and each bad one deserves its line
      ngx.log(ERR, "verdict: sensitive pattern ", i, " (", tostring(name), ") skipped: ", why)
    else
      n = n + 1
      names[name] = true
      next_searches[#next_searches + 1] = { kind = name, masked = false, regex = regex, check = accept,
        masked_regex = masked ~= "" and masked or false, kind_index = n, email = false, star = false }
    end
  end
  searches, kind_count, patterns_version = next_searches, n, version or ""
  return n - kinds_builtin
end

-- ---------------------------------------------------------------- scanning

-- bytes no value contains: a chunk is scanned up to the last of them
local DELIM = {}
for _, ch in ipairs({ '"', ",", ":", "{", "}", "[", "]", "\t", "\r", "\n" }) do DELIM[byte(ch)] = true end

-- claimed[i] ~= 0: byte i (1-based, of the region) belongs to a value already counted
local claimed, claimed_size = nil, 0
local re_ctx = { pos = 1 }

-- Keyed hashes of recent values, per worker: the same values come back response after response
-- (a public list, a support line, a customer's own data), and an HMAC is a fifth of a scan's cost.
-- Two generations of at most HASH_MEMO_MAX entries each: when the young one is full it becomes the
-- old one and the older is dropped. The values stay inside this worker's memory (as the response
-- bodies they came from do), never in a log or on the wire.
local HASH_MEMO_MAX = 4096
local memo_young, memo_old, memo_n = {}, {}, 0
local memo_key

local function value_hash(key, kind, normalized)
  if key ~= memo_key then
    memo_young, memo_old, memo_n, memo_key = {}, {}, 0, key
  end
  local name = kind .. ":" .. normalized
  local h = memo_young[name]
  if h then return h end
  h = memo_old[name]
  if not h then h = sub(hmac_sha256(key, "sv:" .. name), 1, 8) end
  if memo_n >= HASH_MEMO_MAX then
    memo_young, memo_old, memo_n = {}, memo_young, 0
  end
  memo_young[name] = h
  memo_n = memo_n + 1
  return h
end

local function tally_of(scan, s)
  local t = scan.tallies[s.kind_index]
  if not t then
    t = { kind = s.kind, unmasked = 0, masked = 0, seen = {}, hashes = {}, n = 0 }
    scan.tallies[s.kind_index] = t
  end
  return t
end

-- scans text[1..last] (last: a delimiter's position or #text); text[last+1..] is carried
local function scan_region(scan, text, last)
  if last <= 0 then return end
  if claimed_size < last + 1 then
    claimed_size = last + 1024
    claimed = ffi.new("uint8_t[?]", claimed_size)
  else
    ffi_fill(claimed, last + 1, 0)
  end
  local list = scan.searches
  -- every e-mail has an "@" and every built-in masked form a "*": without them (one memchr each)
  -- those searches cannot match and are skipped
  local has_at = find(text, "@", 1, true)
  has_at = has_at and has_at <= last
  local has_star = find(text, "*", 1, true)
  has_star = has_star and has_star <= last
  for si = 1, #list do
    local s = list[si]
    if (not s.email or has_at) and (not s.star or has_star) then
      re_ctx.pos = 1
      while true do
        local from, to, err = re_find(text, s.regex, "jo", re_ctx)
        if not from then
          if err then log.log(ERR, "sensitive regex", "sensitive pattern ", s.kind, " failed: ", err) end
          break
        end
        if from > last then break end
        if to < from then
          re_ctx.pos = from + 1 -- an empty match (a policy pattern): step over it
        else
          local free = true
          for i = from, to do
            if claimed[i] ~= 0 then free = false break end
          end
          if free then
            local m = sub(text, from, to)
            local normalized = s.check(m)
            if normalized then
              for i = from, to do claimed[i] = 1 end
              local t = tally_of(scan, s)
              if s.masked or (s.masked_regex and re_find(m, s.masked_regex, "jo")) then
                t.masked = t.masked + 1
              else
                t.unmasked = t.unmasked + 1
                if t.n < MAX_VALUE_HASHES and not t.seen[normalized] then
                  t.seen[normalized] = true
                  t.n = t.n + 1
                  t.hashes[t.n] = value_hash(scan.key, s.kind, normalized)
                end
              end
            end
          end
        end
      end
    end
  end
end

local function count_records(data)
  local n, pos = 0, 1
  while true do
    local at = find(data, "{", pos, true)
    if not at then return n end
    n = n + 1
    pos = at + 1
  end
end

-- syntax: scan = inspect.new_scan(max_bytes, requested_limit, key)
-- The state of one response's inspection (key: the hmac_key; default config.http.hmac_key).
function _M.new_scan(max_bytes, limit, key)
  return {
    left = max_bytes, bytes = 0, carry = "", records = 0, requested_limit = limit or 0,
    truncated = false, full = false, closed = false, tallies = {},
    searches = searches, kind_count = kind_count, key = key or config.http.hmac_key,
  }
end

-- syntax: inspect.feed(scan, data, eof)
-- Scans one chunk as it passes. After inspect_max_bytes only notes that more came (truncated).
local function feed(scan, data, eof)
  if scan.full then
    if data ~= "" then
      scan.truncated = true
      scan.closed = true
    end
    return
  end
  local n = #data
  local left = scan.left
  if n >= left then
    if n > left then
      data = sub(data, 1, left)
      scan.truncated = true
      scan.closed = true
    end
    n = left
    scan.full = true
  end
  scan.left = left - n
  scan.bytes = scan.bytes + n
  if n > 0 then scan.records = scan.records + count_records(data) end
  local text = scan.carry
  if text == "" then text = data elseif n > 0 then text = text .. data end
  if eof or scan.full then
    scan.carry = ""
    return scan_region(scan, text, #text)
  end
  local last = #text
  while last > 0 and not DELIM[byte(text, last)] do last = last - 1 end
  scan_region(scan, text, last)
  scan.carry = last == #text and "" or sub(text, last + 1)
end
_M.feed = feed

-- syntax: sample = inspect.sample(scan)
-- Scans what is still carried and returns the ResponseSample (codec field names).
function _M.sample(scan)
  if scan.carry ~= "" then
    local text = scan.carry
    scan.carry = ""
    scan_region(scan, text, #text)
  end
  local findings, nf = {}, 0
  local tallies = scan.tallies
  for i = 1, scan.kind_count do
    local t = tallies[i]
    if t and nf < MAX_FINDINGS then
      nf = nf + 1
      findings[nf] = { kind = t.kind, unmasked = t.unmasked, masked = t.masked, value_hashes = t.hashes }
    end
  end
  return {
    inspected_bytes = scan.bytes, truncated = scan.truncated, records = scan.records,
    requested_limit = scan.requested_limit, findings = findings,
  }
end

-- ---------------------------------------------------------------- phases

-- $verdict_inspect: "auto" | "off" | "all" | a share 0..1; parsed once per distinct value
local setting_memo = {}
local function inspect_setting()
  local raw = config.get("inspect")
  local v = setting_memo[raw]
  if v ~= nil then return v end
  local l = lower(raw)
  if l == "auto" or l == "off" or l == "all" then
    v = l
  else
    local share = tonumber(raw)
    if share and share >= 0 and share <= 1 then
      v = share
    else
      log.log(WARN, "bad setting verdict_inspect", "invalid $verdict_inspect value \"", raw,
              "\" (auto, off, all or a share 0..1); using the default \"auto\"")
      v = "auto"
    end
  end
  setting_memo[raw] = v
  return v
end

local LIMIT_ARGS = { "arg_limit", "arg_page_size", "arg_per_page", "arg_size" }
local function requested_limit()
  for i = 1, #LIMIT_ARGS do
    local v = ngx_var[LIMIT_ARGS[i]]
    if v and find(v, "^%d+$") then
      local n = tonumber(v)
      return n > MAX_UINT32 and MAX_UINT32 or n
    end
  end
  return 0
end

local function json_type(ct)
  if not ct then return false end
  if type(ct) == "table" then ct = ct[1] end
  local mt = match(ct, "^%s*([^;%s]+)")
  if not mt then return false end
  mt = lower(mt)
  return mt == "application/json" or sub(mt, -5) == "+json"
end

-- syntax: inspect.header_filter()
-- header_filter_by_lua hook (verdict-location.conf): starts a scan when this response is a guarded
-- upstream JSON response, not compressed, and the location's setting (or the verdict, or
-- inspect_sample) says to inspect it.
function _M.header_filter()
  local st = ngx.ctx.verdict
  if not st then return end
  local action = st.action
  -- Verdict's own answers (block, challenge, fail-closed) are not the API's data
  if (action == "BLOCK" or action == "CHALLENGE") and st.mode ~= "monitor" then return end
  -- whether this response is sampled first (no header read for one that is not), then whether
  -- it can be inspected
  local setting = inspect_setting()
  local yes
  if setting == "all" then
    yes = true
  elseif setting == "auto" then
    local decided = st.inspect
    if decided ~= nil then yes = decided else yes = random() < config.http.inspect_sample end
  elseif setting ~= "off" then
    yes = random() < setting
  end
  if not yes then return end
  if ngx_var.request_method == "HEAD" then return end
  local h = ngx.header
  if not json_type(h["Content-Type"]) then return end
  local enc = h["Content-Encoding"]
  if enc and enc ~= "identity" then return end -- compressed upstream bodies are not inspected
  st.scan = _M.new_scan(config.http.inspect_max_bytes, requested_limit())
end

-- syntax: inspect.body_filter()
-- body_filter_by_lua hook: scans the chunk passing by; never touches ngx.arg[1].
function _M.body_filter()
  local st = ngx.ctx.verdict
  if not st then return end
  local scan = st.scan
  if not scan or scan.closed then return end
  feed(scan, ngx.arg[1], ngx.arg[2])
end

-- syntax: inspect.finish(st)
-- Log phase: sets st.response (the Outcome's ResponseSample) when the response was inspected.
function _M.finish(st)
  local scan = st.scan
  if not scan then return end
  st.scan = nil
  st.response = _M.sample(scan)
end

return _M
