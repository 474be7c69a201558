#!/usr/bin/env node
// The `verdict` command (package.json "bin"): the everyday operations in one place.
//   verdict start                      the decision service (environment as in README.md)
//   verdict replay FILE.jsonl [...]    what a policy would have done on a traffic file
//   verdict explain REQUEST_ID [--url http://127.0.0.1:9400]   why a request was stopped
//   verdict policy check FILE          validate a policy
//   verdict keygen                     a new secret (gateway secret, admin token, HMAC key)
// explain sends VERDICT_ADMIN_TOKEN as the bearer when it is set.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [cmd, ...args] = process.argv.slice(2);

function tsx(script, rest, nodeFlags = []) {
  const r = spawnSync(process.execPath, [...nodeFlags, '--import', 'tsx', join(root, script), ...rest], { stdio: 'inherit', cwd: process.cwd() });
  process.exit(r.status ?? 1);
}

function usage(code) {
  process.stderr.write(`usage: verdict start | replay FILE.jsonl [--policy FILE] [--json OUT] | explain REQUEST_ID [--url URL] | policy check FILE | keygen\n`);
  process.exit(code);
}

async function explain(rest) {
  const id = rest.find((a) => !a.startsWith('--'));
  const i = rest.indexOf('--url');
  const url = i >= 0 ? rest[i + 1] : 'http://127.0.0.1:9400';
  if (!id) usage(2);
  const headers = process.env.VERDICT_ADMIN_TOKEN ? { authorization: `Bearer ${process.env.VERDICT_ADMIN_TOKEN}` } : {};
  let res;
  try {
    res = await fetch(`${url}/v1/audit?request_id=${encodeURIComponent(id)}`, { headers });
  } catch (err) {
    process.stderr.write(`verdict: cannot reach the service at ${url} (${err.cause?.code ?? err.message}); give --url host:port\n`);
    process.exit(1);
  }
  const body = await res.json();
  if (!res.ok) {
    process.stderr.write(`verdict: ${body.error?.message ?? res.status}\n`);
    process.exit(res.status === 404 ? 3 : 1);
  }
  const r = body;
  const out = [
    `${r.action} ${r.method} ${r.path}  (route ${r.route || '?'}, class ${r.route_class || '?'}, source ${r.source}, ${new Date(r.ts).toISOString()})`,
    `score ${r.score}${r.thresholds ? `  (tag ${r.thresholds.tag}, challenge ${r.thresholds.challenge}, block ${r.thresholds.block})` : ''}, policy ${r.policy_version}`,
    ...(r.override ? [`set by override ${r.override}; the engine said ${r.would_action}`] : []),
    ...(r.cached_from ? [`enforced from the gateway cache; decided by request ${r.cached_from}`] : []),
    'evidence:',
    ...(r.evidence.length ? r.evidence.map((e) => `  ${e.monitor ? 'dry_run:' : ''}${e.code}  strength ${e.strength}  on ${e.key}${e.cache ? `  (cached as ${e.cache})` : ''}`) : r.reasons.map((x) => `  ${x}`)),
    `keys: ${Object.entries(r.keys).map(([k, v]) => `${k}:${v}`).join('  ')}`,
    ...(r.cache_key ? [`cached at gateways as ${r.cache_key}`] : []),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

switch (cmd) {
  // the service's young generation as npm start sizes it (scripts/lib/service.ts SERVICE_NODE_FLAGS)
  case 'start': tsx('decision-service/src/main.ts', args, ['--max-semi-space-size=16']); break;
  case 'replay': tsx('bench/traffic/replay-cli.ts', args); break;
  case 'policy':
    if (args[0] !== 'check') usage(2);
    tsx('scripts/policy-check.ts', args.slice(1));
    break;
  case 'explain': await explain(args); break;
  case 'keygen': process.stdout.write(`${randomBytes(32).toString('hex')}\n`); break;
  case undefined: case '-h': case '--help': usage(cmd ? 0 : 2); break;
  default:
    process.stderr.write(`verdict: unknown command ${JSON.stringify(cmd)}\n`);
    usage(2);
}
