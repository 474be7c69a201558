-- Bounded per-worker memo: two generations of at most `max` entries each; when the young one is
-- full it becomes the old one and the older is dropped, so what is used keeps being found and
-- memory stays at most 2 × max entries. For results worth more than a table lookup that come back
-- request after request (keyed hashes of session ids and response values, lower-cased header
-- names, parsed content types). Entries live in this worker's memory only.

local _M = { _VERSION = "0.1.0" }

-- syntax: lookup, reset = memo.new(max)
-- lookup(key, make, a, b): the value remembered for key, else make(a, b) (remembered; it must not
-- return nil). reset(): forgets everything (e.g. when the key the values were hashed with changed).
function _M.new(max)
  local young, old, n = {}, {}, 0
  local function lookup(key, make, a, b)
    local v = young[key]
    if v ~= nil then return v end
    v = old[key]
    if v == nil then v = make(a, b) end
    if n >= max then young, old, n = {}, young, 0 end
    young[key] = v
    n = n + 1
    return v
  end
  local function reset()
    young, old, n = {}, {}, 0
  end
  return lookup, reset
end

return _M
