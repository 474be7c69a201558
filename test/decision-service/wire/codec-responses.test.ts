// Issue 17 on the wire: Outcome.response (ResponseSample) and OutcomeBatch.patterns_version decode
// the same from protobuf and JSON; hostile samples reject the batch naming the field;
// DecideResponse.inspect and OutcomeAck.patterns_version / patterns encode and decode back.
import t from 'tap';
import { VerdictError } from '../../../decision-service/src/errors.ts';
import {
  DecideResponseType,
  OutcomeAckType,
  OutcomeBatchType,
  OutcomeType,
  decodeOutcomeBatch,
  encodeDecideResponse,
  encodeOutcomeAck,
  openOutcomeBatch,
} from '../../../decision-service/src/wire/codec.ts';
import { fastValidateResponseSample } from '../../../decision-service/src/wire/fast-validate.ts';
import { responseSampleSchema } from '../../../decision-service/src/wire/schema.ts';

const h = (n: number) => Buffer.alloc(8, n);

const sample = {
  inspected_bytes: 4096, truncated: true, records: 21, requested_limit: 10,
  findings: [
    { kind: 'cn_mobile', unmasked: 3, masked: 1, value_hashes: [h(1), h(2), h(3)] },
    { kind: 'employee_id', unmasked: 0, masked: 2 },
  ],
};
const batch = { gateway_id: 'gw-1', patterns_version: 'abc123def456', outcomes: [{ request_id: 'r1', status: 200, path: '/api/users/7/profile', method: 'GET', response: sample }, { request_id: 'r2', status: 404 }] };

function pb(obj: unknown): Buffer {
  return Buffer.from(OutcomeBatchType.encode(OutcomeBatchType.fromObject(obj as Record<string, unknown>)).finish());
}

function asJson(obj: typeof batch): unknown {
  return JSON.parse(JSON.stringify(obj, (_k, v: unknown) => (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' ? Buffer.from((v as { data: number[] }).data).toString('base64') : v)));
}

t.test('a response sample and the patterns version decode the same from protobuf and JSON', async (t) => {
  for (const [enc, body] of [['protobuf', pb(batch)], ['json', asJson(batch)]] as const) {
    const b = decodeOutcomeBatch(body, enc);
    t.equal(b.patterns_version, 'abc123def456', `${enc}: patterns_version`);
    const r = b.outcomes[0]?.response;
    t.match(r, { inspected_bytes: 4096, truncated: true, records: 21, requested_limit: 10 }, enc);
    t.equal(r?.findings.length, 2);
    t.match(r?.findings[0], { kind: 'cn_mobile', unmasked: 3, masked: 1 });
    t.same(r?.findings[0]?.value_hashes.map((x) => x.toString('hex')), [h(1), h(2), h(3)].map((x) => x.toString('hex')), `${enc}: the hashes`);
    t.same(r?.findings[1]?.value_hashes, []);
    t.notOk(b.outcomes[1]?.response, `${enc}: an outcome without a sample has none`);
  }
  t.equal(openOutcomeBatch(pb({ outcomes: [] }), 'protobuf').patterns_version, '', 'protobuf: absent = ""');
  t.equal(openOutcomeBatch({ outcomes: [] }, 'json').patterns_version, '', 'json: absent = ""');
  t.equal(openOutcomeBatch({ outcomes: [{ response: null }], patterns_version: null }, 'json').outcome(0).response, undefined, 'json nulls are absent');
});

t.test('hostile samples reject the batch with an error naming the field', async (t) => {
  const tooMany = { ...sample, findings: Array.from({ length: 17 }, (_, i) => ({ kind: `k${i}`, unmasked: 1 })) };
  const bad: Array<[string, unknown, RegExp]> = [
    ['17 findings', tooMany, /outcomes\.0\.response\.findings: .*16/],
    ['33 hashes', { findings: [{ kind: 'email', unmasked: 33, value_hashes: Array.from({ length: 33 }, (_, i) => h(i)) }] }, /outcomes\.0\.response\.findings\.0\.value_hashes: .*32/],
    ['a 65-byte hash', { findings: [{ kind: 'email', unmasked: 1, value_hashes: [Buffer.alloc(65, 1)] }] }, /outcomes\.0\.response\.findings\.0\.value_hashes\.0: .*64 bytes/],
    ['an upper-case kind', { findings: [{ kind: 'Email', unmasked: 1 }] }, /outcomes\.0\.response\.findings\.0\.kind: a kind is/],
    ['a kind with a label-breaking quote', { findings: [{ kind: 'a"}x', unmasked: 1 }] }, /findings\.0\.kind/],
    ['a 33-character kind', { findings: [{ kind: `a${'b'.repeat(32)}`, unmasked: 1 }] }, /findings\.0\.kind/],
  ];
  for (const [name, response, re] of bad) {
    for (const enc of ['protobuf', 'json'] as const) {
      const body = { outcomes: [{ request_id: 'x', status: 200, response }] };
      let err: unknown;
      try {
        decodeOutcomeBatch(enc === 'protobuf' ? pb(body) : asJson(body as never), enc);
      } catch (e) {
        err = e;
      }
      t.ok(err instanceof VerdictError && err.code === 'INVALID_FIELD', `${enc}: ${name} is refused`);
      t.match((err as Error).message, re, `${enc}: ${name} names the field`);
    }
  }
  // JSON only: types protobuf cannot carry
  const jsonOnly: Array<[unknown, RegExp]> = [
    [{ records: -1 }, /outcomes\.0\.response\.records/],
    [{ truncated: 'yes' }, /outcomes\.0\.response\.truncated/],
    [{ findings: [{ kind: 'email', unmasked: 1, value_hashes: ['not base64!'] }] }, /value_hashes\.0/],
    [{ records: 2 ** 32 }, /outcomes\.0\.response\.records/],
  ];
  for (const [response, re] of jsonOnly) t.throws(() => decodeOutcomeBatch({ outcomes: [{ response }] }, 'json'), re);
  t.throws(() => openOutcomeBatch({ outcomes: [], patterns_version: 'x'.repeat(65) }, 'json'), /patterns_version: /);
  t.throws(() => openOutcomeBatch(pb({ outcomes: [], patterns_version: 'x'.repeat(65) }), 'protobuf'), /patterns_version: /);
  t.throws(() => openOutcomeBatch({ outcomes: [], patterns_version: 7 }, 'json'), /patterns_version: /);
});

t.test('DecideResponse.inspect encodes only when set', async (t) => {
  const base = { request_id: 'r', action: 'ALLOW' as const, score: 0, reasons: [], cache_key: '', cache_ttl_s: 0, policy_version: 'p', dry_run: false };
  const on = DecideResponseType.decode(encodeDecideResponse({ ...base, inspect: true })) as unknown as { inspect: boolean };
  t.equal(on.inspect, true);
  const off = encodeDecideResponse(base);
  t.equal((DecideResponseType.decode(off) as unknown as { inspect: boolean }).inspect, false);
  t.ok(off.length < encodeDecideResponse({ ...base, inspect: true }).length, 'false is left off the wire');
});

t.test('OutcomeAck carries patterns_version and patterns', async (t) => {
  const patterns = [{ name: 'employee_id', regex: 'EMP\\d{6}', masked_regex: 'EMP\\*+\\d{2}' }, { name: 'plate', regex: '[A-Z]\\d{5}' }];
  const ack = OutcomeAckType.toObject(OutcomeAckType.decode(encodeOutcomeAck({ accepted: 2, verdicts: [], patterns_version: 'v1', patterns })), { defaults: true });
  t.equal(ack.patterns_version, 'v1');
  t.same(ack.patterns, [{ name: 'employee_id', regex: 'EMP\\d{6}', masked_regex: 'EMP\\*+\\d{2}' }, { name: 'plate', regex: '[A-Z]\\d{5}', masked_regex: '' }]);
  const cleared = OutcomeAckType.toObject(OutcomeAckType.decode(encodeOutcomeAck({ accepted: 0, verdicts: [], patterns_version: 'v0', patterns: [] })), { defaults: true });
  t.same([cleared.patterns_version, cleared.patterns], ['v0', []], 'an empty set goes out with its version (the gateway clears its set)');
  const none = OutcomeAckType.toObject(OutcomeAckType.decode(encodeOutcomeAck({ accepted: 0, verdicts: [] })), { defaults: true });
  t.same([none.patterns_version, none.patterns], ['', []], 'no update: neither field');
});

t.test('the fast path and zod agree on a decoded sample', async (t) => {
  for (const response of [sample, {}, { findings: [{ kind: 'email' }] }, { records: 4_294_967_295, findings: [{ kind: 'x', value_hashes: [Buffer.alloc(0)] }] }]) {
    const msg = (OutcomeType.decode(OutcomeType.encode(OutcomeType.fromObject({ response })).finish()) as unknown as { response: Record<string, unknown> }).response;
    const fast = fastValidateResponseSample(msg);
    t.ok(fast, 'the fast path accepts it');
    t.same(fast, responseSampleSchema.parse(msg), JSON.stringify(response).slice(0, 50));
  }
});
