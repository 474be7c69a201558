// The Verdict Lua gateway for the benchmark: scripts/lib/nginx.ts with the bench's http settings
// and location layouts, pinned to the server CPU.
import { startNginx, type InitValue } from '../../scripts/lib/nginx.ts';
import type { BenchEnv, Stack } from './case.ts';
import { childPids, nginxMasterPid, pin } from './proc.ts';

/**
 * http-level settings every proxy case shares (the stock cases copy them): the client IP comes
 * from X-Forwarded-For set by the load generator (as behind a trusted load balancer), and client
 * keep-alive connections are not recycled during a run.
 */
export const SHARED_HTTP = `
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
    keepalive_requests 100000;
`;

export type Mode = 'inline' | 'async' | 'monitor' | 'off';

export interface LayoutModes {
  identity: Mode;
  promo: Mode;
  static: Mode;
  rest: Mode;
}

/** Location blocks for the request mix's routes with a mode per route group; `guard` is the include + proxy_pass. */
export function mixLocations(modes: LayoutModes, guard: string): string {
  const loc = (match: string, mode: Mode, extra: string) => `
    location ${match} {
        set $verdict_mode ${mode};
${extra}        ${guard}
    }`;
  return [
    // as nginx.conf.example: identity and promo locations decide cleared clients inline too
    loc('/api/auth/', modes.identity, '        set $verdict_route_tag auth;\n        set $verdict_identity_fields "username,phone,email";\n        set $verdict_cleared inline;\n'),
    loc('/api/sms/', modes.identity, '        set $verdict_route_tag sms;\n        set $verdict_identity_fields "phone";\n        set $verdict_cleared inline;\n'),
    loc('/api/promo/', modes.promo, '        set $verdict_route_tag promo;\n        set $verdict_cleared inline;\n'),
    loc('/static/', modes.static, ''),
    loc('= /favicon.ico', modes.static, ''),
    loc('/', modes.rest, ''),
  ].join('\n');
}

export const LUA_GUARD = 'include verdict-location.conf;\n        proxy_pass http://verdict_app;';

/** Starts nginx + the Lua script with `locations`, pinned to the server CPU. */
export async function startLuaGateway(env: BenchEnv, locations: string, opts: { service?: string; init?: Record<string, InitValue> } = {}): Promise<Stack> {
  const ng = await startNginx({
    upstream: env.upstream,
    service: opts.service ?? (env.transport === 'frame' ? env.service.frameAddr : env.service.addr),
    locations,
    extraHttp: SHARED_HTTP,
    init: { pool_size: 64, ...opts.init },
    workers: env.workers,
  });
  const master = nginxMasterPid(ng.prefix);
  pin(master, env.cpus.server);
  return { url: ng.url, stop: () => ng.stop(), gatewayMetrics: async () => (await fetch(ng.metricsUrl)).text(), workerPids: () => childPids(master) };
}
