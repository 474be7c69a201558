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
-- Cost: a request that is not inspected pays one ngx.ctx read per filter call. A region is read
-- by C, not byte by byte in Lua (scan_region): memchr (string.find, plain) finds the "{"s and "@"s,
-- and one PCRE search finds the narrow runs that can hold a value (a "*", or 11 digits); the common
-- values in those runs, and the common e-mail shape, are decided there by hand, exactly as the
-- regexes below would decide them, and the regexes run only on the few runs that are not (and the
-- policy's patterns over the whole text). Unmasked mobile numbers are remembered by their digits'
-- value, so a number seen before makes no string. Regexes are compiled once per worker ("jo");
-- the claim map and the join buffer are FFI buffers per worker, used between no yields (body
-- filters do not yield), so they are never shared by two requests at once.

local ffi = require "ffi"
local config = require "verdict.config"
local clearance = require "verdict.clearance"
local log = require "verdict.log"
local memo = require "verdict.memo"
local codec = require "verdict.codec"

local ngx = ngx
local ngx_var = ngx.var
local re_find = ngx.re.find
local byte, sub, find, lower, upper, gsub, match = string.byte, string.sub, string.find, string.lower, string.upper, string.gsub, string.match
local tonumber, tostring, type, random, ipairs = tonumber, tostring, type, math.random, ipairs
local ffi_fill, ffi_copy, ffi_cast, ffi_string = ffi.fill, ffi.copy, ffi.cast, ffi.string
local u8p = ffi.typeof("const uint8_t*")
local hmac_sha256 = clearance.hmac_sha256
local varint, len_varint = codec.varint, codec.len_varint
local concat, floor = table.concat, math.floor
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

-- searches: { kind, masked (bool), regex, check, masked_regex, kind_index }, in claim order: each
-- built-in kind's masked then unmasked search (the S_* positions below), then the policy's patterns;
-- replaced (never mutated) when the policy's patterns change, so a scan keeps the list it began with
local kinds_builtin = #BUILTIN
local BUILTIN_SEARCHES = 2 * kinds_builtin
local MOBILE_KIND = 2 -- cn_mobile's kind_index
local S_ID_MASKED, S_ID, S_MOBILE_MASKED, S_MOBILE, S_CARD_MASKED, S_CARD, S_EMAIL_MASKED, S_EMAIL = 1, 2, 3, 4, 5, 6, 7, 8
local function builtin_searches()
  local list = {}
  for i = 1, kinds_builtin do
    local b = BUILTIN[i]
    list[#list + 1] = { kind = b.kind, masked = true, regex = b.masked, check = CHECKS[b.kind][1], masked_regex = false, kind_index = i }
    list[#list + 1] = { kind = b.kind, masked = false, regex = b.unmasked, check = CHECKS[b.kind][2], masked_regex = false, kind_index = i }
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
        masked_regex = masked ~= "" and masked or false, kind_index = n }
    end
  end
  searches, kind_count, patterns_version = next_searches, n, version or ""
  return n - kinds_builtin
end

-- ---------------------------------------------------------------- scanning

-- bytes no value contains: a chunk is scanned up to the last of them
local DELIM = {}
for _, ch in ipairs({ '"', ",", ":", "{", "}", "[", "]", "\t", "\r", "\n" }) do DELIM[byte(ch)] = true end

-- Byte classes of a region's narrow runs (scan_region, narrow). The non-e-mail built-in searches
-- match and assert only on [0-9*+Xx -] bytes, and any other byte fails all their look-arounds as
-- the region's edge does: so a run of those bytes ("narrow run") is searched apart from the rest
-- with the same results, and one with no digit or "*" holds nothing. Likewise an e-mail search
-- sees only [A-Za-z0-9._%+*@-] runs, and only those holding an "@".
local C_NEAR, C_DIGIT, C_STAR = 1, 2, 3 -- any other byte: 0
local CLASS = ffi.new("uint8_t[256]")
for c = 48, 57 do CLASS[c] = C_DIGIT end
CLASS[42] = C_STAR
for _, ch in ipairs({ "+", "-", " ", "X", "x" }) do CLASS[byte(ch)] = C_NEAR end
local EMAIL = ffi.new("uint8_t[256]")
for c = 48, 57 do EMAIL[c] = 1 end
for c = 65, 90 do EMAIL[c], EMAIL[c + 32] = 1, 1 end
for _, ch in ipairs({ ".", "_", "%", "+", "*", "@", "-" }) do EMAIL[byte(ch)] = 1 end

-- claimed[i] ~= 0: byte i (1-based, of the region) belongs to a value already counted;
-- joined: the carry and the chunk's scanned part side by side, when a region starts with a carry
local claimed, claimed_size = nil, 0
local joined, joined_size = nil, 0
-- the string a region is read from through a pointer, held here so the GC cannot take it meanwhile
local anchored
local re_ctx, run_ctx = { pos = 1 }, { pos = 1 }
-- where a narrow run may hold a value: a "*", or 11 digits with only narrow bytes between them
local RUN_CANDIDATE = [[\*|(?<![0-9])(?:[0-9][-+ Xx]*){11}]]

-- Keyed hashes of recent values, per worker (memo.lua): the same values come back response after
-- response (a public list, a support line, a customer's own data), and an HMAC is a fifth of a
-- scan's cost. The values stay inside this worker's memory (as the response bodies they came from
-- do), never in a log or on the wire.
local hash_memo, hash_memo_reset = memo.new(4096)
local hash_key

local function keyed_hash(key, name)
  return sub(hmac_sha256(key, "sv:" .. name), 1, 8)
end

-- unmasked mobile numbers, the commonest value, are remembered by their 11 digits as a number:
-- no string is made for one seen before
local mobile_memo, mobile_memo_reset = memo.new(4096)

-- the memos hold hashes made with hash_key: a scan with another key forgets them
local function use_key(key)
  if key ~= hash_key then hash_memo_reset() mobile_memo_reset() hash_key = key end
end

local function value_hash(key, kind, normalized)
  use_key(key)
  local name = kind .. ":" .. normalized
  return hash_memo(name, keyed_hash, key, name)
end

local function mobile_hash(p, at)
  return keyed_hash(hash_key, "cn_mobile:" .. ffi_string(p + at, 11))
end
local function mobile_hash_of(normalized)
  return keyed_hash(hash_key, "cn_mobile:" .. normalized)
end

local function tally_of(scan, s)
  local t = scan.tallies[s.kind_index]
  if not t then
    t = { kind = s.kind, unmasked = 0, masked = 0, seen = {}, hashes = {}, n = 0 }
    scan.tallies[s.kind_index] = t
  end
  return t
end

-- counts an unmasked mobile number by its 11 digits' value (number); make(a, b) hashes it when
-- this worker has not yet (mobile_hash from the region's bytes, mobile_hash_of from a string)
local function count_mobile(scan, s, number, make, a, b)
  local t = tally_of(scan, s)
  t.unmasked = t.unmasked + 1
  if t.n < MAX_VALUE_HASHES and not t.seen[number] then
    t.seen[number] = true
    t.n = t.n + 1
    use_key(scan.key)
    t.hashes[t.n] = mobile_memo(number, make, a, b)
  end
end

-- counts a value that passed its check
local function count(scan, s, m, normalized)
  if s.masked or (s.masked_regex and re_find(m, s.masked_regex, "jo")) then
    local t = tally_of(scan, s)
    t.masked = t.masked + 1
  elseif s.kind_index == MOBILE_KIND then
    -- keyed as count_mobile from the bytes keys it: by the number
    count_mobile(scan, s, tonumber(normalized), mobile_hash_of, normalized)
  else
    local t = tally_of(scan, s)
    t.unmasked = t.unmasked + 1
    if t.n < MAX_VALUE_HASHES and not t.seen[normalized] then
      t.seen[normalized] = true
      t.n = t.n + 1
      t.hashes[t.n] = value_hash(scan.key, s.kind, normalized)
    end
  end
end

-- runs search s over text[1..last]; text[i] is the region's byte base + i
local function search(scan, s, text, base, last)
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
      for i = base + from, base + to do
        if claimed[i] ~= 0 then free = false break end
      end
      if free then
        local m = sub(text, from, to)
        local normalized = s.check(m)
        if normalized then
          for i = base + from, base + to do claimed[i] = 1 end
          count(scan, s, m, normalized)
        end
      end
    end
  end
end

-- The common narrow runs are decided here byte by byte, exactly as the regexes would (a run is
-- bounded, so a match of these searches spans the whole run or nothing); p[a..]: the run.

-- cn_id unmasked on 18 digits: [1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])...
local function id_shape(p, a)
  if p[a] == 48 then return false end
  local c, d = p[a + 6], p[a + 7]
  if not (c == 49 and (d == 56 or d == 57) or c == 50 and d == 48) then return false end
  c, d = p[a + 10], p[a + 11]
  if not (c == 48 and d ~= 48 or c == 49 and d <= 50) then return false end
  c, d = p[a + 12], p[a + 13]
  return c == 48 and d ~= 48 or c == 49 or c == 50 or c == 51 and d <= 49
end

-- DOUBLED[byte]: a digit byte's Luhn contribution when doubled
local DOUBLED = ffi.new("uint8_t[58]")
for d = 0, 9 do DOUBLED[48 + d] = d < 5 and 2 * d or 2 * d - 9 end

local function luhn_at(p, a, n)
  local sum, i = 0, a + n - 1
  while i > a do
    sum = sum + p[i] - 48 + DOUBLED[p[i - 1]]
    i = i - 2
  end
  if i == a then sum = sum + p[a] - 48 end
  return sum % 10 == 0
end

-- where 1[3-9] must start after an optional (?:00)?86 prefix filling the run's first `lead` digits
local function after_prefix(p, a, lead)
  if lead == 0 then return a end
  if lead == 2 then return p[a] == 56 and p[a + 1] == 54 and a + 2 end
  if lead == 4 then return p[a] == 48 and p[a + 1] == 48 and p[a + 2] == 56 and p[a + 3] == 54 and a + 4 end
  return false
end

-- a run of n (>= 11) digits only: a resident ID, else a mobile number, else a Luhn-valid card
local function digit_run(scan, list, p, a, n)
  if n == 18 and id_shape(p, a) then
    local m = ffi_string(p + a, 18)
    if id_valid(m) then
      ffi_fill(claimed + a + 1, n, 1)
      return count(scan, list[S_ID], m, m)
    end
  end
  if n >= 11 then
    local at = after_prefix(p, a, n - 11)
    if at and p[at] == 49 and p[at + 1] >= 51 then
      ffi_fill(claimed + a + 1, n, 1)
      local number = 0
      for i = at, at + 10 do number = number * 10 + p[i] - 48 end
      return count_mobile(scan, list[S_MOBILE], number, mobile_hash, p, at)
    end
  end
  if n >= 13 and n <= 19 and luhn_at(p, a, n) then
    ffi_fill(claimed + a + 1, n, 1)
    return count(scan, list[S_CARD], nil, ffi_string(p + a, n))
  end
end

-- digits, stars, digits (lead + stars + tail bytes, no run of 11 digits): the masked forms
local function masked_run(scan, list, p, a, lead, stars, tail)
  local n = lead + stars + tail
  -- cn_id: [1-9][0-9]{0,5}\*+[0-9]{0,3}[0-9Xx], counted when 18 bytes long
  if n == 18 and lead <= 6 and tail <= 4 and p[a] ~= 48 then
    ffi_fill(claimed + a + 1, n, 1)
    return count(scan, list[S_ID_MASKED], nil, true)
  end
  -- cn_mobile: (?:(?:\+|00)?86[ -]?)?1[3-9][0-9]\*{3,5}[0-9]{3,4}
  if stars >= 3 and stars <= 5 and (tail == 3 or tail == 4) and lead >= 3 then
    local at = after_prefix(p, a, lead - 3)
    if at and p[at] == 49 and p[at + 1] >= 51 then
      ffi_fill(claimed + a + 1, n, 1)
      return count(scan, list[S_MOBILE_MASKED], nil, true)
    end
  end
  -- bank_card: [0-9]{4,6}[ -]?(?:\*[ -]?){4,}[0-9]{4}
  if lead >= 4 and lead <= 6 and stars >= 4 and tail == 4 then
    ffi_fill(claimed + a + 1, n, 1)
    return count(scan, list[S_CARD_MASKED], nil, true)
  end
end

-- a narrow run, region bytes p[a..b-1]: the six non-e-mail built-in searches in claim order, each
-- skipped when the run cannot hold a value it would count (17 digits in a row for an unmasked ID,
-- 11 for a mobile number, 13 digits in groups of 3 or more for a card, a "*" for the masked forms)
local function narrow(scan, list, p, a, b)
  local run, longest, grouped, stars, near = 0, 0, 0, 0, 0
  for i = a, b - 1 do
    local c = CLASS[p[i]]
    if c == C_DIGIT then
      run = run + 1
    else
      if run > longest then longest = run end
      if run >= 3 then grouped = grouped + run end
      run = 0
      if c == C_STAR then stars = stars + 1 else near = near + 1 end
    end
  end
  if run > longest then longest = run end
  if run >= 3 then grouped = grouped + run end
  if stars == 0 then
    if longest < 11 and grouped < 13 then return end
    if near == 0 then return digit_run(scan, list, p, a, b - a) end
  elseif near == 0 and longest < 11 then
    -- digits, then all the stars in one block, then digits?
    local i = a
    while p[i] ~= 42 do i = i + 1 end
    local j = i + 1
    while j < b and p[j] == 42 do j = j + 1 end
    if i > a and j < b and j - i == stars then
      return masked_run(scan, list, p, a, i - a, stars, b - j)
    end
  end
  local text, last = ffi_string(p + a, b - a), b - a
  if stars > 0 then search(scan, list[S_ID_MASKED], text, a, last) end
  if longest >= 17 then search(scan, list[S_ID], text, a, last) end
  if stars > 0 then search(scan, list[S_MOBILE_MASKED], text, a, last) end
  if longest >= 11 then search(scan, list[S_MOBILE], text, a, last) end
  if stars > 0 then search(scan, list[S_CARD_MASKED], text, a, last) end
  if grouped >= 13 then search(scan, list[S_CARD], text, a, last) end
end

-- DOMAIN[byte] ~= 0: [A-Za-z0-9-], a domain label's bytes; 2 for a letter
local DOMAIN = ffi.new("uint8_t[256]")
for c = 48, 57 do DOMAIN[c] = 1 end
for c = 65, 90 do DOMAIN[c], DOMAIN[c + 32] = 2, 2 end
DOMAIN[45] = 1

-- The common e-mail run p[a..b-1] (its "@" at `at`), decided by hand as the unmasked e-mail search
-- would: the whole run is one unmasked address when it holds no other "@" and no "*", none of it is
-- claimed, something precedes the "@", and after it come labels of [A-Za-z0-9-] joined by single
-- dots, the last of two or more letters. Anything else goes to the regexes.
local function plain_email(p, a, at, b)
  if at == a then return false end
  for i = a, at - 1 do
    local c = p[i]
    if c == 42 or c == 64 then return false end
  end
  local label, dots, letters = 0, 0, true
  for i = at + 1, b - 1 do
    local d = DOMAIN[p[i]]
    if d ~= 0 then
      label = label + 1
      if d ~= 2 then letters = false end
    elseif p[i] == 46 and label > 0 then
      dots, label, letters = dots + 1, 0, true
    else
      return false
    end
  end
  if dots == 0 or label < 2 or not letters then return false end
  for i = a + 1, b do
    if claimed[i] ~= 0 then return false end
  end
  return true
end

-- Scans the region carry .. data[1..k] (k: data's last delimiter, or #data); data[k+1..] is
-- carried. C finds what Lua then looks at: the "{"s (records) and the "@"s by memchr, the narrow
-- runs that can hold a value by one PCRE search (each widened to the whole run and searched); the
-- e-mail searches then run on the e-mail runs around each "@", and the policy's patterns over the
-- whole text (they cannot be pre-filtered).
local function scan_region(scan, carry, data, k)
  local nc = #carry
  local len = nc + k
  if len <= 0 then return end
  local list = scan.searches
  local policies = #list > BUILTIN_SEARCHES
  -- a policy pattern's match may run past the region into the carried bytes: clear those too
  local size = (policies and nc + #data or len) + 1
  if claimed_size < size then
    claimed_size = size + 1024
    claimed = ffi.new("uint8_t[?]", claimed_size)
  else
    ffi_fill(claimed, size, 0)
  end
  -- p: the region's bytes
  local p
  if nc == 0 then
    anchored = data
    p = ffi_cast(u8p, data)
  else
    if joined_size < len then
      joined_size = len + 1024
      joined = ffi.new("uint8_t[?]", joined_size)
    end
    ffi_copy(joined, carry, nc)
    ffi_copy(joined + nc, data, k)
    p = joined
  end

  -- the region as a Lua string, for the C searches below (memchr for "{" and "@", PCRE for runs)
  local text = nc == 0 and data or ffi_string(joined, len)

  -- records: the "{"s
  local records, at = 0, find(text, "{", 1, true)
  while at and at <= len do
    records = records + 1
    at = find(text, "{", at + 1, true)
  end
  scan.records = scan.records + records

  -- narrow runs that can hold a value (a "*", or 11 digits): each found by PCRE, then widened to
  -- the whole run (most runs, under 11 digits and with no "*", are never looked at in Lua)
  run_ctx.pos = 1
  while true do
    local from, to = re_find(text, RUN_CANDIDATE, "jo", run_ctx)
    if not from or from > len then break end
    local a, b = from - 1, to < len and to or len
    while a > 0 and CLASS[p[a - 1]] ~= 0 do a = a - 1 end
    while b < len and CLASS[p[b]] ~= 0 do b = b + 1 end
    narrow(scan, list, p, a, b)
    run_ctx.pos = b + 1
  end

  -- e-mail runs around each "@"
  local done = 0
  at = find(text, "@", 1, true)
  while at and at <= len do
    local i = at - 1
    if i >= done then
      local a, b = i, i + 1
      while a > 0 and EMAIL[p[a - 1]] ~= 0 do a = a - 1 end
      while b < len and EMAIL[p[b]] ~= 0 do b = b + 1 end
      local run = ffi_string(p + a, b - a)
      if plain_email(p, a, i, b) then
        ffi_fill(claimed + a + 1, b - a, 1)
        count(scan, list[S_EMAIL], run, lower(run))
      else
        if find(run, "*", 1, true) then search(scan, list[S_EMAIL_MASKED], run, a, b - a) end
        search(scan, list[S_EMAIL], run, a, b - a)
      end
      done = b
    end
    at = find(text, "@", at + 1, true)
  end

  anchored = nil

  if policies then
    text = nc == 0 and data or carry .. data
    for si = BUILTIN_SEARCHES + 1, #list do search(scan, list[si], text, 0, len) end
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
  local carry = scan.carry
  local k = n
  if not (eof or scan.full) then
    -- the carry holds no delimiter: the region ends at data's last one
    while k > 0 and not DELIM[byte(data, k)] do k = k - 1 end
    if k == 0 then
      if n > 0 then scan.carry = carry .. data end
      return
    end
  end
  scan_region(scan, carry, data, k)
  scan.carry = k == n and "" or sub(data, k + 1)
end
_M.feed = feed

-- scans what is still carried
local function flush(scan)
  if scan.carry ~= "" then
    local text = scan.carry
    scan.carry = ""
    scan_region(scan, "", text, #text)
  end
end

-- syntax: sample = inspect.sample(scan)
-- Scans what is still carried and returns the ResponseSample (codec field names).
function _M.sample(scan)
  flush(scan)
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

-- buffers of encode_sample, reused (the log phase does not yield)
local sample_buf, finding_buf = {}, {}

-- buf[n + 1 ..] gets a varint field: its key byte(s) and v, left off when 0 as proto3 does; the new n
local function put_uint(buf, n, key, v)
  if v <= 0 then return n end
  buf[n + 1] = key
  buf[n + 2] = varint(v)
  return n + 2
end

-- buf[n + 1 ..] gets a length-delimited field (bytes, a string, a message); the new n
local function put_bytes(buf, n, key, s)
  buf[n + 1] = key
  buf[n + 2] = len_varint(#s)
  buf[n + 3] = s
  return n + 3
end

-- the buffer's first n pieces joined, and the buffer emptied
local function joined(buf, n)
  local s = concat(buf, "", 1, n)
  for j = 1, n do buf[j] = nil end
  return s
end

-- a SensitiveFinding (tally_of's table) encoded: kind 1, unmasked 2, masked 3, value_hashes 4
local function finding_bytes(t)
  local f = finding_buf
  local m = put_bytes(f, 0, "\10", t.kind)
  m = put_uint(f, m, "\16", t.unmasked)
  m = put_uint(f, m, "\24", t.masked)
  local hashes = t.hashes
  for j = 1, t.n do m = put_bytes(f, m, "\34", hashes[j]) end
  return joined(f, m)
end

-- syntax: bytes = inspect.encode_sample(scan)
-- Scans what is still carried and returns the ResponseSample protobuf-encoded: the bytes
-- codec.encode_response_sample(inspect.sample(scan)) makes, without the tables in between (the
-- log phase's share of an inspected response's cost). Fields as verdict.proto numbers them:
-- inspected_bytes 1, truncated 2, records 3, requested_limit 4, findings 5.
function _M.encode_sample(scan)
  flush(scan)
  local out = sample_buf
  local n = put_uint(out, 0, "\8", scan.bytes)
  if scan.truncated then
    n = n + 1
    out[n] = "\16\1"
  end
  n = put_uint(out, n, "\24", scan.records)
  n = put_uint(out, n, "\32", floor(scan.requested_limit))
  local tallies, nf = scan.tallies, 0
  for i = 1, scan.kind_count do
    local t = tallies[i]
    if t and nf < MAX_FINDINGS then
      nf = nf + 1
      n = put_bytes(out, n, "\42", finding_bytes(t))
    end
  end
  return joined(out, n)
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
  -- most requests carry none of the four (nginx matches argument names in any case): no
  -- argument lookups for them
  local args = ngx_var.args
  if not args then return 0 end
  args = lower(args)
  if not (find(args, "limit=", 1, true) or find(args, "size=", 1, true) or find(args, "per_page=", 1, true)) then return 0 end
  for i = 1, #LIMIT_ARGS do
    local v = ngx_var[LIMIT_ARGS[i]]
    if v and find(v, "^%d+$") then
      local n = tonumber(v)
      return n > MAX_UINT32 and MAX_UINT32 or n
    end
  end
  return 0
end

local function parse_json_type(ct)
  local mt = match(ct, "^%s*([^;%s]+)")
  if not mt then return false end
  mt = lower(mt)
  return mt == "application/json" or sub(mt, -5) == "+json"
end

-- Content-Type value -> whether it is JSON, per worker: an API answers with a handful of values
local json_memo = memo.new(256)
local function json_type(ct)
  if not ct then return false end
  if type(ct) == "table" then ct = ct[1] end
  return json_memo(ct, parse_json_type, ct)
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
  if st.method == "HEAD" then return end
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
-- Log phase: sets st.response (the Outcome's ResponseSample, encoded: codec.lua takes a string
-- message as is) when the response was inspected.
function _M.finish(st)
  local scan = st.scan
  if not scan then return end
  st.scan = nil
  st.response = _M.encode_sample(scan)
end

return _M
