// The gateway contract's vectors (gateway-plugin/spec/) against every implementation:
//  * request vectors: each raw request is sent byte for byte to a REAL nginx running the Lua
//    script, then the njs script, in a server whose location has the vector's settings; a
//    stand-in decision service captures the DecideRequest the gateway sends (protobuf from Lua,
//    JSON from njs) and answers ALLOW. The capture must equal the vector's expectation.
//    The TypeScript reference (decision-service/src/gateway/request-builder.ts) gets the same
//    vectors as plain data.
//  * cache-key vectors: the Lua cache.subnet and cache.client_key (inside nginx) and the
//    service's subnetOf and clientKey.
import t from 'tap';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { freePort, repoRoot, startNginx, type NginxHandle } from '../../scripts/lib/nginx.ts';
import { decideRequestSchema } from '../../decision-service/src/wire/schema.ts';
import { subnetOf } from '../../decision-service/src/net/ip.ts';
import { buildDecideRequest } from '../../decision-service/src/gateway/request-builder.ts';
import { clientKey } from '../../decision-service/src/engine/engine.ts';
import { gatewaySettings, withLocationOptions } from '../../decision-service/src/gateway/settings.ts';
import { loadCacheKeyVectors, loadClientKeyVectors, loadRequestVectors, rawBytes, type RawRequest, type RequestVector } from '../../gateway-plugin/spec/vectors.ts';
import { startEchoUpstream } from '../helpers/servers.ts';
import { njsVariant, selectedVariants } from '../helpers/variants.ts';

const spec = loadRequestVectors();
const cacheKeys = loadCacheKeyVectors();
const clientKeys = loadClientKeyVectors();
const root = new protobuf.Root().loadSync(join(repoRoot, 'decision-service/src/wire/verdict.proto'), { keepCase: true });
const DecideRequest = root.lookupType('verdict.v1.DecideRequest');
const AS_JSON = { enums: String, longs: Number, bytes: String, defaults: true, arrays: true };
const BODY_FIELDS = ['identifier', 'password_hash'];

/** A DecideRequest as the service sees it: every field present (proto3 defaults), minus `drop`. */
function normal(message: protobuf.Message, drop: readonly string[]): Record<string, unknown> {
  const o = DecideRequest.toObject(message, AS_JSON);
  for (const f of [...spec.ignore, ...drop]) delete o[f];
  return o;
}

// ------------------------------------------------------------------ the vectors themselves

t.test('request vectors are well-formed and the service accepts each expected DecideRequest', async (t) => {
  for (const v of spec.vectors) {
    const length = v.raw.headers.find(([n]) => n.toLowerCase() === 'content-length')?.[1];
    const bytes = Buffer.byteLength(v.raw.body);
    if (bytes > 0 || length !== undefined) t.equal(Number(length), bytes, `${v.name}: Content-Length is the body's length`);
    const parsed = decideRequestSchema.safeParse(v.expect);
    t.ok(parsed.success, `${v.name}: valid DecideRequest${parsed.success ? '' : `: ${parsed.error.message}`}`);
  }
});

// ------------------------------------------------------------------ request vectors in nginx

interface Captured { type: string; body: Buffer }

/** Stand-in decision service: records each /v1/decide body, answers ALLOW in its encoding. */
async function startCapture(): Promise<{ port: number; taken(): Captured[]; close(): Promise<void> }> {
  let seen: Captured[] = [];
  const srv: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const type = req.headers['content-type'] ?? '';
      if (req.url === '/v1/decide') seen.push({ type, body: Buffer.concat(chunks) });
      if (type.includes('json')) {
        // njs 0.7.9's fetch completes only when the server closes the connection
        res.writeHead(200, { 'content-type': 'application/json', connection: 'close' });
        res.end('{"action":"ALLOW"}');
      } else {
        res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': '0' });
        res.end();
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const addr = srv.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : 0,
    taken: () => { const s = seen; seen = []; return s; },
    close: () => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }),
  };
}

/** Sends the raw request on a new connection; resolves with the status line of the answer. */
function sendRaw(port: number, raw: RawRequest): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let got = '';
    sock.setTimeout(10_000, () => sock.destroy(new Error('no answer within 10 s')));
    sock.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n')) {
        sock.destroy();
        resolve(got.slice(0, got.indexOf('\r\n')));
      }
    });
    sock.on('error', reject);
    sock.on('close', () => reject(new Error(`connection closed before an answer: ${JSON.stringify(got)}`)));
    sock.write(rawBytes(raw));
  });
}

/** One server per distinct settings: the vector's location settings at server level. */
function settingsKey(v: RequestVector): string {
  return JSON.stringify(Object.entries(v.settings).sort());
}

function serverBlock(variant: 'lua' | 'njs', port: number, settings: Record<string, string>): string {
  const sets = Object.entries(settings).map(([k, val]) => {
    if (/["$\\]/.test(val)) throw new Error(`setting ${k}: keep vector settings free of quotes, $ and backslashes`);
    return `set $verdict_${k} "${val}";`;
  });
  const guard = variant === 'njs' ? 'include verdict-njs-location.conf;' : 'include verdict-location.conf;';
  return `
    server {
        listen 127.0.0.1:${port};
        ${variant === 'njs' ? 'include verdict-njs-server.conf;' : ''}
        set $verdict_budget_ms 3000;
        ${sets.join('\n        ')}
        location / { ${guard} proxy_pass http://verdict_app; }
    }`;
}

for (const variant of selectedVariants()) {
  t.test(`${variant.name}: each raw request yields the vector's DecideRequest`, async (t) => {
    const capture = await startCapture();
    const upstream = await startEchoUpstream();
    const groups = new Map<string, { port: number; settings: Record<string, string> }>();
    for (const v of spec.vectors) {
      if (!groups.has(settingsKey(v))) groups.set(settingsKey(v), { port: await freePort(), settings: { ...v.settings } });
    }
    const name = variant.name === 'njs' ? 'njs' : 'lua';
    const nginx: NginxHandle = await startNginx({
      variant: name,
      upstream: `127.0.0.1:${upstream.port}`,
      service: `127.0.0.1:${capture.port}`,
      hmacKey: spec.hmac_key,
      init: name === 'lua' ? { outcomes_enabled: false } : undefined,
      locations: 'location / { return 204; }',
      extraHttp: [...groups.values()].map((g) => serverBlock(name, g.port, g.settings)).join('\n'),
    });
    t.teardown(async () => { await nginx.stop(); await upstream.close(); await capture.close(); });

    for (const v of spec.vectors) {
      const status = await sendRaw(groups.get(settingsKey(v))!.port, v.raw);
      const got = capture.taken();
      if (got.length !== 1) {
        t.fail(`${v.name}: ${got.length} decide calls (answer: ${status})\n${nginx.errorLog().slice(-1500)}`);
        continue;
      }
      const call = got[0]!;
      const lacksBody = v.needs?.includes('body') && variant.lacks.identity !== undefined;
      const drop = lacksBody ? BODY_FIELDS : [];
      const sent = name === 'lua'
        ? DecideRequest.decode(call.body)
        : DecideRequest.fromObject(JSON.parse(call.body.toString('utf8')) as Record<string, unknown>);
      t.same(normal(sent, drop), normal(DecideRequest.fromObject(v.expect), drop),
        `${v.name}${lacksBody ? ` (without ${BODY_FIELDS.join(', ')}: ${njsVariant.lacks.identity})` : ''}`);
    }
  });
}

t.test('TypeScript reference: each raw request yields the vector\'s DecideRequest', async (t) => {
  for (const v of spec.vectors) {
    const settings = withLocationOptions(gatewaySettings(spec.hmac_key), v.settings, (name, raw) => t.fail(`${v.name}: $verdict_${name} "${raw}" refused`));
    const req = buildDecideRequest({
      requestId: '', tsMs: 0, gatewayId: '',
      clientIp: v.raw.client_ip,
      method: v.raw.method,
      // $host and $uri: nginx derives them from the Host header and the request line before any
      // gateway script runs, and the builder takes them as nginx hands them over
      host: v.expect.host as string,
      path: v.expect.path as string,
      query: v.raw.query,
      httpVersion: v.raw.http_version,
      headers: v.raw.headers,
      body: v.raw.body,
    }, settings);
    t.same(normal(DecideRequest.fromObject(req), []), normal(DecideRequest.fromObject(v.expect), []), v.name);
  }
});

// ------------------------------------------------------------------ cache keys

t.test('cache-key vectors: the service (net/ip.ts subnetOf)', async (t) => {
  for (const { ip, subnet } of cacheKeys) {
    // subnetOf answers the address itself where it has no subnet (the service keys it alone)
    t.equal(subnetOf(ip) === ip ? null : subnetOf(ip), subnet, `${JSON.stringify(ip)} -> ${subnet}`);
  }
});

t.test('client-key vectors: the service (engine clientKey)', async (t) => {
  for (const v of clientKeys) {
    const { key, ...fields } = v;
    t.equal(clientKey(decideRequestSchema.parse({ method: 'GET', path: '/', ...fields })), key, JSON.stringify(fields));
  }
});

/** A bare nginx with the gateway's Lua modules and `locations`, stopped at the test's end. */
async function luaNginx(t: { teardown(fn: () => unknown): void }, locations: string): Promise<NginxHandle> {
  const nginx = await startNginx({ upstream: '127.0.0.1:9', service: '127.0.0.1:9', init: { outcomes_enabled: false }, locations });
  t.teardown(() => nginx.stop());
  return nginx;
}

/** A location that answers a posted JSON array with each element `v` mapped through the Lua expression `expr` (`cache` is verdict.cache). */
const mapLocation = (name: string, expr: string) => `
    location = /${name} {
        content_by_lua_block {
            local cjson = require "cjson.safe"
            local cache = require "verdict.cache"
            ngx.req.read_body()
            local out = {}
            for i, v in ipairs(cjson.decode(ngx.req.get_body_data())) do
                out[i] = ${expr}
            end
            ngx.print(cjson.encode(out))
        }
    }`;

/** POSTs `inputs` to a mapLocation and returns its answers. */
async function mapped<T>(t: { equal(a: unknown, b: unknown): void }, url: string, inputs: unknown[]): Promise<T[]> {
  const res = await fetch(url, { method: 'POST', body: JSON.stringify(inputs) });
  t.equal(res.status, 200);
  return await res.json() as T[];
}

if (selectedVariants().some((v) => v.name === 'lua')) {
  t.test('cache-key vectors: the Lua gateway (cache.subnet, inside nginx)', async (t) => {
    const nginx = await luaNginx(t, mapLocation('subnets', 'cache.subnet(v) or cjson.null'));
    const got = await mapped<string | null>(t, `${nginx.url}/subnets`, cacheKeys.map((v) => v.ip));
    cacheKeys.forEach(({ ip, subnet }, i) => t.equal(got[i], subnet, `${JSON.stringify(ip)} -> ${subnet}`));
  });

  t.test('client-key vectors: the Lua gateway (cache.client_key, inside nginx)', async (t) => {
    const nginx = await luaNginx(t, `
    location = /client-fields {
        content_by_lua_block {
            local cache = require "verdict.cache"
            local request = require "verdict.request"
            local f = request.client_fields()
            local r = request.build("async", false)
            ngx.print(cache.client_key(ngx.var.remote_addr, f.user_agent, f.accept_language, f.accept_encoding, f.sec_ch_ua), " ",
                      cache.client_key(r.client_ip, r.user_agent, r.accept_language, r.accept_encoding, r.sec_ch_ua))
        }
    }${mapLocation('client-keys', 'cache.client_key(v.client_ip, v.user_agent, v.accept_language, v.accept_encoding, v.sec_ch_ua)')}`);
    const got = await mapped<string>(t, `${nginx.url}/client-keys`, clientKeys);
    clientKeys.forEach(({ key, ...fields }, i) => t.equal(got[i], key, JSON.stringify(fields)));

    // the breaker-open path reads the four values without building a DecideRequest: same key
    const cases: Array<Record<string, string>> = [
      { 'user-agent': 'python-httpx/0.25.2', 'accept-encoding': 'gzip, deflate' },
      { 'user-agent': 'Mozilla/5.0 ' + 'x'.repeat(700), 'accept-language': 'en-US,en;q=0.9', 'accept-encoding': 'gzip, br', 'sec-ch-ua': '"Chromium";v="120"' },
      {},
    ];
    for (const headers of cases) {
      const body = await (await fetch(`${nginx.url}/client-fields`, { headers })).text();
      const [light, built] = body.split(' ');
      t.ok(light && light.startsWith('client:'), body);
      t.equal(light, built, `client_fields() and build() make the same key (${Object.keys(headers).join(', ') || 'no headers'})`);
    }
  });
}
