import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bearerHeader, gatewayKey, helloPayload, isLoopback, isLoopbackListen, kidOf, loadGatewayKeys, newChallenge,
  signHttp, verifyBearer, verifyHello, verifyHttp,
} from '../../../decision-service/src/auth/gateway-auth.ts';

const current = gatewayKey('c'.repeat(40));
const previous = gatewayKey('p'.repeat(40));
const other = gatewayKey('o'.repeat(40));
const keys = [current, previous];
const body = Buffer.from('\x0a\x03abc');
const now = 1_800_000_000_000;

t.test('kid is the SHA-1 prefix', async (t) => {
  t.equal(kidOf('abc'), 'a9993e36');
  t.equal(current.kid.length, 8);
});

t.test('HTTP signature: current and previous keys pass; anything else is refused with its reason', async (t) => {
  t.same(verifyHttp(keys, signHttp(current, '/v1/decide', body, now), '/v1/decide', body, now, 30_000), { ok: true, kid: current.kid });
  t.same(verifyHttp(keys, signHttp(previous, '/v1/decide', body, now - 20_000), '/v1/decide', body, now, 30_000), { ok: true, kid: previous.kid }, 'rotation: the previous key, within the skew');
  t.same(verifyHttp(keys, undefined, '/v1/decide', body, now, 30_000), { ok: false, reason: 'missing' });
  t.same(verifyHttp(keys, 'Bearer x', '/v1/decide', body, now, 30_000), { ok: false, reason: 'malformed' });
  t.same(verifyHttp(keys, signHttp(other, '/v1/decide', body, now), '/v1/decide', body, now, 30_000), { ok: false, reason: 'unknown key' });
  t.same(verifyHttp(keys, signHttp(current, '/v1/decide', body, now - 31_000), '/v1/decide', body, now, 30_000), { ok: false, reason: 'stale' });
  t.same(verifyHttp(keys, signHttp(current, '/v1/outcomes', body, now), '/v1/decide', body, now, 30_000), { ok: false, reason: 'bad mac' }, 'signed for another path');
  t.same(verifyHttp(keys, signHttp(current, '/v1/decide', body, now), '/v1/decide', Buffer.from('\x0a\x03abd'), now, 30_000), { ok: false, reason: 'bad mac' }, 'another body');
});

t.test('HELLO answers the challenge of its own connection only', async (t) => {
  const ch = newChallenge();
  t.equal(ch.length, 16);
  t.same(verifyHello(keys, ch, helloPayload(current, ch)), { ok: true, kid: current.kid });
  t.same(verifyHello(keys, ch, helloPayload(previous, ch)), { ok: true, kid: previous.kid });
  t.same(verifyHello(keys, newChallenge(), helloPayload(current, ch)), { ok: false, reason: 'bad mac' }, 'a replayed HELLO from another connection');
  t.same(verifyHello(keys, ch, helloPayload(other, ch)), { ok: false, reason: 'unknown key' });
  t.same(verifyHello(keys, ch, Buffer.from('short')), { ok: false, reason: 'malformed' });
});

t.test('bearer for /v1/auth', async (t) => {
  t.same(verifyBearer(keys, bearerHeader(current)), { ok: true, kid: current.kid });
  t.same(verifyBearer(keys, bearerHeader(other)), { ok: false, reason: 'unknown key' });
  t.same(verifyBearer(keys, `bearer ${current.kid}:${'A'.repeat(27)}=`), { ok: false, reason: 'bad mac' });
  t.notOk(bearerHeader(current).includes('c'.repeat(32)), 'the raw key never travels');
});

t.test('key file: one or two keys; errors name the file, the line and the fix', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'verdict-secret-'));
  const f = (name: string, text: string) => { const p = join(dir, name); writeFileSync(p, text); return p; };
  t.same(loadGatewayKeys(f('one', `${'c'.repeat(40)}\n`)).map((k) => k.kid), [current.kid]);
  t.same(loadGatewayKeys(f('two', `${'c'.repeat(40)}\n${'p'.repeat(40)}\n`)).map((k) => k.kid), [current.kid, previous.kid]);
  t.throws(() => loadGatewayKeys(join(dir, 'missing')), /VERDICT_GATEWAY_SECRET_FILE=.*cannot be read \(ENOENT\)/);
  t.throws(() => loadGatewayKeys(f('short', 'short\n')), /invalid gateway secret/);
  t.throws(() => loadGatewayKeys(f('short2', 'short\n')), /line 1 holds a key of 5 characters; use at least 32/);
  t.throws(() => loadGatewayKeys(f('empty', '\n')), /is empty/);
  t.throws(() => loadGatewayKeys(f('three', `${'a'.repeat(32)}\n${'b'.repeat(32)}\n${'c'.repeat(32)}\n`)), /has 3 keys/);
});

t.test('loopback', async (t) => {
  for (const a of ['127.0.0.1', '127.0.0.2', '::1', '::ffff:127.0.0.1', undefined]) t.ok(isLoopback(a), String(a));
  for (const a of ['10.0.0.1', '192.168.1.2', '::ffff:10.0.0.1', '2001:db8::1', '128.0.0.1']) t.notOk(isLoopback(a), a);
  t.ok(isLoopbackListen('localhost'));
  t.notOk(isLoopbackListen('0.0.0.0'));
  t.notOk(isLoopbackListen('::'));
});
