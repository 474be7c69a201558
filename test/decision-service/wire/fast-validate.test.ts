// The hot-path validator agrees with the zod schema (the specification) on what it accepts and
// on the validated result; anything it refuses still gets zod's field-named error.

import t from 'tap';
import { decodeDecideRequest, DecideRequestType, OutcomeType } from '../../../decision-service/src/wire/codec.ts';
import { fastValidateDecide, fastValidateOutcomeFields } from '../../../decision-service/src/wire/fast-validate.ts';
import { decideRequestSchema, outcomeSchema } from '../../../decision-service/src/wire/schema.ts';

const base = {
  request_id: 'r1', ts_ms: 1763800000000, client_ip: '198.51.100.7', method: 'POST', host: 'shop', path: '/api/auth/login',
  user_agent: 'ua', header_names: ['host', 'user-agent'], cookie_names: ['sid'], has_authorization: true, auth_scheme: 'bearer',
  session_hash: Buffer.alloc(20, 1), token_hash: Buffer.alloc(20, 2), identifier: '13800001234', password_hash: Buffer.alloc(20, 3), mode: 1,
};

function decoded(fields: Record<string, unknown>): Record<string, unknown> {
  return DecideRequestType.decode(DecideRequestType.encode(DecideRequestType.fromObject(fields)).finish()) as unknown as Record<string, unknown>;
}

const cases: Array<[string, Record<string, unknown>]> = [
  ['full', base],
  ['minimal', { client_ip: '::1', method: 'GET', path: '/' }],
  ['ipv6', { ...base, client_ip: '2001:db8::7' }],
  ['bad ip', { ...base, client_ip: '1.2.3' }],
  ['lower-case method', { ...base, method: 'get' }],
  ['long method', { ...base, method: 'A'.repeat(17) }],
  ['relative path', { ...base, path: 'x' }],
  ['empty path', { ...base, path: '' }],
  ['long path', { ...base, path: `/${'a'.repeat(4096)}` }],
  ['long user agent', { ...base, user_agent: 'u'.repeat(1025) }],
  ['long identifier', { ...base, identifier: 'i'.repeat(257) }],
  ['too many header names', { ...base, header_names: new Array(129).fill('h') }],
  ['long header name', { ...base, header_names: ['h'.repeat(129)] }],
  ['too many cookies', { ...base, cookie_names: new Array(65).fill('c') }],
  ['M-SEARCH', { ...base, method: 'M-SEARCH' }],
  ['method with a space', { ...base, method: 'GET X' }],
  ['long sec-fetch-user', { ...base, sec_fetch_user: 'x'.repeat(17) }],
  ['long hash', { ...base, token_hash: Buffer.alloc(65) }],
  ['empty hash', { ...base, token_hash: Buffer.alloc(0) }],
  ['monitor mode', { ...base, mode: 2 }],
  ['budget', { ...base, mode: 0, budget_ms: 25, gateway_id: 'gw-1/42' }],
  ['largest budget', { ...base, budget_ms: 4294967295 }],
];

t.test('fast path and zod agree', async (t) => {
  for (const [name, fields] of cases) {
    const msg = decoded(fields);
    const fast = fastValidateDecide(msg);
    const slow = decideRequestSchema.safeParse(msg);
    t.equal(fast !== undefined, slow.success, `${name}: same verdict`);
    if (fast && slow.success) {
      for (const [k, v] of Object.entries(slow.data)) t.same((fast as Record<string, unknown>)[k], v, `${name}: ${k}`);
    }
  }
});

// A refused DecideRequest makes the gateway fail open, so what a client controls is cut, never
// refused: one oversized header must not switch Verdict off for that request.
t.test('over-long client-controlled fields are cut to their limits, not refused', async (t) => {
  const msg = decoded({
    ...base, method: 'A'.repeat(20), path: `/${'p'.repeat(5000)}`, user_agent: 'u'.repeat(2000), sec_fetch_user: 'x'.repeat(17),
    header_names: Array.from({ length: 200 }, (_, i) => `h${i}`.padEnd(i === 0 ? 300 : 3, 'h')), cookie_names: new Array(65).fill('c'),
  });
  for (const [name, r] of [['fast', fastValidateDecide(msg)], ['zod', decideRequestSchema.parse(msg)]] as const) {
    t.ok(r, `${name}: accepted`);
    if (!r) continue;
    t.equal(r.method.length, 16, `${name}: method cut to 16`);
    t.equal(r.path.length, 4096, `${name}: path cut to 4096`);
    t.equal(r.user_agent.length, 1024, `${name}: user agent cut to 1024`);
    t.equal(r.sec_fetch_user, 'x'.repeat(16), `${name}: sec_fetch_user cut to 16`);
    t.equal(r.header_names.length, 128, `${name}: 128 header names kept`);
    t.equal(r.header_names[0]?.length, 128, `${name}: a header name cut to 128`);
    t.equal(r.cookie_names.length, 64, `${name}: 64 cookie names kept`);
  }
});

t.test('rejected messages still get the field-named error', async (t) => {
  const body = Buffer.from(DecideRequestType.encode(DecideRequestType.fromObject({ ...base, client_ip: 'nope' })).finish());
  t.throws(() => decodeDecideRequest(body, 'protobuf'), /client_ip must be an IPv4 or IPv6 address/);
  const ok = decodeDecideRequest(Buffer.from(DecideRequestType.encode(DecideRequestType.fromObject(base)).finish()), 'protobuf');
  t.equal(ok.mode, 'ASYNC');
  t.equal(ok.ts_ms, 1763800000000);
});

// Every gateway sends an outcome per request: its own fields take the same fast path.
t.test('outcome fields: fast path and zod agree', async (t) => {
  const outcome = {
    request_id: 'r1', ts_ms: 1763800000000, client_ip: '198.51.100.7', method: 'GET', path: '/api/orders/7', route_tag: 'orders',
    status: 200, auth_result: 'ok', upstream_ms: 12, bytes_sent: 2048, action: 3, fail_open: '', from_cache: true,
  };
  const outcomeCases: Array<[string, Record<string, unknown>]> = [
    ['full', outcome],
    ['empty', {}],
    ['challenge from cache', { ...outcome, action: 2 }],
    ['status 999', { ...outcome, status: 999 }],
    ['status 1000', { ...outcome, status: 1000 }],
    ['long request id', { ...outcome, request_id: 'r'.repeat(129) }],
    ['long client ip', { ...outcome, client_ip: '1'.repeat(65) }],
    ['long method', { ...outcome, method: 'M'.repeat(17) }],
    ['long path', { ...outcome, path: `/${'p'.repeat(4096)}` }],
    ['long fail-open cause', { ...outcome, fail_open: 'f'.repeat(33) }],
    ['large bytes sent', { ...outcome, bytes_sent: 2 ** 40 }],
  ];
  for (const [name, fields] of outcomeCases) {
    const msg = OutcomeType.decode(OutcomeType.encode(OutcomeType.fromObject(fields)).finish()) as unknown as Record<string, unknown>;
    const fast = fastValidateOutcomeFields(msg);
    const slow = outcomeSchema.omit({ request: true, response: true }).safeParse({ ...msg });
    t.equal(fast !== undefined, slow.success, `${name}: same verdict`);
    if (fast && slow.success) t.same(fast, slow.data, `${name}: same fields`);
  }
  // what protobuf cannot carry but a decoded object could: refused by both
  for (const [name, bad] of [['action 7', { ...outcome, action: 7 }], ['status as text', { ...outcome, status: '200' }], ['from_cache as number', { ...outcome, from_cache: 1 }]] as const) {
    t.equal(fastValidateOutcomeFields(bad), undefined, `${name}: fast path refuses`);
    t.notOk(outcomeSchema.omit({ request: true, response: true }).safeParse(bad).success, `${name}: zod refuses`);
  }
});
