// Case 2b: the njs variant (stock nginx + ngx_http_js_module, no Lua) inline on every request,
// the same layout and budget as case 2, so the two gateway scripts' costs sit side by side.
// What it pays that the Lua script does not: an auth_request subrequest, a fresh njs VM per
// request, and a new TCP connection per decide call (njs 0.7.9's ngx.fetch has no keep-alive);
// and what it does not do: identity routes' bodies are not read (see gateway-plugin/README.md).
import { existsSync } from 'node:fs';
import type { ProxyCase } from '../lib/case.ts';
import { SHARED_HTTP, mixLocations } from '../lib/gateway.ts';
import { startNginx } from '../../scripts/lib/nginx.ts';
import { nginxMasterPid, pin, startServiceProcess, type ServiceProcess } from '../lib/proc.ts';
import { NGINX_MODULES } from '../lib/stock-nginx.ts';

const NJS_GUARD = 'include verdict-njs-location.conf;\n        proxy_pass http://verdict_app;';

const njsInline: ProxyCase = {
  kind: 'proxy',
  id: 'njs-inline',
  order: 2.5,
  title: '2b. Verdict njs variant inline, every request',
  underLoad: true,
  unavailable: () =>
    existsSync(`${NGINX_MODULES}/ngx_http_js_module.so`)
      ? null
      : `no ${NGINX_MODULES}/ngx_http_js_module.so (apt-get install libnginx-mod-http-js)`,
  async start(env) {
    // ngx.fetch in njs 0.7.9 speaks TCP only: with the shared service on a unix socket, run a
    // TCP one on the same CPU for this case
    let own: ServiceProcess | undefined;
    let service = env.service.addr;
    if (service.startsWith('unix:')) {
      own = await startServiceProcess({ cpu: env.cpus.service });
      service = own.addr;
    }
    const ng = await startNginx({
      variant: 'njs',
      upstream: env.upstream,
      service,
      locations: mixLocations({ identity: 'inline', promo: 'inline', static: 'inline', rest: 'inline' }, NJS_GUARD),
      extraHttp: SHARED_HTTP,
      workers: env.workers,
    });
    pin(nginxMasterPid(ng.prefix), env.cpus.server);
    return {
      url: ng.url,
      stop: async () => {
        await ng.stop();
        await own?.stop();
      },
    };
  },
};

export default njsInline;
