// Proven clients and the proven population behind each key (DESIGN §4, "Punish evidence, not
// shared keys"; issue 14).
//
// A request is proven when it carries a session, principal or device with an earlier successful
// login and no abuse since, a device first seen long enough ago with no abuse since, a login to an
// account that logged in before from the same client (or with a browser build nobody else uses), or
// a valid clearance token. For every key many people may share (ip, subnet, ip + fingerprint, the
// header set, the fingerprint) windowed distinct sketches count the proven clients seen behind it,
// the accounts that logged in there (a browser's first visit carries no session or device id: the
// account is the person) and the accounts tried there; a key is a crowd's, contested (its accounts
// mostly fail: a crew's list with a few hits) or the client's own (`sharing`). The engine reads
// both to decide how far each signal may act (`role`): evidence on the request and its narrow keys
// acts fully; evidence on a crowd's key, a contested key or a global alarm at most challenges an
// unproven request and does not touch a proven one; a request proven by its login or its device's
// history never answers for evidence on its address, crowd or not (a clearance, which only shows
// that a challenge was paid, exempts from global alarms alone).
//
// All state is store state under provenKeys (marks and distinct sketches: Redis-mergeable).
// A session, device or principal is one client: it never counts as shared, and the accounts seen
// on one device are evidence (promo.accounts_per_device), not a population.

import type { GatewayKeyType, PolicyDoc } from '../config/policy-schema.ts';
import { hash32 } from '../state/distinct.ts';
import type { Store } from '../state/store.ts';
import { isLoginFailure, type OutcomeContext, type RequestFeatures, type Signal } from './signal.ts';
import { provenKeys as K, subject, type Subject } from './state-keys.ts';
import type { DecideRequest, Outcome } from '../wire/schema.ts';

type ProvenPolicy = PolicyDoc['proven'];

/** What proved a request. */
export const PROOF = { none: 0, login: 1, device: 2, clearance: 3 } as const;
export type Proof = (typeof PROOF)[keyof typeof PROOF];

/** Whether proven clients share a key (Proofs.sharing). */
export const SHARING = {
  /** At most `shared_after` proven clients: the key is the client's own. */
  none: 0,
  /** Many proven clients, and most accounts tried there logged in: a crowd of people. */
  crowd: 1,
  /** Many proven clients, but most accounts tried there failed: evidence on it raises scrutiny
   *  of unproven requests (an alarm), still never blocks. */
  contested: 2,
} as const;
export type Sharing = (typeof SHARING)[keyof typeof SHARING];

/** How far a signal may act on the request (Collateral.role). */
export const ROLE = {
  /** Evidence on the request itself or a key only it carries: acts fully. */
  own: 0,
  /** Evidence on a key many people share (a shared address or /24, a browser build's header set
   *  or fingerprint, a password): adds to the request's own evidence (from
   *  `proven.shared_needs_own_score` up), never blocks alone. */
  shared: 1,
  /** A global alarm or an account under attack: raises scrutiny of unproven requests (challenges
   *  alone), never blocks alone. */
  alarm: 2,
  /** Not this proven request's business: ignored. */
  drop: 3,
} as const;
export type Role = (typeof ROLE)[keyof typeof ROLE];

/** Whether a login request: the only requests whose proofs are bound to the account they name. */
export function isLogin(f: OutcomeContext): boolean {
  return f.routeClass === 'identity' && f.passwordHash !== '' && f.method === 'POST';
}

/** The request's narrow identities (session, device, principal) as store subjects, in that order. */
function narrow(f: OutcomeContext, out: Subject[]): Subject[] {
  out.length = 0;
  if (f.session) out.push(subject.session(f.session));
  if (f.device) out.push(subject.device(f.device));
  if (f.principal) out.push(subject.principal(f.principal));
  return out;
}

/** The proven client a request stands for in populations: its most stable narrow identity. */
function memberOf(f: OutcomeContext): number {
  return hash32(f.device || f.session || f.principal);
}

export class Proofs {
  /** Scratch for narrow(): filled and read within one synchronous call. */
  private readonly ids: Subject[] = [];

  constructor(private readonly store: Store) {}

  /**
   * What proves this request (PROOF.none when nothing does). A proof by login or device also
   * proves the request's other narrow identities from then on (the account token a proven
   * session now carries), and counts the client in the populations of the request's keys.
   */
  of(f: RequestFeatures, req: DecideRequest, p: ProvenPolicy): Proof {
    const store = this.store;
    const now = f.now;
    const login = isLogin(f) && f.identifierHash !== '';
    const ids = narrow(f, this.ids);
    let proof: Proof = PROOF.none;
    let unproven = 0; // bit i: ids[i] carries no login proof of its own
    for (let i = 0; i < ids.length; i++) {
      const s = ids[i] as Subject;
      // A login is proven only by identities that logged in to that same account before: a proven
      // session that starts trying other accounts is unproven for those.
      if (store.marked(login ? K.account(s, f.identifierHash) : K.loggedIn(s), now) && !store.marked(K.abuse(s), now)) proof = PROOF.login;
      else unproven |= 1 << i;
    }
    if (proof === PROOF.none && f.device && p.device_clean_after_s > 0 && this.cleanDevice(f.device, now, p)) proof = PROOF.device;
    // A login to an account that logged in successfully before from this same client (address +
    // browser build): its owner again (a synthetic-login monitor's fresh session every check, a
    // customer without cookies). Bound to that account, so it lends nothing to a crew trying
    // others; it proves this login only, and counts the account, not its throwaway session.
    if (proof === PROOF.none && login && p.client_account_proves && this.accountLoggedInFrom(subject.client(f.client), f)) {
      this.addTo(K.accounts, f, hash32(f.identifierHash), p);
      return PROOF.login;
    }
    // ...or with the same browser build or tool, where that build is nobody else's and no login
    // to the account has failed since: a synthetic-login monitor checking its account from several
    // hosting addresses in turn. Never a build proven customers share (a crew copying it would get
    // a try at every active account), and not once someone has guessed wrong at the account.
    if (proof === PROOF.none && login && p.build_account_proves) {
      const build = subject.fingerprint(f.fingerprint);
      if (this.accountLoggedInFrom(build, f) && !store.marked(K.failedAccount(f.identifierHash), now) && sharingOf(store, build, now, p) === SHARING.none) return PROOF.login;
    }
    if (proof !== PROOF.none) {
      if (!login && unproven !== 0) {
        for (let i = 0; i < ids.length; i++) if (unproven & (1 << i) && !store.marked(K.abuse(ids[i] as Subject), now)) store.mark(K.loggedIn(ids[i] as Subject), now, p.login_ttl_s * 1000);
      }
      this.count(f, p);
      return proof;
    }
    return req.clearance === 'VALID' && p.clearance_proves ? PROOF.clearance : PROOF.none;
  }

  /** Whether the login's account logged in successfully from key `s` (within `login_ttl_s`) and its own login was no abuse since. */
  private accountLoggedInFrom(s: Subject, f: RequestFeatures): boolean {
    return this.store.marked(K.account(s, f.identifierHash), f.now) && !this.store.marked(K.abuse(subject.identifier(f.identifierHash)), f.now);
  }

  /** A device first seen at least `device_clean_after_s` ago, with no abuse since. */
  private cleanDevice(device: string, now: number, p: ProvenPolicy): boolean {
    const store = this.store;
    if (!store.marked(K.deviceKnown(device), now)) {
      store.mark(K.deviceKnown(device), now, p.device_memory_s * 1000);
      store.mark(K.deviceYoung(device), now, p.device_clean_after_s * 1000);
      return false;
    }
    return !store.marked(K.deviceYoung(device), now) && !store.marked(K.abuse(subject.device(device)), now);
  }

  /** Counts a proven client in the populations of the keys it was seen behind. */
  private count(f: OutcomeContext, p: ProvenPolicy): void {
    this.addTo(K.population, f, memberOf(f), p);
  }

  /** Adds member `m` to one population family (`key`) of each shareable key of the request. */
  private addTo(key: (s: Subject) => string, f: OutcomeContext, m: number, p: ProvenPolicy): void {
    const store = this.store;
    const W = p.population_window_s * 1000;
    store.addDistinct(key(subject.ip(f.ip)), m, W, f.now);
    store.addDistinct(key(subject.subnet(f.subnet)), m, W, f.now);
    store.addDistinct(key(subject.client(f.client)), m, W, f.now);
    store.addDistinct(key(subject.fingerprint(f.fingerprint)), m, W, f.now);
    if (f.headerSet) store.addDistinct(key(subject.headerSet(f.headerSet)), m, W, f.now);
  }

  /**
   * An outcome: a successful login proves the login's session, device and principal (for that
   * account, and in general) unless they are marked for abuse or the account is only minutes old
   * (farms register, log in and claim within a minute), and counts the client.
   */
  observe(o: Outcome, f: OutcomeContext, p: ProvenPolicy): void {
    if (f.routeClass !== 'identity') return;
    const store = this.store;
    // every account whose login the site answered counts as tried behind the login's keys: the
    // share of them that logged in tells a crowd of people from a crew's list with a few hits; a
    // failed one ends any proof by build for that account (build_account_proves)
    if (isLogin(f) && f.identifierHash && o.action !== 'BLOCK' && o.action !== 'CHALLENGE') {
      if (p.crowd_login_share > 0) this.addTo(K.tried, f, hash32(f.identifierHash), p);
      if (p.build_account_proves && isLoginFailure(o)) store.mark(K.failedAccount(f.identifierHash), f.now, p.login_ttl_s * 1000);
    }
    if (o.status < 200 || o.status >= 300) return;
    // 201 Created: an account was registered for this identifier (a signup carries a password
    // too, but it proves nothing about who logs in to it next)
    if (o.status === 201) {
      if (f.identifierHash && p.young_account_s > 0) store.mark(K.youngAccount(f.identifierHash), f.now, p.young_account_s * 1000);
      return;
    }
    if (!isLogin(f) || isLoginFailure(o) || (f.identifierHash && store.marked(K.youngAccount(f.identifierHash), f.now))) return;
    // The account counts behind the login's keys whether or not the browser brought a session or
    // device id yet (a first visit often has neither): distinct accounts that logged in are
    // distinct people. Not an account whose own login was abuse (a crew's hit on a stolen one).
    if (f.identifierHash && !store.marked(K.abuse(subject.identifier(f.identifierHash)), f.now)) {
      this.addTo(K.accounts, f, hash32(f.identifierHash), p);
      if (p.client_account_proves) store.mark(K.account(subject.client(f.client), f.identifierHash), f.now, p.login_ttl_s * 1000);
      if (p.build_account_proves) store.mark(K.account(subject.fingerprint(f.fingerprint), f.identifierHash), f.now, p.login_ttl_s * 1000);
    }
    const ids = narrow(f, this.ids);
    let proved = false;
    for (const s of ids) {
      if (store.marked(K.abuse(s), f.now)) continue;
      store.mark(K.loggedIn(s), f.now, p.login_ttl_s * 1000);
      if (f.identifierHash) store.mark(K.account(s, f.identifierHash), f.now, p.login_ttl_s * 1000);
      proved = true;
    }
    if (proved) this.count(f, p);
  }

  /** Abuse from this request: the proofs of its session, device and principal are void for a while. */
  abused(f: OutcomeContext, p: ProvenPolicy): void {
    for (const s of narrow(f, this.ids)) this.store.mark(K.abuse(s), f.now, p.abuse_ttl_s * 1000);
    // a login that was abuse: its success, if any, is no evidence of a person behind its keys
    if (isLogin(f) && f.identifierHash) this.store.mark(K.abuse(subject.identifier(f.identifierHash)), f.now, p.abuse_ttl_s * 1000);
  }

  /** sharingOf in this store. */
  sharing(s: Subject, now: number, p: ProvenPolicy): Sharing {
    return sharingOf(this.store, s, now, p);
  }
}

/**
 * How one key is shared (SHARING): by a crowd (more than `shared_after` proven clients), or
 * contested — accounts that logged in there, but most accounts whose logins were answered there
 * failed (a crew's list with a few hits, or a crew among a crowd of first-time browsers).
 */
export function sharingOf(store: Store, s: Subject, now: number, p: ProvenPolicy): Sharing {
  const W = p.population_window_s * 1000;
  // proven sessions, devices and tokens: each one client with a history of its own (a crew's
  // proven sessions answer for themselves, on their own keys)
  if (store.countDistinct(K.population(s), W, now) > p.shared_after) return SHARING.crowd;
  const accounts = store.countDistinct(K.accounts(s), W, now);
  if (accounts <= p.shared_after) return SHARING.none;
  // accounts alone (logins from browsers with no session or device id yet): a crowd while most
  // accounts tried there logged in
  if (p.crowd_login_share <= 0) return SHARING.crowd;
  const tried = store.countDistinct(K.tried(s), W, now);
  return accounts < p.crowd_login_share * tried ? SHARING.contested : SHARING.crowd;
}

/**
 * Whether proven customers send this browser build (fingerprint) as it is: more than
 * `shared_after` proven clients, most accounts tried with it logging in. A header set that looks
 * inconsistent with its User-Agent (`*.header_mismatch`) is then a real browser's, not a disguise
 * (an old Android browser without Accept-Language, a Chrome build over plain HTTP without client
 * hints): `proven.crowd_build_refutes_mismatch`.
 */
export function crowdBuild(store: Store, fingerprint: string, now: number, p: ProvenPolicy): boolean {
  return p.enabled && p.crowd_build_refutes_mismatch && sharingOf(store, subject.fingerprint(fingerprint), now, p) === SHARING.crowd;
}

/**
 * The roles of one decision's signals: reads each shareable key's population at most once (a
 * per-decision memo, reset by begin(); the engine is synchronous, so one instance serves all).
 */
export class Collateral {
  private f: RequestFeatures | undefined = undefined;
  private proof: Proof = PROOF.none;
  private p: ProvenPolicy | undefined = undefined;
  private ipShared = -1;
  private subnetShared = -1;
  private clientShared = -1;
  private toolShared = -1;
  private fingerprintShared = -1;

  constructor(private readonly proofs: Proofs) {}

  begin(f: RequestFeatures, proof: Proof, p: ProvenPolicy): void {
    this.f = f;
    this.proof = proof;
    this.p = p;
    this.ipShared = -1;
    this.subnetShared = -1;
    this.clientShared = -1;
    this.toolShared = -1;
    this.fingerprintShared = -1;
  }

  role(s: Signal): Role {
    switch (s.subject) {
      case undefined:
      case 'request':
      case 'session':
      case 'device':
      case 'principal':
        return ROLE.own;
      // An address (with or without the browser build) is a proven customer's only while nobody
      // else is behind it; a customer proven by its login or its device's history answers for its
      // own keys, not for what others did from its address (a crew on the same carrier NAT and
      // build, behind which the population of proven clients has not grown yet).
      case 'client':
      case 'ip':
      case 'subnet':
        if (this.provenByHistory()) return ROLE.drop;
        return this.keyRole(this.addressSharing(s.subject), ROLE.own);
      // A header set or browser build is never a key to act on alone: where proven clients share
      // it, it counts only next to the request's own evidence; where none do (a tool's own
      // headers), it raises scrutiny like an alarm.
      case 'tool':
        if (this.toolShared < 0) this.toolShared = this.shared(subject.headerSet(this.fx.headerSet));
        return this.keyRole(this.toolShared as Sharing, this.alarmRole());
      case 'fingerprint':
        if (this.fingerprintShared < 0) this.fingerprintShared = this.shared(subject.fingerprint(this.fx.fingerprint));
        return this.keyRole(this.fingerprintShared as Sharing, this.alarmRole());
      case 'password':
        return this.sharedRole();
      case 'identifier':
        return this.alarmRole();
      case 'global':
        return this.proof === PROOF.none ? ROLE.alarm : ROLE.drop;
    }
  }

  /**
   * Whether a signal acting in `role` may have its verdict cached at the gateway: evidence on the
   * request and its own keys, or on a header set / build no proven client shares (a tool's own);
   * never a global alarm, an account's protection or a key proven clients share.
   */
  cacheable(s: Signal, role: Role): boolean {
    return role === ROLE.own || (role === ROLE.alarm && (s.subject === 'tool' || s.subject === 'fingerprint'));
  }

  /**
   * Whether a gateway cache key of this type is shared, by a crowd or contested: an ip, subnet or
   * client key many proven clients are behind. Session, device, principal and target keys never are.
   */
  sharedKey(type: GatewayKeyType): boolean {
    return (type === 'client' || type === 'ip' || type === 'subnet') && this.addressSharing(type) !== SHARING.none;
  }

  /** How the request's client, ip or subnet key is shared, read once per decision. */
  private addressSharing(type: 'client' | 'ip' | 'subnet'): Sharing {
    const f = this.fx;
    switch (type) {
      case 'client':
        if (this.clientShared < 0) this.clientShared = this.shared(subject.client(f.client));
        return this.clientShared as Sharing;
      case 'ip':
        if (this.ipShared < 0) this.ipShared = this.shared(subject.ip(f.ip));
        return this.ipShared as Sharing;
      case 'subnet':
        if (this.subnetShared < 0) this.subnetShared = this.shared(subject.subnet(f.subnet));
        return this.subnetShared as Sharing;
    }
  }

  /** The role of evidence on a key shared `how`; `alone`: its role when nobody proven shares it. */
  private keyRole(how: Sharing, alone: Role): Role {
    return how === SHARING.crowd ? this.sharedRole() : how === SHARING.contested ? this.alarmRole() : alone;
  }

  private get fx(): RequestFeatures {
    return this.f as RequestFeatures;
  }

  /**
   * A client proven by login or device history is not answerable for shared keys; a clearance
   * proves only that a challenge was paid, so shared evidence still asks one (and its difficulty
   * rises with the score: the clearance must have paid that much, engine.ts).
   */
  private sharedRole(): Role {
    return this.provenByHistory() ? ROLE.drop : ROLE.shared;
  }

  /** Proven by a login or its device's history (not by a clearance, which only shows a paid challenge). */
  private provenByHistory(): boolean {
    return this.proof === PROOF.login || this.proof === PROOF.device;
  }

  private alarmRole(): Role {
    return this.provenByHistory() ? ROLE.drop : ROLE.alarm;
  }

  private shared(s: Subject): Sharing {
    return this.proofs.sharing(s, (this.f as RequestFeatures).now, this.p as ProvenPolicy);
  }
}
