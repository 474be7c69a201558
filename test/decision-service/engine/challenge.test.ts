// The engine's side of issue 13: what a CHALLENGE asks (kind, difficulty raised with the score,
// clearance TTL), what a clearance the gateway verified changes (accepted, required, invalid),
// and how the fields travel on the wire.
import t from 'tap';
import { VirtualClock } from '../../../decision-service/src/engine/clock.ts';
import { Engine } from '../../../decision-service/src/engine/engine.ts';
import { MemoryStore } from '../../../decision-service/src/state/memory-store.ts';
import { toWire } from '../../../decision-service/src/service/decision-service.ts';
import { DecideResponseType, encodeDecideResponse } from '../../../decision-service/src/wire/codec.ts';
import { decideRequestSchema } from '../../../decision-service/src/wire/schema.ts';
import { policy, request } from '../../helpers/policy.ts';

const KEY = Buffer.alloc(32, 7);
const decodeDecideResponseForTest = (b: Uint8Array) => DecideResponseType.toObject(DecideResponseType.decode(b), { defaults: true }) as Record<string, unknown>;
// promo_abuse off: a lone missing_credentials (85) keeps the arithmetic of these cases visible
function engine(overrides: Parameters<typeof policy>[0] = {}) {
  const detectors = { promo_abuse: { enabled: false }, ...overrides.detectors };
  return new Engine({ policy: policy({ ...overrides, detectors }), store: new MemoryStore({ maxKeys: 1000 }), clock: new VirtualClock(1_700_000_000_000), identifierKey: KEY });
}
// a claim without credentials: authz.missing_credentials (85), a challenge when promo blocks are off
const claim = (fields: Record<string, unknown> = {}) => request({ method: 'POST', path: '/api/promo/claim', ...fields });
const promoChallengeOnly = { thresholds: { promo: { tag: 30, challenge: 60, block: 101 } } };

t.test('a CHALLENGE names its kind, a difficulty raised with the score, and the clearance TTL', async (t) => {
  const d = engine(promoChallengeOnly).decide(claim());
  t.equal(d.action, 'CHALLENGE');
  t.equal(d.challenge_kind, 'DEFAULT', 'no kind in the policy: the location chooses');
  // score 85 between challenge 60 and block 101: 16 + round(25/41 × (20 − 16)) = 18
  t.equal(d.challenge_difficulty, 18);
  t.equal(d.clearance_ttl_s, 3600);

  const low = engine({ thresholds: { promo: { tag: 30, challenge: 85, block: 101 } } }).decide(claim());
  t.equal(low.challenge_difficulty, 16, 'at the challenge threshold: the base difficulty');
  const high = engine({ thresholds: { promo: { tag: 30, challenge: 60, block: 86 } } }).decide(claim());
  t.equal(high.challenge_difficulty, 20, 'near the block threshold: the maximum');
  const own = engine({ ...promoChallengeOnly, challenge: { kind: 'status', difficulty: 12, max_difficulty: 14 }, clearance: { ttl_s: 600 } }).decide(claim());
  t.same([own.challenge_kind, own.challenge_difficulty, own.clearance_ttl_s], ['STATUS', 13, 600], 'the policy\'s kind, range and TTL');
  const rule = engine({ ...promoChallengeOnly, detectors: { missing_credentials: { challenge: { kind: 'pow', difficulty: 19 } } } }).decide(claim());
  t.same([rule.challenge_kind, rule.challenge_difficulty], ['POW', 20], 'the strongest rule\'s own kind and base difficulty');

  const block = engine().decide(claim());
  t.equal(block.action, 'BLOCK');
  t.equal(block.challenge_kind, undefined, 'only a CHALLENGE carries challenge fields');
  t.equal(engine().decide(request()).challenge_difficulty, undefined);
});

t.test('a clearance that paid at least the asked difficulty turns the challenge into a tag; less does not', async (t) => {
  const e = engine(promoChallengeOnly);
  const paid = e.decide(claim({ clearance: 'VALID', clearance_level: 18, clearance_age_s: 30 }));
  t.equal(paid.action, 'TAG');
  t.ok(paid.reasons.includes('clearance.accepted'));
  t.equal(paid.challenge_kind, undefined);
  const less = e.decide(claim({ clearance: 'VALID', clearance_level: 17 }));
  t.equal(less.action, 'CHALLENGE', 'a lower level is asked again, at the higher difficulty');
  t.equal(less.challenge_difficulty, 18);
  const nojs = e.decide(claim({ clearance: 'VALID', clearance_level: 0 }));
  t.equal(nojs.action, 'CHALLENGE', 'the no-JS level counts as the base difficulty (16) only');
  const nojsLow = engine({ thresholds: { promo: { tag: 30, challenge: 85, block: 101 } } }).decide(claim({ clearance: 'VALID', clearance_level: 0 }));
  t.equal(nojsLow.action, 'TAG', '...which a base-difficulty challenge accepts');
  for (const state of ['EXPIRED', 'NONE'] as const) {
    t.equal(e.decide(claim({ clearance: state, clearance_level: 30 })).action, 'CHALLENGE', `${state}: its level means nothing`);
  }
  t.equal(engine().decide(claim({ clearance: 'VALID', clearance_level: 32 })).action, 'BLOCK', 'a block is never lifted by a clearance');
});

t.test('an invalid token is evidence; require_level and clearance_level challenge requests without that level', async (t) => {
  const e = engine();
  const clean = e.decide(request({ path: '/' }));
  t.equal(clean.action, 'ALLOW');
  const invalid = e.decide(request({ path: '/', clearance: 'INVALID' }));
  t.same(invalid.reasons, ['clearance.invalid']);
  t.equal(invalid.score, 20);
  t.equal(engine({ clearance: { invalid_score: 0 } }).decide(request({ path: '/', clearance: 'INVALID' })).action, 'ALLOW', 'invalid_score 0: nothing');

  const attack = engine({ clearance: { require_level: { public: 18 } } });
  const none = attack.decide(request({ path: '/' }));
  t.equal(none.action, 'CHALLENGE');
  t.same(none.reasons, ['clearance.required']);
  t.equal(none.challenge_difficulty, 18, 'asked at the required level');
  t.equal(attack.decide(request({ path: '/', clearance: 'VALID', clearance_level: 18 })).action, 'ALLOW', 'the level required: allowed, no reason');
  t.equal(attack.decide(request({ path: '/', clearance: 'VALID', clearance_level: 16 })).action, 'CHALLENGE');

  const route = engine({ routes: [{ name: 'hot', class: 'public', path: '/hot', clearance_level: 14 }, { name: 'home', class: 'public', path: '/' }] });
  t.equal(route.decide(request({ path: '/hot' })).challenge_difficulty, 14, 'a route\'s own clearance_level');
  t.equal(route.decide(request({ path: '/' })).action, 'ALLOW', 'other routes of the class are untouched');
});

t.test('the clearance fields travel: request schema, response encoding', async (t) => {
  const r = decideRequestSchema.parse({ client_ip: '198.51.100.7', method: 'GET', path: '/', clearance: 1, clearance_level: 18, clearance_age_s: 5 });
  t.same([r.clearance, r.clearance_level, r.clearance_age_s], ['VALID', 18, 5]);
  t.equal(decideRequestSchema.parse({ client_ip: '198.51.100.7', method: 'GET', path: '/', clearance: 'expired' }).clearance, 'EXPIRED');
  t.notOk(decideRequestSchema.safeParse({ client_ip: '198.51.100.7', method: 'GET', path: '/', clearance: 7 }).success, 'an unknown state is refused');
  const d = toWire(engine(promoChallengeOnly).decide(claim()));
  const back = decodeDecideResponseForTest(encodeDecideResponse(d));
  t.same([back.challenge_kind, back.challenge_difficulty, back.clearance_ttl_s], [0, 18, 3600], 'DEFAULT is the proto default (absent on the wire)');
  const pow = toWire(engine({ ...promoChallengeOnly, challenge: { kind: 'pow' } }).decide(claim()));
  t.equal(decodeDecideResponseForTest(encodeDecideResponse(pow)).challenge_kind, 1);
});

t.test('abandoned challenges count only where the policy says so', async (t) => {
  const off = engine(promoChallengeOnly);
  for (let i = 0; i < 8; i++) off.decide(claim());
  t.notOk(off.decide(claim()).reasons.includes('clearance.abandoned'), 'abandoned_score 0 (default): nothing');
  const on = engine({ ...promoChallengeOnly, clearance: { abandoned_score: 40, abandoned_after: 3 } });
  const seen = [0, 1, 2, 3].map(() => on.decide(claim()));
  t.same(seen.map((d) => d.reasons.includes('clearance.abandoned')), [false, false, false, true], 'after three unanswered challenges');
  t.equal(seen[3]?.score, 91, 'the abandoned evidence adds to the score');
  t.notOk(on.decide(claim({ clearance: 'VALID', clearance_level: 20 })).reasons.includes('clearance.abandoned'), 'a client that came back cleared is not one');
  t.notOk(on.decide(claim({ user_agent: 'another/1.0' })).reasons.includes('clearance.abandoned'), 'per client (address + fingerprint)');
});
