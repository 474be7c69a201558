import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { compilePathPattern, loadPolicyFile, matchRoute } from '../../../decision-service/src/config/policy.ts';
import { ConfigError } from '../../../decision-service/src/errors.ts';
import { policy } from '../../helpers/policy.ts';

t.test('the shipped default policy compiles and classifies the demo shop', async (t) => {
  const p = loadPolicyFile('policies/default.yaml');
  const cls = (m: string, u: string) => matchRoute(p, m, u, '').class;
  t.equal(cls('GET', '/static/app.js'), 'static');
  t.equal(cls('POST', '/api/auth/login'), 'identity');
  t.equal(cls('POST', '/api/v1/login'), 'identity');
  t.equal(matchRoute(p, 'POST', '/api/v1/login', '').deprecated, true);
  t.equal(cls('GET', '/api/orders/12345'), 'object');
  t.equal(cls('GET', '/api/users/7/profile'), 'object');
  t.equal(cls('GET', '/internal/admin/users'), 'internal');
  t.equal(cls('GET', '/actuator/env'), 'internal');
  t.equal(cls('GET', '/something/else'), 'protected', 'unknown routes fall back to the default class');
  t.ok(Object.isFrozen(p) && Object.isFrozen(p.doc.routes), 'compiled policy is frozen');
});

t.test('path patterns: {id}, * and **', async (t) => {
  const { regex, idSegment } = compilePathPattern('/api/orders/{id}');
  t.ok(regex.test('/api/orders/42'));
  t.notOk(regex.test('/api/orders/42/items'));
  t.equal(idSegment, 3);
  t.ok(compilePathPattern('/static/**').regex.test('/static/a/b/c.css'));
  t.ok(compilePathPattern('/files/*.txt').regex.test('/files/a.txt'));
  t.notOk(compilePathPattern('/files/*.txt').regex.test('/files/a/b.txt'));
  t.notOk(compilePathPattern('/a.b').regex.test('/axb'), 'dots are literal');
});

t.test('route tag and method take part in matching', async (t) => {
  const p = policy({ routes: [
    { name: 'tagged', class: 'identity', path: '/never', route_tag: 'login' },
    { name: 'get-only', class: 'public', methods: ['GET'], path: '/x' },
  ] });
  t.equal(matchRoute(p, 'POST', '/anything', 'login').name, 'tagged');
  t.equal(matchRoute(p, 'GET', '/x', '').name, 'get-only');
  t.equal(matchRoute(p, 'POST', '/x', '').name, 'default');
});

t.test('errors name the file, the path in it and the fix', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'verdict-policy-'));
  const file = path.join(dir, 'bad.yaml');
  writeFileSync(file, [
    'version: x',
    'routes:',
    '  - { name: a, class: secret, path: "/a" }',
    '  - { name: b, class: public, path: "b" }',
    'thresholds: { public: { tag: 90, challenge: 50, block: 80 } }',
    'colour: blue',
  ].join('\n'));
  const err = t.throws(() => loadPolicyFile(file)) as ConfigError;
  t.ok(err instanceof ConfigError);
  t.match(err.message, file);
  t.match(err.message, /routes\[0\]\.class: .*fix: use one of: public, protected/);
  t.match(err.message, /routes\[1\]\.path: .*starts with "\/"/);
  t.match(err.message, /thresholds\.public: .*tag <= challenge <= block/);
  t.match(err.message, /colour.*remove or rename/);

  writeFileSync(file, 'version: x\ninternal_ranges: ["10.0.0.0/33"]\nroutes: [{ name: a, class: public, path: "/" }, { name: a, class: public, path: "/b" }]\n');
  const err2 = t.throws(() => loadPolicyFile(file)) as ConfigError;
  t.match(err2.message, /internal_ranges\[0\]: "10.0.0.0\/33" is not an IP or CIDR/);
  t.match(err2.message, /routes\[1\]\.name: "a" is used twice/);

  writeFileSync(file, 'version: [unclosed\n');
  t.throws(() => loadPolicyFile(file), /invalid YAML in policy .*bad\.yaml/);
  t.throws(() => loadPolicyFile(path.join(dir, 'missing.yaml')), /cannot read policy [^]*set VERDICT_POLICY/);
});

t.test('a bad sensitive-path pattern is reported with its index', async (t) => {
  t.throws(
    () => policy({ detectors: { sensitive_path: { extra_patterns: ['(unclosed'] } } }),
    /detectors\.sensitive_path\.patterns\[\d+\]: .*valid JavaScript regular expression/,
  );
});
