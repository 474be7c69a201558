// GET /v1/auth: the stock-nginx way (`auth_request`) to ask for a verdict, for operators who run
// neither Lua nor njs, and as the benchmark's reference peer. nginx forwards the original request
// headers plus X-Original-Method, X-Original-URI and X-Real-IP; the answer is 204 (allow, tag),
// 401 (challenge) or 403 (block), the only statuses auth_request understands.
//
// The DecideRequest is the Lua gateway's (gateway/request-builder.ts, hashed here with the
// service's key), decided, counted and failed by the same service as the other transports. The
// location settings the builder reads come from this URL's query string, which only the nginx
// configuration writes (e.g. `proxy_pass http://verdict/v1/auth?route_tag=login&session_cookie=SID`):
// route_tag, session_cookie, device_header, api_key_header, with config.lua's names and defaults.
//
// This path is weaker than the gateway scripts by construction: nginx sends raw cookies and
// tokens to the service (hashed on arrival), it cannot read the body (no identifier or
// password), it has no budget, breaker, cache or fail-open of its own, and no outcome reports
// (so no late verdicts either: the requests carry no gateway_id). The header names are those
// nginx forwards: its own (Host first) and then the client's in order.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Decision } from '../engine/engine.ts';
import type { Logger } from 'pino';
import { VerdictError } from '../errors.ts';
import { buildDecideRequest } from '../gateway/request-builder.ts';
import { GATEWAY_DEFAULTS, withLocationOptions, type GatewaySettings } from '../gateway/settings.ts';
import type { DecisionService } from '../service/decision-service.ts';
import { decideRequestSchema } from '../wire/schema.ts';
import type { GatewayGuard } from '../auth/guard.ts';

/** Headers nginx adds to the subrequest: not the client's. */
const NGINX_HEADERS = new Set(['x-original-method', 'x-original-uri', 'x-real-ip', 'x-verdict-auth', 'content-length', 'connection']);
/** The settings the query string may set; anything else in it is ignored. */
const QUERY_OPTIONS = ['route_tag', 'session_cookie', 'device_header', 'api_key_header'] as const;
/** Distinct query strings remembered with their parsed settings (a handful per site). */
const SETTINGS_MEMO = 64;

function header(req: FastifyRequest, name: string): string {
  const v = req.headers[name];
  return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
}

export function registerAuthRequest(app: FastifyInstance, service: DecisionService, key: Buffer, guard: GatewayGuard, logger: Logger): void {
  const base: GatewaySettings = { ...GATEWAY_DEFAULTS, hmacKey: key, mode: 'inline', budgetMs: 0 };
  const memo = new Map<string, GatewaySettings>();
  // parsed once per distinct query string; a bad value is logged once and yields the default
  const settingsFor = (query: Readonly<Record<string, unknown>>, raw: string): GatewaySettings => {
    let s = memo.get(raw);
    if (s === undefined) {
      const values: Record<string, string | undefined> = {};
      for (const name of QUERY_OPTIONS) {
        const v = query[name];
        values[name] = typeof v === 'string' ? v : undefined;
      }
      s = withLocationOptions(base, values, (name, value) => {
        logger.warn({ setting: name, value }, 'GET /v1/auth: invalid setting in the query string; using the default');
      });
      if (memo.size >= SETTINGS_MEMO) memo.clear();
      memo.set(raw, s);
    }
    return s;
  };

  app.get('/v1/auth', (req, reply) => {
    const started = performance.now();
    // nginx sends the derived bearer (proxy_set_header X-Verdict-Auth "bearer <kid>:<mac>")
    const proof = guard.bearer(req.socket.remoteAddress, header(req, 'x-verdict-auth') || undefined);
    if (!proof.ok) throw new VerdictError('AUTH', `gateway proof ${proof.reason}`);
    const q = req.url.indexOf('?');
    const settings = settingsFor(req.query as Record<string, unknown>, q < 0 ? '' : req.url.slice(q + 1));
    const uri = header(req, 'x-original-uri') || '/';
    const uq = uri.indexOf('?');
    const rawHeaders = req.raw.rawHeaders;
    const headers: Array<[string, string]> = [];
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
      const name = rawHeaders[i] as string;
      if (!NGINX_HEADERS.has(name.toLowerCase())) headers.push([name, rawHeaders[i + 1] as string]);
    }
    const built = buildDecideRequest({
      requestId: header(req, 'x-request-id'),
      tsMs: 0, // stamped by the service
      clientIp: header(req, 'x-real-ip') || req.ip,
      method: header(req, 'x-original-method') || 'GET',
      host: header(req, 'host'),
      path: uq >= 0 ? uri.slice(0, uq) : uri,
      query: uq >= 0 ? uri.slice(uq + 1) : '',
      httpVersion: '', // the client's is not forwarded
      headers,
      encoding: 'latin1', // node's parser: one character per byte
      gatewayId: '',
    }, settings);
    // (over-long client fields, 65 cookies included, are cut by the schema, not refused)
    const parsed = decideRequestSchema.safeParse(built);
    if (!parsed.success) {
      throw new VerdictError('INVALID_FIELD', parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
    }
    const settled = service.decideSettled(parsed.data, 'AUTH_REQUEST');
    if (settled instanceof Promise) return settled.then((d) => answerAuth(service, reply, d, started));
    return answerAuth(service, reply, settled, started);
  });
}

/** auth_request's answer: the status nginx acts on, and the verdict in headers. */
function answerAuth(service: DecisionService, reply: FastifyReply, d: Decision, started: number): FastifyReply {
  reply.header('x-verdict-action', d.action).header('x-verdict-score', String(d.score)).header('x-verdict-reasons', d.reasons.join(','));
  service.observeDecide('auth_request', started);
  return reply.code(d.action === 'BLOCK' ? 403 : d.action === 'CHALLENGE' ? 401 : 204).send();
}
