// The gateway's options are declared once (gateway-plugin/spec/options.json). This test fails
// when any copy disagrees with it: the generated files (Lua option table, njs option table, the
// nginx map declarations), the settings tables of both READMEs, the service's input limits the
// bounds must stay within, and what the Lua config module does with each option inside nginx.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, startNginx, type NginxHandle } from '../../scripts/lib/nginx.ts';
import { LIST_LIMITS, MAX_OUTCOMES_PER_BATCH, STRING_LIMITS } from '../../decision-service/src/wire/schema.ts';
import { GATEWAY_DEFAULTS, gatewaySettings, withLocationOptions } from '../../decision-service/src/gateway/settings.ts';
import { generatedFiles, loadSpec, specProblems, type OptionSpec } from '../../gateway-plugin/spec/render.ts';

const spec = loadSpec();
const byName = (list: readonly OptionSpec[], name: string): OptionSpec => {
  const o = list.find((x) => x.name === name);
  if (!o) throw new Error(`no option ${name} in the spec`);
  return o;
};
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

t.test('the spec is well-formed', async (t) => {
  t.same(specProblems(spec), []);
});

t.test('generated files are what the spec generates (else: npx tsx gateway-plugin/spec/generate.ts)', async (t) => {
  for (const f of generatedFiles(spec)) {
    t.ok(readFileSync(join(repoRoot, f.path), 'utf8') === f.text, `${f.path} is up to date`);
  }
});

t.test('bounds stay within what the decision service accepts', async (t) => {
  // a value above these would make the service refuse every request: fail-open everywhere
  t.ok(byName(spec.http, 'query_max_bytes').max! <= STRING_LIMITS.query, 'query_max_bytes');
  t.ok(byName(spec.http, 'header_names_max').max! <= LIST_LIMITS.header_names[0], 'header_names_max');
  t.ok(byName(spec.http, 'outcome_batch_size').max! <= MAX_OUTCOMES_PER_BATCH, 'outcome_batch_size');
});

t.test('the TypeScript reference (decision-service/src/gateway/settings.ts) has the spec defaults', async (t) => {
  for (const [key, value] of Object.entries(GATEWAY_DEFAULTS)) {
    const name = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    const o = [...spec.http, ...spec.location].find((x) => x.name === name);
    if (!o) { t.fail(`${key}: no option ${name} in the spec`); continue; }
    t.same(value, o.type === 'list' ? [] : o.default, `${key} = ${name}'s default`);
  }
});

t.test('the TypeScript reference parses location settings within the spec\'s bounds and values', async (t) => {
  const base = gatewaySettings('k'.repeat(32));
  const parsed = (name: string, raw: string) => {
    let bad = false;
    const out = withLocationOptions(base, { [name]: raw }, () => { bad = true; }) as unknown as Record<string, unknown>;
    return bad ? undefined : out;
  };
  const budget = byName(spec.location, 'budget_ms');
  t.equal(parsed('budget_ms', String(budget.min))?.budgetMs, budget.min, 'budget_ms: the spec minimum is accepted');
  t.equal(parsed('budget_ms', String(budget.max))?.budgetMs, budget.max, 'budget_ms: the spec maximum is accepted');
  t.equal(parsed('budget_ms', String(budget.min! - 1)), undefined, 'budget_ms: below the minimum is refused');
  t.equal(parsed('budget_ms', String(budget.max! + 1)), undefined, 'budget_ms: above the maximum is refused');
  for (const v of byName(spec.location, 'mode').values ?? []) t.equal(parsed('mode', v)?.mode, v, `mode ${v} is accepted`);
  t.equal(parsed('mode', 'sometimes'), undefined, 'a mode outside the spec is refused');
});

// ------------------------------------------------------------------ READMEs

/** The table rows ("| a | b | c |" -> cells) of the first table after `heading`. */
function tableAfter(file: string, heading: string): string[][] {
  const lines = readFileSync(join(repoRoot, file), 'utf8').split('\n');
  const start = lines.findIndex((l) => l.startsWith(heading));
  if (start < 0) throw new Error(`${file}: no heading "${heading}"`);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('#')) break;
    if (line.startsWith('|---')) continue;
    if (line.startsWith('|')) rows.push(line.split(' | ').map((c) => c.replace(/^\| |\s*\|$/g, '').trim()));
    else if (rows.length > 0) break;
  }
  return rows.slice(1); // the header row
}

/** How a README writes a location setting's default. */
function locationDefault(o: OptionSpec): string {
  if (o.default_means) return `\`${o.default_means}\``;
  return o.default === '' ? 'empty' : `\`${String(o.default)}\``;
}

/** name -> default cell of a table whose first cells list `$verdict_a` / `$verdict_b`. */
function locationRows(file: string, heading: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const [names, defaults] of tableAfter(file, heading)) {
    const ns = names!.split(' / ');
    const ds = ns.length > 1 ? defaults!.split(' / ') : [defaults!];
    ns.forEach((n, i) => found.set(n.replace(/^`\$verdict_|`$/g, ''), ds[i] ?? ''));
  }
  return found;
}

const locationNames = spec.location.map((o) => o.name).sort();
const httpNames = spec.http.map((o) => o.name).sort();

for (const [file, heading] of [['README.md', '### Per nginx location'], ['gateway-plugin/README.md', '## Per-location settings']] as const) {
  t.test(`${file}: the per-location table lists every setting with its default`, async (t) => {
    const rows = locationRows(file, heading);
    t.same([...rows.keys()].sort(), locationNames, 'the settings of the spec, no others');
    for (const o of spec.location) if (rows.has(o.name)) t.equal(rows.get(o.name), locationDefault(o), `$verdict_${o.name}`);
  });
}

t.test('gateway-plugin/README.md: the http-level table lists every option with its default', async (t) => {
  const rows = tableAfter('gateway-plugin/README.md', '## http-level options');
  const cells = new Map<string, string>();
  for (const [names, def] of rows) for (const n of names!.split(' / ')) cells.set(n.replace(/`/g, ''), def!);
  t.same([...cells.keys()].sort(), httpNames, 'the options of the spec, no others');
  for (const o of spec.http) {
    if (o.default === undefined || !cells.has(o.name)) continue;
    // config.init{} is Lua: strings are quoted
    const literal = typeof o.default === 'string' ? JSON.stringify(o.default) : String(o.default);
    t.ok(cells.get(o.name)!.startsWith(`\`${literal}\``), `${o.name}: \`${literal}\``);
  }
});

t.test('README.md: the http-level paragraph names every option with its default', async (t) => {
  const text = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const para = text.slice(text.indexOf('### nginx http level'), text.indexOf('### Decision service'));
  const named = new Set([...para.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!));
  t.same(httpNames.filter((n) => !named.has(n)), [], 'every option is named');
  for (const o of spec.http) {
    if (o.default === undefined) continue;
    t.match(para, new RegExp(`\`${o.name}\`\\s+\\(\`?${escape(String(o.default))}\\b`), `${o.name} (${String(o.default)})`);
  }
});

// ------------------------------------------------------------------ the Lua config module

/** Values a location can set for o, and what config.get returns for each. */
function locationCases(o: OptionSpec): { valid?: [string, unknown]; invalid?: string } {
  switch (o.type) {
    case 'enum': return { valid: [o.values!.at(-1)!.toUpperCase(), o.values!.at(-1)], invalid: 'bogus' };
    case 'int': case 'status': return { valid: [String(o.max), o.max], invalid: String(o.max! + 1) };
    case 'header': return { valid: ['X-Some_Header', 'x-some_header'], invalid: 'bad header!' };
    case 'list': return { valid: ['a, b ,c', ['a', 'b', 'c']] };
    default: return { valid: ['some value', 'some value'] };
  }
}

const echoSettings = `content_by_lua_block {
            local cjson = require "cjson.safe"
            local config = require "verdict.config"
            local out = {}
            for _, o in ipairs(require("verdict.spec").location) do out[o.name] = config.get(o.name) end
            ngx.print(cjson.encode(out))
        }`;
const sets = (pick: (o: OptionSpec) => string | undefined) => spec.location
  .map((o) => [o.name, pick(o)] as const).filter(([, v]) => v !== undefined)
  .map(([name, v]) => `set $verdict_${name} "${v!}";`).join('\n        ');

const locations = `
    location = /defaults { ${echoSettings} }
    location = /valid {
        ${sets((o) => locationCases(o).valid?.[0])}
        ${echoSettings}
    }
    location = /invalid {
        ${sets((o) => locationCases(o).invalid)}
        ${echoSettings}
    }
    location = /init {
        content_by_lua_block {
            local cjson = require "cjson.safe"
            local config = require "verdict.config"
            ngx.req.read_body()
            local saved = config.http
            local out = {}
            for i, opts in ipairs(cjson.decode(ngx.req.get_body_data())) do
                local ok, res = pcall(config.init, opts)
                if ok then
                    local c = {}
                    for _, o in ipairs(require("verdict.spec").http) do
                        local v = config.http[o.name]
                        c[o.name] = type(v) == "table" and v.label or v
                    end
                    c.mux = config.http.mux -- the transport "auto" resolved to
                    out[i] = c
                else
                    out[i] = tostring(res)
                end
            end
            config.http = saved
            ngx.print(cjson.encode(out))
        }
    }`;

let nginx: NginxHandle;
t.before(async () => {
  nginx = await startNginx({ upstream: '127.0.0.1:9', service: '127.0.0.1:9', locations, init: { outcomes_enabled: false } });
});
t.teardown(async () => { await nginx?.stop(); });

async function get(path: string, body?: unknown): Promise<unknown> {
  const r = await fetch(`${nginx.url}${path}`, body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) });
  if (r.status !== 200) throw new Error(`${path}: ${r.status} ${await r.text()}\n${nginx.errorLog().slice(-2000)}`);
  return r.json();
}

// Debian's lua-cjson writes an empty Lua table as {}
const list = (v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0 ? [] : v);

t.test('Lua: an unset setting is the spec default', async (t) => {
  const got = await get('/defaults') as Record<string, unknown>;
  t.same(Object.keys(got).sort(), locationNames);
  for (const o of spec.location) t.same(list(got[o.name]), o.type === 'list' ? [] : o.default, `$verdict_${o.name}`);
});

t.test('Lua: valid settings are parsed by their spec type', async (t) => {
  const got = await get('/valid') as Record<string, unknown>;
  for (const o of spec.location) t.same(got[o.name], locationCases(o).valid![1], `$verdict_${o.name}`);
});

t.test('Lua: an invalid setting falls back to the spec default with a warning quoting the spec', async (t) => {
  const got = await get('/invalid') as Record<string, unknown>;
  for (const o of spec.location) {
    const bad = locationCases(o).invalid;
    if (bad === undefined) continue;
    t.same(got[o.name], o.default, `$verdict_${o.name} "${bad}"`);
    t.match(nginx.errorLog(), `invalid $verdict_${o.name} value "${bad}" (${o.description}); using the default "${String(o.default)}"`);
  }
});

t.test('Lua: config.init takes the spec defaults and enforces its types and bounds', async (t) => {
  const key = 'k'.repeat(32);
  const cases: Array<[Record<string, unknown>, RegExp | Record<string, unknown>]> = [];
  const defaults = Object.fromEntries(spec.http.filter((o) => o.default !== undefined).map((o) => [o.name, o.default]));
  cases.push([{ hmac_key: key }, { ...defaults, hmac_key: key }]);
  for (const o of spec.http) {
    const opts = (v: unknown) => ({ hmac_key: key, [o.name]: v });
    const what = `option "${o.name}" must be`;
    if (o.type === 'int') {
      cases.push([opts(o.min), { [o.name]: o.min }], [opts(o.max), { [o.name]: o.max }]);
      const range = `${what} an integer between ${o.min} and ${o.max} (${o.description})`;
      cases.push([opts(o.min! - 1), new RegExp(escape(range))], [opts(o.max! + 1), new RegExp(escape(range))], [opts(o.min! + 0.5), new RegExp(escape(range))]);
    } else if (o.type === 'number') {
      cases.push([opts(o.max), { [o.name]: o.max }], [opts(o.max! + 0.5), new RegExp(escape(`${what} a number between ${o.min} and ${o.max}`))]);
    } else if (o.type === 'bool') {
      cases.push([opts(!o.default), { [o.name]: !o.default }], [opts('yes'), new RegExp(escape(`${what} true or false`))]);
    } else if (o.type === 'enum') {
      for (const v of o.values!) cases.push([{ ...opts(v), service: 'frame:127.0.0.1:9401' }, { [o.name]: v }]);
      cases.push([opts('bogus'), new RegExp(escape(`${what} one of ${o.values!.map((v) => `"${v}"`).join(', ')} (${o.description})`))]);
    } else if (o.type === 'keys') {
      const good = [{ id: 'k2', secret: 's'.repeat(32) }, { id: 'k1', secret: 't'.repeat(40) }];
      cases.push(
        [opts(good), { [o.name]: good }],
        [opts(''), new RegExp(escape(`option "${o.name}" must list at least one key`))],
        [opts([{ id: 'k1', secret: 'short' }]), /the secret must hold at least 32 characters/],
        [opts([{ id: 'bad id', secret: 's'.repeat(32) }]), /must be 1-16 of A-Z a-z 0-9 _ -/],
        [opts([good[0], good[0]]), /is listed twice/],
      );
    } else {
      cases.push([{ hmac_key: key, ...(o.name === 'hmac_key' ? {} : { [o.name]: '' }), ...(o.name === 'hmac_key' ? { hmac_key: '' } : {}) }, new RegExp(escape(`${what} a non-empty string`))]);
    }
  }
  cases.push([{ hmac_key: key, no_such_option: 1 }, new RegExp(escape(`unknown option "no_such_option"; known options: ${spec.http.map((o) => o.name).join(', ')}`))]);
  // the service address and secret rules (what the spec's types do not say)
  cases.push(
    [{ hmac_key: key, service: 'http://127.0.0.1:9400' }, /takes no URL scheme/],
    [{ hmac_key: key, service: '10.1.2.3:9400' }, /not loopback: set secret_file/],
    [{ hmac_key: key, service: '10.1.2.3:9400', secret: 's'.repeat(32) }, { hmac_key: key }],
    [{ hmac_key: key, service: '[::1]:9400' }, { hmac_key: key }],
    [{ hmac_key: key, service: 'frame:unix:/run/v.sock, 127.0.0.1:9400' }, { hmac_key: key }],
    [{ hmac_key: key, service: 'unix:rel.sock' }, /must be "unix:\/absolute\/path.sock"/],
    [{ hmac_key: key, transport: 'mux', service: 'frame:127.0.0.1:9401, 127.0.0.1:9400' }, /"transport" "mux" multiplexes the framed transport: write service = "frame:127.0.0.1:9400"/],
    // transport "auto": mux where every instance speaks frames, else the pool
    [{ hmac_key: key, service: 'frame:127.0.0.1:9401, frame:unix:/run/v.sock' }, { transport: 'auto', mux: true }],
    [{ hmac_key: key, service: 'frame:127.0.0.1:9401, 127.0.0.1:9400' }, { transport: 'auto', mux: false }],
    [{ hmac_key: key }, { transport: 'auto', mux: false }],
    [{ hmac_key: key, transport: 'pool', service: 'frame:127.0.0.1:9401' }, { transport: 'pool', mux: false }],
    [{}, /"hmac_key" is required/],
    [{ hmac_key: key, clearance_keys_file: '/nonexistent/keys' }, /"clearance_keys_file" cannot be read/],
    [{ hmac_key: key, challenge_template: '/nonexistent/page.html' }, /challenge_template \/nonexistent\/page.html cannot be read/],
    [{ hmac_key: key, challenge_template: '/etc/hostname' }, /lacks the placeholder \{\{NONCE\}\}/],
  );
  const got = await get('/init', cases.map(([o]) => o)) as Array<string | Record<string, unknown>>;
  cases.forEach(([opts, want], i) => {
    if (want instanceof RegExp) t.match(got[i], want, JSON.stringify(opts));
    else t.match(got[i], want, `${JSON.stringify(opts)} is accepted`);
  });
});
