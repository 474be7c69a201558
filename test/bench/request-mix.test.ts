// The benchmark's request mix: deterministic, and its DecideRequests are the reference builder's
// behind the demo locations (what the Lua gateway sends for the same HTTP requests).
import t from 'tap';
import { decideBodies } from '../../bench/lib/decide-bodies.ts';
import { requestMix, toDecideRequest } from '../../bench/lib/request-mix.ts';
import { DEMO_HMAC_KEY } from '../../bench/traffic/to-request.ts';
import { keyedHash } from '../../decision-service/src/gateway/keyed-hash.ts';
import { decodeDecideRequest } from '../../decision-service/src/wire/codec.ts';

const hash = (v: string) => keyedHash(DEMO_HMAC_KEY, v);

t.test('the same seed gives the same requests', async (t) => {
  t.same(requestMix(200, 7), requestMix(200, 7));
  t.notSame(requestMix(200, 7), requestMix(200, 8));
});

t.test('DecideRequests as the gateway builds them', async (t) => {
  const mix = requestMix(2000);
  const login = mix.findIndex((m) => m.http.path === '/api/auth/login');
  const m = mix[login]!;
  const body = JSON.parse(String(m.http.body)) as { username: string; password: string };
  const req = toDecideRequest(m, login);
  t.match(req, { method: 'POST', path: '/api/auth/login', route_tag: 'auth', identifier: body.username, client_ip: m.clientIp, mode: 'INLINE', budget_ms: 0 });
  t.same(req.password_hash, hash(body.password), 'the password from the body, keyed');
  t.ok(req.header_names.includes('x-forwarded-for'), 'every header nginx receives');
  t.equal(req.header_names.at(-1), 'content-length', 'Content-Length as wrk adds it');

  const orders = mix.findIndex((m) => m.http.path.startsWith('/api/orders/'));
  const o = toDecideRequest(mix[orders]!, orders);
  t.equal(o.route_tag, '');
  t.equal(o.auth_scheme, 'bearer');
  t.same(o.token_hash, hash(mix[orders]!.http.headers.authorization!.slice(7)));

  const products = mix.findIndex((m) => m.http.path.startsWith('/api/products?'));
  t.match(toDecideRequest(mix[products]!, products), { path: '/api/products', query: /^page=\d+$/ });
  const sms = mix.findIndex((m) => m.http.path === '/api/sms/send');
  t.match(toDecideRequest(mix[sms]!, sms), { route_tag: 'sms', identifier: /^138\d{8}$/ });
  const browser = mix.findIndex((m) => m.http.headers.cookie !== undefined);
  const b = toDecideRequest(mix[browser]!, browser);
  t.same(b.cookie_names, ['sid', 'theme']);
  t.same(b.session_hash, hash(/sid=([^;]+)/.exec(mix[browser]!.http.headers.cookie!)![1]!));
});

t.test('the encoded bodies decode as valid DecideRequests', async (t) => {
  const bodies = decideBodies(300);
  t.equal(bodies.length, 300);
  for (const b of bodies) decodeDecideRequest(b, 'protobuf');
  t.pass('all 300 decode');
});

t.test('the all-human mix: a person claims the promo at most once', async (t) => {
  const { humanMix } = await import('../../bench/lib/request-mix.ts');
  const mix = humanMix();
  t.equal(mix.length, 60_000);
  const claims = new Map<string, number>();
  for (const m of mix) {
    if (m.http.path !== '/api/promo/claim') continue;
    const who = m.http.headers.authorization ?? '';
    claims.set(who, (claims.get(who) ?? 0) + 1);
  }
  t.ok(claims.size > 1000, `${claims.size} people claim`);
  t.equal(Math.max(...claims.values()), 1, 'nobody claims twice');
});
