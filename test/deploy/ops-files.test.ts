// Issue 16, ops files: every metric the Grafana dashboard and the Prometheus alert rules query
// exists — service metrics in a real service's /metrics (with a real Redis store, so the Redis
// gauges are there), gateway metrics in the Lua gateway's metric table; the systemd unit starts
// what `npm run build` produces; the `verdict` bin's commands work against a real service.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../../decision-service/src/app.ts';
import { parseEnv } from '../../decision-service/src/config/env.ts';
import { createLogger } from '../../decision-service/src/logger.ts';
import { repoRoot } from '../../scripts/lib/nginx.ts';
import { startRedis } from '../helpers/redis.ts';

const read = (f: string) => readFileSync(join(repoRoot, f), 'utf8');
const dashboard = JSON.parse(read('deploy/grafana-dashboard.json')) as { panels: Array<{ targets: Array<{ expr: string }> }> };
const alerts = read('deploy/prometheus-alerts.yml');
const queries = [...dashboard.panels.flatMap((p) => p.targets.map((x) => x.expr)), ...[...alerts.matchAll(/expr: (.*)/g)].map((m) => m[1] as string)];
const used = new Set(queries.flatMap((q) => [...q.matchAll(/\bverdict_[a-z0-9_]+/g)].map((m) => (m[0] as string).replace(/_(bucket|sum|count)$/, ''))));

t.test('every metric queried exists', async (t) => {
  t.ok(used.size >= 10, `the files query ${used.size} metrics`);
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const built = buildApp(parseEnv({ VERDICT_POLICY_WATCH: '0', VERDICT_REDIS_URL: redis.url, VERDICT_STATE_DIR: mkdtempSync(join(tmpdir(), 'verdict-state-')) }), { logger: createLogger('silent') });
  t.teardown(() => built.app.close());
  const text = (await built.app.inject({ url: '/metrics' })).body;
  const service = new Set([...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1] as string));
  const gateway = new Set([...read('gateway-plugin/lua/verdict/metrics.lua').matchAll(/^ {2}([a-z_]+) = \{ "(counter|gauge|histogram)"/gm)].map((m) => `verdict_gateway_${m[1]}`));
  t.ok(gateway.has('verdict_gateway_fail_open_total'), 'the gateway metric table is read');
  for (const name of used) t.ok(service.has(name) || gateway.has(name), `${name} exists (${name.startsWith('verdict_gateway_') ? 'gateway' : 'service'})`);
});

t.test('the systemd unit runs the built service and keeps state where the README says', async (t) => {
  const unit = read('deploy/verdict.service');
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string>; bin: Record<string, string> };
  t.match(unit, new RegExp(`ExecStart=/usr/bin/${pkg.scripts['start:dist']?.replace(/\./g, '\\.') ?? 'missing'}`), 'ExecStart is npm run start:dist');
  t.match(unit, /Environment=VERDICT_STATE_DIR=\/var\/lib\/verdict/);
  t.match(unit, /StateDirectory=verdict/);
  for (const [k] of unit.matchAll(/VERDICT_[A-Z_]+/g)) t.ok(k in (await import('../../decision-service/src/config/env.ts')).envSchema.shape, `${k} is a known variable`);
  t.equal(pkg.bin.verdict, 'bin/verdict.mjs');
});

t.test('verdict keygen, policy check, explain', async (t) => {
  const bin = join(repoRoot, 'bin/verdict.mjs');
  t.match(execFileSync(process.execPath, [bin, 'keygen']).toString(), /^[0-9a-f]{64}\n$/);
  t.match(execFileSync(process.execPath, [bin, 'policy', 'check', join(repoRoot, 'policies/default.yaml')]).toString(), /^ok /);
  t.equal(spawnSync(process.execPath, [bin, 'frobnicate']).status, 2, 'an unknown command exits 2');
  const built = buildApp(parseEnv({ VERDICT_POLICY_WATCH: '0', VERDICT_STATE_DIR: mkdtempSync(join(tmpdir(), 'verdict-state-')) }), { logger: createLogger('silent') });
  t.teardown(() => built.app.close());
  await built.app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(built.app.server.address() as { port: number }).port}`;
  await built.app.inject({ method: 'POST', url: '/v1/decide', payload: { request_id: 'cli-stop-1', client_ip: '198.51.100.5', method: 'GET', path: '/actuator/env' } });
  const run = (id: string) => new Promise<{ status: number | null; out: string }>((resolve) => {
    import('node:child_process').then(({ execFile }) => execFile(process.execPath, [bin, 'explain', id, '--url', url], (err, stdout, stderr) => resolve({ status: err ? (err as { code?: number }).code ?? 1 : 0, out: stdout + stderr })));
  });
  const ok = await run('cli-stop-1');
  t.equal(ok.status, 0);
  t.match(ok.out, /^BLOCK GET \/actuator\/env/m);
  t.match(ok.out, /probe\.sensitive_path/);
  const missing = await run('no-such-request');
  t.equal(missing.status, 3, 'an unknown request id exits 3');
  t.match(missing.out, /no audit record/);
});
