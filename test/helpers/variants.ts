// Gateway variants the e2e suite runs against. A variant starts a real nginx with its script in
// front of an upstream and turns the suite's location templates into config: `{{guard}}` marks
// where the variant's location-level include goes. VERDICT_GATEWAY_VARIANTS (default "lua,njs")
// selects which run.
import { startNginx, type NginxHandle, type InitValue } from '../../scripts/lib/nginx.ts';

export interface GatewayStart {
  upstream: string;
  service: string;
  /** location blocks; `{{guard}}` = the variant's location include + proxy_pass to the upstream;
   *  absent = the variant's default layout (the demo shop shape of nginx.conf.example) */
  locations?: string;
  init?: Record<string, InitValue>;
  workers?: number;
}

/** What a variant cannot do, each with the reason a skipped case shows; absent = supported. */
export interface Lacks {
  /** gateway counters at /verdict-metrics */
  metrics?: string;
  /** cross-request verdict cache */
  cache?: string;
  /** circuit breaker */
  breaker?: string;
  /** outcome reports from the log phase (and async mode's metadata) */
  outcomes?: string;
  /** unix-socket transport to the service */
  unix?: string;
  /** keep-alive connection pool to the service */
  pool?: string;
  /** identifier / password hash read from the request body */
  identity?: string;
  /** an answer ends at its Content-Length (not only when the service closes the connection) */
  lengthDelimited?: string;
  /** a challenge proof is accepted once (its nonce's rand is recorded until the nonce expires) */
  singleUseProof?: string;
  /** $verdict_cleared async: a cleared request is still enforced from the cache and reported after the response */
  clearedAsync?: string;
}

export interface GatewayVariant {
  name: string;
  lacks: Lacks;
  start(opts: GatewayStart): Promise<NginxHandle>;
}

export const luaVariant: GatewayVariant = {
  name: 'lua',
  lacks: {},
  start: (opts) =>
    startNginx({
      upstream: opts.upstream,
      service: opts.service,
      init: opts.init,
      workers: opts.workers,
      locations: opts.locations?.replaceAll('{{guard}}', 'include verdict-location.conf;\n        proxy_pass http://verdict_app;'),
    }),
};

// njs 0.7.9 (Debian 12): a JS VM lives for one request and js_shared_dict_zone (0.8.0) does not
// exist, so nothing is shared across requests; see gateway-plugin/README.md, "The njs variant".
const NO_STATE = 'njs 0.7.9 keeps no state across requests (no js_shared_dict_zone before njs 0.8.0)';

export const njsVariant: GatewayVariant = {
  name: 'njs',
  lacks: {
    metrics: `${NO_STATE}: no gateway counters (count from the access log: $verdict_njs_action, $verdict_njs_fail)`,
    cache: `${NO_STATE}: no verdict cache`,
    breaker: `${NO_STATE}: no circuit breaker`,
    outcomes: 'njs 0.7.9 runs nothing after the response (no log phase hook that can fetch): no outcome reports',
    unix: 'njs 0.7.9 ngx.fetch connects over TCP only',
    pool: 'njs 0.7.9 ngx.fetch has no keep-alive: one connection per call, nothing to retry',
    identity: 'the request body is not read before an auth_request subrequest',
    lengthDelimited: 'njs 0.7.9 ngx.fetch completes only when the service closes the connection (it sends ' +
      '"Connection: close", and the decision service closes): an answer from a server that keeps the connection open is a timeout',
    singleUseProof: `${NO_STATE}: a proof is not single-use (nowhere to record a nonce until it expires): ` +
      'it earns a token again, for the same network and browser, until its nonce expires (5 minutes)',
    clearedAsync: `${NO_STATE} and runs nothing after the response: with $verdict_cleared async a valid clearance skips the ` +
      'decide call (no cached verdict to enforce, no metadata sent) until the token expires',
  },
  start: (opts) =>
    startNginx({
      variant: 'njs',
      upstream: opts.upstream,
      service: opts.service,
      workers: opts.workers,
      locations: opts.locations?.replaceAll('{{guard}}', 'include verdict-njs-location.conf;\n        proxy_pass http://verdict_app;'),
    }),
};

export const variants: GatewayVariant[] = [luaVariant, njsVariant];

export function selectedVariants(): GatewayVariant[] {
  const want = (process.env.VERDICT_GATEWAY_VARIANTS ?? 'lua,njs').split(',').map((s) => s.trim());
  return variants.filter((v) => want.includes(v.name));
}
