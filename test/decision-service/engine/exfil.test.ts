// Data harvesting seen in responses (issue 17, engine/detectors/exfil.ts): one token receiving a
// new customer's phone number in response after response is stopped whatever address it comes
// from; people seeing their own data, and everyone seeing the same public list, are not.

import { createHmac } from 'node:crypto';
import t from 'tap';
import { VirtualClock } from '../../../decision-service/src/engine/clock.ts';
import { Engine } from '../../../decision-service/src/engine/engine.ts';
import { MemoryStore } from '../../../decision-service/src/state/memory-store.ts';
import type { Outcome, ResponseSample } from '../../../decision-service/src/wire/schema.ts';
import { BASE_ROUTES, policy, request } from '../../helpers/policy.ts';

const CHROME = {
  user_agent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  accept_language: 'en-US,en;q=0.9',
  sec_ch_ua: '"Chromium";v="120"',
  sec_fetch_mode: 'cors',
  header_names: ['host', 'user-agent', 'accept', 'accept-language', 'sec-ch-ua', 'sec-fetch-mode'],
};

const ROUTES = [
  ...(BASE_ROUTES ?? []),
  { name: 'profile', class: 'object' as const, methods: ['GET' as const], path: '/api/users/{id}/profile' },
  { name: 'winners', class: 'promo' as const, methods: ['GET' as const], path: '/api/promo/winners' },
];

/** The gateway's keyed 8-byte hash of a value (what a ResponseSample carries instead of it). */
const vh = (value: string) => createHmac('sha256', 'gateway-key').update(value).digest().subarray(0, 8);

/** A response with these unmasked phones (and as many masked ones). */
function sample(phones: readonly string[], masked = 0): ResponseSample {
  return {
    inspected_bytes: 400, truncated: false, records: Math.max(1, phones.length), requested_limit: 0,
    findings: [{ kind: 'cn_mobile', unmasked: phones.length, masked, value_hashes: phones.slice(0, 32).map(vh) }],
  };
}

function setup() {
  const clock = new VirtualClock(1_763_800_000_000);
  // traversal off: these tests judge what the responses gave away, not the ids asked for
  const engine = new Engine({ policy: policy({ routes: ROUTES, detectors: { traversal: { enabled: false }, exfil: { cache: { key: 'principal', ttl_s: 1800 } } } }), store: new MemoryStore({ maxKeys: 50_000 }), clock, identifierKey: Buffer.alloc(32, 1) });
  let n = 0;
  const send = (fields: Record<string, unknown>, response: ResponseSample | undefined, gapMs = 30_000) => {
    const id = `r${++n}`;
    const d = engine.decide(request({ request_id: id, ...fields }));
    const signals = engine.lastSignals;
    const answered = d.action !== 'BLOCK' && d.action !== 'CHALLENGE';
    engine.observe({ request_id: id, status: answered ? 200 : d.action === 'BLOCK' ? 403 : 429, action: d.action, response: answered ? response : undefined } as Outcome);
    clock.advance(gapMs);
    return { d, signals };
  };
  return { engine, send };
}

const phone = (i: number) => String(13_800_000_000 + i);

t.test('one token walking profiles from rotating addresses, at a person\'s pace, is blocked within 20 requests and cached on the token', async (t) => {
  const { send } = setup();
  const token = Buffer.from('harvesting-token');
  let challenged = 0;
  let blocked = 0;
  let last;
  for (let i = 0; i < 30; i++) {
    const r = send({ ...CHROME, client_ip: `198.18.${i}.${(i * 37) % 250}`, path: `/api/users/${1000 + i * 13}/profile`, has_authorization: true, token_hash: token }, sample([phone(i * 13)]), 20_000 + (i % 7) * 9_000);
    if (!challenged && r.d.action === 'CHALLENGE') challenged = i + 1;
    if (!blocked && r.d.action === 'BLOCK') { blocked = i + 1; last = r; }
  }
  t.ok(challenged === 0 || challenged < blocked, `challenged at ${challenged || 'none'} before the block`);
  t.ok(blocked > 0 && blocked <= 20, `blocked at ${blocked}`);
  t.ok(last?.d.reasons.includes('exfil.distinct_values.principal'), 'reason names the principal');
  t.equal(last?.d.cache_key, `principal:${token.toString('base64')}`, 'the gateway refuses the token without a call');
  const ev = last?.signals.find((s) => s.code === 'exfil.distinct_values.principal')?.evidence;
  t.ok(ev && ev.count >= 10 && ev.threshold === 10, `evidence ${JSON.stringify(ev)}`);
});

t.test('a session paging a list with a large page size of values nobody else received is stopped', async (t) => {
  const { send } = setup();
  const session = Buffer.from('paging-session');
  let first = 0;
  for (let p = 0; p < 20; p++) {
    const page = Array.from({ length: 32 }, (_, j) => phone(50_000 + p * 32 + j));
    const r = send({ ...CHROME, client_ip: `203.0.113.${p}`, path: '/api/promo/winners', query: `page=${p}&size=500`, session_hash: session }, sample(page));
    if (!first && r.d.action === 'BLOCK') first = p + 1;
  }
  t.ok(first > 0 && first <= 12, `blocked at page ${first}`);
});

t.test('look-alike: people reading their own profile and orders again and again, and the public winners list everyone sees, are never flagged', async (t) => {
  const { send } = setup();
  const winners = (p: number) => Array.from({ length: 20 }, (_, j) => phone(90_000 + p * 20 + j));
  for (let u = 0; u < 30; u++) {
    const who = { ...CHROME, user_agent: `${CHROME.user_agent} u${u % 3}`, client_ip: '100.64.0.9', has_authorization: true, token_hash: Buffer.from(`person-${u}`) };
    const own = [phone(u)];
    // a person behind one carrier address: own profile and orders, then every page of the public winners list
    for (let k = 0; k < 6; k++) {
      for (const path of [`/api/users/${1000 + u}/profile`, `/api/orders/${500000 + u * 5 + (k % 3)}`]) {
        const r = send(who, undefined, 1);
        void r;
        const { d, signals } = send({ ...who, path }, sample(own), 5_000);
        t.notOk(signals.some((s) => s.code.startsWith('exfil.')), `person ${u} own data`);
        if (d.action !== 'ALLOW') t.fail(`person ${u} ${path}: ${d.action} ${d.reasons}`);
      }
    }
    for (let p = 0; p < 4; p++) {
      const { d, signals } = send({ ...who, path: '/api/promo/winners', query: `page=${p}` }, sample(winners(p)), 4_000);
      t.notOk(signals.some((s) => s.code.startsWith('exfil.')), `person ${u} winners page ${p}`);
      if (d.action !== 'ALLOW') t.fail(`person ${u} winners: ${d.action} ${d.reasons}`);
    }
  }
});

t.test('masked values are not counted, and the detector stays off when disabled', async (t) => {
  const { send } = setup();
  const token = Buffer.from('masked-reader');
  for (let i = 0; i < 30; i++) {
    const masked: ResponseSample = { ...sample([]), findings: [{ kind: 'cn_mobile', unmasked: 0, masked: 1, value_hashes: [vh(phone(i))] }] };
    const { d } = send({ ...CHROME, client_ip: '192.0.2.4', path: `/api/users/${1000 + i}/profile`, has_authorization: true, token_hash: token }, masked);
    t.equal(d.action, 'ALLOW');
  }
  const clock = new VirtualClock(1_763_800_000_000);
  const off = new Engine({ policy: policy({ routes: ROUTES, detectors: { traversal: { enabled: false }, exfil: { enabled: false } } }), store: new MemoryStore({ maxKeys: 10_000 }), clock, identifierKey: Buffer.alloc(32, 1) });
  for (let i = 0; i < 30; i++) {
    const d = off.decide(request({ ...CHROME, request_id: `x${i}`, path: `/api/users/${1000 + i}/profile`, has_authorization: true, token_hash: token }));
    off.observe({ request_id: `x${i}`, status: 200, response: sample([phone(i)]) } as Outcome);
    clock.advance(10_000);
    t.equal(d.action, 'ALLOW');
  }
});

t.test('policy: thresholds are validated with the field named', async (t) => {
  t.throws(() => policy({ routes: ROUTES, detectors: { exfil: { novel_responses: -1 } } }), /exfil\.novel_responses/);
  t.throws(() => policy({ routes: ROUTES, detectors: { exfil: { route_classes: ['nope'] } } } as never), /exfil\.route_classes/);
});

t.test('exfil.young_harvesters: an account farm of fresh tokens, each reading a handful of other customers\' orders and paying every challenge; new customers reading their own are not', async (t) => {
  const { engine, send } = setup();
  let n = 0;
  /** The farm's client: a challenged read is sent again with the clearance it paid for. */
  const solving = (fields: Record<string, unknown>, response: ResponseSample) => {
    const id = `farm-r${++n}`;
    let d = engine.decide(request({ request_id: id, ...fields }));
    const challenged = d.action === 'CHALLENGE';
    if (challenged) d = engine.decide(request({ request_id: id, ...fields, clearance: 'VALID', clearance_level: d.challenge_difficulty }));
    const answered = d.action !== 'BLOCK' && d.action !== 'CHALLENGE';
    engine.observe({ request_id: id, status: answered ? 200 : 403, action: d.action, response: answered ? response : undefined } as Outcome);
    return `${challenged ? 'C>' : ''}${d.action}${d.reasons.includes('exfil.young_harvesters') ? '*' : ''}`;
  };
  // new customers at the same time: each logs in and reads their profile and two orders (their own
  // phone number in each: one value, new once)
  const people: string[] = [];
  const person = (u: number) => {
    const token = Buffer.from(`customer-${u}`);
    for (const path of [`/api/users/${u}/profile`, `/api/orders/${u * 10}`, `/api/orders/${u * 10 + 1}`]) {
      people.push(send({ ...CHROME, client_ip: `192.0.2.${(u % 200) + 1}`, path, has_authorization: true, token_hash: token }, sample([phone(u)]), 20_000).d.action);
    }
  };
  // the farm: 30 tokens, each reading 8 random customers' orders (a new phone number each), a new
  // residential address per read, a person's pace; every token stays under the per-key bars
  // (10 values, 5 novel responses in the hour)
  const farm: string[][] = [];
  for (let a = 0; a < 30; a++) {
    const token = Buffer.from(`farm-${a}`);
    const reads: string[] = [];
    for (let i = 0; i < 8; i++) {
      const victim = 5000 + a * 97 + i * 13;
      reads.push(solving({ ...CHROME, client_ip: `198.18.${a}.${i + 1}`, path: `/api/orders/${victim * 10}`, has_authorization: true, token_hash: token }, sample([phone(victim)])));
      await Promise.resolve();
      send({ ...CHROME, client_ip: '192.0.2.250', path: '/' }, undefined, 15_000); // time passes
    }
    farm.push(reads);
    if (a % 2 === 0) person(a);
  }
  const late = farm.slice(10);
  const shown = late.map((r) => r.join(' ')).join(' | ');
  t.ok(late.every((reads) => reads.slice(0, 3).every((r) => r === 'ALLOW')), `a token's first three reads are anyone's: ${shown}`);
  t.ok(late.every((reads) => reads.slice(4).every((r) => r.endsWith('*'))), 'named from its fifth read on at the latest');
  t.ok(late.every((reads) => reads.slice(6).every((r) => r === 'BLOCK*')), `from its seventh on, blocked whatever it pays: ${shown}`);
  t.same(people.filter((a) => a === 'BLOCK' || a === 'CHALLENGE'), [], `the customers (${people.length} reads)`);
});
