// Policies reload on file change and on SIGHUP without dropping a request; a broken policy is
// rejected with a clear error and the old one stays.

import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { buildApp } from '../../../decision-service/src/app.ts';
import { parseEnv } from '../../../decision-service/src/config/env.ts';
import { createLogger } from '../../../decision-service/src/logger.ts';
import { freePort } from '../../../scripts/lib/nginx.ts';
import { startServiceChild } from '../../../scripts/lib/service.ts';

const BASE = readFileSync('policies/default.yaml', 'utf8');

function tempPolicy(version: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'verdict-reload-'));
  const file = path.join(dir, 'policy.yaml');
  writeFileSync(file, BASE.replace(/^version: .*$/m, `version: "${version}"`));
  return file;
}

t.test('reloadPolicy swaps a valid policy and rejects a broken one, keeping the old', async (t) => {
  const file = tempPolicy('v1');
  const built = buildApp(parseEnv({ VERDICT_POLICY: file, VERDICT_POLICY_WATCH: '0' }), { logger: createLogger('silent') });
  t.teardown(() => built.app.close());
  t.equal(built.engine.policyVersion, 'v1');
  writeFileSync(file, BASE.replace(/^version: .*$/m, 'version: "v2"'));
  t.same(built.reloadPolicy(), { ok: true, version: 'v2' });
  t.equal(built.engine.policyVersion, 'v2');
  writeFileSync(file, BASE.replace(/^version: .*$/m, 'version: "v3"').replace('class: identity', 'class: identiti'));
  const r = built.reloadPolicy();
  t.equal(r.ok, false);
  t.match(r.ok ? '' : r.error, /routes\[\d+\]\.class/);
  t.equal(built.engine.policyVersion, 'v2', 'old policy stays');
  const res = await built.app.inject({ method: 'POST', url: '/v1/decide', payload: { client_ip: '1.2.3.4', method: 'GET', path: '/' } });
  t.equal(res.json().policy_version, 'v2');
  const metrics = (await built.app.inject({ url: '/metrics' })).body;
  t.match(metrics, /verdict_policy_reloads_total\{result="rejected"\} 1/);
  t.match(metrics, /verdict_policy_info\{version="v2"\} 1/);
});

t.test('a running service reloads on file change and on SIGHUP, answering throughout', async (t) => {
  const file = tempPolicy('w1');
  const port = await freePort();
  const { child, stop } = await startServiceChild({ VERDICT_LISTEN: `127.0.0.1:${port}`, VERDICT_POLICY: file, VERDICT_LOG_LEVEL: 'error' }, 20_000);
  t.teardown(stop);
  const version = async () => {
    const r = await fetch(`http://127.0.0.1:${port}/healthz`);
    return ((await r.json()) as { policy_version: string }).policy_version;
  };
  const waitFor = async (v: string) => {
    for (let i = 0; i < 100; i++) {
      if ((await version()) === v) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  };
  t.equal(await version(), 'w1');

  // Keep deciding while the policy changes: no request may fail.
  let failures = 0;
  let done = false;
  const load = (async () => {
    while (!done) {
      const r = await fetch(`http://127.0.0.1:${port}/v1/decide`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"client_ip":"1.2.3.4","method":"GET","path":"/"}' });
      if (r.status !== 200) failures++;
      await r.arrayBuffer();
    }
  })();

  writeFileSync(file, BASE.replace(/^version: .*$/m, 'version: "w2"'));
  t.ok(await waitFor('w2'), 'file change reloads');
  writeFileSync(file, 'version: [broken');
  await new Promise((r) => setTimeout(r, 600));
  t.equal(await version(), 'w2', 'broken edit rejected');
  writeFileSync(file, BASE.replace(/^version: .*$/m, 'version: "w3"'));
  await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGHUP');
  t.ok(await waitFor('w3'), 'SIGHUP (or the watcher) reloads');
  done = true;
  await load;
  t.equal(failures, 0, 'no request failed during reloads');
});

t.test('the watcher survives atomic-rename saves: later edits keep being picked up', async (t) => {
  const file = tempPolicy('r1');
  const built = buildApp(parseEnv({ VERDICT_POLICY: file, VERDICT_POLICY_WATCH: '1' }), { logger: createLogger('silent') });
  t.teardown(() => built.app.close());
  const reached = async (v: string) => {
    for (let i = 0; i < 100 && built.engine.policyVersion !== v; i++) await new Promise((r) => setTimeout(r, 50));
    return built.engine.policyVersion === v;
  };
  t.equal(built.engine.policyVersion, 'r1');
  // `mv new.yaml live.yaml`: the watched path now names another inode.
  const next = path.join(path.dirname(file), '.policy.yaml.new');
  writeFileSync(next, BASE.replace(/^version: .*$/m, 'version: "r2"'));
  renameSync(next, file);
  t.ok(await reached('r2'), 'the rename-over is picked up');
  writeFileSync(file, BASE.replace(/^version: .*$/m, 'version: "r3"'));
  t.ok(await reached('r3'), 'an in-place edit after the rename is picked up');
  writeFileSync(next, BASE.replace(/^version: .*$/m, 'version: "r4"'));
  renameSync(next, file);
  t.ok(await reached('r4'), 'and another rename');
  writeFileSync(path.join(path.dirname(file), 'unrelated.yaml'), 'version: [broken');
  await new Promise((r) => setTimeout(r, 400));
  t.equal(built.engine.policyVersion, 'r4', 'other files in the directory are ignored');
  const m = (await built.app.inject({ url: '/metrics' })).body;
  t.notMatch(m, /verdict_policy_reloads_total\{result="rejected"\}/, 'nothing was rejected');
});
