// Challenges and clearance in the njs gateway (gateway-plugin/CONTRACT.md, issue 13), through a
// REAL nginx running njs/verdict.js:
//  * the shared vectors (spec/clearance-vectors.json, spec/cache-key-vectors.json) run inside
//    nginx by the njs code itself (a test-only location imports verdict.js);
//  * the REAL decision service challenges a promo claim: the 429 descriptor is solved with
//    gateway-plugin/challenge/solver.js, the retry with X-Verdict-Proof passes and sets the
//    cookie, the cookie passes later requests, and a cookie that is tampered with, expired, or
//    sent from another browser or network does not;
//  * a stand-in decision service answers chosen verdicts (challenge kinds, difficulty, TTL) and
//    records the clearance state the gateway sends;
//  * the answer endpoint /.verdict/answer.
// Tokens and nonces the tests forge come from the TypeScript reference
// (decision-service/src/gateway/clearance.ts), so each side checks the other.
import t, { type Test } from 'tap';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, repoRoot, startNginx, type NginxHandle } from '../../scripts/lib/nginx.ts';
import { checkToken, issueNonce, issueToken, type ClearanceKey } from '../../decision-service/src/gateway/clearance.ts';
import { loadClearanceVectors } from '../../gateway-plugin/spec/clearance-vectors.ts';
import { loadCacheKeyVectors } from '../../gateway-plugin/spec/vectors.ts';
import { ask, echoed, type Ask, type Reply } from '../helpers/http.ts';
import { startEchoUpstream } from '../helpers/servers.ts';
import { startService, testPolicy } from '../helpers/service.ts';
import { njsVariant, selectedVariants } from '../helpers/variants.ts';

interface Solver { solve(nonce: string, difficulty: number): string; sha256Hex(text: string): string; leadingZeroBits(hex: string): number }
const solver = createRequire(import.meta.url)('../../gateway-plugin/challenge/solver.js') as Solver;
/** The first proof from counter `from` on whose hash falls short of `difficulty` zero bits (the
 *  next counter after a solution meets a low difficulty by chance: 1 in 2^d). */
function shortOfWork(nonce: string, difficulty: number, from: number): string {
  let c = from;
  while (solver.leadingZeroBits(solver.sha256Hex(`${nonce}.${c}`)) >= difficulty) c++;
  return `${nonce}.${c}`;
}

const K2: ClearanceKey = { id: 'k2', secret: 'k2-test-secret-0123456789abcdef0123456789' };
const K1: ClearanceKey = { id: 'k1', secret: 'k1-test-secret-fedcba9876543210fedcba9876' };
const K3: ClearanceKey = { id: 'k3', secret: 'k3-test-secret-never-listed-0123456789abcd' };
const UA = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';
const OTHER_UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0.0.0 Safari/537.36';
const SUBNET = '127.0.0.0/24'; // the test client, 127.0.0.1
const OTHER_NET = '127.0.1.7'; // a source address in another /24 (any 127/8 address works on Linux)
const PAGE = join(repoRoot, 'gateway-plugin/challenge/page.html');
const NJS = join(repoRoot, 'gateway-plugin/njs/verdict.js');

// Both nginx configs: the clearance keys (k2 signs, k1 verifies) and the bundled challenge files.
const clearanceHttp = `
    js_var $verdict_clearance_keys "${K2.id}:${K2.secret},${K1.id}:${K1.secret}";
    js_var $verdict_njs_challenge_dir ${join(repoRoot, 'gateway-plugin/challenge')};`;

const guard = 'include verdict-njs-location.conf;\n        proxy_pass http://verdict_app;';

const now = () => Math.floor(Date.now() / 1000);
const token = (o: { key?: ClearanceKey; iat?: number; level?: number; ttl?: number; subnet?: string; ua?: string } = {}) =>
  issueToken({ key: o.key ?? K2, now: o.iat ?? now(), level: o.level ?? 8, ttl: o.ttl ?? 3600, subnet: o.subnet ?? SUBNET, ua: o.ua ?? UA });
const checked = (tok: string, ua = UA, subnet = SUBNET) => checkToken(tok, { keys: [K2, K1], now: now(), subnet, ua });

/** The verdict_clearance cookie a reply sets: its value and attributes, or undefined. */
function clearanceCookie(r: Reply): { value: string; attrs: string } | undefined {
  const line = (r.headers['set-cookie'] ?? []).find((c) => c.startsWith('verdict_clearance='));
  if (line === undefined) return undefined;
  const semi = line.indexOf(';');
  return { value: line.slice('verdict_clearance='.length, semi), attrs: line.slice(semi) };
}

interface Descriptor { algorithm: string; difficulty: number; nonce: string; expires: number; answer: { header: string; endpoint: string } }

/** The challenge descriptor of a 429 JSON answer (fails the test when it is not one). */
function descriptorOf(t: Test, r: Reply): Descriptor {
  t.equal(r.status, 429, `429 challenge (got ${r.status}: ${r.body.slice(0, 200)})`);
  t.match(r.headers['content-type'], /application\/json/);
  const body = JSON.parse(r.body) as { error: string; request_id: string; retry_after: number; challenge: Descriptor };
  t.equal(body.error, 'challenge');
  t.match(body.request_id, /^[0-9a-f]{32}$/);
  t.equal(r.headers['retry-after'], String(body.retry_after), 'Retry-After matches retry_after');
  return body.challenge;
}

/** c1.<kid>.<iat>.<exp>.<difficulty>.<ttl>.<nh>.<uh>.<rand>.<sig> */
function nonceFields(nonce: string) {
  const [c1, kid, iat, exp, difficulty, ttl] = nonce.split('.');
  return { c1, kid, iat: Number(iat), exp: Number(exp), difficulty: Number(difficulty), ttl: Number(ttl) };
}

const htmlUnescape = (s: string) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

// ------------------------------------------------------------------ a stand-in decision service

interface StandIn {
  port: number;
  /** the DecideResponse (JSON) the next calls get */
  answer: Record<string, unknown>;
  /** the DecideRequests received, oldest first */
  seen: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

async function startStandIn(): Promise<StandIn> {
  const state: StandIn = { port: 0, answer: { action: 'ALLOW' }, seen: [], close: async () => {} };
  const srv: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => { body += d.toString(); });
    req.on('end', () => {
      state.seen.push(JSON.parse(body) as Record<string, unknown>);
      // njs 0.7.9's fetch completes only when the server closes the connection
      res.writeHead(200, { 'content-type': 'application/json', connection: 'close' });
      res.end(JSON.stringify(state.answer));
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const addr = srv.address();
  state.port = typeof addr === 'object' && addr ? addr.port : 0;
  state.close = () => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); });
  return state;
}

// A template with every placeholder (NONCE twice: every occurrence is replaced).
const OWN_TEMPLATE = `<!doctype html><html lang="{{LANG}}"><head>{{NOJS}}</head><body>
<p id="nonce">{{NONCE}}</p><p id="again">{{NONCE}}</p><p id="difficulty">{{DIFFICULTY}}</p>
<p id="return">{{RETURN_URL}}</p><p id="answer">{{ANSWER_URL}}</p><p id="request">{{REQUEST_ID}}</p>
<p id="unknown">{{NOT_A_PLACEHOLDER}}</p><script>{{SOLVER}}</script></body></html>`;

function field(html: string, id: string): string {
  const m = new RegExp(`<p id="${id}">([^<]*)</p>`).exec(html);
  if (!m) throw new Error(`no #${id} in the page: ${html.slice(0, 300)}`);
  return m[1] ?? '';
}

// The test-only njs module: runs the njs contract functions over posted vectors. A vector's client
// is bound from its address (client_ip), through the njs subnet(), as a request's would be.
const VECTOR_RUNNER = `import verdict from '${NJS}';
const c = verdict.clearance;
const bind = (subnet, ua, ip) => c.binding(ip === undefined ? subnet : c.subnet(ip), ua);
function run(r) {
  const v = JSON.parse(r.requestText);
  r.headersOut['Content-Type'] = 'application/json';
  r.return(200, JSON.stringify({
    subnets: v.subnets.map((ip) => c.subnet(ip)),
    derive: v.derive.map((d) => c.keyList('', d.hmac_key).list[0]),
    net_hash: v.net_hash.map((n) => { const s = n.ip === null ? n.subnet : c.subnet(n.ip); return { subnet: s, nh: bind(s, '').nh }; }),
    ua_hash: v.ua_hash.map((u) => bind('', u.ua).uh),
    mac: v.mac.map((m) => c.mac(m.secret, m.text)),
    nonces: v.nonces.map((n) => c.issueNonce(n.key, bind(n.subnet, n.ua, n.client_ip), n.now, n.difficulty, n.ttl, n.nojs_wait_s, n.rand)),
    tokens: v.tokens.map((n) => c.issueToken(n.key, bind(n.subnet, n.ua, n.client_ip), n.now, n.level, n.ttl)),
    proof_checks: v.proof_checks.map((p) => c.checkProof(p.proof, p.keys, bind(p.subnet, p.ua, p.client_ip), p.now)),
    token_checks: v.token_checks.map((p) => c.checkToken(p.token, p.keys, bind(p.subnet, p.ua, p.client_ip), p.now)),
    keys: v.keys.map((k) => c.keyList(k.raw, k.hmac_key)),
  }));
}
export default { run };
`;

if (!selectedVariants().some((v) => v.name === 'njs')) {
  t.pass('njs variant not selected (VERDICT_GATEWAY_VARIANTS)');
} else {
  t.test('njs: shared vectors inside nginx', vectorCases);
  t.test('njs: the real decision service challenges, a solved proof clears', realServiceCases);
  t.test('njs: challenge kinds, the page, the clearance sent to the service, the answer endpoint', standInCases);
}

// ------------------------------------------------------------------ vectors

async function vectorCases(t: Test): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'verdict-njs-vectors-'));
  chmodSync(dir, 0o755);
  const runner = join(dir, 'clearance-vectors.js');
  writeFileSync(runner, VECTOR_RUNNER);
  chmodSync(runner, 0o644);
  const nginx = await startNginx({
    variant: 'njs',
    upstream: '127.0.0.1:9',
    service: '127.0.0.1:9',
    extraHttp: `    js_import clearance_vectors from ${runner};`,
    locations: `
    location = /clearance-vectors {
        client_max_body_size 4m;
        client_body_buffer_size 4m;
        js_content clearance_vectors.run;
    }`,
  });
  t.teardown(() => nginx.stop());

  const v = loadClearanceVectors();
  const cacheKeys = loadCacheKeyVectors();
  const keyCases = [
    { raw: `${K2.id}:${K2.secret}, ${K1.id}:${K1.secret}`, hmac_key: 'verdict-test-hmac-key-0123456789', ids: ['k2', 'k1'], bad: [] },
    { raw: `${K2.id}:short,bad id:${K1.secret},${K1.id}:${K1.secret}`, hmac_key: 'verdict-test-hmac-key-0123456789', ids: ['k1'], bad: ['k2', '#2'] },
    // no colon: the entry may be a bare secret, so it is named by position, never quoted
    { raw: K3.secret, hmac_key: 'verdict-test-hmac-key-0123456789', ids: [v.derive[0]!.id], bad: ['#1'] },
    { raw: '', hmac_key: 'short', ids: [], bad: [] },
  ];
  const res = await fetch(`${nginx.url}/clearance-vectors`, {
    method: 'POST',
    body: JSON.stringify({ ...v, subnets: cacheKeys.map((c) => c.ip), keys: keyCases }),
  });
  t.equal(res.status, 200, 'the runner answers');
  if (res.status !== 200) {
    t.comment(nginx.errorLog().slice(-2000));
    return;
  }
  interface Got {
    subnets: Array<string | null>;
    derive: Array<{ id: string; secret: string }>;
    net_hash: Array<{ subnet: string | null; nh: string }>;
    ua_hash: string[];
    mac: string[];
    nonces: string[];
    tokens: string[];
    proof_checks: Array<{ why: string; level: number; ttl: number; rand: string; exp: number }>;
    token_checks: Array<{ state: string; why: string; level: number; age: number }>;
    keys: Array<{ list: Array<{ id: string }>; bad: string[] }>;
  }
  const got = await res.json() as Got;

  cacheKeys.forEach(({ ip, subnet }, i) => t.equal(got.subnets[i], subnet, `subnet ${JSON.stringify(ip)} -> ${subnet}`));
  v.derive.forEach((d, i) => t.same(got.derive[i], { id: d.id, secret: d.secret }, `derived key of ${JSON.stringify(d.hmac_key)}`));
  v.net_hash.forEach((n, i) => t.same(got.net_hash[i], { subnet: n.subnet, nh: n.nh }, `nh of ${n.ip ?? JSON.stringify(n.subnet)}`));
  v.ua_hash.forEach((u, i) => t.equal(got.ua_hash[i], u.uh, `uh of ${JSON.stringify(u.ua)}`));
  v.mac.forEach((m, i) => t.equal(got.mac[i], m.mac, `mac of ${JSON.stringify(m.text)}`));
  v.nonces.forEach((n, i) => t.equal(got.nonces[i], n.nonce, `nonce: ${n.name}`));
  v.tokens.forEach((n, i) => t.equal(got.tokens[i], n.token, `token: ${n.name}`));
  v.proof_checks.forEach((p, i) => {
    const g = got.proof_checks[i]!;
    const mine = g.why === '' ? { ok: true, level: g.level, ttl: g.ttl, rand: g.rand, exp: g.exp } : { ok: false, why: g.why };
    if (!p.expect.ok && p.expect.why === 'reused') {
      t.pass(`proof: ${p.name}`, { skip: njsVariant.lacks.singleUseProof });
      return;
    }
    t.same(mine, p.expect, `proof: ${p.name}`);
  });
  v.token_checks.forEach((c, i) => {
    const g = got.token_checks[i]!;
    const mine = g.state === 'valid' ? { state: 'valid', level: g.level, age_s: g.age }
      : g.state === 'invalid' ? { state: 'invalid', why: g.why } : { state: g.state };
    t.same(mine, c.expect, `token: ${c.name}`);
  });
  keyCases.forEach((k, i) => {
    t.same(got.keys[i]!.list.map((x) => x.id), k.ids, `keys ${JSON.stringify(k.raw)}: ids`);
    t.same(got.keys[i]!.bad, k.bad, `keys ${JSON.stringify(k.raw)}: skipped entries named by id, never by secret`);
  });
}

// ------------------------------------------------------------------ the real decision service

async function realServiceCases(t: Test): Promise<void> {
  const upstream = await startEchoUpstream();
  const policy = testPolicy([
    // promo routes only challenge (101 disables block), whatever the other detectors add
    [/promo:\s+\{[^}]*\}/, 'promo: { tag: 60, challenge: 60, block: 101 }'],
    // a test client polls at machine speed: the (correct) machine-timing verdict must not depend on luck
    [/automation:\n    enabled: true/, 'automation:\n    enabled: false'],
    // cheap proofs: tests solve them synchronously
    ['detectors:\n', 'challenge: { kind: pow, difficulty: 8, max_difficulty: 10 }\ndetectors:\n'],
  ]);
  const service = await startService({ policy });
  const nginx: NginxHandle = await startNginx({
    variant: 'njs',
    upstream: `127.0.0.1:${upstream.port}`,
    service: service.addr,
    extraHttp: clearanceHttp,
    locations: `
    set $verdict_budget_ms 1000;
    location /api/ { ${guard} }
    location / { ${guard} }`,
  });
  t.teardown(async () => {
    await nginx.stop();
    await service.stop();
    await upstream.close();
  });
  const claim = (o: Ask = {}) => ask(`${nginx.url}/api/promo/claim`, {
    method: 'POST',
    body: '{}',
    ...o,
    headers: { 'content-type': 'application/json', 'user-agent': UA, ...o.headers },
  });

  let cookie = '';
  await t.test('an API request is challenged with a 429 descriptor; the solved proof passes and sets the cookie', async (t) => {
    const d = descriptorOf(t, await claim());
    t.equal(d.algorithm, 'sha256-leading-zero-bits');
    t.same(d.answer, { header: 'X-Verdict-Proof', endpoint: '/.verdict/answer' });
    t.ok(d.difficulty >= 8 && d.difficulty <= 10, `the service's difficulty (${d.difficulty})`);
    const f = nonceFields(d.nonce);
    t.equal(f.c1, 'c1');
    t.equal(f.kid, 'k2', 'signed with the first key');
    t.equal(f.difficulty, d.difficulty);
    t.equal(f.exp, d.expires);
    t.equal(f.exp - f.iat, 300, 'a challenge lives 5 minutes');
    t.equal(f.ttl, 3600, "the service's clearance TTL");

    const hits = upstream.hits;
    const r = await claim({ headers: { 'x-verdict-proof': solver.solve(d.nonce, d.difficulty) } });
    t.equal(r.status, 200, 'the request with the proof passes');
    t.equal(upstream.hits, hits + 1, 'and reaches the upstream');
    t.equal(echoed(r).method, 'POST');
    const c = clearanceCookie(r);
    if (!t.ok(c, 'the response sets verdict_clearance')) return;
    t.equal(c!.attrs, '; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax');
    t.same(checked(c!.value), { state: 'valid', level: d.difficulty, ageS: 0 }, 'a valid token for this client (TS reference)');
    cookie = c!.value;
  });

  await t.test('the cookie passes later requests', async (t) => {
    for (let i = 0; i < 3; i++) {
      const r = await claim({ headers: { cookie: `sid=x; verdict_clearance=${cookie}` } });
      t.equal(r.status, 200, `request ${i + 1}`);
      t.equal(clearanceCookie(r), undefined, 'no new cookie');
    }
  });

  await t.test('a cookie that does not fit is challenged again', async (t) => {
    const tampered = cookie.replace(/\.(\d+)\.(\d+)\./, (_, iat: string, exp: string) => `.${iat}.${Number(exp) + 86400}.`);
    const cases: Array<[string, Ask]> = [
      ['another User-Agent', { headers: { cookie: `verdict_clearance=${cookie}`, 'user-agent': OTHER_UA } }],
      ['no User-Agent', { headers: { cookie: `verdict_clearance=${cookie}`, 'user-agent': '' } }],
      ['another network', { headers: { cookie: `verdict_clearance=${cookie}` }, localAddress: OTHER_NET }],
      ['exp pushed back (tampered)', { headers: { cookie: `verdict_clearance=${tampered}` } }],
      ['expired', { headers: { cookie: `verdict_clearance=${token({ iat: now() - 7200, ttl: 3600 })}` } }],
      ['signed with a key not listed', { headers: { cookie: `verdict_clearance=${token({ key: K3 })}` } }],
      ['garbage', { headers: { cookie: 'verdict_clearance=hello' } }],
    ];
    for (const [what, o] of cases) {
      const r = await claim(o);
      t.equal(r.status, 429, `${what}: challenged`);
    }
    t.equal((await claim({ headers: { cookie: `verdict_clearance=${token({ key: K1, level: 10 })}` } })).status, 200,
      'a token of the previous key (still listed) passes');
  });

  await t.test('a page navigation gets the bundled challenge page', { skip: existsSync(PAGE) ? false : 'gateway-plugin/challenge/page.html is not written yet' }, async (t) => {
    const r = await claim({ headers: { accept: 'text/html,application/xhtml+xml', referer: `${nginx.url}/promo?from=nav` } });
    t.equal(r.status, 429, 'status $verdict_challenge_status');
    t.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    t.equal(r.headers['cache-control'], 'no-store');
    t.notMatch(r.body, /\{\{[A-Z_]+\}\}/, 'every placeholder is filled');
    t.match(r.body, /c1\.k2\.\d+\./, 'the nonce is in the page');
    t.ok(r.body.includes(readFileSync(join(repoRoot, 'gateway-plugin/challenge/solver.js'), 'utf8').slice(0, 200)), 'the solver is inlined');
  });
}

// ------------------------------------------------------------------ the stand-in service

async function standInCases(t: Test): Promise<void> {
  const upstream = await startEchoUpstream();
  const stand = await startStandIn();
  const dir = mkdtempSync(join(tmpdir(), 'verdict-njs-page-'));
  chmodSync(dir, 0o755);
  const own = join(dir, 'page.html');
  writeFileSync(own, OWN_TEMPLATE);
  chmodSync(own, 0o644);
  const appPort = await freePort();
  const nginx: NginxHandle = await startNginx({
    variant: 'njs',
    upstream: `127.0.0.1:${upstream.port}`,
    service: `127.0.0.1:${stand.port}`,
    extraHttp: `${clearanceHttp}
    js_var $verdict_challenge_template;
    # an application that sets its own cookie
    server {
        listen 127.0.0.1:${appPort};
        location / { add_header Set-Cookie "app=1; Path=/"; return 200 "app"; }
    }`,
    locations: `
    set $verdict_budget_ms 1000;
    set $verdict_challenge_difficulty 8;
    location /inline/ { set $verdict_cleared inline; ${guard} }
    location /app/ {
        set $verdict_cleared inline;
        include verdict-njs-location.conf;
        proxy_pass http://127.0.0.1:${appPort};
    }
    location /redirect/ { set $verdict_challenge_url "https://shop.example.com/challenge"; ${guard} }
    location /own/ {
        set $verdict_challenge_template ${own};
        set $verdict_cleared inline;
        set $verdict_challenge_nojs_wait_s 2;
        ${guard}
    }
    location /missing/ { set $verdict_challenge_template ${join(dir, 'nope.html')}; ${guard} }
    location /monitor/ { set $verdict_mode monitor; ${guard} }
    location / { ${guard} }`,
  });
  t.teardown(async () => {
    await nginx.stop();
    await stand.close();
    await upstream.close();
  });
  const url = nginx.url;
  const get = (path: string, o: Ask = {}) => ask(`${url}${path}`, { ...o, headers: { 'user-agent': UA, ...o.headers } });
  const lastSeen = () => stand.seen[stand.seen.length - 1] ?? {};
  const challenge = (c: Record<string, unknown> = {}) => { stand.answer = { action: 'CHALLENGE', score: 70, ...c }; };
  const allow = () => { stand.answer = { action: 'ALLOW' }; };

  await t.test('the clearance state goes to the service (inline)', async (t) => {
    allow();
    const cases: Array<[string, Ask, Record<string, unknown>]> = [
      ['no cookie', {}, { clearance: 'NONE', clearance_level: 0, clearance_age_s: 0 }],
      ['a valid token', { headers: { cookie: `verdict_clearance=${token({ iat: now() - 30, level: 12 })}` } }, { clearance: 'VALID', clearance_level: 12 }],
      ['a token of the previous key', { headers: { cookie: `verdict_clearance=${token({ key: K1, level: 9 })}` } }, { clearance: 'VALID', clearance_level: 9 }],
      ['an expired token', { headers: { cookie: `verdict_clearance=${token({ iat: now() - 100, ttl: 60 })}` } }, { clearance: 'EXPIRED', clearance_level: 0, clearance_age_s: 0 }],
      ['a key not listed', { headers: { cookie: `verdict_clearance=${token({ key: K3 })}` } }, { clearance: 'INVALID', clearance_level: 0 }],
      ['another browser', { headers: { cookie: `verdict_clearance=${token()}`, 'user-agent': OTHER_UA } }, { clearance: 'INVALID' }],
      ['another network', { headers: { cookie: `verdict_clearance=${token()}` }, localAddress: OTHER_NET }, { clearance: 'INVALID' }],
      ['an empty cookie', { headers: { cookie: 'verdict_clearance=' } }, { clearance: 'NONE' }],
    ];
    for (const [what, o, want] of cases) {
      const r = await get('/inline/x', o);
      t.equal(r.status, 200, `${what}: passes (ALLOW)`);
      t.match(lastSeen(), want, `${what}: ${JSON.stringify(want)}`);
    }
    await get('/inline/x', { headers: { cookie: `verdict_clearance=${token({ iat: now() - 30 })}` } });
    const age = lastSeen().clearance_age_s as number;
    t.ok(age >= 30 && age <= 32, `clearance_age_s is the token's age (${age})`);
  });

  await t.test('$verdict_cleared async (the default): a valid token skips the call', async (t) => {
    stand.answer = { action: 'BLOCK', score: 100 };
    const calls = stand.seen.length;
    const r = await get('/x', { headers: { cookie: `verdict_clearance=${token()}` } });
    t.equal(r.status, 200, 'passes without asking');
    t.equal(stand.seen.length, calls, 'no decide call');
    t.equal((await get('/x', { headers: { cookie: `verdict_clearance=${token({ key: K3 })}` } })).status, 403, 'an invalid token is decided (blocked)');
    t.equal((await get('/monitor/x', { headers: { cookie: `verdict_clearance=${token()}` } })).status, 200, 'monitor still asks');
    t.equal(stand.seen.length, calls + 2, 'the invalid and the monitor request were decided');
  });

  await t.test('POW: the descriptor carries the verdict\'s difficulty and TTL, else the location\'s', async (t) => {
    challenge({ challenge_kind: 'POW', challenge_difficulty: 6, clearance_ttl_s: 600 });
    let d = descriptorOf(t, await get('/inline/api'));
    t.equal(d.difficulty, 6);
    t.match(nonceFields(d.nonce), { difficulty: 6, ttl: 600, kid: 'k2' });
    challenge({ challenge_kind: 1 });
    d = descriptorOf(t, await get('/inline/api'));
    t.match(nonceFields(d.nonce), { difficulty: 8, ttl: 3600 }, 'kind by number; 0 = $verdict_challenge_difficulty and $verdict_clearance_ttl_s');
    challenge();
    d = descriptorOf(t, await get('/inline/api'));
    t.equal(d.difficulty, 8, 'no kind (DEFAULT) without $verdict_challenge_url is POW');
    t.equal((await get('/inline/api')).headers['retry-after'], '30', '$verdict_challenge_retry_after');
  });

  await t.test('PAGE, STATUS and DEFAULT with $verdict_challenge_url', async (t) => {
    challenge();
    let r = await get('/redirect/x');
    t.equal(r.status, 302, 'DEFAULT with a challenge URL: 302');
    t.equal(r.headers.location, 'https://shop.example.com/challenge');
    challenge({ challenge_kind: 'PAGE' });
    r = await get('/redirect/x');
    t.equal(r.status, 302, 'PAGE: 302');
    r = await get('/inline/x');
    t.equal(r.status, 429, 'PAGE without a challenge URL: the proof-of-work challenge');
    t.ok(JSON.parse(r.body).challenge, 'with a descriptor');
    challenge({ challenge_kind: 'STATUS' });
    r = await get('/redirect/x');
    t.equal(r.status, 429, 'STATUS: $verdict_challenge_status');
    t.equal(r.headers['retry-after'], '30');
    const body = JSON.parse(r.body);
    t.same(Object.keys(body), ['error', 'request_id', 'retry_after'], 'the pre-clearance body, no descriptor');
    challenge({ challenge_kind: 'SOMETHING_NEW' });
    t.equal((await get('/redirect/x')).status, 302, 'an unknown kind is DEFAULT');
  });

  await t.test('X-Verdict-Proof: a valid proof counts as the token it earns; the response sets the cookie', async (t) => {
    challenge({ challenge_kind: 'POW', challenge_difficulty: 6, clearance_ttl_s: 600 });
    const d = descriptorOf(t, await get('/app/x'));
    const proof = solver.solve(d.nonce, d.difficulty);
    allow();
    const r = await get('/app/x', { headers: { 'x-verdict-proof': proof } });
    t.equal(r.status, 200);
    t.equal(r.body, 'app');
    t.match(lastSeen(), { clearance: 'VALID', clearance_level: 6, clearance_age_s: 0 }, 'sent as VALID, age 0');
    const cookies = r.headers['set-cookie'] ?? [];
    t.equal(cookies.length, 2, 'the application\'s cookie and the clearance');
    t.equal(cookies[0], 'app=1; Path=/', 'the application\'s own Set-Cookie stays first');
    const c = clearanceCookie(r);
    t.equal(c?.attrs, '; Path=/; Max-Age=600; HttpOnly; SameSite=Lax', 'Max-Age is the nonce\'s TTL');
    t.match(checked(c?.value ?? ''), { state: 'valid', level: 6 });

    challenge({ challenge_kind: 'POW', challenge_difficulty: 12 });
    const again = await get('/inline/x', { headers: { 'x-verdict-proof': proof } });
    t.equal(again.status, 429, 'the service may still challenge (a higher level)');
    t.ok(clearanceCookie(again), 'and that answer still sets the cookie the proof earned');

    allow();
    await get('/inline/x', { headers: { 'x-verdict-proof': `${proof.slice(0, -1)}x` } });
    t.match(lastSeen(), { clearance: 'NONE' }, 'a rejected proof is ignored');
    await get('/inline/x', { headers: { 'x-verdict-proof': proof, cookie: `verdict_clearance=${token({ key: K3 })}` } });
    t.match(lastSeen(), { clearance: 'VALID', clearance_level: 6 }, 'a valid proof beats an invalid cookie');
    await get('/inline/x', { headers: { 'x-verdict-proof': proof, 'user-agent': OTHER_UA } });
    t.match(lastSeen(), { clearance: 'NONE' }, 'a proof from another browser is ignored');
  });

  await t.test('a navigation gets the page, filled from the template', async (t) => {
    challenge({ challenge_kind: 'POW' });
    const r = await get('/own/shop?q=1&x=%3Cy%3E', { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8', 'accept-language': 'zh-TW,zh;q=0.9,en;q=0.5' } });
    t.equal(r.status, 429);
    t.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    t.equal(r.headers['cache-control'], 'no-store');
    t.equal(r.headers['retry-after'], undefined);
    const html = r.body;
    t.match(html, /<html lang="zh-CN">/, '{{LANG}}: zh-CN when the first language is zh-*');
    const nonce = field(html, 'nonce');
    t.match(nonce, /^c1\.k2\./);
    t.equal(field(html, 'again'), nonce, 'every occurrence is replaced');
    t.equal(field(html, 'difficulty'), '8');
    t.equal(htmlUnescape(field(html, 'return')), '/own/shop?q=1&x=%3Cy%3E', '{{RETURN_URL}}: the request URI with its query');
    t.match(field(html, 'return'), /&amp;/, 'HTML-escaped');
    t.equal(field(html, 'answer'), '/.verdict/answer');
    t.match(field(html, 'request'), /^[0-9a-f]{32}$/);
    t.equal(field(html, 'unknown'), '{{NOT_A_PLACEHOLDER}}', 'other braces stay');
    t.ok(html.includes(readFileSync(join(repoRoot, 'gateway-plugin/challenge/solver.js'), 'utf8')), '{{SOLVER}}: solver.js as is');
    const meta = /<meta http-equiv="refresh" content="2;url=([^"]+)">/.exec(html);
    t.ok(meta, '{{NOJS}}: offered at the location\'s difficulty, after $verdict_challenge_nojs_wait_s');

    // the no-JS fallback end to end: too early, then a level-0 clearance
    const answerUrl = htmlUnescape(meta?.[1] ?? '');
    t.match(answerUrl, /^\/\.verdict\/answer\?proof=c1\.k2\.\d+\.\d+\.0\.3600\.[^&]+\.0&return=%2Fown%2Fshop%3Fq%3D1%26x%3D%253Cy%253E$/);
    const nojsNonce = /proof=([^&]+)\.0&/.exec(answerUrl)?.[1] ?? '';
    t.equal(nonceFields(nojsNonce).iat, nonceFields(nonce).iat + 2, 'the no-JS nonce has the wait signed in (iat = issue time + the wait)');
    const early = await get(answerUrl);
    t.equal(early.status, 403);
    t.same(JSON.parse(early.body), { error: 'proof rejected', why: 'too early' });
    await new Promise((r) => setTimeout(r, 2100));
    const late = await get(answerUrl);
    t.equal(late.status, 303, 'after the wait: 303');
    t.match(late.headers.location, /\/own\/shop\?q=1&x=%3Cy%3E$/, 'back where the person was');
    t.match(checked(clearanceCookie(late)?.value ?? ''), { state: 'valid', level: 0 }, 'a level-0 clearance');

    challenge({ challenge_kind: 'POW', challenge_difficulty: 12 });
    const hard = await get('/own/x', { headers: { 'sec-fetch-mode': 'navigate', 'accept-language': 'de-DE,zh;q=0.5' } });
    t.equal(hard.status, 429);
    t.match(hard.body, /<html lang="en">/, '{{LANG}}: en otherwise');
    t.notMatch(hard.body, /http-equiv/, 'no no-JS fallback above the location\'s difficulty');
    t.equal(field(hard.body, 'difficulty'), '12');
  });

  await t.test('what is a navigation, and where a challenged POST returns to', async (t) => {
    challenge({ challenge_kind: 'POW' });
    let r = await get('/own/x', { headers: { accept: 'text/html', 'sec-fetch-mode': 'cors' } });
    t.match(r.headers['content-type'], /application\/json/, 'Sec-Fetch-Mode other than navigate: JSON, whatever Accept says');
    r = await get('/own/x', { headers: { accept: 'application/json' } });
    t.match(r.headers['content-type'], /application\/json/, 'no Sec-Fetch-Mode, no text/html: JSON');
    const post = (referer: string) => get('/own/form', { method: 'POST', body: 'a=1', headers: { accept: 'text/html', referer, 'content-type': 'application/x-www-form-urlencoded' } });
    r = await post(`http://127.0.0.1:${nginx.port}/promo/form?step=2`);
    t.equal(field(r.body, 'return'), '/promo/form', 'POST: the path of a same-host Referer');
    r = await post('https://evil.example/promo');
    t.equal(field(r.body, 'return'), '/', 'POST: another host\'s Referer is "/"');
    r = await get('/own/form', { method: 'POST', body: 'a=1', headers: { accept: 'text/html' } });
    t.equal(field(r.body, 'return'), '/', 'POST without a Referer: "/"');
  });

  await t.test('a template that cannot be read: the JSON challenge, and an error in the log', async (t) => {
    challenge({ challenge_kind: 'POW' });
    const r = await get('/missing/x', { headers: { accept: 'text/html' } });
    descriptorOf(t, r);
    t.match(nginx.errorLog(), /cannot read the challenge page/);
  });

  await t.test('the answer endpoint', async (t) => {
    challenge({ challenge_kind: 'POW', challenge_difficulty: 6, clearance_ttl_s: 900 });
    const d = descriptorOf(t, await get('/inline/api'));
    const proof = solver.solve(d.nonce, d.difficulty);
    const answer = (query: string, o: Ask = {}) => get(`/.verdict/answer?${query}`, o);

    let r = await answer(`proof=${encodeURIComponent(proof)}&return=${encodeURIComponent('/promo?x=1')}`);
    t.equal(r.status, 303);
    t.match(r.headers.location, /^(http:\/\/[^/]+)?\/promo\?x=1$/);
    t.equal(clearanceCookie(r)?.attrs, '; Path=/; Max-Age=900; HttpOnly; SameSite=Lax');

    r = await answer(`proof=${encodeURIComponent(proof)}`, { method: 'POST', body: '' });
    t.equal(r.status, 200, 'POST, no return: 200 JSON');
    const body = JSON.parse(r.body) as { clearance: string; expires: number; level: number };
    t.same(Object.keys(body), ['clearance', 'expires', 'level']);
    t.equal(body.level, 6);
    t.ok(Math.abs(body.expires - (now() + 900)) <= 2, 'expires = now + the nonce\'s TTL');
    t.equal(clearanceCookie(r)?.value, body.clearance, 'the cookie carries the same token');
    t.match(checked(body.clearance), { state: 'valid', level: 6 });

    for (const bad of ['//evil.example/x', 'https://evil.example/', '/\\evil.example', 'promo', '']) {
      r = await answer(`proof=${encodeURIComponent(proof)}&return=${encodeURIComponent(bad)}`);
      t.match(r.headers.location, /^(http:\/\/[^/]+)?\/$/, `return ${JSON.stringify(bad)}: "/"`);
    }
    r = await answer(`proof=${encodeURIComponent(proof)}&return=${encodeURIComponent('/a\r\nSet-Cookie: evil=1')}`);
    t.match(r.headers.location, /\/a%0D%0ASet-Cookie:%20evil=1$/, 'CR LF are %-encoded, not headers');
    t.notOk((r.headers['set-cookie'] ?? []).some((c) => c.startsWith('evil')), 'no injected header');

    // difficulty-0 nonces issued `at` (their iat: at + the default no-JS wait, 5 s)
    const forged = (o: { key?: ClearanceKey; at?: number }) =>
      issueNonce({ key: o.key ?? K2, now: o.at ?? now(), difficulty: 0, ttl: 3600, subnet: SUBNET, ua: UA });
    const rejected: Array<[string, string, Ask?]> = [
      ['malformed', ''],
      ['malformed', 'proof=hello'],
      ['unknown key', `proof=${forged({ key: K3, at: now() - 10 })}.0`],
      ['bad signature', `proof=${d.nonce.slice(0, -2)}AA.0`],
      ['expired', `proof=${forged({ at: now() - 400 })}.0`],
      ['network', `proof=${encodeURIComponent(proof)}`, { localAddress: OTHER_NET }],
      ['browser', `proof=${encodeURIComponent(proof)}`, { headers: { 'user-agent': OTHER_UA } }],
      ['work', `proof=${shortOfWork(d.nonce, d.difficulty, Number(proof.slice(proof.lastIndexOf('.') + 1)) + 1)}`],
      ['work', `proof=${forged({ at: now() - 10 })}.1`],
      ['too early', `proof=${forged({})}.0`],
    ];
    for (const [why, query, o] of rejected) {
      r = await answer(query, o);
      t.equal(r.status, 403, `${why}: 403`);
      t.same(JSON.parse(r.body), { error: 'proof rejected', why }, `${why} (${query.slice(0, 40)})`);
      t.equal(clearanceCookie(r), undefined, `${why}: no cookie`);
    }
    t.equal((await answer(`proof=${forged({ key: K1, at: now() - 10 })}.0`)).status, 200, 'a nonce of the previous key (still listed) is answered');

    t.equal((await get(`/.verdict/answer?proof=${proof}`, { method: 'PUT', body: '' })).status, 405, 'PUT: 405');
    t.equal((await get('/.verdict/other')).status, 404, 'other /.verdict/ paths: 404');
  });

  await t.test('a proof is single-use', { skip: njsVariant.lacks.singleUseProof }, async (t) => {
    challenge({ challenge_kind: 'POW', challenge_difficulty: 6 });
    const d = descriptorOf(t, await get('/inline/api'));
    const proof = solver.solve(d.nonce, d.difficulty);
    t.equal((await get(`/.verdict/answer?proof=${proof}`)).status, 200);
    const again = await get(`/.verdict/answer?proof=${proof}`);
    t.same(JSON.parse(again.body), { error: 'proof rejected', why: 'reused' });
  });
}
