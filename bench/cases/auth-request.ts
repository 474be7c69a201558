// Case 4: the stock-nginx way to ask the same service on every request: auth_request to an
// internal location that proxies to the decision service over a keep-alive pool (JSON).
//
// The service has no auth_request-shaped endpoint yet (one that reads the original request from
// headers and answers 2xx = allow, 401/403 = deny), so the subrequest POSTs a JSON DecideRequest
// built with proxy_set_body to /v1/decide: the service does the same decision work, but it always
// answers 200, so this measures the cost of the stock way, not its enforcement. With a
// `GET /v1/auth` endpoint (204 allow / 403 block / 429 challenge) only the internal location
// below changes. The JSON is not escaped: the bench's request mix has no quotes in these fields.
import type { ProxyCase } from '../lib/case.ts';
import { SHARED_HTTP } from '../lib/gateway.ts';
import { startNginx } from '../../scripts/lib/nginx.ts';
import { nginxMasterPid, pin } from '../lib/proc.ts';

const body = [
  '"client_ip":"$remote_addr"', '"method":"$request_method"', '"host":"$host"', '"path":"$uri"', '"query":"$args"',
  '"http_version":"1.1"', '"user_agent":"$http_user_agent"', '"accept":"$http_accept"',
  '"accept_language":"$http_accept_language"', '"accept_encoding":"$http_accept_encoding"',
  '"content_type":"$content_type"', '"sec_fetch_site":"$http_sec_fetch_site"', '"sec_fetch_mode":"$http_sec_fetch_mode"',
  '"sec_fetch_dest":"$http_sec_fetch_dest"', '"has_authorization":$verdict_bench_has_auth', '"request_id":"$request_id"',
].join(',');

const authRequest: ProxyCase = {
  kind: 'proxy',
  id: 'auth-request',
  order: 4,
  title: '4. stock nginx auth_request → service (JSON)',
  async start(env) {
    const server = `server ${env.service.addr};`; // "unix:/path" is nginx syntax too
    const ng = await startNginx({
      upstream: env.upstream,
      service: env.service.addr,
      extraHttp: `${SHARED_HTTP}
    upstream verdict_bench_decide {
        ${server}
        keepalive 64;
    }
    map $http_authorization $verdict_bench_has_auth { "" false; default true; }`,
      workers: 1,
      locations: `
    location / {
        auth_request /_verdict_auth;
        proxy_pass http://verdict_app;
    }
    location = /_verdict_auth {
        internal;
        proxy_method POST;
        proxy_pass_request_body off;
        proxy_set_header Connection "";
        proxy_set_header Content-Type application/json;
        proxy_set_header Accept application/json;
        proxy_set_body '{${body}}';
        proxy_pass http://verdict_bench_decide/v1/decide;
    }`,
    });
    pin(nginxMasterPid(ng.prefix), env.cpus.server);
    return { url: ng.url, stop: () => ng.stop() };
  },
};

export default authRequest;
