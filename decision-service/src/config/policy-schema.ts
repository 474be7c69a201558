// The policy file's schema (YAML → this zod schema → compiled policy). Every field has a default
// where a safe one exists, and a description that becomes the error hint. policies/README.md
// documents the same fields for operators.

import { z } from 'zod';
import { BUILTIN_SENSITIVE_KINDS, SENSITIVE_KIND } from '../wire/schema.ts';

export const ROUTE_CLASSES = ['public', 'protected', 'identity', 'promo', 'object', 'internal', 'static'] as const;
export type RouteClass = (typeof ROUTE_CLASSES)[number];

export const ACTIONS = ['allow', 'tag', 'challenge', 'block'] as const;
export type ActionName = (typeof ACTIONS)[number];

/** `client`: the address together with the browser's own headers (User-Agent, Accept-Language,
 *  Accept-Encoding, sec-ch-ua): a tool on a VPN exit or carrier NAT, without the people behind it. */
export const CACHE_KEY_TYPES = ['ip', 'subnet', 'client', 'device', 'session', 'principal'] as const;
export type CacheKeyType = (typeof CACHE_KEY_TYPES)[number];
/** Gateway cache keys: the policy's, and `target` (a request's exact path and query), which only
 *  rules whose evidence is the URL itself use (sensitive_path, injection: `target_ttl_s`). */
export type GatewayKeyType = CacheKeyType | 'target';

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

/** What can authenticate a request (routes[].credentials). */
export const CREDENTIAL_KINDS = ['authorization', 'api_key', 'session'] as const;
export type CredentialKind = (typeof CREDENTIAL_KINDS)[number];

export const routeSchema = z
  .object({
    name: z.string().min(1).regex(/^[a-z0-9_.-]+$/, 'use lower-case letters, digits, "_", "-" or "."'),
    class: z.enum(ROUTE_CLASSES),
    methods: z.array(z.enum(METHODS)).min(1).optional(),
    path: pathPattern,
    route_tag: z.string().optional(),
    auth: z.enum(['required', 'optional']).optional(),
    /** Which credentials authenticate the route (a request carrying none of them is missing
     *  credentials): an Authorization header, an API key header, a session cookie. Default: any. */
    credentials: z.array(z.enum(CREDENTIAL_KINDS)).min(1).optional(),
    deprecated: z.boolean().default(false),
    /** Requests need a clearance of at least this level (else they are challenged at it); overrides
     *  clearance.require_level of the route's class. */
    clearance_level: z.number().int().min(0).max(32).optional(),
    /** Issue 15: a decision here that found nothing marks the client clean (`clean_marks`), and
     *  the gateway stops waiting for its calls where `$verdict_cleared` is async. Default: true for
     *  public, protected, object and static routes; identity and promo routes are always inline. */
    inline_unless_cleared: z.boolean().optional(),
    /** Issue 14: an object route whose objects each belong to one user (a profile is its owner's):
     *  one token (principal, else session or device) reads at most this many distinct ids of it
     *  within traversal.owner_window_s; beyond that it is reading other people's
     *  (`bola.foreign_objects.*`). Unset: not counted per route. */
    objects_per_token: z.number().int().min(1).max(100_000).optional(),
  })
  .strict()
  .refine((r) => !(r.inline_unless_cleared && (r.class === 'identity' || r.class === 'promo')), {
    message: 'identity and promo routes are always decided inline: remove inline_unless_cleared or set it to false',
    path: ['inline_unless_cleared'],
  })
  .refine((r) => r.objects_per_token === undefined || (r.class === 'object' && r.path.includes('{id}')), {
    message: 'objects_per_token counts object ids: use it on an object route whose path has an {id} segment',
    path: ['objects_per_token'],
  });

/** Route classes whose routes are inline_unless_cleared unless they say otherwise. */
export const CLEAN_MARK_CLASSES: ReadonlySet<string> = new Set(['public', 'protected', 'object', 'static']);

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
const share = (d: number) => z.number().min(0).max(1).default(d);
/** How many times a key many people share (an IP, a /24) must exceed a one-client threshold. */
const multiplier = (d: number) => z.number().min(1).max(10_000).default(d);

/**
 * How a detector judges a key's share of login failures / not-found answers (engine/rates.ts): a
 * beta-binomial model of the key's legitimate users around the route's own learned baseline.
 */
const rateModel = (d: { baseline: number; floor: number; weight: number }) =>
  z
    .object({
      /** Pseudo-count of the beta prior: how many requests of evidence the route's baseline share
       *  is worth for every key (at least 2). Larger: a key needs more volume to stand out. */
      prior_weight: z.number().min(2).max(10_000).default(d.weight),
      /** The same for a key many people share (an IP, a /24, a header set): its share is an average
       *  over its people, so it strays far less from the baseline than one person's. */
      shared_prior_weight: z.number().min(2).max(100_000).default(200),
      /** A key's count is evidence only when its legitimate users would produce at least that
       *  many with at most this probability (the beta-binomial upper tail). */
      p_value: z.number().gt(0).max(1).default(0.001),
      /** The route's share before any was learned. */
      baseline: share(d.baseline),
      /** The learned baseline is never taken below this (a quiet hour must not make every failure stand out). */
      baseline_floor: share(d.floor),
      /** How far the learned baseline moves towards the recent share per window's worth of
       *  requests, however busy the route (0: never learn). */
      learning_rate: share(0.05),
      /** The baseline learns only from shares below this multiple of itself, so an attack's ramp-up
       *  (before it is a spike) cannot drag it along. */
      learn_below_ratio: z.number().min(1).max(100).default(2),
      /** Window of the route's recent share, and the requests it needs before it learns or spikes. */
      window_s: windowS(300),
      min_requests: count(20),
      /** How long a learned baseline is kept without traffic. */
      remember_s: windowS(86_400),
    })
    .strict()
    .prefault({});

/** Issue 17: the kinds the gateway finds without a pattern. */
const BUILTIN_KINDS: readonly string[] = BUILTIN_SENSITIVE_KINDS;
/** Most policy patterns (SensitiveFinding caps a response at 16 kinds). */
export const MAX_SENSITIVE_PATTERNS = 16;
const MAX_PATTERN_LENGTH = 256;

/** An operator-defined sensitive value the gateway looks for in responses (CONTRACT.md, "Response inspection"). */
export const sensitivePatternSchema = z
  .object({
    /** The kind findings report, in the inventory, metrics and events. */
    name: z
      .string()
      .regex(SENSITIVE_KIND, 'a pattern name is a lower-case letter, then up to 31 lower-case letters, digits or "_"')
      .refine((n) => !BUILTIN_KINDS.includes(n), { message: `the name of a built-in kind (${BUILTIN_KINDS.join(', ')}); those are found without a pattern, choose another name` }),
    /** A PCRE the gateway runs (ngx.re, "jo"), in the subset JavaScript reads the same way. */
    regex: z.string().min(1).max(MAX_PATTERN_LENGTH),
    /** A match that also matches this counts as masked. */
    masked_regex: z.string().min(1).max(MAX_PATTERN_LENGTH).optional(),
  })
  .strict();

const inspectShare = (d: number) => z.number().min(0).max(1).default(d);

/** Issue 17: which responses the gateways inspect, operator patterns, and when the inventory flags an endpoint. */
const responsesSchema = z
  .object({
    /** Share (0..1) of each route class's responses the service asks the gateway to inspect
     *  (DecideResponse.inspect, drawn per decision; INLINE and MONITOR answers only). */
    inspect: z
      .object({
        public: inspectShare(0.1),
        protected: inspectShare(0.25),
        identity: inspectShare(1),
        promo: inspectShare(1),
        object: inspectShare(1),
        internal: inspectShare(1),
        static: inspectShare(0),
      })
      .strict()
      .prefault({}),
    /** A URL (method, path, query) whose responses show everyone the same values, or none (a
     *  promo page, page 1 of a public list): once `after` inspected responses in a row agreed, it
     *  is *settled* and its responses are inspected at the `inspect` share (never more than its
     *  class's). A response that disagrees (other values, more records than requested) unsettles
     *  it. A customer's own profile or order, and a crawler's next page or next id, are URLs of
     *  their own that do not settle: the exfil detector sees every one (engine/settled-urls.ts). */
    settle: z
      .object({
        /** inspected responses in a row holding the same unmasked values (or none); 0 = never settle */
        after: z.number().int().min(0).max(1_000_000).default(20),
        /** share of a settled URL's responses inspected */
        inspect: inspectShare(0.05),
      })
      .strict()
      .prefault({}),
    /** Further sensitive kinds, sent to the gateways in outcome acknowledgements. */
    patterns: z.array(sensitivePatternSchema).max(MAX_SENSITIVE_PATTERNS).default([]),
    exposure: z
      .object({
        /** Responses an endpoint must have had inspected before any exposure flag. */
        min_responses: z.number().int().min(1).max(1_000_000).default(5),
        /** "returns unmasked <kind>": at least this share of the inspected responses held it unmasked. */
        unmasked_min_share: z.number().min(0).max(1).default(0.02),
        /** A response with more than this many times the request's own limit / page_size / per_page / size
         *  argument in records (JSON objects, nested ones included) returns more than requested. */
        records_over_requested: z.number().min(1).max(10_000).default(2),
        /** ...or, with no such argument, more than this many times the endpoint's usual records per response. */
        records_over_baseline: z.number().min(2).max(100_000).default(10),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

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
    /** Issue 15, no call when nothing is at stake: an inline decision on an inline_unless_cleared
     *  route that found nothing at all (no signal, not even a monitor-mode one) asks the gateway to
     *  cache an ALLOW under the client's principal (else session, else device) for `ttl_s`. While
     *  it lives, that client's requests to locations with `$verdict_cleared async` are not waited
     *  on: they pass, and their metadata is scored after the response (a block found then is
     *  cached as usual). Any evidence on the client drops the mark in the next OutcomeAck. */
    clean_marks: z
      .object({
        /** how long a mark lives; 0 (the default) = no marks: every guarded request is decided inline */
        ttl_s: z.number().int().min(0).max(3600).default(0),
      })
      .strict()
      .prefault({}),
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
    /** Proven clients and collateral-aware enforcement (DESIGN §4, "Punish evidence, not shared
     *  keys"). A request is proven when it carries a session, principal or device with an earlier
     *  successful login and no abuse since, a device with a clean history, or a valid clearance. */
    proven: z
      .object({
        /** false: every signal acts as its detector says, on any key (the behaviour before issue 14). */
        enabled: z.boolean().default(true),
        /** A key (ip, subnet, ip + fingerprint, device) with more than this many proven clients seen
         *  behind it is shared: its evidence never blocks and is never cached at the gateway. */
        shared_after: z.number().int().min(0).max(1_000_000).default(1),
        /** Such a key is a crowd only while at least this share of the distinct accounts whose
         *  logins were answered behind it logged in; below it (a crew's list with a few hits) its
         *  evidence challenges unproven requests alone and still never blocks (0 = always a crowd). */
        crowd_login_share: z.number().min(0).max(1).default(0.5),
        /** Window of the distinct proven clients counted behind each key. */
        population_window_s: windowS(3600),
        /** How long a successful login proves its session, device and account token. */
        login_ttl_s: z.number().int().min(60).max(2_592_000).default(86_400),
        /** A login to an account created (an identity route answered 201 for its identifier) less
         *  than this long ago proves nothing: farms register, log in and claim within minutes. */
        young_account_s: z.number().int().min(0).max(2_592_000).default(3600),
        /** Evidence on the request itself and its own narrow keys scoring at least this much is
         *  abuse: the proofs of its session, principal and device are void for `abuse_ttl_s`. */
        abuse_score: strength(60),
        abuse_ttl_s: z.number().int().min(60).max(2_592_000).default(86_400),
        /** A device first seen at least this long ago, with no abuse since, is proven (0 = never). */
        device_clean_after_s: z.number().int().min(0).max(2_592_000).default(86_400),
        /** How long a device is remembered after it was last seen (for its age). */
        device_memory_s: z.number().int().min(3600).max(31_536_000).default(2_592_000),
        /** Evidence on shared keys and global alarms adds to a BLOCK only when the request's own
         *  evidence (the request itself, its narrow keys) scores at least this much; else at most
         *  a CHALLENGE. */
        block_needs_own_score: strength(40),
        /** Evidence on a crowd's address (ip, subnet, ip + fingerprint with more than
         *  `shared_after` proven clients) never adds to a BLOCK: the request's own evidence must
         *  reach the block threshold alone (false: it adds from `block_needs_own_score` up). */
        crowd_never_blocks: z.boolean().default(true),
        /** Evidence on the request's address range (its /24, or /48) blocks only next to the
         *  request's own evidence off that range (its address, its narrow keys) scoring at least
         *  `block_needs_own_score`; alone it challenges. A VPN exit's customers share a hosting
         *  range with crews before any of them proved itself. */
        range_needs_own: z.boolean().default(true),
        /** Evidence on shared keys (a shared address or /24, a header set, a fingerprint, a
         *  password) counts for an unproven request only when its own evidence scores at least
         *  this much (0 = it counts alone, up to a challenge). Global alarms and accounts under
         *  attack are not gated. */
        shared_needs_own_score: strength(1),
        /** A login to an account that logged in successfully from the same client (address +
         *  browser build) within `login_ttl_s` is proven (its owner again, cookies or not). */
        client_account_proves: z.boolean().default(true),
        /** A login to an account that logged in successfully within `login_ttl_s` with the same
         *  browser build or tool (fingerprint) is proven, where at most `shared_after` proven
         *  clients and accounts use that build: a synthetic-login monitor checking from several
         *  addresses. Never a build a crowd shares. */
        build_account_proves: z.boolean().default(true),
        /** `cs.header_mismatch` and `promo.header_mismatch` (a header set unlike what its
         *  User-Agent's browser sends) do not fire on a browser build that more than `shared_after`
         *  proven clients send as it is: real browsers send it (an old Android browser without
         *  Accept-Language). */
        crowd_build_refutes_mismatch: z.boolean().default(true),
        /** A valid clearance token (a solved challenge) proves the request that carries it. */
        clearance_proves: z.boolean().default(true),
        /** Proven requests are not challenged for lacking `clearance.require_level`. */
        exempt_required_level: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    /** Issue 17: response inspection (what the API gives away). */
    responses: responsesSchema,
    detectors: z
      .object({
        missing_credentials: z
          .object({
            ...detectorBase,
            score: z.number().min(0).max(100).default(85),
            /** a token or API key the site never accepted (no 2xx within `rejected_window_s`) and
             *  answered 401 this many times within it: each further request carrying it scores
             *  `rejected_score` (`authz.rejected_token`). The site refuses that credential anyway, so
             *  stopping it at the gateway costs its holder nothing: a harvester whose account was
             *  never made, a token guesser; 0 = off */
            rejected_after: count(5),
            rejected_window_s: windowS(600),
            rejected_score: strength(85),
          })
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
            /** probes from one IP within `cache_window_s` before the block is cached at the gateway */
            cache_after: z.number().int().min(1).max(1000).default(5),
            cache_window_s: windowS(600),
            /** until then, the probed URL itself (path + query) is refused at the gateway for
             *  everyone for this long, also on async routes: a rotating scanner's next address asks
             *  for the same list of URLs; 0 = off */
            target_ttl_s: z.number().int().min(0).max(86_400).default(3600),
          })
          .strict()
          .prefault({}),
        injection: z
          .object({
            ...detectorBase,
            score: strength(90),
            extra_patterns: z.array(z.string().min(1)).default([]),
            /** the probed URL itself (path + query) is refused at the gateway for everyone for this
             *  long, also on async routes (a scanner replays its payload list from new addresses); 0 = off */
            target_ttl_s: z.number().int().min(0).max(86_400).default(3600),
          })
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
            /** the slow window: distinct identifiers one session or device named within
             *  `slow_window_s`, and one client (address + browser build) by requests without a clean
             *  history of their own (a low-and-slow crew names one account every few minutes per
             *  address, never six in ten); a person's browser names one or two; 0 = off */
            slow_window_s: z.number().int().min(0).max(86_400).default(10_800),
            slow_identifiers_per_key: count(8),
            slow_identifiers_per_key_max: count(16),
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
            /** not-found thresholds of an IP / a /24 (/64) subnet are this many times a client's */
            ip_multiplier: multiplier(4),
            subnet_multiplier: multiplier(8),
            /** number-locality strength for a client carrying a session or device id (less likely the walker) */
            known_client_factor: share(0.5),
            /** a key's not-found share judged against the route's learned not-found share (engine/rates.ts) */
            rate_model: rateModel({ baseline: 0.02, floor: 0.02, weight: 20 }),
            /** the route's recent not-found share above this multiple of its baseline (leaked lists name
             *  many accounts that do not exist): every unproven request with an identifier to it scores
             *  `unknown_surge_score` (`enum.unknown_identifier_surge`); 0 = off */
            unknown_surge_ratio: z.number().min(0).max(100).default(3),
            unknown_surge_score: strength(30),
            /** an HTTP library's or headless browser's User-Agent naming an account on an identity
             *  route without a password (reset, SMS; logins and registrations get
             *  `cs.automation_client`): `enum.automation_client`; 0 = off */
            automation_score: strength(45),
            /** HTTP libraries and headless browsers (not API keys) naming more than this many
             *  distinct accounts on identity routes across the whole site within `window_s`: each
             *  such request scores up to `automation_wave_score` as its own evidence
             *  (`enum.automation_wave`), block strength at `_max`. People never name an account from
             *  an HTTP library; a synthetic monitor names its one or two test accounts; a crew that
             *  rotates addresses and headers and pays every challenge names hundreds. 0 = off */
            /** requests without a password (resets, SMS) that bring no history of their own (no
             *  issued session, no device id, no earlier login from the client) answered "no such
             *  account" far above the route's learned share, as a slice (`rate_model`): from
             *  `unknown_not_found` such answers in `window_s` on, each request in that slice scores up
             *  to `unknown_wave_score` as its own evidence (`enum.unknown_wave`). People reset from a
             *  page that set their session, or from the app; 0 = off */
            unknown_not_found: count(10),
            unknown_not_found_max: count(30),
            unknown_wave_score: strength(45),
            automation_identifiers: count(20),
            automation_identifiers_max: count(60),
            automation_wave_score: strength(90),
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
            /** the slow window: failed logins of one session or device within `slow_window_s`, and of
             *  one client (address + browser build) by logins without a clean history of their own,
             *  when they are most of its logins (a low-and-slow crew fails once every few minutes per
             *  address); 0 = off */
            slow_window_s: z.number().int().min(0).max(86_400).default(10_800),
            slow_failures_per_key: count(8),
            slow_failures_per_key_max: count(20),
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
            /** logins without any history of their own (no issued session, no device id, no earlier
             *  success from the client) failing, as a slice of the route, far above its learned
             *  baseline (`rate_model`): from `unknown_failures` such failures in `window_s` on, each
             *  such login scores up to `unknown_wave_score` as its own evidence (`cs.unknown_login_wave`),
             *  so a crew that pays every challenge is blocked; people log in from a page that set
             *  their session, or from an app with its device id; 0 = off */
            unknown_failures: count(10),
            unknown_failures_max: count(30),
            unknown_wave_score: strength(45),
            /** failed logins per header set (one tool, across IPs), when they are most of its logins */
            failures_per_tool: count(10),
            failures_per_tool_max: count(30),
            automation_score: strength(45),
            mismatch_score: strength(35),
            /** failure thresholds of an IP / a /24 (/64) subnet are this many times a client's */
            ip_multiplier: multiplier(8),
            subnet_multiplier: multiplier(16),
            /** a key's failure share judged against the login failure share the route learned outside
             *  spikes (engine/rates.ts); its window, min_requests, baseline and floor also define the spike */
            rate_model: rateModel({ baseline: 0.15, floor: 0.05, weight: 10 }),
            /** how long a successful login from a client counts as its history (no `cs.no_precursor`, spray, ...) */
            login_memory_s: windowS(86_400),
            /** a client (address + its own headers) without cookies that logs in to one account again
             *  and again (a synthetic monitor, a script of the account's owner) has a history of its
             *  own once it comes back at least `returning_after_s` after its first login and has named
             *  no other account within `returning_window_s`: no `cs.no_precursor`,
             *  `cs.unknown_login_wave`, spray or alarm of the no-history slice for it; 0 = off */
            returning_after_s: z.number().int().min(0).max(86_400).default(600),
            returning_window_s: windowS(10_800),
            /** a session or device that failed a login and names another account (`cs.account_hopping`):
             *  a person retries their own account; a crew's browser profile goes down its list */
            account_hopping_score: strength(40),
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
            /** an account farm behind one address: objects and not-found answers are also counted per
             *  client (address + browser build), with thresholds this many times a principal's (a
             *  crowd of proven customers sharing the client key only adds to other evidence, engine);
             *  0 = principals, sessions and devices only */
            client_multiplier: z.number().min(0).max(1000).default(2),
            /** on the client key, each distinct reader (principal, else session or device) behind it
             *  may read this many objects before they count: a carrier NAT's customers reading their
             *  own profiles and orders add none, a farm's tokens reading dozens each add the rest;
             *  0 = every object counts */
            objects_per_reader: z.number().min(0).max(1000).default(3),
            /** the window of routes[].objects_per_token: how long one token's distinct ids of such a
             *  route are remembered (a harvester through a valid token reads one every few minutes) */
            owner_window_s: windowS(86_400),
            /** API-key principals (server-to-server integrations) get thresholds this many times higher */
            api_key_multiplier: z.number().min(1).max(1000).default(20),
            /** the largest id step that still continues a sequential walk */
            sequential_step: z.number().int().min(1).max(1_000_000).default(2),
            /** how long a walk's last id and run length are remembered between two reads (a slow
             *  walker reads one id every few minutes; the run breaks on any step that is not sequential) */
            walk_memory_s: windowS(10_800),
            /** a key's not-found / forbidden share judged against the route's learned share (engine/rates.ts) */
            rate_model: rateModel({ baseline: 0.02, floor: 0.02, weight: 50 }),
            /** a principal first seen less than this long ago is young (an account farm's fresh tokens) */
            young_principal_s: windowS(1800),
            /** the route's recent not-found share among young principals above this multiple of its
             *  baseline: every young principal's read of it scores `young_surge_score`
             *  (`bola.young_not_found_surge`); 0 = off */
            young_surge_ratio: z.number().min(0).max(100).default(3),
            young_surge_score: strength(30),
            /** a principal first seen at least this long ago, whose reads were never evidence and
             *  mostly found their objects, is established (a partner's sync job); 0 = never */
            established_after_s: z.number().int().min(0).max(2_592_000).default(300),
            /** an established principal's not-found / forbidden share stays at most this */
            established_not_found_share: z.number().min(0).max(1).default(0.05),
            /** an established principal's object fan-out thresholds are this many times higher */
            established_multiplier: z.number().min(1).max(1000).default(10),
            score: strength(95),
            cache: cacheSpec.optional(),
          })
          .strict()
          .prefault({}),
        /** Data harvesting seen in responses (issue 17): distinct unmasked sensitive values a key
         *  received, and how many of its responses brought one new to it (engine/detectors/exfil.ts). */
        exfil: z
          .object({
            ...detectorBase,
            window_s: windowS(3600),
            /** distinct unmasked values (phones, ID numbers, cards, e-mails) received per key */
            values_per_key: count(10),
            /** responses that brought at least one value new to the key ("novel responses"): the
             *  signal reaches challenge strength at this many, block strength at `_max` */
            novel_responses: count(5),
            novel_responses_max: count(10),
            /** a value received by more than this many distinct clients is public (a winners list, a
             *  support line): it no longer counts as new to anyone; 0 = never */
            popular_after: z.number().int().min(0).max(10_000).default(3),
            /** thresholds this many times higher for a client (IP + fingerprint); 0 = clients are not
             *  counted (the default: an app behind a carrier NAT is a thousand people on one client
             *  key, each seeing their own data, and a harvester rotates addresses anyway) */
            client_multiplier: z.number().min(0).max(10_000).default(0),
            /** thresholds this many times higher for API-key principals (a partner's job reads
             *  customers' orders by design) */
            api_key_multiplier: multiplier(100),
            /** an account farm, each token under every per-key bar: young principals (first seen
             *  less than traversal.young_principal_s ago) whose responses brought `farm_novel` or more
             *  new values. Once `farm_principals` of them are seen within `window_s`, each such young
             *  principal scores from challenge strength at `farm_novel` to block strength at
             *  `farm_novel_max` novel responses (`exfil.young_harvesters`). People read their own
             *  profile and orders: one phone number, new once. 0 = off */
            farm_principals: count(5),
            farm_novel: count(3),
            farm_novel_max: count(6),
            /** route classes whose responses are counted (their requests are remembered until the outcome) */
            route_classes: z.array(z.enum(ROUTE_CLASSES)).min(1).default(['object', 'protected', 'promo']),
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
            /** claims by accounts the claiming device or browser profile created within
             *  `fresh_account_s`, per address, at this many times the per-key thresholds
             *  (`promo.fresh_claims.ip`: an account farm's exits); 0 = off */
            ip_multiplier: z.number().min(0).max(1000).default(3),
            accounts_per_device: count(2),
            accounts_per_device_max: count(5),
            no_precursor_score: strength(45),
            automation_score: strength(60),
            mismatch_score: strength(45),
            regular_timing_score: strength(40),
            /** claim from a client, device or session that created an account within `fresh_account_s` */
            fresh_account_score: strength(65),
            /** how long an account counts as new here: as long as a login to it proves nothing
             *  (`proven.young_account_s`, an hour), so that no account is too old to be fresh and
             *  too young to be proven at once */
            fresh_account_s: windowS(3600),
            /** how long a promo page view or info call counts as the precursor of a claim */
            precursor_s: windowS(1800),
            /** GET paths of public routes matching this (case-insensitive) are promo pages too */
            precursor_pattern: z.string().min(1).default('promo'),
            /** machine-regular claims: at least this many gaps between one fingerprint's claims
             *  (the store's ring holds 8) with a coefficient of variation below `regular_cv`. People
             *  claiming on one build are a Poisson stream: its cv falls below 0.15 over 4 gaps 0.5%
             *  of the time, over 8 gaps 0.002% (a build's first claims of a sale) */
            regular_min_claims: z.number().int().min(2).max(8).default(8),
            regular_cv: share(0.15),
            /** a claim less than this many seconds after its precursor: the page was fetched, not read
             *  (`promo.hollow_precursor`) */
            hollow_precursor_s: z.number().min(0).max(3600).default(2),
            hollow_precursor_score: strength(35),
            /** a claim that is the first request of its account token: nothing done between the login and
             *  the claim (`promo.first_action_claim`) */
            first_action_claim_score: strength(35),
            /** a claim from a device first seen less than `new_device_s` ago (`promo.new_device`) */
            new_device_s: windowS(300),
            new_device_score: strength(25),
            /** a claim whose promo evidence only says its customer is new (`promo.fresh_account`,
             *  `promo.new_device`, `promo.fresh_claims.ip`), maybe on an unusual browser
             *  (`promo.header_mismatch`), scores at most this together: a sale's newcomers sign up,
             *  on new devices and old phones, behind shared addresses, and claim. A farm's
             *  behaviour (first action the claim, hollow or no precursor, claims or accounts per
             *  device, automation, regular timing) lifts the cap */
            newness_alone_max: strength(50),
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
            /** public-page requests per client at which `bot.scraping_volume` reaches full strength
             *  (absent: twice `scraping_per_key`) */
            scraping_per_key_max: z.number().min(0).max(1_000_000).optional(),
            /** how long a client seen machine-regular stays marked (requests the gateway cache answers never reach the timing) */
            remember_s: windowS(1800),
            /** an HTTP-library or headless User-Agent on public pages: `bot.automation_client` after this many requests */
            automation_client_after: count(20),
            automation_client_score: strength(30),
            /** a machine-regular stream from at most `monitor_max_addresses` addresses, each of
             *  which calls at most once in this long on average, is an uptime check, not a bot
             *  (0 = no such exemption) */
            monitor_min_gap_s: z.number().min(0).max(86_400).default(30),
            monitor_max_addresses: count(4),
            cache: cacheSpec.optional(),
          })
          .strict()
          .prefault({}),
        /** Where sessions, devices and account tokens came from: when each was first seen, and
         *  whether the site served a page to the session before it posted. */
        provenance: z
          .object({
            ...detectorBase,
            /** how long a session, device or account token is remembered after it was last seen (its age) */
            remember_s: z.number().int().min(60).max(31_536_000).default(2_592_000),
            /** a page load from the same client (ip + fingerprint) this recent issues a session first seen on a POST */
            page_window_s: windowS(1800),
            /** a login, registration or claim with a session cookie the site never issued: first seen on
             *  such a POST with no page load before (`session.never_issued`) */
            never_issued_score: strength(35),
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
