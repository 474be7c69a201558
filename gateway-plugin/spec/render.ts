// The gateway's option spec (options.json) and what is generated from it: the Lua option table
// (lua/verdict/spec.lua), the njs option table (a marked block of njs/verdict.js) and the
// `$verdict_*` map declarations (marked blocks of nginx/verdict-http.conf and
// nginx/verdict-njs-http.conf). generate.ts writes them; test/spec/options.test.ts fails when a
// checked-in copy differs from what this renders.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const specDir = dirname(fileURLToPath(import.meta.url));
export const pluginDir = resolve(specDir, '..');

export type OptionType =
  | 'address' | 'secret' | 'keys' | 'string' | 'int' | 'number' | 'bool' // http level (keys: a list of {id, secret}; and enum)
  | 'enum' | 'status' | 'list' | 'header'; // location level (with int and string)

export interface OptionSpec {
  readonly name: string;
  readonly type: OptionType;
  /** absent: no default (a secret, or a value derived at start) */
  readonly default?: string | number | boolean;
  readonly min?: number;
  readonly max?: number;
  /** enum: the accepted values, lower-case */
  readonly values?: readonly string[];
  /** one sentence; Lua and njs quote it in validation messages */
  readonly description: string;
  /** what the default (empty or absent) stands for, where that is not the value itself */
  readonly default_means?: string;
  /** njs variant: a js_var it reads, "default" (fixed at the default), or why it has no effect */
  readonly njs?: string;
}

export interface GatewaySpec {
  readonly about: string;
  readonly http: readonly OptionSpec[];
  readonly location: readonly OptionSpec[];
}

const HTTP_TYPES: readonly OptionType[] = ['address', 'secret', 'keys', 'string', 'int', 'number', 'bool', 'enum'];
const LOCATION_TYPES: readonly OptionType[] = ['enum', 'int', 'status', 'string', 'list', 'header'];
const BOUNDED: readonly OptionType[] = ['int', 'number', 'status'];

export function loadSpec(): GatewaySpec {
  return JSON.parse(readFileSync(join(specDir, 'options.json'), 'utf8')) as GatewaySpec;
}

/** What is wrong with the spec itself (empty when it is well-formed). */
export function specProblems(spec: GatewaySpec): string[] {
  const problems: string[] = [];
  const check = (level: 'http' | 'location', o: OptionSpec, types: readonly OptionType[]) => {
    const at = `${level} option ${o.name}`;
    if (!/^[a-z][a-z0-9_]*$/.test(o.name)) problems.push(`${at}: name must be lower_snake_case`);
    if (!types.includes(o.type)) problems.push(`${at}: type ${o.type} is not one of ${types.join(', ')}`);
    if (!o.description) problems.push(`${at}: no description`);
    // Lua 5.1 string escapes and nginx config text: keep the spec ASCII
    if (!/^[\x20-\x7e]*$/.test(JSON.stringify(o))) problems.push(`${at}: non-ASCII or control characters`);
    const bounded = BOUNDED.includes(o.type);
    if (bounded !== (o.min !== undefined && o.max !== undefined)) problems.push(`${at}: min and max belong to (and are required by) int, number and status`);
    if (bounded && o.min! > o.max!) problems.push(`${at}: min > max`);
    if (o.type === 'enum' && !(o.values?.length && o.values.every((v) => v === v.toLowerCase()))) problems.push(`${at}: an enum lists its lower-case values`);
    if (o.type !== 'enum' && o.values) problems.push(`${at}: values belong to enums`);
    if (level === 'location' && o.default === undefined) problems.push(`${at}: a location setting has a default`);
    const d = o.default;
    if (d === undefined) return;
    if (['int', 'status'].includes(o.type) && !(Number.isInteger(d) && (d as number) >= o.min! && (d as number) <= o.max!)) problems.push(`${at}: default outside its bounds`);
    if (o.type === 'number' && !(typeof d === 'number' && d >= o.min! && d <= o.max!)) problems.push(`${at}: default outside its bounds`);
    if (o.type === 'bool' && typeof d !== 'boolean') problems.push(`${at}: default is not a boolean`);
    if (['address', 'secret', 'string', 'list', 'header', 'enum'].includes(o.type) && typeof d !== 'string') problems.push(`${at}: default is not a string`);
    if (o.type === 'enum' && !o.values?.includes(d as string)) problems.push(`${at}: default is not one of its values`);
    if (o.type === 'header' && !/^[a-z0-9_-]*$/.test(d as string)) problems.push(`${at}: a header default is a lower-case header name`);
  };
  const seen = new Set<string>();
  for (const [level, list, types] of [['http', spec.http, HTTP_TYPES], ['location', spec.location, LOCATION_TYPES]] as const) {
    for (const o of list) {
      if (seen.has(`${level}:${o.name}`)) problems.push(`${level} option ${o.name}: declared twice`);
      seen.add(`${level}:${o.name}`);
      check(level, o, types);
    }
  }
  return problems;
}

const GENERATOR = 'gateway-plugin/spec/generate.ts';
const SOURCE = 'gateway-plugin/spec/options.json';

// ------------------------------------------------------------------ Lua

// JSON string escapes are valid Lua escapes for printable ASCII (specProblems enforces ASCII)
const lua = (v: unknown): string => {
  if (Array.isArray(v)) return `{ ${v.map(lua).join(', ')} }`;
  return JSON.stringify(v);
};

function luaOption(o: OptionSpec): string {
  const fields: string[] = [`name = ${lua(o.name)}`, `type = ${lua(o.type)}`];
  if (o.default !== undefined) fields.push(`default = ${lua(o.default)}`);
  if (o.min !== undefined) fields.push(`min = ${lua(o.min)}`, `max = ${lua(o.max)}`);
  if (o.values) fields.push(`values = ${lua(o.values)}`);
  fields.push(`description = ${lua(o.description)}`);
  return `  { ${fields.join(', ')} },`;
}

/** lua/verdict/spec.lua: the option tables config.lua validates and reads by. */
export function renderLuaSpec(spec: GatewaySpec): string {
  return `-- Generated from ${SOURCE} by ${GENERATOR}:
-- edit the spec, then run the generator (test/spec/options.test.ts fails while they differ).
--
-- The gateway's options as data, read by verdict.config: http = the config.init{} options,
-- location = the $verdict_<name> settings. Fields: name, type, default (nil = none), min/max
-- (int, number, status), values (enum), description (quoted in validation messages).

local _M = { _VERSION = "0.1.0" }

_M.http = {
${spec.http.map(luaOption).join('\n')}
}

_M.location = {
${spec.location.map(luaOption).join('\n')}
}

return _M
`;
}

// ------------------------------------------------------------------ njs

const js = (v: unknown): string => (Array.isArray(v) ? `[${v.map(js).join(', ')}]` : JSON.stringify(v));

function njsOption(o: OptionSpec): string {
  const fields: string[] = [`type: ${js(o.type)}`, `default: ${js(o.default)}`];
  if (o.min !== undefined) fields.push(`min: ${js(o.min)}`, `max: ${js(o.max)}`);
  if (o.values) fields.push(`values: ${js(o.values)}`);
  fields.push(`description: ${js(o.description)}`);
  return `  ${o.name}: { ${fields.join(', ')} },`;
}

const JS_BEGIN = '// BEGIN generated';
const JS_END = '// END generated';
const CONF_BEGIN = '# BEGIN generated';
const CONF_END = '# END generated';

/** The marked block of njs/verdict.js: OPTIONS ($verdict_* settings) and HTTP (fixed options). */
export function renderNjsBlock(spec: GatewaySpec): string {
  const fixed = spec.http.filter((o) => o.njs === 'default');
  return `${JS_BEGIN} from ${SOURCE} by spec/generate.ts
// Per-location settings $verdict_<name>: the same names, types, bounds and defaults as the Lua
// script (lua/verdict/spec.lua). Their description is quoted in the invalid-value warning.
const OPTIONS = {
${spec.location.map(njsOption).join('\n')}
};
// http-level options njs cannot set (it has no init step): fixed at the Lua defaults.
const HTTP = { ${fixed.map((o) => `${o.name}: ${js(o.default)}`).join(', ')} };
${JS_END}`;
}

// ------------------------------------------------------------------ nginx

/** The marked block of the variant's http include: one empty-default map per setting. */
export function renderMapBlock(spec: GatewaySpec, variant: 'lua' | 'njs'): string {
  const width = Math.max(...spec.location.map((o) => o.name.length)) + '$verdict_'.length;
  const maps = spec.location.map((o) => `map "" ${`$verdict_${o.name}`.padEnd(width)} { default ""; }`);
  const inert = spec.location.filter((o) => o.njs?.startsWith('no effect'));
  const note = variant === 'njs' && inert.length > 0
    ? ['# Accepted, but without effect in njs:', ...inert.map((o) => `#   $verdict_${o.name}: ${o.njs!.replace(/^no effect \((.*)\)$/, '$1')}`)]
    : [];
  return [`${CONF_BEGIN} from ${SOURCE} by spec/generate.ts`, ...note, ...maps, CONF_END].join('\n');
}

/** text with the lines from the begin marker to the end marker replaced by block. */
export function replaceBlock(text: string, block: string, file: string): string {
  const [begin, end] = block.startsWith(JS_BEGIN) ? [JS_BEGIN, JS_END] : [CONF_BEGIN, CONF_END];
  const a = text.indexOf(`\n${begin}`);
  const b = text.indexOf(`\n${end}\n`, a);
  if (a < 0 || b < 0) throw new Error(`${file}: no "${begin}" ... "${end}" block to replace`);
  return text.slice(0, a + 1) + block + text.slice(b + 1 + end.length);
}

export interface GeneratedFile {
  /** relative to the repository root */
  readonly path: string;
  /** the whole file as it should be */
  readonly text: string;
}

/** Every file the spec generates or partly generates, with the content it should have. */
export function generatedFiles(spec: GatewaySpec = loadSpec()): GeneratedFile[] {
  const problems = specProblems(spec);
  if (problems.length > 0) throw new Error(`${SOURCE}:\n  ${problems.join('\n  ')}`);
  const rel = (p: string) => `gateway-plugin/${p}`;
  const read = (p: string) => readFileSync(join(pluginDir, p), 'utf8');
  const patch = (p: string, block: string) => ({ path: rel(p), text: replaceBlock(read(p), block, rel(p)) });
  return [
    { path: rel('lua/verdict/spec.lua'), text: renderLuaSpec(spec) },
    patch('njs/verdict.js', renderNjsBlock(spec)),
    patch('nginx/verdict-http.conf', renderMapBlock(spec, 'lua')),
    patch('nginx/verdict-njs-http.conf', renderMapBlock(spec, 'njs')),
  ];
}
