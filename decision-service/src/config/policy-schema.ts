// The policy file's schema (YAML → this zod schema → compiled policy). Every field has a default
// where a safe one exists, and a description that becomes the error hint. policies/README.md
// documents the same fields for operators.

import { z } from 'zod';

export const ROUTE_CLASSES = ['public', 'protected', 'identity', 'promo', 'object', 'internal', 'static'] as const;
export type RouteClass = (typeof ROUTE_CLASSES)[number];

export const ACTIONS = ['allow', 'tag', 'challenge', 'block'] as const;
export type ActionName = (typeof ACTIONS)[number];

export const CACHE_KEY_TYPES = ['ip', 'subnet', 'device', 'session', 'principal'] as const;
export type CacheKeyType = (typeof CACHE_KEY_TYPES)[number];

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

const pathPattern = z
  .string()
  .startsWith('/', { message: 'a path pattern starts with "/" (e.g. "/api/orders/{id}" or "/static/**")' });

const cacheSpec = z
  .object({
    key: z.enum(CACHE_KEY_TYPES),
    ttl_s: z.number().int().min(1).max(86_400),
  })
  .strict();

const thresholds = z
  .object({
    tag: z.number().min(0).max(100).default(30),
    challenge: z.number().min(0).max(101).default(60),
    block: z.number().min(0).max(101).default(80),
  })
  .strict()
  .refine((t) => t.tag <= t.challenge && t.challenge <= t.block, {
    message: 'thresholds must satisfy tag <= challenge <= block (use 101 to disable an action)',
  });

export const routeSchema = z
  .object({
    name: z.string().min(1).regex(/^[a-z0-9_.-]+$/, 'use lower-case letters, digits, "_", "-" or "."'),
    class: z.enum(ROUTE_CLASSES),
    methods: z.array(z.enum(METHODS)).min(1).optional(),
    path: pathPattern,
    route_tag: z.string().optional(),
    auth: z.enum(['required', 'optional']).optional(),
    deprecated: z.boolean().default(false),
    /** Requests need a clearance of at least this level (else they are challenged at it); overrides
     *  clearance.require_level of the route's class. */
    clearance_level: z.number().int().min(0).max(32).optional(),
  })
  .strict();

export const CHALLENGE_KINDS = ['pow', 'page', 'status'] as const;
export type ChallengeKindName = (typeof CHALLENGE_KINDS)[number];
/** Leading zero bits of SHA-256 a proof-of-work challenge may ask (the gateway accepts 1..32). */
const difficulty = z.number().int().min(1).max(32);

/** A rule's own challenge: its kind and base difficulty (the policy's `challenge` otherwise). */
const ruleChallenge = z
  .object({
    kind: z.enum(CHALLENGE_KINDS).optional(),
    difficulty: difficulty.optional(),
  })
  .strict();

const detectorBase = {
  /** What this rule's challenges are (when it is the strongest reason of a CHALLENGE). */
  challenge: ruleChallenge.optional(),
  enabled: z.boolean().default(true),
  monitor: z.boolean().default(false),
  /** Enforce only this percentage of the rule's verdicts (by client); the rest run as monitor. */
  canary_percent: z.number().min(0).max(100).default(100),
};

const windowS = (d: number) => z.number().int().min(1).max(86_400).default(d);
const count = (d: number) => z.number().min(0).max(1_000_000).default(d);
const strength = (d: number) => z.number().min(0).max(100).default(d);

export const policySchema = z
  .object({
    version: z.string().min(1),
    internal_ranges: z.array(z.string()).default(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7']),
    ip_lists: z
      .object({
        allow: z.array(z.string()).default([]),
        deny: z.array(z.string()).default([]),
        deny_cache_ttl_s: z.number().int().min(0).max(86_400).default(300),
      })
      .strict()
      .prefault({}),
    routes: z.array(routeSchema).min(1),
    default_class: z.enum(ROUTE_CLASSES).default('protected'),
    thresholds: z.partialRecord(z.enum(ROUTE_CLASSES), thresholds).prefault({}),
    /** Challenges: pow = the gateway's proof-of-work page / API descriptor; page = the location's
     *  challenge URL; status = a plain status with Retry-After. Difficulty rises with the score
     *  from `difficulty` (at the challenge threshold) to `max_difficulty` (at the block threshold). */
    challenge: z
      .object({
        /** absent: the location's choice (the gateway's challenge page, or its challenge URL when set) */
        kind: z.enum(CHALLENGE_KINDS).optional(),
        difficulty: difficulty.default(16),
        max_difficulty: difficulty.default(20),
      })
      .strict()
      .refine((c) => c.difficulty <= c.max_difficulty, { message: 'difficulty must be at most max_difficulty' })
      .prefault({}),
    /** The clearance a solved challenge earns (the verdict_clearance token, checked at the gateway). */
    clearance: z
      .object({
        ttl_s: z.number().int().min(60).max(604_800).default(3600),
        /** Route classes that need a clearance of at least this level (e.g. identity: 18 during an
         *  attack): requests without one are challenged at that difficulty. */
        require_level: z.partialRecord(z.enum(ROUTE_CLASSES), z.number().int().min(0).max(32)).prefault({}),
        /** Evidence strength of a token that fails its check (tampered, another network or
         *  browser, retired key): what a failed challenge counts as. 0 = nothing. */
        invalid_score: z.number().min(0).max(100).default(20),
        /** Evidence strength of `clearance.abandoned`: a client that was challenged
         *  `abandoned_after` times within `abandoned_window_s` and still comes without a clearance
         *  (what an abandoned challenge counts as). 0 (the default) = nothing: app users whose app
         *  lacks the solver would otherwise end up blocked. */
        abandoned_score: z.number().min(0).max(100).default(0),
        abandoned_after: z.number().int().min(1).max(1000).default(5),
        abandoned_window_s: z.number().int().min(1).max(86_400).default(600),
      })
      .strict()
      .prefault({}),
    detectors: z
      .object({
        missing_credentials: z
          .object({ ...detectorBase, score: z.number().min(0).max(100).default(85) })
          .strict()
          .prefault({}),
        internal_route: z
          .object({ ...detectorBase, score: z.number().min(0).max(100).default(100) })
          .strict()
          .prefault({}),
        sensitive_path: z
          .object({
            ...detectorBase,
            score: z.number().min(0).max(100).default(100),
            patterns: z.array(z.string().min(1)).optional(),
            extra_patterns: z.array(z.string().min(1)).default([]),
            cache: cacheSpec.optional(),
            /** probes from one IP (10 min) before the block is cached at the gateway */
            cache_after: z.number().int().min(1).max(1000).default(5),
          })
          .strict()
          .prefault({}),
        injection: z
          .object({ ...detectorBase, score: strength(90), extra_patterns: z.array(z.string().min(1)).default([]) })
          .strict()
          .prefault({}),
        shadow_zombie: z
          .object({ ...detectorBase, shadow_score: strength(25), zombie_score: strength(35) })
          .strict()
          .prefault({}),
        enumeration: z
          .object({
            ...detectorBase,
            window_s: windowS(600),
            /** distinct identifiers per key (ip, subnet, fingerprint, device, session) on identity routes */
            identifiers_per_key: count(6),
            identifiers_per_key_max: count(20),
            /** "no such account" answers per key */
            not_found_per_key: count(4),
            not_found_per_key_max: count(12),
            /** distinct phone numbers in one block of `block_size` numbers, across all clients */
            block_size: z.number().int().min(10).max(1_000_000).default(1000),
            numbers_per_block: count(10),
            numbers_per_block_max: count(30),
            /** not-found answers per tool fingerprint (header order) across all IPs */
            not_found_per_toolprint: count(8),
            not_found_per_toolprint_max: count(25),
            score: strength(95),
            mark_identifiers_s: windowS(86_400),
            cache: cacheSpec.optional(),
          })
          .strict()
          .prefault({}),
        credential_stuffing: z
          .object({
            ...detectorBase,
            window_s: windowS(900),
            failures_per_key: count(5),
            failures_per_key_max: count(15),
            /** failures for one identifier across all keys: the account is under attack → challenge */
            failures_per_identifier: count(4),
            identifier_score: strength(70),
            /** distinct identifiers failing with one password hash (spraying) */
            identifiers_per_password: count(3),
            identifiers_per_password_max: count(8),
            spray_score: strength(65),
            /** logins for identifiers recently seen in enumeration, from a key with no history */
            enumerated_identifier_score: strength(45),
            deprecated_login_score: strength(50),
            /** global failure share above this multiple of its learned baseline = spike */
            global_spike_ratio: z.number().min(1).max(100).default(3),
            global_spike_score: strength(30),
            no_precursor_score: strength(20),
            /** failed logins per header set (one tool, across IPs), when they are most of its logins */
            failures_per_tool: count(10),
            failures_per_tool_max: count(30),
            automation_score: strength(45),
            mismatch_score: strength(35),
            score: strength(95),
          })
          .strict()
          .prefault({}),
        traversal: z
          .object({
            ...detectorBase,
            window_s: windowS(600),
            objects_per_key: count(15),
            objects_per_key_max: count(40),
            sequential_run: count(6),
            sequential_run_max: count(12),
            not_found_per_key: count(5),
            not_found_per_key_max: count(15),
            /** API-key principals (server-to-server integrations) get thresholds this many times higher */
            api_key_multiplier: z.number().min(1).max(1000).default(20),
            score: strength(95),
            cache: cacheSpec.optional(),
          })
          .strict()
          .prefault({}),
        promo_abuse: z
          .object({
            ...detectorBase,
            window_s: windowS(3600),
            claims_per_key: count(2),
            claims_per_key_max: count(6),
            accounts_per_device: count(2),
            accounts_per_device_max: count(5),
            no_precursor_score: strength(45),
            automation_score: strength(60),
            mismatch_score: strength(45),
            regular_timing_score: strength(40),
            /** claim from a client, device or account created in the last 30 minutes */
            fresh_account_score: strength(65),
            score: strength(95),
          })
          .strict()
          .prefault({}),
        automation: z
          .object({
            ...detectorBase,
            /** machine-regular timing: coefficient of variation of gaps below this, over >= min_requests */
            regular_cv: z.number().min(0).max(1).default(0.1),
            min_requests: count(8),
            regular_score: strength(70),
            scraping_per_key: count(120),
            scraping_window_s: windowS(600),
            scraping_score: strength(75),
            cache: cacheSpec.optional(),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type PolicyInput = z.input<typeof policySchema>;
export type PolicyDoc = z.output<typeof policySchema>;
export type RouteDoc = z.output<typeof routeSchema>;
