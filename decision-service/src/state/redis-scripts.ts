// Lua scripts the Redis store runs (each touches the keys of one store key, so one hash slot).
// Distinct sets live in two Redis keys per bucket: a small exact set (SADD while it holds at most
// SMALL members) and a 128-byte HyperLogLog register string that every member max-merges into;
// readers use the exact set while it is small and the registers once it has overflowed — the
// same switch DistinctSketch makes locally.

const READ_DISTINCT = `
local function read(s, r, small)
  local n = redis.call('SCARD', s)
  local out = {}
  if n <= small then
    out[1] = 0
    local ms = redis.call('SMEMBERS', s)
    for i = 1, #ms do out[i + 1] = tonumber(ms[i]) end
    return out
  end
  local g = redis.call('GET', r) or ''
  out[1] = 1
  for i = 1, #g do out[i + 1] = string.byte(g, i) end
  return out
end
`;

/** KEYS: set, registers. ARGV: ttlMs, small, then (member|'-', register, rank) triples. */
export const DISTINCT_ADD = `${READ_DISTINCT}
local small = tonumber(ARGV[2])
local n = redis.call('SCARD', KEYS[1])
local forced = false
for i = 3, #ARGV, 3 do
  local m, idx, rank = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  if m == '-' then
    forced = true
  elseif n <= small then
    n = n + redis.call('SADD', KEYS[1], m)
  end
  local cur = redis.call('GETRANGE', KEYS[2], idx, idx)
  if cur == '' or string.byte(cur) < rank then redis.call('SETRANGE', KEYS[2], idx, string.char(rank)) end
end
if forced and n <= small then
  -- registers arrived without their members: pad the exact set past the limit so every
  -- reader switches to the registers
  for j = 1, small + 1 - n do redis.call('SADD', KEYS[1], '*' .. j) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return read(KEYS[1], KEYS[2], small)
`;

/** KEYS: (set, registers) pairs. ARGV: small. Returns one read per pair. */
export const DISTINCT_READ = `${READ_DISTINCT}
local small = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS, 2 do out[#out + 1] = read(KEYS[i], KEYS[i + 1], small) end
return out
`;

/** KEYS: counter buckets. ARGV: a delta then a ttlMs per key. Returns the new values. */
export const INCR_MANY = `
local out = {}
for i = 1, #KEYS do
  local d = ARGV[2 * i - 1]
  local v
  if string.find(d, '[.eE]') then v = redis.call('INCRBYFLOAT', KEYS[i], d) else v = redis.call('INCRBY', KEYS[i], d) end
  redis.call('PEXPIRE', KEYS[i], ARGV[2 * i])
  out[i] = tostring(v)
end
return out
`;

/** KEYS: mark. ARGV: until (engine ms), ttlMs. Max-merge; returns the stored until. */
export const MARK = `
local cur = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return redis.call('GET', KEYS[1])
`;

/** KEYS: value. ARGV: at, "at|expires|value", ttlMs. The newest write (by engine time) wins. */
export const SWAP = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local at = tonumber(string.match(cur, '^([^|]+)'))
  if at and at > tonumber(ARGV[1]) then return cur end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return ARGV[2]
`;

/** KEYS: arrival list. ARGV: ttlMs, keep, timestamps... Returns the kept timestamps. */
export const ARRIVALS = `
redis.call('LPUSH', KEYS[1], unpack(ARGV, 3))
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return redis.call('LRANGE', KEYS[1], 0, -1)
`;
