// `npm run policy:check -- FILE...`: validates policy files the way the service loads them.
// Exit 0 when all are valid; 2 with file, path and fix for each error otherwise.

import { loadPolicyFile } from '../decision-service/src/config/policy.ts';
import { ConfigError } from '../decision-service/src/errors.ts';

const files = process.argv.slice(2);
if (files.length === 0) {
  process.stderr.write('usage: npm run policy:check -- policies/default.yaml [more.yaml ...]\n');
  process.exit(64);
}
let failed = false;
for (const file of files) {
  try {
    const p = loadPolicyFile(file);
    process.stdout.write(`ok  ${file}: version ${p.version}, ${p.routes.length} routes\n`);
  } catch (err) {
    failed = true;
    process.stderr.write(`${err instanceof ConfigError ? err.message : String(err)}\n`);
  }
}
process.exit(failed ? 2 : 0);
