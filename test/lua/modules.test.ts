// Lua module tests, run inside a real nginx (the modules need ngx.* and shared dicts): the
// breaker state machine and overload gauge, the subnet keys of the verdict cache (which must be
// exactly what the service's net/ip.ts computes, or subnet verdicts never hit), config.init
// validation, and log suppression. Each location runs one suite and answers JSON; the assertions
// are made here.
import t from 'tap';
import { startNginx, type NginxHandle } from '../../scripts/lib/nginx.ts';
import { subnetOf } from '../../decision-service/src/net/ip.ts';

const locations = `
    location = /subnet {
        content_by_lua_block {
            local cjson = require "cjson.safe"
            local cache = require "verdict.cache"
            ngx.req.read_body()
            local out = {}
            for i, ip in ipairs(cjson.decode(ngx.req.get_body_data())) do
                out[i] = cache.subnet(ip) or cjson.null
            end
            ngx.print(cjson.encode(out))
        }
    }
    location = /config {
        content_by_lua_block {
            local cjson = require "cjson.safe"
            local config = require "verdict.config"
            ngx.req.read_body()
            local saved = config.http
            local out = {}
            for i, opts in ipairs(cjson.decode(ngx.req.get_body_data())) do
                local ok, err = pcall(config.init, opts)
                out[i] = ok and "ok" or tostring(err)
            end
            config.http = saved
            ngx.print(cjson.encode(out))
        }
    }
    location = /breaker {
        content_by_lua_block {
            local cjson = require "cjson.safe"
            local config = require "verdict.config"
            local breaker = require "verdict.breaker"
            local d = ngx.shared.verdict_state
            local c = config.http
            local steps = {}
            local function step(name) steps[#steps + 1] = { name, breaker.is_open(), breaker.state_code() } end
            c.breaker_failures, c.breaker_min_span_ms = 3, 200
            d:flush_all()
            step("fresh")
            breaker.failure("timeout") breaker.failure("timeout") breaker.failure("timeout")
            step("3 quick failures")
            ngx.sleep(0.25) ngx.update_time()
            breaker.success()
            breaker.failure("timeout")
            step("an answer in between: a slow service")
            ngx.sleep(0.1) ngx.update_time()
            breaker.failure("timeout") breaker.failure("timeout")
            step("failures in a row, but the last answer is recent")
            ngx.sleep(0.15) ngx.update_time()
            breaker.failure("refused")
            step("nothing back for the span")
            d:flush_all()
            c.breaker_min_span_ms = 0
            breaker.failure("refused") breaker.failure("refused")
            step("span 0: 2 failures")
            breaker.failure("refused")
            step("span 0: 3 failures")
            d:flush_all()
            -- overload gauge: a window of calls, then the next window reads its share
            c.shed_timeout_share = 0.2
            for i = 1, 10 do breaker.observe(i <= 3) end
            local before = breaker.overloaded()
            ngx.sleep(1.01) ngx.update_time()
            breaker.observe(false)
            local after = breaker.overloaded()
            c.shed_timeout_share = 0
            local off = breaker.overloaded()
            c.shed_timeout_share = 0.2
            ngx.sleep(2.01) ngx.update_time()
            local stale = breaker.overloaded()
            ngx.print(cjson.encode({ steps = steps, overload = { before, after, off, stale } }))
        }
    }
    location = /log {
        content_by_lua_block {
            local cjson = require "cjson.safe"
            local log = require "verdict.log"
            log.set_interval(0.3)
            local out = {}
            for i = 1, 4 do out[#out + 1] = log.log(ngx.WARN, "suite-a", "line ", i) end
            out[#out + 1] = log.log(ngx.WARN, "suite-b", "other cause")
            ngx.sleep(0.35) ngx.update_time()
            out[#out + 1] = log.log(ngx.WARN, "suite-a", "after the interval")
            log.set_interval(5)
            ngx.print(cjson.encode(out))
        }
    }`;

let nginx: NginxHandle;
t.before(async () => {
  nginx = await startNginx({ upstream: '127.0.0.1:9', service: '127.0.0.1:9', locations, init: { outcomes_enabled: false } });
});
t.teardown(async () => { await nginx?.stop(); });

async function post(path: string, body: unknown): Promise<unknown> {
  const r = await fetch(`${nginx.url}${path}`, { method: 'POST', body: JSON.stringify(body) });
  if (r.status !== 200) throw new Error(`${path}: ${r.status} ${await r.text()}\n${nginx.errorLog().slice(-2000)}`);
  return r.json();
}

t.test('cache.subnet equals net/ip.ts subnetOf for IPv4 and IPv6 forms', async (t) => {
  const ips = [
    '1.2.3.4', '10.0.0.255', '192.168.1.1', '255.255.255.255', '0.0.0.0',
    '2001:db8::1', '2001:0db8:0000:0001:0000:0000:0000:0001', '2001:DB8:0:1::5', 'fe80::1', '::1', '::',
    '2001:db8:85a3:8d3:1319:8a2e:370:7348', '2001:db8:0:0:1::', '::ffff:1.2.3.4', '2001:db8::',
    '2400:cb00:2048:1::c629:d7a2',
  ];
  const got = await post('/subnet', ips) as Array<string | null>;
  ips.forEach((ip, i) => {
    const want = subnetOf(ip);
    // the gateway answers nil where the service echoes the address back (not a subnet it keys)
    if (want === ip) t.equal(got[i], null, `${ip}: no subnet key`);
    else t.equal(got[i], want, `${ip} -> ${want}`);
  });
});

t.test('config.init validation names the option and the fix', async (t) => {
  const key = 'k'.repeat(32);
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ hmac_key: key }, /^ok$/],
    [{ hmac_key: key, pool_sise: 1 }, /unknown option "pool_sise"/],
    [{ hmac_key: key, pool_size: 0 }, /"pool_size" must be an integer between 1 and 10000/],
    [{ hmac_key: key, breaker_failures: 1.5 }, /"breaker_failures" must be an integer/],
    [{ hmac_key: key, shed_timeout_share: -0.1 }, /"shed_timeout_share" must be a number between 0 and 1/],
    [{ hmac_key: key, outcomes_enabled: 'yes' }, /"outcomes_enabled" must be true or false/],
    [{ hmac_key: key, service: 'http://127.0.0.1:9400' }, /takes no URL scheme/],
    [{ hmac_key: key, service: '10.1.2.3:9400' }, /not loopback: set secret_file/],
    [{ hmac_key: key, service: '10.1.2.3:9400', secret: 's'.repeat(32) }, /^ok$/],
    [{ hmac_key: key, service: '[::1]:9400' }, /^ok$/],
    [{ hmac_key: key, service: 'frame:unix:/run/v.sock, 127.0.0.1:9400' }, /^ok$/],
    [{ hmac_key: key, service: 'unix:rel.sock' }, /must be "unix:\/absolute\/path.sock"/],
    [{}, /"hmac_key" is required/],
  ];
  const got = await post('/config', cases.map(([o]) => o)) as string[];
  cases.forEach(([o, re], i) => t.match(got[i], re, JSON.stringify(o)));
});

t.test('breaker: opens on a dead service only, gauge sheds on timeouts', async (t) => {
  const r = await post('/breaker', {}) as { steps: Array<[string, boolean, number]>; overload: boolean[] };
  const open = Object.fromEntries(r.steps.map(([name, isOpen]) => [name, isOpen]));
  t.same(open, {
    fresh: false,
    '3 quick failures': false,
    'an answer in between: a slow service': false,
    'failures in a row, but the last answer is recent': false,
    'nothing back for the span': true,
    'span 0: 2 failures': false,
    'span 0: 3 failures': true,
  });
  t.equal(r.steps.find(([n]) => n === 'nothing back for the span')?.[2], 1, 'state code 1 while open');
  t.same(r.overload, [false, true, false, false], 'no share before a window ends; 30% ≥ 20% sheds; 0 = never; a silent window resets');
});

t.test('log: one line per cause per interval, then the count of suppressed lines', async (t) => {
  const r = await post('/log', {}) as boolean[];
  t.same(r, [true, false, false, false, true, true]);
  t.match(nginx.errorLog(), /verdict: after the interval \(3 similar messages suppressed\)/);
});
