// GET /v1/auth: the stock-nginx way (`auth_request`) to ask for a verdict, for operators who run
// neither Lua nor njs, and as the benchmark's reference peer. nginx forwards the original request
// headers plus X-Original-Method, X-Original-URI and X-Real-IP; the answer is 204 (allow, tag),
// 401 (challenge) or 403 (block), the only statuses auth_request understands.
//
// This path is weaker than the gateway scripts by construction: nginx sends raw cookies and
// tokens to the service (hashed here on arrival), it cannot read the body (no identifier or
// password), it has no budget, breaker, cache or fail-open of its own.

import { createHmac } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Engine } from '../engine/engine.ts';
import { VerdictError } from '../errors.ts';
import { decideRequestSchema } from '../wire/schema.ts';
import type { ServiceMetrics } from './metrics.ts';
import type { GatewayGuard } from '../auth/guard.ts';

const SKIP = new Set(['x-original-method', 'x-original-uri', 'x-real-ip', 'x-verdict-auth', 'content-length', 'connection']);

function header(req: FastifyRequest, name: string): string {
  const v = req.headers[name];
  return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
}

export function registerAuthRequest(app: FastifyInstance, engine: () => Engine, key: Buffer, metrics: ServiceMetrics | undefined, guard: GatewayGuard): void {
  const hash = (v: string) => createHmac('sha1', key).update(v).digest();

  app.get('/v1/auth', (req, reply) => {
    // nginx sends the derived bearer (proxy_set_header X-Verdict-Auth "bearer <kid>:<mac>")
    const proof = guard.bearer(req.socket.remoteAddress, header(req, 'x-verdict-auth') || undefined);
    if (!proof.ok) {
      const err = new VerdictError('AUTH', `gateway proof ${proof.reason}`);
      return reply.code(err.status).send(err.toJSON());
    }
    const uri = header(req, 'x-original-uri') || '/';
    const q = uri.indexOf('?');
    const names: string[] = [];
    for (let i = 0; i < req.raw.rawHeaders.length; i += 2) {
      const n = (req.raw.rawHeaders[i] ?? '').toLowerCase();
      if (!SKIP.has(n)) names.push(n);
    }
    const cookies = header(req, 'cookie');
    const cookieNames = cookies ? cookies.split(';').map((c) => c.split('=')[0]?.trim() ?? '').filter(Boolean) : [];
    const sid = /(?:^|;\s*)sid=([^;]*)/.exec(cookies)?.[1];
    const authz = header(req, 'authorization');
    const sp = authz.indexOf(' ');
    const token = sp > 0 ? authz.slice(sp + 1) : header(req, 'x-api-key');
    const device = header(req, 'x-device-id');
    const parsed = decideRequestSchema.safeParse({
      request_id: header(req, 'x-request-id'),
      client_ip: header(req, 'x-real-ip') || req.ip,
      method: header(req, 'x-original-method') || 'GET',
      host: header(req, 'host'),
      path: q >= 0 ? uri.slice(0, q) : uri,
      query: q >= 0 ? uri.slice(q + 1, q + 1 + 1024) : '',
      user_agent: header(req, 'user-agent'),
      accept: header(req, 'accept'),
      accept_language: header(req, 'accept-language'),
      accept_encoding: header(req, 'accept-encoding'),
      referer: header(req, 'referer'),
      origin: header(req, 'origin'),
      content_type: header(req, 'content-type'),
      sec_fetch_site: header(req, 'sec-fetch-site'),
      sec_fetch_mode: header(req, 'sec-fetch-mode'),
      sec_fetch_dest: header(req, 'sec-fetch-dest'),
      sec_fetch_user: header(req, 'sec-fetch-user'),
      sec_ch_ua: header(req, 'sec-ch-ua'),
      header_names: names.slice(0, 128),
      cookie_names: cookieNames.slice(0, 64),
      has_authorization: authz !== '',
      auth_scheme: sp > 0 ? authz.slice(0, sp).toLowerCase() : '',
      session_hash: sid ? hash(sid) : undefined,
      token_hash: token ? hash(token) : undefined,
      device_hash: device ? hash(device) : undefined,
    });
    if (!parsed.success) {
      const err = new VerdictError('INVALID_FIELD', parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
      metrics?.badRequests.inc({ endpoint: '/v1/auth', code: err.code });
      return reply.code(err.status).send(err.toJSON());
    }
    const d = engine().decide(parsed.data);
    metrics?.decisions.inc({ action: d.action, route_class: d.routeClass, mode: 'AUTH_REQUEST' });
    reply.header('x-verdict-action', d.action).header('x-verdict-score', String(d.score)).header('x-verdict-reasons', d.reasons.join(','));
    const status = d.action === 'BLOCK' ? 403 : d.action === 'CHALLENGE' ? 401 : 204;
    return reply.code(status).send();
  });
}
