import t from 'tap';
import { BaselineLimiter, LeakyBucket, ruleFor } from '../../bench/traffic/baseline.ts';

t.test('leaky bucket: burst accepted at once, then one request per 1/rate; rejects do not count', async (t) => {
  const b = new LeakyBucket({ rate: 1, burst: 2 });
  // the first request, then a burst of 2 more, all at t=0
  t.same([0, 0, 0, 0].map(() => b.take('k', 0)), [true, true, true, false]);
  t.equal(b.take('k', 500), false, 'half a request leaked: still full');
  t.equal(b.take('k', 1000), true, 'one request leaked after 1 s');
  t.equal(b.take('k', 1000), false);
  // many rejected requests do not push the state further
  for (let i = 0; i < 100; i++) b.take('k', 1500);
  t.equal(b.take('k', 2000), true, 'rejects left the bucket where it was');
  t.equal(b.take('other', 2000), true, 'keys are independent');
  t.equal(b.take('k', 100_000), true, 'drains to empty');
});

t.test('sub-1/s rates (20r/m) and nginx rounding', async (t) => {
  const b = new LeakyBucket({ rate: 20 / 60, burst: 0 });
  t.equal(b.take('k', 0), true);
  t.equal(b.take('k', 2999), false);
  t.equal(b.take('k', 3001), false, 'nginx keeps the rate as 333 milli-requests/s: 3.001 s leak 0.999');
  t.equal(b.take('k', 3004), true, 'one per ~3 s');
});

t.test('route classes: longest prefix; static unlimited', async (t) => {
  t.equal(ruleFor('/api/auth/login')?.zone?.name, 'identity');
  t.equal(ruleFor('/api/v1/login')?.zone?.name, 'identity');
  t.equal(ruleFor('/api/orders/1')?.zone?.name, 'api');
  t.equal(ruleFor('/static/app.js')?.zone, undefined);
  t.equal(ruleFor('/promo')?.zone?.name, 'pages');
  const l = new BaselineLimiter();
  const line = (path: string, ts: number) => ({ ts, ip: '198.51.100.1', method: 'POST', host: '', path, query: '', headers: [] });
  const res = Array.from({ length: 12 }, (_, i) => l.check(line('/api/auth/login', i)).action);
  t.same(res.filter((a) => a === 'BLOCK').length, 1, '1 + burst 10 accepted, the 12th rejected');
  t.equal(l.check(line('/static/x.js', 12)).action, 'ALLOW');
});
