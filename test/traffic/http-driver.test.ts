// End to end: a small traffic file through real nginx + the Lua script + the decision service +
// the demo shop, from many loopback source addresses.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot } from '../../scripts/lib/nginx.ts';
import { parseTrafficText } from '../../bench/traffic/format.ts';
import { drive, loopbackFor, startStack } from '../../bench/traffic/http-driver.ts';

t.test('loopback mapping is stable and inside 127.0.0.0/8', async (t) => {
  t.equal(loopbackFor('198.51.100.7'), loopbackFor('198.51.100.7'));
  t.not(loopbackFor('198.51.100.7'), loopbackFor('198.51.100.8'));
  t.match(loopbackFor('2001:db8::1'), /^127\.\d+\.\d+\.\d+$/);
});

t.test('the driver refuses anything but loopback', async (t) => {
  await t.rejects(drive([], { url: 'http://192.0.2.1:80', rate: 1, max: 1 }), /127\.0\.0\.0\/8/);
});

const nginxBin = process.env.VERDICT_NGINX_BIN ?? '/usr/sbin/nginx';
t.test('the fixture through the real stack', { skip: existsSync(nginxBin) ? false : `no nginx at ${nginxBin}` }, async (t) => {
  const stack = await startStack();
  t.teardown(() => stack.stop());
  const lines = parseTrafficText(readFileSync(join(repoRoot, 'test/traffic/fixtures/small.jsonl'), 'utf8'));
  const r = await drive(lines, { url: stack.url, rate: 50, max: 100 });
  t.equal(r.sent, lines.length);
  t.equal(r.statuses['0'] ?? 0, 0, 'no transport errors');
  // what the shop answers without Verdict vs what Verdict enforces (default policy)
  t.equal(r.perLine[1], 200, '/static/app.js is served (location off)');
  t.equal(r.perLine[3], 403, 'orders without credentials: blocked inline by the service');
  t.equal(r.perLine[10], 403, 'a second client without credentials: blocked');
  t.equal(r.perLine[2], 404, 'a login for an unknown phone reaches the shop (404 user not found)');
});
