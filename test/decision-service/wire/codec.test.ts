import t from 'tap';
import {
  DecideRequestType,
  DecideResponseType,
  OutcomeBatchType,
  decodeDecideRequest,
  decodeOutcomeBatch,
  encodeDecideResponse,
  openOutcomeBatch,
} from '../../../decision-service/src/wire/codec.ts';
import { VerdictError } from '../../../decision-service/src/errors.ts';

const full = {
  request_id: 'abc123', ts_ms: 1763800000000, client_ip: '198.51.100.7', method: 'POST', host: 'shop.example',
  path: '/api/auth/login', query: 'a=1', route_tag: 'login', http_version: '1.1', user_agent: 'curl/8',
  header_names: ['host', 'user-agent', 'content-type'], cookie_names: ['sid'], has_authorization: false,
  session_hash: Buffer.alloc(20, 3), identifier: '13800001234', password_hash: Buffer.alloc(20, 9), mode: 1,
};

t.test('protobuf and JSON decode to the same validated request', async (t) => {
  const bytes = DecideRequestType.encode(DecideRequestType.fromObject(full)).finish();
  const fromPb = decodeDecideRequest(Buffer.from(bytes), 'protobuf');
  const fromJson = decodeDecideRequest(
    { ...full, session_hash: full.session_hash.toString('base64'), password_hash: full.password_hash.toString('base64'), mode: 'ASYNC' },
    'json',
  );
  for (const d of [fromPb, fromJson]) {
    t.equal(d.client_ip, '198.51.100.7');
    t.equal(d.ts_ms, 1763800000000);
    t.equal(d.mode, 'ASYNC');
    t.same(d.header_names, ['host', 'user-agent', 'content-type']);
    t.ok(d.session_hash?.equals(Buffer.alloc(20, 3)));
    t.equal(d.token_hash, undefined);
    t.equal(d.accept_language, '');
  }
});

t.test('bad input is a clean 400 naming the field', async (t) => {
  const cases: Array<[unknown, 'json' | 'protobuf', RegExp]> = [
    [{ method: 'GET', path: '/' }, 'json', /client_ip/],
    [{ client_ip: 'x', method: 'GET', path: '/' }, 'json', /client_ip must be an IPv4 or IPv6/],
    [{ client_ip: '1.2.3.4', method: 'get', path: '/' }, 'json', /method/],
    [{ client_ip: '1.2.3.4', method: 'GET', path: 'nope' }, 'json', /path starts with/],
    [{ client_ip: '1.2.3.4', method: 'GET', path: '/', header_names: [1] }, 'json', /header_names/],
    [{ client_ip: '1.2.3.4', method: 'GET', path: '/', session_hash: 'a'.repeat(120) }, 'json', /session_hash/],
    [{ client_ip: '1.2.3.4', method: 'GET', path: '/', budget_ms: -1 }, 'json', /budget_ms/],
    [{ client_ip: '1.2.3.4', method: 'GET', path: '/', budget_ms: 2.5 }, 'json', /budget_ms/],
    ['string', 'json', /expected a JSON object/],
    [Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), 'protobuf', /could not be decoded/],
    [Buffer.alloc(0), 'protobuf', /client_ip/],
  ];
  for (const [body, enc, re] of cases) {
    try {
      decodeDecideRequest(body, enc);
      t.fail(`accepted ${JSON.stringify(body).slice(0, 60)}`);
    } catch (err) {
      t.ok(err instanceof VerdictError);
      t.equal((err as VerdictError).status, (err as VerdictError).code === 'BAD_BODY' ? 400 : 400);
      t.match((err as Error).message, re);
    }
  }
});

t.test('responses encode with enum codes and decode back', async (t) => {
  const bytes = encodeDecideResponse({
    request_id: 'r', action: 'BLOCK', score: 97, reasons: ['a.b', 'c.d'], cache_key: 'ip:1.2.3.4', cache_ttl_s: 60, policy_version: 'v', dry_run: false,
  });
  const back = DecideResponseType.toObject(DecideResponseType.decode(bytes), { enums: String });
  t.same(back, { request_id: 'r', action: 'BLOCK', score: 97, reasons: ['a.b', 'c.d'], cache_key: 'ip:1.2.3.4', cache_ttl_s: 60, policy_version: 'v' });
});

t.test('outcome batches carry nested async requests', async (t) => {
  const bytes = OutcomeBatchType.encode(OutcomeBatchType.fromObject({
    gateway_id: 'gw1',
    outcomes: [{ request_id: 'r1', status: 404, action: 3 }, { request_id: 'r2', status: 200, request: { client_ip: '10.0.0.1', method: 'GET', path: '/x' } }],
  })).finish();
  const b = decodeOutcomeBatch(Buffer.from(bytes), 'protobuf');
  t.equal(b.outcomes.length, 2);
  t.equal(b.outcomes[0]?.action, 'BLOCK');
  t.equal(b.outcomes[1]?.request?.path, '/x');
});

t.test('budget_ms travels in both encodings; absent means no deadline', async (t) => {
  const pb = decodeDecideRequest(Buffer.from(DecideRequestType.encode(DecideRequestType.fromObject({ ...full, budget_ms: 25 })).finish()), 'protobuf');
  t.equal(pb.budget_ms, 25);
  t.equal(decodeDecideRequest({ client_ip: '1.2.3.4', method: 'GET', path: '/', budget_ms: 40 }, 'json').budget_ms, 40);
  t.equal(decodeDecideRequest({ client_ip: '1.2.3.4', method: 'GET', path: '/' }, 'json').budget_ms, 0);
  t.equal(decodeDecideRequest(Buffer.from(DecideRequestType.encode(DecideRequestType.fromObject({ client_ip: '::1', method: 'GET', path: '/' })).finish()), 'protobuf').budget_ms, 0);
});

t.test('outcome batches open lazily: the count is checked first, each outcome validated on demand', async (t) => {
  const bytes = Buffer.from(OutcomeBatchType.encode(OutcomeBatchType.fromObject({
    gateway_id: 'gw1',
    outcomes: [{ request_id: 'r1', status: 200 }, { request_id: 'r2', status: 200, request: { client_ip: 'bad', method: 'GET', path: '/x' } }],
  })).finish());
  const pending = openOutcomeBatch(bytes, 'protobuf', 10);
  t.equal(pending.gateway_id, 'gw1');
  t.equal(pending.count, 2);
  t.equal(pending.outcome(0).request_id, 'r1');
  t.throws(() => pending.outcome(1), /outcomes\.1\.request\.client_ip/);
  t.throws(() => openOutcomeBatch(bytes, 'protobuf', 1), /2 outcomes, more than 1/);
  t.throws(() => openOutcomeBatch(Buffer.from([0x12, 0x05, 0x01]), 'protobuf'), /could not be decoded/);
  t.throws(() => openOutcomeBatch({ outcomes: 'x' }, 'json'), /outcomes: expected an array/);
  t.throws(() => openOutcomeBatch({ gateway_id: 7 }, 'json'), /gateway_id/);
});
