// The challenge and clearance contract (gateway-plugin/CONTRACT.md, issue 13): the TypeScript
// reference (decision-service/src/gateway/clearance.ts) against the shared vectors
// (gateway-plugin/spec/clearance-vectors.json), the vectors against their generator, and the
// reference solver (gateway-plugin/challenge/solver.js) against the reference checker: its
// SHA-256 against node:crypto, its proofs through checkProof, fetchWithClearance against a
// server that challenges. The Lua and njs gateways replay the same vectors in their own tests.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../scripts/lib/nginx.ts';
import { subnetOf } from '../../decision-service/src/net/ip.ts';
import {
  checkProof, checkToken, deriveKey, issueNonce, issueToken, mac, netHash, parseKeys, readNonce, uaHash, validateKeys,
  type ClearanceKey, type ProofCheck,
} from '../../decision-service/src/gateway/clearance.ts';
import {
  buildClearanceVectors, clearanceVectorsPath, loadClearanceVectors, namedOutcome, proofOutcome, renderClearanceVectors, tokenOutcome,
} from '../../gateway-plugin/spec/clearance-vectors.ts';

interface Solver {
  solve(nonce: string, difficulty: number, opts?: { from?: number; to?: number }): string;
  solveRange(nonce: string, difficulty: number, from: number, to: number): number;
  solveAsync(nonce: string, difficulty: number, opts?: { sliceMs?: number; onProgress?: (p: { tried: number; expected: number; ms: number }) => void }): Promise<string>;
  fetchWithClearance(url: string | URL, init?: RequestInit): Promise<Response>;
  sha256Hex(text: string): string;
  leadingZeroBits(hexOrBytes: string | ArrayLike<number>): number;
}

const solver = createRequire(import.meta.url)('../../gateway-plugin/challenge/solver.js') as Solver;
const vectors = loadClearanceVectors();

const KEY: ClearanceKey = { id: 'test', secret: 'test-secret-0123456789abcdef-0123456789' };
const T = 1_800_000_000;
const CLIENT = { subnet: '203.0.113.0/24', ua: 'Mozilla/5.0 test' };
const sha256Hex = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

function zeroBits(hex: string): number {
  let bits = 0;
  for (const ch of hex) {
    const v = parseInt(ch, 16);
    if (v !== 0) return bits + Math.clz32(v) - 28;
    bits += 4;
  }
  return bits;
}

/** The first counter in [from, to) reaching `difficulty`, by node:crypto. */
function bruteForce(prefix: string, difficulty: number, from: number, to: number): number {
  for (let c = from; c < to; c++) if (zeroBits(sha256Hex(`${prefix}.${c}`)) >= difficulty) return c;
  return -1;
}

const randomNonce = (difficulty: number, now = T): string =>
  issueNonce({ key: KEY, now, difficulty, ttl: 3600, ...CLIENT, rand: randomBytes(12).toString('base64url') });

const check = (extra: Partial<ProofCheck> = {}): ProofCheck => ({ keys: [KEY], now: T + 10, ...CLIENT, ...extra });

// ------------------------------------------------------------------ the vectors

t.test('the vectors file is what the generator writes (else: npx tsx gateway-plugin/spec/clearance-vectors.ts)', async (t) => {
  t.equal(readFileSync(clearanceVectorsPath, 'utf8'), renderClearanceVectors(buildClearanceVectors()));
  const run = spawnSync('npx', ['tsx', join(repoRoot, 'gateway-plugin/spec/clearance-vectors.ts'), '--check'], { cwd: repoRoot, encoding: 'utf8' });
  t.equal(run.status, 0, `--check exits 0: ${run.stdout}${run.stderr}`);
});

t.test('vector names say what each vector expects, and every outcome is covered', async (t) => {
  const proofOutcomes = new Set(vectors.proof_checks.map((v) => proofOutcome(v.expect)));
  for (const v of vectors.proof_checks) t.equal(namedOutcome(v.name), proofOutcome(v.expect), v.name);
  for (const v of vectors.token_checks) t.equal(namedOutcome(v.name), tokenOutcome(v.expect), v.name);
  for (const o of ['ok', 'malformed', 'unknown key', 'bad signature', 'expired', 'network', 'browser', 'work', 'too early', 'reused']) {
    t.ok(proofOutcomes.has(o), `a proof vector expects ${o}`);
  }
  const tokenOutcomes = new Set(vectors.token_checks.map((v) => tokenOutcome(v.expect)));
  for (const o of ['none', 'valid', 'expired', 'invalid (malformed)', 'invalid (unknown key)', 'invalid (bad signature)', 'invalid (network)', 'invalid (browser)']) {
    t.ok(tokenOutcomes.has(o), `a token vector expects ${o}`);
  }
});

t.test('building blocks: derived key, nh, uh, mac', async (t) => {
  for (const v of vectors.derive) t.same(deriveKey(v.hmac_key), { id: v.id, secret: v.secret }, `derive ${v.hmac_key}`);
  for (const v of vectors.net_hash) {
    if (v.ip !== null) t.equal(subnetOf(v.ip), v.subnet, `subnet of ${v.ip}`);
    t.equal(netHash(v.subnet), v.nh, `nh of ${v.subnet}`);
  }
  for (const v of vectors.ua_hash) t.equal(uaHash(v.ua), v.uh, `uh of ${JSON.stringify(v.ua)}`);
  for (const v of vectors.mac) t.equal(mac(v.secret, v.text), v.mac, `mac of ${JSON.stringify(v.text)}`);
  t.equal(vectors.net_hash[0]?.nh.length, 8, 'nh is 6 bytes in b64u');
  t.equal(vectors.mac[0]?.mac.length, 22, 'a mac is 16 bytes in b64u');
});

t.test('every vector\'s client_ip lies in its subnet', async (t) => {
  for (const v of [...vectors.nonces, ...vectors.tokens, ...vectors.proof_checks, ...vectors.token_checks]) {
    t.equal(subnetOf(v.client_ip), v.subnet, v.name);
  }
});

t.test('issued nonces and tokens are exactly the vectors', async (t) => {
  for (const v of vectors.nonces) {
    const issued = issueNonce({ key: v.key, now: v.now, difficulty: v.difficulty, ttl: v.ttl, subnet: v.subnet, ua: v.ua, rand: v.rand, nojsWaitS: v.nojs_wait_s });
    t.equal(issued, v.nonce, v.name);
    const fields = readNonce(issued);
    t.equal(fields?.iat, v.difficulty === 0 ? v.now + v.nojs_wait_s : v.now, `${v.name}: iat (the no-JS wait signed in)`);
    t.equal(fields?.exp, v.iat + 300, `${v.name}: exp = iat + 300`);
  }
  t.ok(vectors.nonces.some((v) => v.difficulty === 0 && v.nojs_wait_s !== 5), 'a no-JS nonce with another wait');
  for (const v of vectors.tokens) {
    t.equal(issueToken({ key: v.key, now: v.now, level: v.level, ttl: v.ttl, subnet: v.subnet, ua: v.ua }), v.token, v.name);
  }
});

t.test('proof checks: every vector, and the used-record is consulted last', async (t) => {
  for (const v of vectors.proof_checks) {
    const asked: string[] = [];
    const used = (rand: string): boolean => { asked.push(rand); return v.used; };
    const got = checkProof(v.proof, { keys: v.keys, now: v.now, subnet: v.subnet, ua: v.ua, used });
    t.same(got, v.expect, v.name);
    const reachedLast = v.expect.ok || v.expect.why === 'reused';
    t.equal(asked.length, reachedLast ? 1 : 0, `${v.name}: used() asked ${reachedLast ? 'once' : 'never'}`);
    if (asked.length === 1) t.equal(asked[0], readNonce(v.proof.slice(0, v.proof.lastIndexOf('.')))?.rand, `${v.name}: used() gets the rand`);
  }
});

t.test('token checks: every vector', async (t) => {
  for (const v of vectors.token_checks) {
    const got = checkToken(v.token, { keys: v.keys, now: v.now, subnet: v.subnet, ua: v.ua });
    const expect = v.expect.state === 'valid' ? { state: 'valid', level: v.expect.level, ageS: v.expect.age_s } : v.expect;
    t.same(got, expect, v.name);
  }
});

// ------------------------------------------------------------------ keys

t.test('keys: the file format, validation, the derived key', async (t) => {
  const a = 'a'.repeat(32);
  const b = 'b'.repeat(40);
  t.same(parseKeys(`k2 ${a}\r\n\n# retired soon:\n  k1\t${b}  \n`), [{ id: 'k2', secret: a }, { id: 'k1', secret: b }], 'CRLF, blank and # lines, tabs');
  t.throws(() => parseKeys(''), /none given/);
  t.throws(() => parseKeys(`k2 ${'a'.repeat(31)}`), /under 32/);
  t.throws(() => parseKeys(`bad.id ${a}`), /is not 1-16/);
  t.throws(() => parseKeys(`${'k'.repeat(17)} ${a}`), /is not 1-16/);
  t.throws(() => parseKeys(`k2 ${a}\nk2 ${b}`), /listed twice/);
  t.throws(() => parseKeys(`k2 ${a} extra`), /line 1 is not/);
  t.throws(() => parseKeys(`\nk2`), /line 2 is not/);
  const derived = deriveKey('any hmac key');
  t.same(validateKeys([derived]), [derived], 'a derived key is a valid key');
  t.match(derived.id, /^h[0-9a-f]{8}$/);
});

t.test('issuing refuses bad inputs', async (t) => {
  const base = { key: KEY, now: T, difficulty: 10, ttl: 3600, ...CLIENT };
  t.throws(() => issueNonce({ ...base, rand: 'short' }), /rand/);
  t.throws(() => issueNonce({ ...base, difficulty: 33 }), /difficulty/);
  t.throws(() => issueNonce({ ...base, ttl: 10_000_000 }), /ttl/);
  t.throws(() => issueNonce({ ...base, difficulty: 0, nojsWaitS: -1 }), /nojsWaitS/);
  t.equal(readNonce(issueNonce({ ...base, difficulty: 0 }))?.iat, T + 5, 'a no-JS nonce waits 5 s by default');
  t.equal(readNonce(issueNonce({ ...base, nojsWaitS: 30 }))?.iat, T, 'only difficulty 0 waits');
  t.throws(() => issueNonce({ ...base, difficulty: 1.5 }), /difficulty/);
  t.throws(() => issueNonce({ ...base, now: -1 }), /now/);
  t.throws(() => issueNonce({ ...base, key: { id: 'x', secret: 'short' } }), /under 32/);
  t.throws(() => issueToken({ ...base, level: -1 }), /level/);
  t.throws(() => issueToken({ ...base, level: 1, ttl: Number.NaN }), /ttl/);
  t.not(issueNonce(base), issueNonce(base), 'without rand, two nonces differ');
  t.match(readNonce(issueNonce(base))?.rand, /^[A-Za-z0-9_-]{16}$/);
});

// ------------------------------------------------------------------ garbage never throws

t.test('garbage proofs and tokens never throw', async (t) => {
  const nonce = randomNonce(10);
  const proof = solver.solve(nonce, 10);
  const token = issueToken({ key: KEY, now: T, level: 10, ttl: 3600, ...CLIENT });
  const samples: unknown[] = [
    undefined, null, 0, 1e308, NaN, {}, [], ['a'], true, Symbol('x'), () => 1, Buffer.from(proof),
    '.', '..', '...........', '\u0000', '\uD800', '💥'.repeat(40), 'é'.repeat(200), ' '.repeat(1e6), `${proof}${'0'.repeat(1e6)}`,
    '.'.repeat(1e6), `${'c1.'.repeat(1e5)}`, proof.toUpperCase(), proof.replace(/\./g, '..'), token.replace(/\./g, ','),
  ];
  for (let i = 0; i < 300; i++) samples.push(randomBytes(i).toString(i % 2 ? 'latin1' : 'base64url'));
  for (let i = 0; i < 300; i++) {
    const parts = (i % 2 ? proof : token).split('.');
    const at = i % parts.length;
    parts[at] = randomBytes(i % 12).toString('base64url');
    samples.push(parts.join('.'));
  }
  let thrown = 0;
  let accepted = 0;
  for (const s of samples) {
    try {
      if (checkProof(s, check()).ok) accepted++;
      if (checkToken(s, { keys: [KEY], now: T + 10, ...CLIENT }).state === 'valid') accepted++;
    } catch {
      thrown++;
    }
  }
  t.equal(thrown, 0, 'nothing threw');
  t.equal(accepted, 0, 'nothing was accepted');
  t.ok(checkProof(proof, check()).ok, 'while the untouched proof passes');
  t.equal(checkToken(token, { keys: [KEY], now: T + 10, ...CLIENT }).state, 'valid', 'and the untouched token is valid');
});

t.test('changing any one character of a nonce or token voids it', async (t) => {
  const nonce = randomNonce(8);
  const counter = solver.solve(nonce, 8).slice(nonce.length + 1);
  const token = issueToken({ key: KEY, now: T, level: 8, ttl: 3600, ...CLIENT });
  let passed = 0;
  for (let i = 0; i < nonce.length; i++) {
    for (const c of ['A', '0', '.', '_']) {
      if (nonce[i] === c) continue;
      if (checkProof(`${nonce.slice(0, i)}${c}${nonce.slice(i + 1)}.${counter}`, check()).ok) passed++;
    }
  }
  for (let i = 0; i < token.length; i++) {
    const c = token[i] === 'A' ? 'B' : 'A';
    if (checkToken(`${token.slice(0, i)}${c}${token.slice(i + 1)}`, { keys: [KEY], now: T + 10, ...CLIENT }).state !== 'invalid') passed++;
  }
  t.equal(passed, 0);
});

// ------------------------------------------------------------------ the solver

t.test('solver sha256Hex is SHA-256 of the UTF-8 bytes', async (t) => {
  const lengths = [...Array.from({ length: 301 }, (_, i) => i)];
  let wrong = 0;
  for (const n of lengths) {
    const ascii = randomBytes(n).toString('base64').slice(0, n).padEnd(n, 'x');
    if (solver.sha256Hex(ascii) !== sha256Hex(ascii)) wrong++;
  }
  for (const n of [55, 56, 63, 64, 119, 120, 127, 128, 183, 184]) {
    const text = 'z'.repeat(n);
    t.equal(solver.sha256Hex(text), sha256Hex(text), `length ${n}`);
  }
  for (const text of ['', 'abc', 'é'.repeat(30), '日本語'.repeat(20), '🚀'.repeat(17), '\u0000\u007f\u0080']) {
    t.equal(solver.sha256Hex(text), sha256Hex(text), JSON.stringify(text).slice(0, 20));
  }
  t.equal(wrong, 0, 'random ASCII strings of lengths 0..300');
  t.equal(solver.sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 'the FIPS 180-2 "abc" vector');
});

t.test('solver finds the first passing counter for every prefix alignment', async (t) => {
  // prefixes of 40..200 bytes put the counter, the 0x80 byte and the length in every position
  // of the last block and across a block boundary (one or two tail blocks)
  let wrong = 0;
  for (let len = 40; len <= 200; len++) {
    const prefix = 'p'.repeat(len);
    const d = 1 + (len % 6);
    if (solver.solveRange(prefix, d, 0, 5000) !== bruteForce(prefix, d, 0, 5000)) wrong++;
  }
  t.equal(wrong, 0);
});

t.test('solver counters cross digit boundaries and stop at 12 digits', async (t) => {
  const prefix = randomNonce(4);
  for (const from of [0, 5, 95, 990, 99_995, 999_999_990]) {
    t.equal(solver.solveRange(prefix, 3, from, from + 200), bruteForce(prefix, 3, from, from + 200), `from ${from}`);
  }
  t.equal(solver.solveRange(prefix, 256, 999_999_999_990, 1e13), -1, 'no 13-digit counter is tried');
  const last = bruteForce(prefix, 1, 999_999_999_990, 1e12);
  t.equal(solver.solveRange(prefix, 1, 999_999_999_990, 1e13), last, 'the 12-digit tail is searched');
  const found = solver.solveRange(prefix, 10, 0, 1e6);
  t.equal(solver.solveRange(prefix, 10, 0, found), -1, 'nothing before the first');
  t.equal(solver.solveRange(prefix, 10, found, found + 1), found, 'a one-counter range');
  t.throws(() => solver.solve('', 4), TypeError);
  t.throws(() => solver.solve(prefix, -1), RangeError);
  t.throws(() => solver.solve(prefix, 256, { to: 10 }), /no proof/);
});

t.test('solver proofs pass checkProof at difficulties 0..14', async (t) => {
  for (let d = 0; d <= 14; d++) {
    const nonce = randomNonce(d);
    const proof = solver.solve(nonce, d);
    const fields = readNonce(nonce);
    t.same(checkProof(proof, check({ now: T + 10 })), { ok: true, level: d, ttl: 3600, rand: fields?.rand, exp: fields?.exp }, `difficulty ${d}`);
    t.ok(solver.leadingZeroBits(sha256Hex(proof)) >= d, `difficulty ${d}: leadingZeroBits agrees`);
  }
});

t.test('leadingZeroBits counts hex and bytes', async (t) => {
  t.equal(solver.leadingZeroBits('ffff'), 0);
  t.equal(solver.leadingZeroBits('0fff'), 4);
  t.equal(solver.leadingZeroBits('0010'), 11);
  t.equal(solver.leadingZeroBits('0000'), 16);
  t.equal(solver.leadingZeroBits([0, 0, 1]), 23);
  t.equal(solver.leadingZeroBits(new Uint8Array([0, 0x40])), 9);
  t.equal(solver.leadingZeroBits(new Uint8Array([0x80])), 0);
});

t.test('solveAsync yields to the event loop and finds what solve finds', async (t) => {
  let nonce = randomNonce(16);
  while (Number(solver.solve(nonce, 16).slice(nonce.length + 1)) < 40_000) nonce = randomNonce(16);
  let ticks = 0;
  const timer = setInterval(() => { ticks++; }, 1);
  const progress: number[] = [];
  const proof = await solver.solveAsync(nonce, 16, { sliceMs: 2, onProgress: (p) => progress.push(p.tried) });
  clearInterval(timer);
  t.equal(proof, solver.solve(nonce, 16));
  t.ok(ticks > 0, `timers ran while it worked (${ticks})`);
  t.ok(progress.length > 1 && progress.every((n, i) => i === 0 || n > progress[i - 1]!), 'progress reports grow');
});

// ------------------------------------------------------------------ fetchWithClearance

interface Seen { proof: string | undefined; custom: string | undefined; method: string | undefined; body: string }

/** Answers 429 + a challenge descriptor, or 200 when X-Verdict-Proof holds a proof checkProof accepts. */
async function challengingServer(difficulty: number): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const usedRands = new Set<string>();
  const used = (rand: string): boolean => usedRands.has(rand) || (usedRands.add(rand), false);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const proof = req.headers['x-verdict-proof'] as string | undefined;
      seen.push({ proof, custom: req.headers['x-custom'] as string | undefined, method: req.method, body: Buffer.concat(chunks).toString() });
      const client = { subnet: subnetOf(req.socket.remoteAddress ?? ''), ua: req.headers['user-agent'] ?? '' };
      const now = Math.floor(Date.now() / 1000);
      if (proof !== undefined) {
        const verdict = checkProof(proof, { keys: [KEY], now, ...client, used });
        res.writeHead(verdict.ok ? 200 : 403, { 'content-type': 'application/json' }).end(JSON.stringify(verdict));
        return;
      }
      const nonce = issueNonce({ key: KEY, now, difficulty, ttl: 3600, ...client });
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '30' }).end(JSON.stringify({
        error: 'challenge', request_id: 'r1', retry_after: 30,
        challenge: { algorithm: 'sha256-leading-zero-bits', difficulty, nonce, expires: now + 300, answer: { header: 'X-Verdict-Proof', endpoint: '/.verdict/answer' } },
      }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/api/items`, seen, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

t.test('fetchWithClearance answers a 429 challenge once, keeping the request', async (t) => {
  const srv = await challengingServer(12);
  t.teardown(srv.close);
  const res = await solver.fetchWithClearance(srv.url, { method: 'POST', headers: { 'X-Custom': 'kept' }, body: 'payload' });
  t.equal(res.status, 200);
  t.match(await res.json(), { ok: true, level: 12 });
  t.equal(srv.seen.length, 2, 'one challenge, one retry');
  t.equal(srv.seen[0]?.proof, undefined);
  t.match(srv.seen[1], { custom: 'kept', method: 'POST', body: 'payload' }, 'the retry is the same request');
  t.match(srv.seen[1]?.proof, /^c1\..+\.[0-9]{1,12}$/);
});

t.test('fetchWithClearance passes through answers that are not a challenge', async (t) => {
  const server = createServer((req, res) => {
    if (req.url === '/plain') res.writeHead(429, { 'content-type': 'text/plain' }).end('slow down');
    else if (req.url === '/other') res.writeHead(429, { 'content-type': 'application/json' }).end('{"challenge":{"algorithm":"md5"}}');
    else res.writeHead(200).end('fine');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const plain = await solver.fetchWithClearance(`${base}/plain`);
  t.equal(plain.status, 429);
  t.equal(await plain.text(), 'slow down', 'the body is still readable');
  t.equal((await solver.fetchWithClearance(`${base}/other`)).status, 429, 'another algorithm is not solved');
  t.equal((await solver.fetchWithClearance(`${base}/ok`)).status, 200);
});
