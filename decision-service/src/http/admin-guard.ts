// The admin surface's gate (inventory, audit, overrides, console, metrics): who may read, who may
// change. Read: the admin token, or a loopback / unix-socket peer (VERDICT_ADMIN_LOOPBACK).
// Change: the token whenever VERDICT_ADMIN_TOKEN is set; without one, loopback peers only. A
// browser page on another origin must not change anything through an operator's browser on the
// same machine: mutating calls carry JSON (a cross-origin JSON POST needs a CORS preflight the
// service never answers) and an Origin, when sent, must be the service's own.

import type { FastifyReply, FastifyRequest } from 'fastify';
import type { GatewayGuard } from '../auth/guard.ts';
import { VerdictError } from '../errors.ts';

/** How an admin caller was admitted: 'token' or 'loopback' (recorded on overrides as "via"). */
export type AdminVia = 'token' | 'loopback';

declare module 'fastify' {
  interface FastifyRequest {
    adminVia?: AdminVia;
  }
}

type Hook = (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void;

export function adminHooks(guard: GatewayGuard): { read: Hook; write: Hook } {
  const check = (mutating: boolean): Hook => (req, _reply, done) => {
    const via = guard.adminVia(req.socket.remoteAddress, req.headers.authorization, mutating);
    if (!via) {
      const why = mutating && guard.adminTokenSet
        ? 'changes need Authorization: Bearer <VERDICT_ADMIN_TOKEN>, also from loopback'
        : 'admin endpoint: send Authorization: Bearer <VERDICT_ADMIN_TOKEN> or call from loopback';
      done(new VerdictError('AUTH', why));
      return;
    }
    if (mutating) {
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `http://${req.headers.host ?? ''}` && origin !== `https://${req.headers.host ?? ''}`) {
        done(new VerdictError('FORBIDDEN', `Origin ${JSON.stringify(origin)} is not this service's; changes come from the console or curl`));
        return;
      }
      const ct = req.headers['content-type'];
      if (req.method !== 'DELETE' && !(ct ?? '').startsWith('application/json')) {
        done(new VerdictError('BAD_CONTENT_TYPE', 'admin changes are application/json'));
        return;
      }
    }
    req.adminVia = via;
    done();
  };
  return { read: check(false), write: check(true) };
}
