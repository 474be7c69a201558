// Gateway variants the e2e suite runs against. A variant starts a real nginx with its script in
// front of an upstream and turns the suite's location templates into config: `{{guard}}` marks
// where the variant's location-level include goes. The Lua variant is here; the njs variant
// plugs in the same way (VERDICT_GATEWAY_VARIANTS=lua,njs selects).
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

export interface GatewayVariant {
  name: string;
  start(opts: GatewayStart): Promise<NginxHandle>;
}

export const luaVariant: GatewayVariant = {
  name: 'lua',
  start: (opts) =>
    startNginx({
      upstream: opts.upstream,
      service: opts.service,
      init: opts.init,
      workers: opts.workers,
      locations: opts.locations?.replaceAll('{{guard}}', 'include verdict-location.conf;\n        proxy_pass http://verdict_app;'),
    }),
};

export const variants: GatewayVariant[] = [luaVariant];

export function selectedVariants(): GatewayVariant[] {
  const want = (process.env.VERDICT_GATEWAY_VARIANTS ?? 'lua').split(',').map((s) => s.trim());
  return variants.filter((v) => want.includes(v.name));
}
