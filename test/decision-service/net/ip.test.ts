import t from 'tap';
import { CidrSet, parseCidr, parseIPv6Groups, subnetOf } from '../../../decision-service/src/net/ip.ts';

t.test('parseCidr accepts v4, v6 and bare addresses and rejects junk', async (t) => {
  t.equal(parseCidr('10.0.0.0/8')?.bits, 8);
  t.equal(parseCidr('2001:db8::/32')?.family, 6);
  t.equal(parseCidr('192.168.1.7')?.bits, 32);
  for (const bad of ['10.0.0.0/33', '300.1.1.1', '10.0.0/8', 'abc', '1.2.3.4/8/9', '::1/129', '1.2.3.4/x']) {
    t.equal(parseCidr(bad), undefined, bad);
  }
});

t.test('CidrSet matches addresses inside and only inside its ranges', async (t) => {
  const set = new CidrSet(['10.0.0.0/8', '172.16.0.0/12', 'fc00::/7', '203.0.113.9'].map((c) => parseCidr(c)!));
  t.ok(set.has('10.200.3.4'));
  t.ok(set.has('172.31.255.255'));
  t.notOk(set.has('172.32.0.1'));
  t.ok(set.has('fd12:3456::1'));
  t.notOk(set.has('2001:db8::1'));
  t.ok(set.has('203.0.113.9'));
  t.notOk(set.has('203.0.113.10'));
  t.notOk(set.has('not-an-ip'));
  t.notOk(new CidrSet([]).has('10.0.0.1'));
});

t.test('subnetOf gives the gateway cache key shape', async (t) => {
  t.equal(subnetOf('198.51.100.77'), '198.51.100.0/24');
  t.equal(subnetOf('2001:0db8:0000:0001:abcd::1'), '2001:db8:0:1::/64');
  t.equal(subnetOf('::ffff:1.2.3.4'), '0:0:0:0::/64');
  t.same(parseIPv6Groups('::1'), [0, 0, 0, 0, 0, 0, 0, 1]);
  t.equal(parseIPv6Groups('1::2::3'), undefined);
});
