// Case 4: the stock-nginx way to ask the same service on every request: auth_request to an
// internal location that proxies to the decision service's GET /v1/auth over a keep-alive pool.
// nginx forwards the original headers plus X-Original-Method / X-Original-URI / X-Real-IP; the
// service answers 204 (allow, tag), 401 (challenge) or 403 (block), so this case enforces too.
import type { ProxyCase } from '../lib/case.ts';
import { SHARED_HTTP } from '../lib/gateway.ts';
import { startNginx } from '../../scripts/lib/nginx.ts';
import { nginxMasterPid, pin } from '../lib/proc.ts';

const authRequest: ProxyCase = {
  kind: 'proxy',
  id: 'auth-request',
  order: 4,
  title: '4. stock nginx auth_request → service (GET /v1/auth)',
  async start(env) {
    const server = `server ${env.service.addr};`; // "unix:/path" is nginx syntax too
    const ng = await startNginx({
      upstream: env.upstream,
      service: env.service.addr,
      extraHttp: `${SHARED_HTTP}
    upstream verdict_bench_decide {
        ${server}
        keepalive 64;
    }`,
      workers: env.workers,
      locations: `
    location / {
        auth_request /_verdict_auth;
        proxy_pass http://verdict_app;
    }
    location = /_verdict_auth {
        internal;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_set_header Connection "";
        proxy_set_header X-Original-Method $request_method;
        proxy_set_header X-Original-URI $request_uri;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_pass http://verdict_bench_decide/v1/auth;
    }`,
    });
    pin(nginxMasterPid(ng.prefix), env.cpus.server);
    return { url: ng.url, stop: () => ng.stop() };
  },
};

export default authRequest;
