-- Rate-limited error logger: a dead or slow decision service must not write megabytes of log a
-- second. Per worker, at most one line per cause every `log_interval_s` seconds; the next line
-- for that cause says how many were suppressed in between.

local ngx = ngx
local ngx_log = ngx.log
local ngx_now = ngx.now
local select, unpack = select, unpack

local _M = { _VERSION = "0.1.0" }

local interval = 5
local last = {}       -- cause -> time of the last line written
local suppressed = {} -- cause -> lines suppressed since

-- syntax: log.set_interval(seconds)
function _M.set_interval(s)
  interval = s
end

-- syntax: log.log(level, cause, ...)
-- Writes "verdict: <...>" at `level` unless a line for `cause` was written within the interval.
function _M.log(level, cause, ...)
  local now = ngx_now()
  local t = last[cause]
  if t and now - t < interval then
    suppressed[cause] = (suppressed[cause] or 0) + 1
    return false
  end
  last[cause] = now
  local n = suppressed[cause]
  if n and n > 0 then
    suppressed[cause] = 0
    -- `...` in the middle of an argument list keeps only its first value: append instead
    local args = { ... }
    local k = select("#", ...)
    args[k + 1], args[k + 2], args[k + 3] = " (", n, " similar messages suppressed)"
    ngx_log(level, "verdict: ", unpack(args, 1, k + 3))
  else
    ngx_log(level, "verdict: ", ...)
  end
  return true
end

return _M
