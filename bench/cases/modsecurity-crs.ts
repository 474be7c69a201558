// Case 5: ModSecurity v3 + OWASP CRS (Debian packages) in the same nginx: the cost of an inline
// WAF, as a reference point. CRS at its defaults (paranoia level 1, anomaly scoring), request
// bodies inspected (JSON body processor as in modsecurity.conf-recommended), responses not.
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProxyCase } from '../lib/case.ts';
import { SHARED_HTTP } from '../lib/gateway.ts';
import { NGINX_MODULES, startStockNginx } from '../lib/stock-nginx.ts';

const MODULE = join(NGINX_MODULES, 'ngx_http_modsecurity_module.so');
const CRS_SETUP = '/etc/modsecurity/crs/crs-setup.conf';
const CRS_RULES = '/usr/share/modsecurity-crs/rules';

const modsecurityCrs: ProxyCase = {
  kind: 'proxy',
  id: 'modsecurity',
  order: 5,
  title: '5. ModSecurity + OWASP CRS',
  unavailable: () =>
    existsSync(MODULE) && existsSync(CRS_SETUP) && existsSync(CRS_RULES)
      ? null
      : 'not available on this machine (apt-get install libnginx-mod-http-modsecurity modsecurity-crs)',
  async start(env) {
    const dir = mkdtempSync(join(env.tmp, 'modsec-'));
    const rules = join(dir, 'main.conf');
    writeFileSync(rules, `SecRuleEngine On
SecRequestBodyAccess On
SecRequestBodyLimit 13107200
SecRequestBodyNoFilesLimit 131072
SecRequestBodyLimitAction Reject
SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecResponseBodyAccess Off
SecAuditEngine Off
SecTmpDir ${dir}
SecDataDir ${dir}
Include ${CRS_SETUP}
Include /etc/modsecurity/crs/REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf
Include ${CRS_RULES}/*.conf
Include /etc/modsecurity/crs/RESPONSE-999-EXCLUSION-RULES-AFTER-CRS.conf
`);
    const ng = await startStockNginx({
      cpu: env.cpus.server,
      main: `load_module ${MODULE};`,
      http: `${SHARED_HTTP}
    upstream app {
        server ${env.upstream};
        keepalive 32;
    }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    modsecurity on;
    modsecurity_rules_file ${rules};`,
      server: `        location / { proxy_pass http://app; }`,
    });
    return { url: ng.url, stop: () => ng.stop() };
  },
};

export default modsecurityCrs;
