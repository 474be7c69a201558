// Case 1: plain nginx reverse proxy, no Verdict: the ceiling every other case is compared with.
// Same nginx, same config skeleton, same upstream as the Verdict cases; only the guard is absent.
import type { ProxyCase } from '../lib/case.ts';
import { startLuaGateway } from '../lib/gateway.ts';

export const PLAIN_ID = 'plain';

const plainProxy: ProxyCase = {
  kind: 'proxy',
  id: PLAIN_ID,
  order: 1,
  title: '1. plain nginx proxy',
  underLoad: true,
  start: (env) => startLuaGateway(env, `
    location / {
        proxy_pass http://verdict_app;
    }`),
};

export default plainProxy;
