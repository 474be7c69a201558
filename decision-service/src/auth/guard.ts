// Who may do what, per connection: the gateway checks of gateway-auth.ts applied with the
// service's settings, and the admin rule. Every refusal is counted by transport and reason.
//
// Decide and outcome calls: with a secret configured every client proves it (loopback and unix
// sockets too, unless VERDICT_AUTH_EXEMPT_LOOPBACK=true); without one only loopback and
// unix-socket clients are served (and env.ts refuses to listen anywhere else).
// Admin endpoints (/metrics, /v1/inventory, /v1/audit, /v1/overrides, /console): loopback and
// unix-socket clients (unless VERDICT_ADMIN_LOOPBACK=false), or the admin token. Calls that change
// anything (overrides) need the token whenever VERDICT_ADMIN_TOKEN is set, loopback or not: a
// local process that can reach the port must not be able to unblock a client on its own.

import { timingSafeEqual } from 'node:crypto';
import {
  isLoopback, verifyBearer, verifyHello, verifyHttp, type AuthFailure, type AuthResult, type GatewayKey,
} from './gateway-auth.ts';

export type AuthTransport = 'http' | 'frame' | 'auth_request' | 'admin';

interface FailureCounter {
  inc(labels: { transport: AuthTransport; reason: AuthFailure | 'no token' }): void;
}

const PASS: AuthResult = Object.freeze({ ok: true, kid: '' });

export class GatewayGuard {
  constructor(
    readonly keys: readonly GatewayKey[],
    readonly exemptLoopback: boolean,
    readonly skewMs: number,
    private readonly adminToken: string | undefined,
    private readonly adminLoopback: boolean,
    private readonly failures: FailureCounter | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** Must a client at `peer` (remote address; undefined/'' = unix socket) prove the secret? */
  required(peer: string | undefined): boolean {
    if (this.keys.length === 0) return !isLoopback(peer);
    return !(this.exemptLoopback && isLoopback(peer));
  }

  private count(transport: AuthTransport, r: AuthResult): AuthResult {
    if (!r.ok) this.failures?.inc({ transport, reason: r.reason });
    return r;
  }

  /** A POST /v1/decide or /v1/outcomes with its X-Verdict-Auth header and exact body bytes. */
  http(peer: string | undefined, header: string | undefined, path: string, body: Buffer): AuthResult {
    if (!this.required(peer)) return PASS;
    return this.count('http', verifyHttp(this.keys, header, path, body, this.now(), this.skewMs));
  }

  /** GET /v1/auth (stock auth_request): the derived bearer. */
  bearer(peer: string | undefined, header: string | undefined): AuthResult {
    if (!this.required(peer)) return PASS;
    return this.count('auth_request', verifyBearer(this.keys, header));
  }

  /** A frame connection's HELLO answering its challenge. */
  hello(challenge: Buffer, payload: Buffer): AuthResult {
    return this.count('frame', verifyHello(this.keys, challenge, payload));
  }

  /** A frame sent before HELLO on a connection that must authenticate. */
  refusedFrame(): void {
    this.failures?.inc({ transport: 'frame', reason: 'missing' });
  }

  /** Whether VERDICT_ADMIN_TOKEN is set (the console asks for it before changing anything). */
  get adminTokenSet(): boolean {
    return this.adminToken !== undefined;
  }

  /**
   * Admin endpoints: `Authorization: Bearer <VERDICT_ADMIN_TOKEN>` (constant-time compare), or a
   * loopback / unix-socket peer while VERDICT_ADMIN_LOOPBACK is on — for a `mutating` call only
   * while no token is set. Returns how the caller was admitted ('token' | 'loopback'), or
   * undefined when refused (counted).
   */
  adminVia(peer: string | undefined, authorization: string | undefined, mutating = false): 'token' | 'loopback' | undefined {
    const token = this.adminToken;
    if (token !== undefined && authorization !== undefined) {
      const want = Buffer.from(`Bearer ${token}`);
      const got = Buffer.from(authorization);
      if (got.length === want.length && timingSafeEqual(got, want)) return 'token';
    }
    if (this.adminLoopback && isLoopback(peer) && !(mutating && token !== undefined)) return 'loopback';
    this.failures?.inc({ transport: 'admin', reason: authorization ? 'bad mac' : 'no token' });
    return undefined;
  }

  /** Read-only admin endpoints (see adminVia). */
  admin(peer: string | undefined, authorization: string | undefined): boolean {
    return this.adminVia(peer, authorization) !== undefined;
  }
}
