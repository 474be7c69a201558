-- Generated from gateway-plugin/spec/options.json by gateway-plugin/spec/generate.ts:
-- edit the spec, then run the generator (test/spec/options.test.ts fails while they differ).
--
-- The gateway's options as data, read by verdict.config: http = the config.init{} options,
-- location = the $verdict_<name> settings. Fields: name, type, default (nil = none), min/max
-- (int, number, status), values (enum), description (quoted in validation messages).

local _M = { _VERSION = "0.1.0" }

_M.http = {
  { name = "service", type = "address", default = "127.0.0.1:9400", description = "decision service address: HTTP at \"ip:port\" (a host name is looked up once, at start, in /etc/hosts) or \"unix:/path/to.sock\"; the framed transport at \"frame:ip:port\" or \"frame:unix:/path.sock\"; several instances comma-separated (calls rotate; a refused one hands the call to the next)" },
  { name = "hmac_key", type = "secret", description = "key for the HMAC-SHA1 hashes of passwords, session cookies, tokens and device ids (at least 16 characters; or set hmac_key_file)" },
  { name = "hmac_key_file", type = "string", description = "file holding the HMAC key (trailing newline stripped); alternative to hmac_key" },
  { name = "secret", type = "secret", description = "gateway secret proving this gateway to the decision service (at least 32 characters; or set secret_file); required when the service is not on loopback" },
  { name = "secret_file", type = "string", description = "file holding the gateway secret (first line); alternative to secret" },
  { name = "clearance_keys", type = "keys", description = "keys of the clearance token and challenge nonces, {{id = \"k2\", secret = \"...\"}, ...}: the first signs, every listed key verifies (ids 1-16 of A-Z a-z 0-9 _ -, secrets 32+ characters; or set clearance_keys_file)" },
  { name = "clearance_keys_file", type = "string", description = "file holding the clearance keys, one \"id secret\" pair per line, the signing key first; alternative to clearance_keys" },
  { name = "challenge_template", type = "string", description = "HTML template of the proof-of-work interstitial (read once at start; must hold the {{...}} placeholders the bundled page uses)" },
  { name = "pool_size", type = "int", default = 64, min = 1, max = 10000, description = "keep-alive connections to the service kept per worker" },
  { name = "pool_idle_timeout_ms", type = "int", default = 60000, min = 1000, max = 3600000, description = "idle time before a pooled connection closes; keep below the service keep-alive timeout (75 s)" },
  { name = "transport", type = "enum", default = "auto", values = { "auto", "pool", "mux" }, description = "how decide calls reach the service: mux (every call of the worker pipelined over mux_connections long-lived connections per instance; needs frame: addresses), pool (a pooled connection per call, HTTP or frames), or auto (mux when every service address is frame:, else pool)" },
  { name = "mux_connections", type = "int", default = 1, min = 1, max = 8, description = "transport mux: long-lived connections per service instance per worker" },
  { name = "breaker_failures", type = "int", default = 5, min = 1, max = 100000, description = "failed calls in a row (across workers) before the breaker may open" },
  { name = "breaker_min_span_ms", type = "int", default = 1000, min = 0, max = 60000, description = "the breaker opens only when no call has come back for this long as well: a slow service (some answers in time) or a short stall never opens it" },
  { name = "breaker_cooldown_ms", type = "int", default = 200, min = 50, max = 3600000, description = "while open, a background probe every this many ms; the first answer closes the breaker" },
  { name = "breaker_probe_timeout_ms", type = "int", default = 1000, min = 10, max = 60000, description = "deadline of one background probe" },
  { name = "shed_timeout_share", type = "number", default = 0.2, min = 0, max = 1, description = "a worker that saw at least this share of its calls time out last second skips calls from $verdict_priority low locations and async metadata (0 = never shed)" },
  { name = "outcomes_enabled", type = "bool", default = true, description = "report outcomes (and async-mode requests) to /v1/outcomes from the log phase" },
  { name = "outcome_batch_size", type = "int", default = 200, min = 1, max = 2000, description = "outcomes per POST /v1/outcomes (the service accepts at most VERDICT_OUTCOMES_MAX_BATCH, 2000 by default)" },
  { name = "outcome_flush_ms", type = "int", default = 1000, min = 10, max = 600000, description = "flush interval of the per-worker outcome buffer" },
  { name = "outcome_buffer_max", type = "int", default = 10000, min = 1, max = 10000000, description = "per-worker outcome buffer bound; beyond it outcomes are dropped and counted" },
  { name = "outcome_timeout_ms", type = "int", default = 2000, min = 10, max = 60000, description = "total deadline of one outcome POST (timer, never on a request)" },
  { name = "metrics_flush_ms", type = "int", default = 1000, min = 10, max = 60000, description = "interval at which each worker adds its counters to the shared dict (/verdict-metrics lags by at most this)" },
  { name = "log_interval_s", type = "int", default = 5, min = 0, max = 3600, description = "at most one error line per cause per worker per this many seconds" },
  { name = "query_max_bytes", type = "int", default = 1024, min = 0, max = 4096, description = "query string bytes sent in a DecideRequest (the service takes at most 4096)" },
  { name = "body_max_bytes", type = "int", default = 16384, min = 0, max = 1048576, description = "identity routes: largest in-memory body parsed for identifier/password" },
  { name = "header_names_max", type = "int", default = 64, min = 0, max = 128, description = "header names sent in arrival order (the service takes at most 128)" },
  { name = "inspect_sample", type = "number", default = 0.05, min = 0, max = 1, description = "share of guarded JSON responses inspected where $verdict_inspect is auto and the request was decided without a call (cache, async, fail-open); a decided request follows the service's DecideResponse.inspect" },
  { name = "inspect_max_bytes", type = "int", default = 16384, min = 256, max = 1048576, description = "body bytes read from an inspected response, chunk by chunk as they pass (never buffered or delayed); the rest is not scanned" },
  { name = "gateway_id", type = "string", description = "diagnostic prefix of the id sent to the service (default: the host name; the worker pid and 16 random hex characters are always appended)" },
}

_M.location = {
  { name = "mode", type = "enum", default = "inline", values = { "inline", "async", "monitor", "off" }, description = "inline | async | monitor | off" },
  { name = "budget_ms", type = "int", default = 25, min = 1, max = 60000, description = "total deadline of the decide call (connect + send + read), ms" },
  { name = "fail", type = "enum", default = "open", values = { "open", "closed" }, description = "open | closed: what happens when the call fails" },
  { name = "priority", type = "enum", default = "normal", values = { "low", "normal" }, description = "low | normal: under overload (see shed_timeout_share) calls from low locations are skipped first" },
  { name = "fail_closed_status", type = "status", default = 503, min = 200, max = 599, description = "status sent when the call fails on a fail-closed location" },
  { name = "block_status", type = "status", default = 403, min = 200, max = 599, description = "status of a block" },
  { name = "block_body", type = "string", default = "", description = "body of a block (default: {\"error\":\"blocked\",\"request_id\":\"<id>\"})" },
  { name = "challenge_status", type = "status", default = 429, min = 200, max = 599, description = "status of a challenge: the proof-of-work page and the STATUS kind (API clients always get 429 with a challenge descriptor)" },
  { name = "challenge_retry_after", type = "int", default = 30, min = 0, max = 86400, description = "Retry-After seconds of a challenge" },
  { name = "challenge_url", type = "string", default = "", description = "when set, a challenge of the default kind is a 302 to this URL (the pre-clearance behaviour); empty = the proof-of-work challenge" },
  { name = "challenge_difficulty", type = "int", default = 16, min = 1, max = 32, description = "leading zero bits of SHA-256 a proof-of-work challenge asks for when the verdict names none; the page offers its no-JS fallback only up to this difficulty" },
  { name = "challenge_nojs_wait_s", type = "int", default = 5, min = 1, max = 120, description = "seconds the no-JS fallback makes a browser wait before its clearance (level 0)" },
  { name = "clearance_ttl_s", type = "int", default = 3600, min = 60, max = 604800, description = "lifetime of a clearance token when the verdict names none, s" },
  { name = "cleared", type = "enum", default = "async", values = { "async", "inline" }, description = "async | inline: a request with a valid clearance token is not waited on (async: cached verdicts apply, its metadata goes out after the response) or is still decided inline" },
  { name = "route_tag", type = "string", default = "", description = "tag sent as route_tag (e.g. login)" },
  { name = "identity_fields", type = "list", default = "", description = "comma list of body fields holding the identifier; empty = not an identity route" },
  { name = "password_field", type = "string", default = "password", description = "body field holding the password (sent only as HMAC)" },
  { name = "device_header", type = "header", default = "x-device-id", description = "request header carrying a device id" },
  { name = "session_cookie", type = "string", default = "sid", description = "cookie holding the session id" },
  { name = "api_key_header", type = "header", default = "x-api-key", description = "request header carrying an API key (hashed as the principal when no Authorization)" },
  { name = "inspect", type = "string", default = "auto", description = "auto | off | all | a share 0..1: which guarded JSON responses the gateway inspects for sensitive values (auto: as the service's verdict says, else inspect_sample)" },
  { name = "auth_result_header", type = "header", default = "", description = "upstream response header reported as the outcome's auth_result" },
}

return _M
