// Issue 17: the policy's `responses` section — inspect shares, operator patterns (checked to read
// the same in PCRE and JavaScript), exposure thresholds — and its errors.
import t from 'tap';
import { loadPolicyFile, patternProblem } from '../../../decision-service/src/config/policy.ts';
import { ConfigError } from '../../../decision-service/src/errors.ts';
import { policy } from '../../helpers/policy.ts';

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return [err.message, ...err.issues].join('\n');
    throw err;
  }
  return '';
}

t.test('defaults: every class has its share, no patterns, a stable non-empty version', async (t) => {
  const r = policy().responses;
  t.same(r.inspect, { public: 0.1, protected: 0.25, identity: 1, promo: 1, object: 1, internal: 1, static: 0 });
  t.same(r.patterns, []);
  t.match(r.patternsVersion, /^[0-9a-f]{12}$/);
  t.equal(policy({ version: 'other' }).responses.patternsVersion, r.patternsVersion, 'the version hashes the patterns only');
  t.same([...r.kinds].sort(), ['bank_card', 'cn_id', 'cn_mobile', 'email']);
  t.same(r.exposure, { min_responses: 5, unmasked_min_share: 0.02, records_over_requested: 2, records_over_baseline: 10 });
  t.same(r.settle, { after: 20, inspect: 0.05 });
  t.ok(Object.isFrozen(r) && Object.isFrozen(r.inspect));
});

t.test('the shipped default policy has a responses section that compiles', async (t) => {
  const p = loadPolicyFile('policies/default.yaml');
  t.equal(p.responses.inspect.object, 1);
  t.equal(p.responses.inspect.static, 0);
});

t.test('patterns: kinds, version follows the list', async (t) => {
  const one = policy({ responses: { inspect: { public: 0.5 }, patterns: [{ name: 'employee_id', regex: 'EMP\\d{6}', masked_regex: 'EMP\\*{4}\\d{2}' }] } });
  t.equal(one.responses.inspect.public, 0.5);
  t.equal(one.responses.inspect.object, 1, 'unset classes keep their defaults');
  t.same(one.responses.patterns, [{ name: 'employee_id', regex: 'EMP\\d{6}', masked_regex: 'EMP\\*{4}\\d{2}' }]);
  t.ok(one.responses.kinds.has('employee_id'));
  t.not(one.responses.patternsVersion, policy().responses.patternsVersion);
  const changed = policy({ responses: { patterns: [{ name: 'employee_id', regex: 'EMP\\d{7}' }] } });
  t.not(changed.responses.patternsVersion, one.responses.patternsVersion, 'another regex is another version');
});

t.test('bad sections are refused naming the field and the fix', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ inspect: { object: 1.5 } }, /responses\.inspect\.object: .*fix/],
    [{ settle: { inspect: 2 } }, /responses\.settle\.inspect: .*fix/],
    [{ settle: { after: -1 } }, /responses\.settle\.after: .*fix/],
    [{ inspect: { checkout: 1 } }, /responses\.inspect: .*remove or rename "checkout"/],
    [{ patterns: [{ name: 'Employee', regex: 'x' }] }, /responses\.patterns\[0\]\.name: a pattern name is a lower-case letter/],
    [{ patterns: [{ name: 'cn_mobile', regex: '1\\d{10}' }] }, /responses\.patterns\[0\]\.name: the name of a built-in kind/],
    [{ patterns: [{ name: 'a', regex: 'x1' }, { name: 'a', regex: 'x2' }] }, /responses\.patterns\[1\]\.name: "a" is used twice/],
    [{ patterns: Array.from({ length: 17 }, (_, i) => ({ name: `p${i}`, regex: `x${i}` })) }, /responses\.patterns: .*16/],
    [{ patterns: [{ name: 'a', regex: 'EMP(' }] }, /responses\.patterns\[0\]\.regex: Invalid regular expression.*fix/],
    [{ patterns: [{ name: 'a', regex: 'x', masked_regex: '\\d++' }] }, /responses\.patterns\[0\]\.masked_regex: .*possessive/],
    [{ patterns: [{ name: 'a', regex: 'x', extra: 1 }] }, /remove or rename "extra"/],
    [{ exposure: { records_over_requested: 0.5 } }, /responses\.exposure\.records_over_requested/],
    [{ exposure: { min_responses: 0 } }, /responses\.exposure\.min_responses/],
  ];
  for (const [responses, re] of cases) {
    const msg = errorOf(() => policy({ responses } as never));
    t.match(msg, /invalid policy test\.yaml/, JSON.stringify(responses).slice(0, 60));
    t.match(msg, re);
  }
});

t.test('patterns PCRE and JavaScript read differently are refused', async (t) => {
  t.equal(patternProblem('EMP\\d{6}'), undefined);
  t.equal(patternProblem('[A-Z]{2}-\\d{4,8}'), undefined);
  t.equal(patternProblem('(?:[a-z0-9-]+\\.)+[a-z]{2,}'), undefined, 'a quantified group with a separator is fine');
  t.equal(patternProblem('a\\\\A'), undefined, 'an escaped backslash before a letter is two literals');
  const refused: Array<[string, RegExp]> = [
    ['\\Aabc', /"\\A" means something else to PCRE/],
    ['\\p{L}+', /"\\p"/],
    ['\\h+x', /"\\h"/],
    ['\\x{41}', /"\\x\{"/],
    ['[[:digit:]]+', /POSIX class/],
    ['(?<=id=)\\d+', /lookbehind/],
    ['x{,3}', /\{0,n\}/],
    ['(a+)+b', /nested quantifier/],
    ['(?>ab)c', /Invalid regular expression/],
    ['(?i)abc', /Invalid regular expression/],
    ['a*', /matches the empty string/],
  ];
  for (const [re, why] of refused) t.match(patternProblem(re) ?? '', why, re);
});
