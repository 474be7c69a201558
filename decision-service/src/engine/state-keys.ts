// Every key a detector keeps state under in the store, built here and nowhere else. The store
// (and Redis, across restarts and across a fleet) knows state only by these strings: a key that
// changes is state lost, so each builder's output stays byte-for-byte what it is (a test pins
// them). State two detectors share has one builder (credential stuffing reads the identifiers
// enumeration marked).
//
// A key is "<detector>:<what>:<subject>". Most subjects are one of the request's identities as
// "<kind>:<value>" (Subject), so one key family counts per client, address, device and so on.

/** Who or what a key counts: one identity of the request, "<kind>:<value>". */
export type Subject = `${'ipfp' | 'ip' | 'sn' | 'dev' | 'ses' | 'pr' | 'hs' | 'fp' | 'id'}:${string}`;

export const subject = {
  /** One client: "<ip>|<fingerprint>" (OutcomeContext.client). */
  client: (client: string): Subject => `ipfp:${client}`,
  ip: (ip: string): Subject => `ip:${ip}`,
  subnet: (subnet: string): Subject => `sn:${subnet}`,
  device: (device: string): Subject => `dev:${device}`,
  session: (session: string): Subject => `ses:${session}`,
  principal: (principal: string): Subject => `pr:${principal}`,
  /** One tool: the hash of its sorted header names (OutcomeContext.headerSet). */
  headerSet: (headerSet: string): Subject => `hs:${headerSet}`,
  /** One browser build: User-Agent + language + encodings + client hints (OutcomeContext.fingerprint). */
  fingerprint: (fingerprint: string): Subject => `fp:${fingerprint}`,
  identifier: (identifierHash: string): Subject => `id:${identifierHash}`,
} as const;

/** missing-credentials.ts */
export const authzKeys = {
  /** Counter: 401 answers to requests carrying one token or API key (its principal) the site never accepted. */
  rejected: (s: Subject) => `az:401:${s}`,
  /** Mark: the site answered a request carrying this token or API key with a 2xx. */
  accepted: (s: Subject) => `az:ok:${s}`,
} as const;

/** sensitive-path.ts */
export const sensitivePathKeys = {
  /** Counter: probes from one address. */
  probes: (ip: string) => `sp:${ip}`,
} as const;

/** enumeration.ts */
export const enumerationKeys = {
  /** Distinct set: identifiers asked for. */
  identifiers: (s: Subject) => `en:i:${s}`,
  /** Distinct set: identifiers a client key was asked for by requests with a clean history of their own (enumeration.ts). */
  cleanIdentifiers: (s: Subject) => `en:ic:${s}`,
  /** Distinct set: identifiers asked for, over the slow window (sessions, devices; a client key by requests without a clean history). */
  slowIdentifiers: (s: Subject) => `en:is:${s}`,
  /** Counter: "no such account" answers. */
  notFound: (s: Subject) => `en:nf:${s}`,
  /** Counter: answered identity requests (what not-found answers are a share of). */
  requests: (s: Subject) => `en:req:${s}`,
  /** Counters: one route's answered requests and not-found answers; value: its learned not-found share. */
  routeRequests: (route: string) => `en:g:req:${route}`,
  routeNotFound: (route: string) => `en:g:nf:${route}`,
  routeBaseline: (route: string) => `en:g:base:${route}`,
  /** Distinct set: numbers asked for in one block of phone numbers. */
  numberBlock: (block: number) => `en:blk:${block}`,
  /** Counters, per route: answered requests without a password and without a history of their own, and their not-found answers. */
  unknownRequests: (route: string) => `en:u:all:${route}`,
  unknownNotFound: (route: string) => `en:u:nf:${route}`,
  /** Distinct set: identifiers named on identity routes by automation clients (HTTP libraries, headless browsers), site-wide. */
  automationIdentifiers: 'en:auto:ids',
  /** Mark: an identifier was enumerated (credential stuffing reads it too). */
  enumerated: (identifierHash: string) => `en:seen:${identifierHash}`,
} as const;

/** credential-stuffing.ts */
export const credentialStuffingKeys = {
  /** Counter: failed logins. */
  failures: (s: Subject) => `cs:f:${s}`,
  /** Counter: answered logins (what failures are a share of). */
  attempts: (s: Subject) => `cs:all:${s}`,
  /** Distinct set: identifiers a session or device tried to log in as (not the reset / SMS routes). */
  loginIdentifiers: (s: Subject) => `cs:li:${s}`,
  /** Counters: the failures and answered logins of a shared key (client, ip, subnet, header set) that came
   *  with a clean history of their own (credential-stuffing.ts, `clean`). */
  cleanFailures: (s: Subject) => `cs:fc:${s}`,
  cleanAttempts: (s: Subject) => `cs:allc:${s}`,
  /** Failures and answered logins over the slow window (sessions, devices; a client key by logins without a clean history). */
  slowFailures: (s: Subject) => `cs:fs:${s}`,
  slowAttempts: (s: Subject) => `cs:alls:${s}`,
  /** Mark: one client logged in successfully. */
  loggedIn: (client: string) => `cs:ok:${client}`,
  /** Distinct set and value: the accounts one client (address + headers) logged in as over the
   *  returning window, and when it first did (credential-stuffing.ts, `returning`). */
  clientAccounts: (client: string) => `cs:ca:${client}`,
  clientSince: (client: string) => `cs:cs:${client}`,
  /** Distinct set: identifiers one password hash failed for. */
  passwordIdentifiers: (passwordHash: string) => `cs:pw:${passwordHash}`,
  /** Counter: all logins of the service. */
  globalAttempts: 'cs:g:all',
  /** Counter: all failed logins of the service. */
  globalFailures: 'cs:g:fail',
  /** Value: the learned failure share outside spikes. */
  globalBaseline: 'cs:g:base',
  /** Counters: logins without a history of their own (no issued session, no device id, no earlier success), answered and failed. */
  unknownAttempts: 'cs:g:u:all',
  unknownFailures: 'cs:g:u:fail',
} as const;

/** traversal.ts */
export const traversalKeys = {
  /** Distinct set: objects read. */
  objects: (s: Subject) => `tv:o:${s}`,
  /** Distinct set: readers (principal, else session or device) of objects behind a client key. */
  readers: (s: Subject) => `tv:r:${s}`,
  /** Distinct set: ids of one objects_per_token route a token read. */
  routeObjects: (s: Subject, route: string) => `tv:ro:${s}:${route}`,
  /** Value: the last numeric object id read on one route. */
  lastObject: (s: Subject, route: string) => `tv:last:${s}:${route}`,
  /** Value: length of the current run of neighbouring object ids. */
  sequentialRun: (s: Subject) => `tv:run:${s}`,
  /** Counter: not-found and forbidden answers. */
  notFound: (s: Subject) => `tv:nf:${s}`,
  /** Counter: answered object reads (what not-found answers are a share of). */
  requests: (s: Subject) => `tv:req:${s}`,
  /** Counters: one route's reads by young principals and their not-found answers; value: the
   *  route's learned not-found share. */
  routeRequests: (route: string) => `tv:g:req:${route}`,
  routeNotFound: (route: string) => `tv:g:nf:${route}`,
  routeBaseline: (route: string) => `tv:g:base:${route}`,
  /** Mark: the principal's reads were evidence (fan-out, walk, not-found share) before it was established. */
  walked: (s: Subject) => `tv:w:${s}`,
} as const;

/** exfil.ts (issue 17): what responses gave away, as keyed hashes of values (never a value). */
export const exfilKeys = {
  /** Distinct set: unmasked sensitive values a key received (their keyed hashes). */
  values: (s: Subject) => `ex:v:${s}`,
  /** Counter: responses that brought the key at least one value new to it. */
  novel: (s: Subject) => `ex:n:${s}`,
  /** Distinct set: young principals whose responses brought `farm_novel` new values or more (an account farm). */
  youngHarvesters: 'ex:farm',
  /** Distinct set: clients that received one value (hex of its keyed hash): public values are popular. */
  receivers: (valueHex: string) => `ex:r:${valueHex}`,
} as const;

/**
 * promo-abuse.ts. "po:", not "pr:" (issue 14: "pr:" is the principal subject, and promo keys
 * under it read as "pr:c:pr:<principal>"); its precursor and fresh-account marks, once "pre:" and
 * "new:", are under it too. State under the old keys was lost with the change (at most an hour).
 */
export const promoAbuseKeys = {
  /** Value: when a promo page or info call (the precursor of a claim) was last seen, per identity. */
  precursor: (s: Subject) => `po:pre:${s}`,
  /** Mark: an account was just created from this client, device or session, or a session or device logged in to one. */
  freshAccount: (s: Subject) => `po:new:${s}`,
  /** Mark: this account (its identifier's keyed hash) was created within fresh_account_s. */
  freshIdentifier: (identifierHash: string) => `po:nid:${identifierHash}`,
  /** Counter: claims. */
  claims: (s: Subject) => `po:c:${s}`,
  /** Counter: claims from a device or session that just created an account, per address. */
  freshClaims: (s: Subject) => `po:fc:${s}`,
  /** Distinct set: accounts claiming from one device. */
  accountsPerDevice: (device: string) => `po:acct:${device}`,
  /** Distinct set: accounts claiming from one browser session (a browser's device: its cookie jar). */
  accountsPerSession: (session: string) => `po:acs:${session}`,
  /** Arrivals: claims of one fingerprint (timing). */
  claimArrivals: (fingerprint: string) => `po:t:${fingerprint}`,
} as const;

/** provenance.ts; read by promo-abuse.ts and traversal.ts (first seen) and credential-stuffing.ts (issued). */
export const provenanceKeys = {
  /** Value: when a session, device or account token was first seen (kept while it stays in use). */
  firstSeen: (s: Subject) => `ps:first:${s}`,
  /** Mark: a client (ip + fingerprint) loaded a page. */
  pageLoad: (client: string) => `ps:page:${client}`,
  /** Mark: the site issued this session (it came with a page load, or first with a GET). */
  issued: (session: string) => `ps:issued:${session}`,
} as const;

/** automation.ts */
export const automationKeys = {
  /** Arrivals: one client's requests (timing). */
  clientArrivals: (client: string) => `au:t:${client}`,
  /** Arrivals: one fingerprint's requests across addresses (timing). */
  fingerprintArrivals: (fingerprint: string) => `au:tf:${fingerprint}`,
  /** Mark: the client was seen machine-regular. */
  regularClient: (client: string) => `au:bot:c:${client}`,
  /** Mark: the client arrived within its browser build's machine-regular stream (evidence on the build). */
  regularByBuild: (client: string) => `au:bot:f:${client}`,
  /** Counter: requests (scraping volume). */
  requests: (client: string) => `au:r:${client}`,
  /** Distinct set: addresses a fingerprint's machine-regular stream came from (an uptime check's few, a rotating poller's many). */
  regularAddresses: (fingerprint: string) => `au:ra:${fingerprint}`,
} as const;

/** proven.ts: proven clients (DESIGN §4) and the proven population behind each key. */
export const provenKeys = {
  /** Mark: a session, principal or device with a successful login (or carrying a proven one). */
  loggedIn: (s: Subject) => `pv:ok:${s}`,
  /** Mark: that session, principal or device logged in to this account (identifier hash). */
  account: (s: Subject, identifierHash: string) => `pv:acct:${s}:${identifierHash}`,
  /** Mark: an account (identifier hash) was just created: logging in to it proves nothing yet. */
  youngAccount: (identifierHash: string) => `pv:new:${identifierHash}`,
  /** Mark: a login to this account (identifier hash) failed: no proof by its build for a while. */
  failedAccount: (identifierHash: string) => `pv:fail:${identifierHash}`,
  /** Mark: abuse seen from a session, principal or device: its proof is void while set. */
  abuse: (s: Subject) => `pv:bad:${s}`,
  /** Marks: a device was seen (long-lived) / is still younger than `device_clean_after_s`. */
  deviceKnown: (device: string) => `pv:dk:${device}`,
  deviceYoung: (device: string) => `pv:dy:${device}`,
  /** Distinct set: proven clients seen behind a key (ip, subnet, client, header set, fingerprint, device). */
  population: (s: Subject) => `pv:pop:${s}`,
  /** Distinct set: accounts (identifier hashes) that logged in successfully behind a key (ip,
   *  subnet, client, header set, fingerprint): the population of a key whose people carry no
   *  session or device of their own yet (a browser's first login). */
  accounts: (s: Subject) => `pv:acc:${s}`,
  /** Distinct set: accounts (identifier hashes) whose login the site answered behind a key, success or not. */
  tried: (s: Subject) => `pv:try:${s}`,
} as const;

/** engine.ts: challenges issued (clearance.abandoned_score) */
export const challengeKeys = {
  /** Counter: CHALLENGE verdicts to one client (ip + fingerprint) that came back without a clearance. */
  issued: (client: string) => `ch:n:${client}`,
} as const;
