// Misconfiguration scanning: internal routes from outside, sensitive files and management
// endpoints, injection and traversal payloads — what nuclei / nikto / sqlmap runs look like.

import type { GenContext } from '../simulator.ts';
import { source, windowOf, type PoolSpec, type Window } from './common.ts';

export interface ProbingParams extends Window {
  requests: number;
  pool: PoolSpec;
}

const PATHS: ReadonlyArray<readonly [string, string]> = [
  ['/internal/admin/users', ''], ['/actuator/env', ''], ['/actuator/health', ''], ['/actuator/heapdump', ''],
  ['/.env', ''], ['/.git/config', ''], ['/.git/HEAD', ''], ['/backup.zip', ''], ['/db.sql', ''], ['/config.php.bak', ''],
  ['/swagger-ui.html', ''], ['/v2/api-docs', ''], ['/admin/', ''], ['/phpmyadmin/', ''], ['/wp-login.php', ''],
  ['/server-status', ''], ['/.aws/credentials', ''], ['/api/orders/1', "id=1'%20OR%20'1'='1"],
  ['/api/users/1/profile', 'fields=../../../../etc/passwd'], ['/', 'q=%3Cscript%3Ealert(1)%3C/script%3E'],
  ['/api/promo/info', 'callback=;cat%20/etc/passwd'], ['/static/..%2f..%2f..%2fetc%2fpasswd', ''],
];

const SCANNER_UA = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/87.0.4280.88 Safari/537.36',
  'Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000123)',
  'sqlmap/1.7.11#stable (https://sqlmap.org)',
  'Mozilla/5.0 (compatible; Nuclei - Open-source project (github.com/projectdiscovery/nuclei))',
] as const;

export function probing(ctx: GenContext, p: ProbingParams): void {
  const rng = ctx.rng;
  const { start, end } = windowOf(ctx, p);
  const src = source(rng, p.pool, ctx.env);
  const gap = (end - start) / p.requests;
  let t = start;
  for (let i = 0; i < p.requests; i++) {
    const [path, query] = PATHS[i % PATHS.length]!;
    const headers: Array<[string, string]> = [['host', ctx.env.host], ['user-agent', rng.pick(SCANNER_UA)], ['accept', '*/*'], ['connection', 'close']];
    if (rng.chance(0.3)) headers.splice(2, 0, ['accept-encoding', 'gzip']);
    ctx.emit({ ts: t, ip: src.next(), method: 'GET', path, query, headers });
    t += gap * rng.between(0.2, 1.8);
  }
}
