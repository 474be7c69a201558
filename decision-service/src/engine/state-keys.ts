// Every key a detector keeps state under in the store, built here and nowhere else. The store
// (and Redis, across restarts and across a fleet) knows state only by these strings: a key that
// changes is state lost, so each builder's output stays byte-for-byte what it is (a test pins
// them). State two detectors share has one builder (credential stuffing reads the identifiers
// enumeration marked).
//
// A key is "<detector>:<what>:<subject>". Most subjects are one of the request's identities as
// "<kind>:<value>" (Subject), so one key family counts per client, address, device and so on.

/** Who or what a key counts: one identity of the request, "<kind>:<value>". */
export type Subject = `${'ipfp' | 'ip' | 'sn' | 'dev' | 'ses' | 'pr' | 'hs' | 'id'}:${string}`;

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
  identifier: (identifierHash: string): Subject => `id:${identifierHash}`,
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
  /** Counter: "no such account" answers. */
  notFound: (s: Subject) => `en:nf:${s}`,
  /** Counter: identity requests (what a tool's not-found answers are a share of). */
  requests: (s: Subject) => `en:req:${s}`,
  /** Distinct set: numbers asked for in one block of phone numbers. */
  numberBlock: (block: number) => `en:blk:${block}`,
  /** Mark: an identifier was enumerated (credential stuffing reads it too). */
  enumerated: (identifierHash: string) => `en:seen:${identifierHash}`,
} as const;

/** credential-stuffing.ts */
export const credentialStuffingKeys = {
  /** Counter: failed logins. */
  failures: (s: Subject) => `cs:f:${s}`,
  /** Counter: logins (what a tool's failures are a share of). */
  attempts: (s: Subject) => `cs:all:${s}`,
  /** Mark: one client logged in successfully. */
  loggedIn: (client: string) => `cs:ok:${client}`,
  /** Distinct set: identifiers one password hash failed for. */
  passwordIdentifiers: (passwordHash: string) => `cs:pw:${passwordHash}`,
  /** Counter: all logins of the service. */
  globalAttempts: 'cs:g:all',
  /** Counter: all failed logins of the service. */
  globalFailures: 'cs:g:fail',
  /** Value: the learned failure share outside spikes. */
  globalBaseline: 'cs:g:base',
} as const;

/** traversal.ts */
export const traversalKeys = {
  /** Distinct set: objects read. */
  objects: (s: Subject) => `tv:o:${s}`,
  /** Value: the last numeric object id read on one route. */
  lastObject: (s: Subject, route: string) => `tv:last:${s}:${route}`,
  /** Value: length of the current run of neighbouring object ids. */
  sequentialRun: (s: Subject) => `tv:run:${s}`,
  /** Counter: not-found and forbidden answers. */
  notFound: (s: Subject) => `tv:nf:${s}`,
} as const;

/** promo-abuse.ts */
export const promoAbuseKeys = {
  /** Marks: a promo page was seen (the precursor of a claim), per identity. */
  precursorClient: (client: string) => `pre:c:${client}`,
  precursorSession: (session: string) => `pre:s:${session}`,
  precursorPrincipal: (principal: string) => `pre:p:${principal}`,
  precursorDevice: (device: string) => `pre:d:${device}`,
  /** Marks: an account was just created from this client or device. */
  freshAccountClient: (client: string) => `new:c:${client}`,
  freshAccountDevice: (device: string) => `new:d:${device}`,
  /** Counter: claims. */
  claims: (s: Subject) => `pr:c:${s}`,
  /** Distinct set: accounts claiming from one device. */
  accountsPerDevice: (device: string) => `pr:acct:${device}`,
  /** Arrivals: claims of one fingerprint (timing). */
  claimArrivals: (fingerprint: string) => `pr:t:${fingerprint}`,
} as const;

/** automation.ts */
export const automationKeys = {
  /** Arrivals: one client's requests (timing). */
  clientArrivals: (client: string) => `au:t:${client}`,
  /** Arrivals: one fingerprint's requests across addresses (timing). */
  fingerprintArrivals: (fingerprint: string) => `au:tf:${fingerprint}`,
  /** Mark: the client was seen machine-regular. */
  regularClient: (client: string) => `au:bot:c:${client}`,
  /** Counter: requests (scraping volume). */
  requests: (client: string) => `au:r:${client}`,
} as const;

/** engine.ts: challenges issued (clearance.abandoned_score) */
export const challengeKeys = {
  /** Counter: CHALLENGE verdicts to one client (ip + fingerprint) that came back without a clearance. */
  issued: (client: string) => `ch:n:${client}`,
} as const;
