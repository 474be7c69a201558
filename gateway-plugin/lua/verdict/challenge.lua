-- What a CHALLENGE verdict answers, and the endpoint that turns a solved challenge into the
-- verdict_clearance cookie (gateway-plugin/CONTRACT.md, "Challenges and clearance").
--
--   POW     page navigations: the interstitial (template + solver, filled here); anything else:
--           429 JSON with a signed challenge descriptor, answered by X-Verdict-Proof or the
--           endpoint.
--   PAGE    302 to $verdict_challenge_url (the pre-clearance behaviour).
--   STATUS  $verdict_challenge_status with Retry-After and a small JSON body.
--   DEFAULT PAGE when the location sets $verdict_challenge_url, else POW.
--
-- Single use: a solved nonce's random id is added to the `verdict_proofs` shared dict until the
-- nonce expires; a second answer with it is "reused".

local config = require "verdict.config"
local clearance = require "verdict.clearance"
local metrics = require "verdict.metrics"

local ngx = ngx
local ngx_var = ngx.var
local ngx_header = ngx.header
local ngx_print = ngx.print
local ngx_exit = ngx.exit
local escape_uri = ngx.escape_uri
local get = config.get
local gsub, find, sub, lower, match = string.gsub, string.find, string.sub, string.lower, string.match
local concat = table.concat
local tostring, tonumber, io, error, type = tostring, tonumber, io, error, type

local _M = { _VERSION = "0.1.0" }

local ANSWER_URL = "/.verdict/answer"
local REQUIRED = { "{{NONCE}}", "{{DIFFICULTY}}", "{{RETURN_URL}}", "{{ANSWER_URL}}", "{{SOLVER}}" }
local template, solver
-- the template split once at its {{NAME}} placeholders: literal, name, literal, ..., literal
-- (a page is then a table of pieces for ngx.print, no pattern match over the whole page)
local parts, nparts

-- gateway-plugin/ of this checkout or install: lua/verdict/challenge.lua -> ../../
local function plugin_dir()
  local src = debug.getinfo(1, "S").source
  return match(sub(src, 2), "^(.*)/lua/verdict/[^/]*$") or "."
end

local function read(path, what)
  local f, err = io.open(path, "rb")
  if not f then error(what .. " cannot be read: " .. tostring(err), 0) end
  local text = f:read("*a")
  f:close()
  return text
end

-- syntax: challenge.init(template_path)   (config.init, at start: errors name the file and fix)
function _M.init(template_path)
  local dir = plugin_dir()
  local path = template_path or (dir .. "/challenge/page.html")
  template = read(path, "challenge_template " .. path)
  for i = 1, #REQUIRED do
    if not find(template, REQUIRED[i], 1, true) then
      error("challenge_template " .. path .. " lacks the placeholder " .. REQUIRED[i]
            .. " (keep the element with id=\"verdict\" and its data-* attributes of the bundled page)", 0)
    end
  end
  solver = read(dir .. "/challenge/solver.js", "the challenge solver")
  parts, nparts = {}, 0
  local pos = 1
  while true do
    local a, b, name = find(template, "{{([%u_]+)}}", pos)
    if not a then break end
    parts[nparts + 1], parts[nparts + 2] = sub(template, pos, a - 1), name
    nparts = nparts + 2
    pos = b + 1
  end
  nparts = nparts + 1
  parts[nparts] = sub(template, pos)
end

local HTML = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }
local function html(s)
  return (gsub(tostring(s), "[&<>\"']", HTML))
end

local function json_escape(s)
  return (gsub(s, '[%c"\\]', function(ch)
    return ch == '"' and '\\"' or ch == "\\" and "\\\\" or ""
  end))
end

-- a same-site path: one leading "/", never "//" or "/\" (another host)
local function same_site(path)
  if type(path) ~= "string" or sub(path, 1, 1) ~= "/" or find(path, "^/[/\\]") or find(path, "[%c]") then return "/" end
  return path
end

-- where a solved challenge returns: the request itself (GET/HEAD), else the page it came from
local function return_url()
  local method = ngx.req.get_method()
  if method == "GET" or method == "HEAD" then return same_site(ngx_var.request_uri) end
  local ref, host = ngx_var.http_referer, ngx_var.http_host
  if ref and host then
    local rhost, path = match(ref, "^https?://([^/]+)(/.*)$")
    if rhost and lower(rhost) == lower(host) then return same_site(path) end
  end
  return "/"
end

local function is_navigation()
  local mode = ngx_var.http_sec_fetch_mode
  if mode then return mode == "navigate" end
  local accept = ngx_var.http_accept
  return accept ~= nil and find(accept, "text/html", 1, true) ~= nil
end

local function lang()
  local al = ngx_var.http_accept_language
  if al and find(lower(al), "^%s*zh") then return "zh-CN" end
  return "en"
end

local function page(nonce, difficulty, ttl, ret, ip, ua)
  local nojs = ""
  if difficulty <= get("challenge_difficulty") then
    local wait = get("challenge_nojs_wait_s")
    -- a difficulty-0 nonce is not valid before its iat: the wait is signed into it
    local n0 = clearance.issue_nonce(0, ttl, ip, ua, ngx.time() + wait)
    nojs = '<meta http-equiv="refresh" content="' .. wait .. ';url='
      .. html(ANSWER_URL .. "?proof=" .. escape_uri(n0 .. ".0") .. "&return=" .. escape_uri(ret)) .. '">'
  end
  local values = {
    LANG = lang(), NONCE = html(nonce), DIFFICULTY = tostring(difficulty), RETURN_URL = html(ret),
    ANSWER_URL = ANSWER_URL, REQUEST_ID = html(ngx_var.request_id or ""), NOJS = nojs, SOLVER = solver,
  }
  -- the filled pieces (ngx.print takes the table as is); an unknown placeholder stays as written
  local out = {}
  for i = 1, nparts, 2 do
    out[i] = parts[i]
    local name = parts[i + 1]
    if name then out[i + 1] = values[name] or ("{{" .. name .. "}}") end
  end
  return out
end

local function status_answer(status)
  local retry = get("challenge_retry_after")
  ngx.status = status
  ngx_header["Content-Type"] = "application/json"
  ngx_header["Cache-Control"] = "no-store"
  ngx_header["Retry-After"] = retry
  ngx_print('{"error":"challenge","request_id":"', json_escape(ngx_var.request_id or ""),
            '","retry_after":', retry, '}')
  return ngx_exit(status)
end

-- syntax: challenge.respond(v, ip, ua)
-- Ends the request with the challenge of verdict v ({ challenge_kind, challenge_difficulty,
-- clearance_ttl_s }, absent = the location's defaults).
function _M.respond(v, ip, ua)
  local kind = v.challenge_kind
  local url = get("challenge_url")
  if kind == nil or kind == "DEFAULT" then kind = url ~= "" and "PAGE" or "POW" end
  if kind == "PAGE" and url ~= "" then
    ngx_header["Cache-Control"] = "no-store"
    return ngx.redirect(url, 302)
  end
  if kind == "STATUS" then return status_answer(get("challenge_status")) end
  -- POW, or PAGE with no challenge URL to send to: a challenge people can pass

  local difficulty = v.challenge_difficulty
  if not difficulty or difficulty == 0 then difficulty = get("challenge_difficulty") end
  local ttl = v.clearance_ttl_s
  if not ttl or ttl == 0 then ttl = get("clearance_ttl_s") end
  local nonce, exp = clearance.issue_nonce(difficulty, ttl, ip, ua)
  ngx_header["Cache-Control"] = "no-store"
  if is_navigation() then
    local status = get("challenge_status")
    ngx.status = status
    ngx_header["Content-Type"] = "text/html; charset=utf-8"
    ngx_print(page(nonce, difficulty, ttl, return_url(), ip, ua))
    return ngx_exit(status)
  end
  local retry = get("challenge_retry_after")
  ngx.status = 429
  ngx_header["Content-Type"] = "application/json"
  ngx_header["Retry-After"] = retry
  ngx_print('{"error":"challenge","request_id":"', json_escape(ngx_var.request_id or ""),
            '","retry_after":', retry, ',"challenge":{"algorithm":"sha256-leading-zero-bits","difficulty":',
            difficulty, ',"nonce":"', nonce, '","expires":', exp,
            ',"answer":{"header":"X-Verdict-Proof","endpoint":"', ANSWER_URL, '"}}}')
  return ngx_exit(429)
end

-- records a solved nonce; false when it was already spent (or cannot be recorded: refusing a
-- proof is safe, accepting one twice is not)
local function spend(rand, exp)
  local d = ngx.shared.verdict_proofs
  if not d then return false end
  local ttl = exp - ngx.time() + 1
  local ok, err = d:add(rand, true, ttl > 1 and ttl or 1)
  if ok then return true end
  if err ~= "exists" then ngx.log(ngx.ERR, "verdict: proof record failed: ", err) end
  return false
end

local function cookie(token, ttl)
  local secure = ngx_var.scheme == "https" and "; Secure" or ""
  return "verdict_clearance=" .. token .. "; Path=/; Max-Age=" .. ttl .. "; HttpOnly; SameSite=Lax" .. secure
end

-- syntax: token, level, ttl = challenge.redeem(proof, ip, ua)   (nil, why on rejection)
-- Checks a proof (X-Verdict-Proof or the endpoint), spends its nonce and issues a token.
function _M.redeem(proof, ip, ua)
  local res, why = clearance.check_proof(proof, ip, ua, spend)
  if not res then return nil, why end
  local token = clearance.issue_token(res.level, res.ttl, ip, ua)
  return token, res.level, res.ttl
end

-- syntax: challenge.set_cookie(token, ttl)   (response header of the current request)
function _M.set_cookie(token, ttl)
  ngx_header["Set-Cookie"] = cookie(token, ttl)
end

-- syntax: challenge.answer()   content_by_lua of `location ^~ /.verdict/` (verdict-server.conf)
function _M.answer()
  ngx_header["Cache-Control"] = "no-store"
  if ngx_var.uri ~= ANSWER_URL then return ngx_exit(404) end
  local args = ngx.req.get_uri_args(8)
  local proof, ret = args.proof, args["return"]
  if type(proof) ~= "string" then proof = nil end
  local ip, ua = ngx_var.remote_addr, ngx_var.http_user_agent or ""
  local token, level, ttl = nil, nil, nil
  local why = "malformed"
  if proof then token, level, ttl = _M.redeem(proof, ip, ua) end
  if not token then
    why = level or why
    metrics.incr("challenge_answers_total", "result", why)
    ngx.status = 403
    ngx_header["Content-Type"] = "application/json"
    ngx_print('{"error":"proof rejected","why":"', json_escape(why), '"}')
    return ngx_exit(403)
  end
  metrics.incr("challenge_answers_total", "result", "issued")
  _M.set_cookie(token, ttl)
  if type(ret) == "string" then
    return ngx.redirect(same_site(ret), 303)
  end
  ngx_header["Content-Type"] = "application/json"
  local exp = match(token, "^v1%.[^.]+%.%d+%.(%d+)%.")
  ngx_print('{"clearance":"', token, '","expires":', tonumber(exp) or 0, ',"level":', level, '}')
  return ngx_exit(200)
end

return _M
