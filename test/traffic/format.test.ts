import t from 'tap';
import { formatTrafficLine, parseTrafficLine, parseTrafficText, TrafficFormatError } from '../../bench/traffic/format.ts';

const ok = { ts: 1763800000000, ip: '198.51.100.7', method: 'GET', path: '/' };

t.test('a minimal line gets defaults; ISO and nginx $msec times are accepted', async (t) => {
  const l = parseTrafficLine(JSON.stringify(ok), 1);
  t.same(l, { ts: 1763800000000, ip: '198.51.100.7', method: 'GET', host: '', path: '/', query: '', headers: [] });
  t.equal(parseTrafficLine(JSON.stringify({ ...ok, ts: '2025-11-22T08:26:40.000Z' }), 1).ts, 1763800000000);
  t.equal(parseTrafficLine(JSON.stringify({ ...ok, ts: '1763800000.250' }), 1).ts, 1763800000250);
  t.equal(parseTrafficLine(JSON.stringify({ ...ok, status: '404' }), 1).status, 404, 'nginx writes $status as text');
  t.equal(parseTrafficLine(JSON.stringify({ ...ok, headers: [['User-Agent', 'x']] }), 1).headers[0]![0], 'user-agent');
});

t.test('errors name the line number and the field', async (t) => {
  const cases: Array<[object | string, string]> = [
    [{ ...ok, ts: 'yesterday' }, 'line 3: ts:'],
    [{ ...ok, ip: '300.1.1.1' }, 'line 3: ip:'],
    [{ ...ok, method: 'get' }, 'line 3: method:'],
    [{ ...ok, path: 'api' }, 'line 3: path:'],
    [{ ...ok, headers: [['a']] }, 'line 3: headers.0'],
    [{ ...ok, label: 'bot' }, 'line 3: label:'],
    [{ ...ok, status: 'ok' }, 'line 3: status'],
    [{ ...ok, sim: { client: 'robot' } }, 'line 3: sim.client'],
    [{ ...ok, sim: { actor: '' } }, 'line 3: sim.actor'],
    ['{"ts": 1,', 'line 3: (json):'],
  ];
  for (const [value, prefix] of cases) {
    const text = `${JSON.stringify(ok)}\n\n${typeof value === 'string' ? value : JSON.stringify(value)}\n`;
    let err: unknown;
    try {
      parseTrafficText(text);
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof TrafficFormatError && err.message.startsWith(prefix) && err.line === 3, `${prefix} (${String(err)})`);
  }
});

t.test('format → parse round-trips', async (t) => {
  const l = parseTrafficLine(JSON.stringify({ ...ok, headers: [['accept', '*/*']], body: { a: 1 }, status: 200, label: 'attack:x', sim: { issues_token: 'tok', client: 'headless', actor: 'w1.p0' } }), 1);
  t.same(l.sim, { issues_token: 'tok', client: 'headless', actor: 'w1.p0' });
  t.same(parseTrafficLine(formatTrafficLine(l), 1), l);
});

t.test('lines written by gateway-plugin/nginx/verdict-traffic-log.conf parse', async (t) => {
  const nginxLine = '{"ts":"1763800000.123","ip":"198.51.100.7","method":"POST","host":"shop.example","path":"/api/auth/login","query":"","headers":[["host","shop.example"],["user-agent","curl/8.4.0"],["accept","*/*"],["accept-language",""],["content-type","application/json"],["cookie",""]],"body_raw":"{\\"username\\":\\"alice\\",\\"password\\":\\"pw\\"}","status":"401"}';
  const l = parseTrafficLine(nginxLine, 1);
  t.equal(l.ts, 1763800000123);
  t.same(l.headers, [['host', 'shop.example'], ['user-agent', 'curl/8.4.0'], ['accept', '*/*'], ['content-type', 'application/json']]);
  t.same(l.body, { username: 'alice', password: 'pw' });
  t.equal(l.status, 401);
  t.same(parseTrafficLine(nginxLine.replace(/"body_raw":"[^}]*}",/, '"body_raw":"username=bob&password=x",'), 1).body, { username: 'bob', password: 'x' });
});
