// Policy loading: YAML → zod → compiled, frozen policy. Errors name the file, the path inside it
// and the fix; the engine only ever sees a CompiledPolicy.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { BUILTIN_SENSITIVE_KINDS, type SensitivePattern } from '../wire/schema.ts';
import { CidrSet, parseCidr, type Cidr } from '../net/ip.ts';
import {
  CLEAN_MARK_CLASSES,
  policySchema,
  ROUTE_CLASSES,
  type PolicyDoc,
  type RouteClass,
  type RouteDoc,
} from './policy-schema.ts';

export interface Thresholds {
  readonly tag: number;
  readonly challenge: number;
  readonly block: number;
}

export interface CompiledRoute {
  readonly name: string;
  readonly class: RouteClass;
  readonly methods: ReadonlySet<string> | undefined;
  readonly pattern: RegExp;
  readonly routeTag: string | undefined;
  readonly deprecated: boolean;
  /** Credentials required: explicit `auth`, else true for protected, object and internal. */
  readonly authRequired: boolean;
  /** Which credentials authenticate the route (`credentials`; all three when not given). */
  readonly credentials: { readonly authorization: boolean; readonly apiKey: boolean; readonly session: boolean };
  /** Index of the path segment holding the object id (`{id}`), or -1. */
  readonly idSegment: number;
  /** Clearance level the route requires (its own, else undefined: the class's). */
  readonly clearanceLevel: number | undefined;
  /** a clean decision here marks the client clean (`inline_unless_cleared`, `clean_marks`) */
  readonly inlineUnlessCleared: boolean;
  /** distinct ids of this route one token may read in traversal.owner_window_s (0: not counted) */
  readonly objectsPerToken: number;
}

/** The policy's `responses` section, compiled (issue 17). */
export interface CompiledResponses {
  /** Share of each route class's responses to inspect. */
  readonly inspect: Readonly<Record<RouteClass, number>>;
  readonly patterns: readonly SensitivePattern[];
  /** Short hash of `patterns` (OutcomeAck.patterns_version); never empty, also for no patterns. */
  readonly patternsVersion: string;
  /** The kinds the inventory counts: the built-in ones and the patterns' names. */
  readonly kinds: ReadonlySet<string>;
  readonly exposure: PolicyDoc['responses']['exposure'];
  /** When an endpoint counts as settled, and its share then (EndpointExposureStats.settled). */
  readonly settle: PolicyDoc['responses']['settle'];
}

export interface CompiledPolicy {
  readonly version: string;
  readonly source: string;
  readonly doc: PolicyDoc;
  readonly internal: CidrSet;
  readonly allowIps: CidrSet;
  readonly denyIps: CidrSet;
  readonly routes: readonly CompiledRoute[];
  readonly fallbackRoute: CompiledRoute;
  readonly thresholds: Readonly<Record<RouteClass, Thresholds>>;
  readonly sensitivePath: RegExp;
  readonly responses: CompiledResponses;
}

/** Paths scanners probe for; matched case-insensitively against the request path. */
export const DEFAULT_SENSITIVE_PATTERNS: readonly string[] = [
  '(^|/)\\.env(\\.|$|/)',
  '(^|/)\\.git(/|$)',
  '(^|/)\\.svn(/|$)',
  '(^|/)\\.hg(/|$)',
  '(^|/)\\.DS_Store$',
  '(^|/)\\.(aws|ssh|docker)(/|$)',
  '(^|/)(actuator|jolokia)(/|$)',
  '(^|/)(wp-admin|wp-login\\.php|xmlrpc\\.php|phpmyadmin|pma|adminer(\\.php)?)(/|$)',
  '(^|/)(server-status|server-info)$',
  '(^|/)(console|manager/html|admin-console|jmx-console|web-console)(/|$)',
  '(^|/)(swagger-ui(\\.html)?|swagger\\.json|openapi\\.json|api-docs|v[23]/api-docs)(/|$)',
  '\\.(bak|backup|old|orig|swp|sql|sql\\.gz|tar|tar\\.gz|tgz|zip|7z|rar|dump)$',
  '(^|/)(backup|backups|dump|db)(/|$)',
  '(^|/)(config\\.(php|json|yml|yaml)|web\\.config|wp-config\\.php|credentials|id_rsa)$',
  '(^|/)(etc/passwd|proc/self)',
  '\\.\\./',
  '%2e%2e',
  '(^|/)cgi-bin/',
  '(^|/)(shell|cmd|eval)\\.(php|jsp|aspx?)$',
];

const AUTH_REQUIRED_BY_DEFAULT: ReadonlySet<RouteClass> = new Set<RouteClass>(['protected', 'object', 'internal']);

const DEFAULT_THRESHOLDS: Thresholds = Object.freeze({ tag: 30, challenge: 60, block: 80 });

/** "/api/orders/{id}" → ^/api/orders/[^/]+$; "*" = one segment part; "**" = anything. */
export function compilePathPattern(pattern: string): { regex: RegExp; idSegment: number } {
  const segments = pattern.split('/');
  let idSegment = -1;
  const parts = segments.map((seg, i) => {
    if (seg === '**') return '.*';
    if (/^\{[a-z_][a-z0-9_]*\}$/i.test(seg)) {
      if (idSegment < 0) idSegment = i;
      return '[^/]+';
    }
    return seg
      .split('**')
      .map((s) => s.split('*').map((lit) => lit.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*'))
      .join('.*');
  });
  return { regex: new RegExp(`^${parts.join('/')}$`), idSegment };
}

function compileRoute(r: RouteDoc): CompiledRoute {
  const { regex, idSegment } = compilePathPattern(r.path);
  return Object.freeze({
    name: r.name,
    class: r.class,
    methods: r.methods ? new Set(r.methods) : undefined,
    pattern: regex,
    routeTag: r.route_tag,
    deprecated: r.deprecated,
    authRequired: r.auth ? r.auth === 'required' : AUTH_REQUIRED_BY_DEFAULT.has(r.class),
    credentials: Object.freeze({
      authorization: !r.credentials || r.credentials.includes('authorization'),
      apiKey: !r.credentials || r.credentials.includes('api_key'),
      session: !r.credentials || r.credentials.includes('session'),
    }),
    idSegment,
    clearanceLevel: r.clearance_level,
    inlineUnlessCleared: r.inline_unless_cleared ?? CLEAN_MARK_CLASSES.has(r.class),
    objectsPerToken: r.objects_per_token ?? 0,
  });
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(top level)';
}

function hintFor(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'unrecognized_keys':
      return `remove or rename ${issue.keys.map((k) => `"${k}"`).join(', ')} (see policies/README.md for the fields)`;
    case 'invalid_value':
      return `use one of: ${issue.values.map((v) => String(v)).join(', ')}`;
    case 'invalid_type':
      return `expected ${issue.expected}`;
    default:
      return issue.message;
  }
}

function cidrs(list: readonly string[], field: string, issues: string[]): Cidr[] {
  const out: Cidr[] = [];
  list.forEach((text, i) => {
    const c = parseCidr(text);
    if (c) out.push(c);
    else issues.push(`${field}[${i}]: "${text}" is not an IP or CIDR; write e.g. "10.0.0.0/8" or "2001:db8::/32"`);
  });
  return out;
}

/** Validates and compiles a parsed policy object. Throws ConfigError naming source + path + fix. */
export function compilePolicy(raw: unknown, source: string): CompiledPolicy {
  const parsed = policySchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      `invalid policy ${source}`,
      parsed.error.issues.map((i) => `${formatPath(i.path)}: ${i.message} — fix: ${hintFor(i)}`),
    );
  }
  const doc = parsed.data;
  const issues: string[] = [];
  const internal = cidrs(doc.internal_ranges, 'internal_ranges', issues);
  const allow = cidrs(doc.ip_lists.allow, 'ip_lists.allow', issues);
  const deny = cidrs(doc.ip_lists.deny, 'ip_lists.deny', issues);

  const patterns = [...(doc.detectors.sensitive_path.patterns ?? DEFAULT_SENSITIVE_PATTERNS), ...doc.detectors.sensitive_path.extra_patterns];
  let sensitivePath = /(?!)/;
  patterns.forEach((p, i) => {
    try {
      new RegExp(p, 'i');
    } catch (err) {
      issues.push(`detectors.sensitive_path.patterns[${i}]: ${(err as Error).message} — fix: write a valid JavaScript regular expression`);
    }
  });
  if (issues.length === 0 && patterns.length > 0) sensitivePath = new RegExp(patterns.map((p) => `(?:${p})`).join('|'), 'i');

  const responses = compileResponses(doc.responses, issues);

  const names = new Set<string>();
  doc.routes.forEach((r, i) => {
    if (names.has(r.name)) issues.push(`routes[${i}].name: "${r.name}" is used twice — fix: give each route a unique name`);
    names.add(r.name);
  });
  if (issues.length > 0) throw new ConfigError(`invalid policy ${source}`, issues);

  const thresholds = {} as Record<RouteClass, Thresholds>;
  for (const c of ROUTE_CLASSES) thresholds[c] = Object.freeze({ ...(doc.thresholds[c] ?? DEFAULT_THRESHOLDS) });

  const routes = doc.routes.map(compileRoute);
  return Object.freeze({
    version: doc.version,
    source,
    doc: deepFreeze(doc),
    internal: new CidrSet(internal),
    allowIps: new CidrSet(allow),
    denyIps: new CidrSet(deny),
    routes: Object.freeze(routes),
    fallbackRoute: compileRoute({ name: 'default', class: doc.default_class, path: '/**', deprecated: false }),
    thresholds: Object.freeze(thresholds),
    sensitivePath,
    responses,
  });
}

/** Letters PCRE reads as escapes of its own, which JavaScript without the 'u' flag takes as plain letters. */
const PCRE_ONLY_ESCAPES = new Set('AGKQEZzhHRvVNXCpPeaoguLlU');

/** The first backslash escape PCRE reads differently from JavaScript ("\\A", "\\x{"), or undefined. */
function pcreOnlyEscape(source: string): string | undefined {
  for (let i = 0; i < source.length - 1; i++) {
    if (source[i] !== '\\') continue;
    const c = source[i + 1] as string;
    if (PCRE_ONLY_ESCAPES.has(c)) return `\\${c}`;
    if (c === 'x' && source[i + 2] === '{') return '\\x{';
    i++; // the escaped character is done with (also an escaped backslash)
  }
  return undefined;
}

/**
 * Why `source` would not mean the same to the gateway's PCRE (ngx.re, "jo") as to JavaScript, or
 * would hurt it; undefined when it is fine as far as cheap checks can tell. Compiling in JavaScript
 * (no 'u' flag) rejects PCRE-only syntax that is an error there: possessive quantifiers, atomic
 * groups, inline flags, comments, branch resets.
 */
export function patternProblem(source: string): string | undefined {
  let re: RegExp;
  try {
    re = new RegExp(source);
  } catch (err) {
    return `${(err as Error).message} — fix: write a regular expression that PCRE and JavaScript both read (no possessive quantifiers, atomic groups or inline flags)`;
  }
  const escape = pcreOnlyEscape(source);
  if (escape) return `"${escape}" means something else to PCRE than to JavaScript — fix: use only \\d \\D \\w \\W \\s \\S \\b \\B \\t \\n \\r \\f, \\xHH, back-references and escaped punctuation`;
  if (/\[:[a-z]+:\]/.test(source)) return 'a POSIX class ([:alpha:]) means something else to JavaScript — fix: write the characters out ([A-Za-z])';
  if (/\(\?<[=!]/.test(source)) return 'a lookbehind (PCRE allows only fixed-length ones) — fix: match the context instead';
  if (/\{,/.test(source)) return '"{,n}" is a quantifier to recent PCRE and literal text to JavaScript — fix: write {0,n}';
  if (/\((?:\?:)?(?:\\.|\[[^\]]*\]|[^()\\[])[+*]\)[+*{]/.test(source)) return 'a nested quantifier such as (a+)+ can make the gateway backtrack for a long time on one response — fix: quantify once';
  if (re.test('')) return 'it matches the empty string — fix: make it require at least one character';
  return undefined;
}

function compileResponses(r: PolicyDoc['responses'], issues: string[]): CompiledResponses {
  const seen = new Set<string>();
  r.patterns.forEach((p, i) => {
    if (seen.has(p.name)) issues.push(`responses.patterns[${i}].name: "${p.name}" is used twice — fix: give each pattern a unique name`);
    seen.add(p.name);
    const bad = patternProblem(p.regex);
    if (bad) issues.push(`responses.patterns[${i}].regex: ${bad}`);
    const badMasked = p.masked_regex === undefined ? undefined : patternProblem(p.masked_regex);
    if (badMasked) issues.push(`responses.patterns[${i}].masked_regex: ${badMasked}`);
  });
  const patterns = r.patterns.map((p) => Object.freeze(p.masked_regex === undefined ? { name: p.name, regex: p.regex } : { name: p.name, regex: p.regex, masked_regex: p.masked_regex }));
  // the same list always hashes the same, whatever else changed in the policy
  const patternsVersion = createHash('sha256').update(JSON.stringify(patterns.map((p) => [p.name, p.regex, p.masked_regex ?? '']))).digest('hex').slice(0, 12);
  return Object.freeze({
    inspect: Object.freeze({ ...r.inspect }),
    patterns: Object.freeze(patterns),
    patternsVersion,
    kinds: new Set([...BUILTIN_SENSITIVE_KINDS, ...patterns.map((p) => p.name)]),
    exposure: Object.freeze({ ...r.exposure }),
    settle: Object.freeze({ ...r.settle }),
  });
}

/** Reads, parses and compiles a YAML policy file. Throws ConfigError with file, path and fix. */
export function loadPolicyFile(file: string): CompiledPolicy {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read policy ${file}`, [`${(err as Error).message} — fix: set VERDICT_POLICY to a readable YAML file`]);
  }
  const yamlDoc = parseDocument(text, { prettyErrors: true });
  if (yamlDoc.errors.length > 0) {
    throw new ConfigError(`invalid YAML in policy ${file}`, yamlDoc.errors.map((e) => `${e.message.split('\n')[0]} — fix: correct the YAML syntax there`));
  }
  return compilePolicy(yamlDoc.toJS(), file);
}

/** First route whose tag, method and path match; the policy's default class otherwise. */
export function matchRoute(policy: CompiledPolicy, method: string, path: string, routeTag: string): CompiledRoute {
  const routes = policy.routes;
  if (routeTag) {
    for (const r of routes) if (r.routeTag === routeTag) return r;
  }
  for (const r of routes) {
    if (r.methods && !r.methods.has(method)) continue;
    if (r.pattern.test(path)) return r;
  }
  return policy.fallbackRoute;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}
