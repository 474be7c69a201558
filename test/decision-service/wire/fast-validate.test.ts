// The hot-path validator agrees with the zod schema (the specification) on what it accepts and
// on the validated result; anything it refuses still gets zod's field-named error.

import t from 'tap';
import { decodeDecideRequest, DecideRequestType } from '../../../decision-service/src/wire/codec.ts';
import { fastValidateDecide } from '../../../decision-service/src/wire/fast-validate.ts';
import { decideRequestSchema } from '../../../decision-service/src/wire/schema.ts';

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

t.test('rejected messages still get the field-named error', async (t) => {
  const body = Buffer.from(DecideRequestType.encode(DecideRequestType.fromObject({ ...base, client_ip: 'nope' })).finish());
  t.throws(() => decodeDecideRequest(body, 'protobuf'), /client_ip must be an IPv4 or IPv6 address/);
  const ok = decodeDecideRequest(Buffer.from(DecideRequestType.encode(DecideRequestType.fromObject(base)).finish()), 'protobuf');
  t.equal(ok.mode, 'ASYNC');
  t.equal(ok.ts_ms, 1763800000000);
});
