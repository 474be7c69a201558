// Generates the shared wire vectors (test/vectors/*.bin + *.json) from verdict.proto with
// protobufjs. Run: npx tsx test/vectors/generate.ts. The outputs are checked in; the codec tests
// prove the Lua codec writes the same bytes (encode vectors) and reads them back (decode vectors).
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const here = dirname(fileURLToPath(import.meta.url));
// keepCase: the wire JSON uses the proto's snake_case names
const root = new protobuf.Root().loadSync(join(here, '../../decision-service/src/wire/verdict.proto'), { keepCase: true });

interface Vector {
  name: string;
  type: string;
  // encode: the gateway writes this message (Lua encoder); decode: the gateway reads it.
  direction: 'encode' | 'decode';
  message: Record<string, unknown>;
  // raw bytes appended after the message (unknown fields the decoder must skip)
  trailer?: Uint8Array;
}

const b64 = (s: string) => Buffer.from(s, 'latin1').toString('base64');

const fullRequest = {
  request_id: '5f2b9c3e8d1a4b6c9e0f1a2b3c4d5e6f',
  ts_ms: 1795000000123,
  client_ip: '203.0.113.7',
  method: 'POST',
  host: 'shop.example.com',
  path: '/api/auth/login',
  query: 'next=%2Fhome&lang=zh-CN',
  route_tag: 'login',
  http_version: '1.1',
  tls_protocol: 'TLSv1.3',
  tls_cipher: 'TLS_AES_128_GCM_SHA256',
  user_agent: 'Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0',
  accept: 'application/json',
  accept_language: 'zh-CN,zh;q=0.9,en;q=0.8',
  accept_encoding: 'gzip, deflate, br',
  referer: 'https://shop.example.com/login',
  origin: 'https://shop.example.com',
  content_type: 'application/json',
  sec_fetch_site: 'same-origin',
  sec_fetch_mode: 'cors',
  sec_fetch_dest: 'empty',
  sec_fetch_user: '?1',
  sec_ch_ua: '"Chromium";v="128", "Not;A=Brand";v="24"',
  header_names: ['host', 'user-agent', 'accept', 'accept-language', 'content-type', 'cookie', 'authorization'],
  cookie_names: ['sid', '_ga'],
  has_authorization: true,
  auth_scheme: 'bearer',
  session_hash: b64('\x01\x02\x03\xff\x00\x80session-hash-20b'),
  token_hash: b64('\xde\xad\xbe\xef token hash bytes!'),
  device_hash: b64('\x00\x00\x00device-hash-2000'),
  identifier: '13800138000',
  password_hash: b64('\x7f\x80\x81password-hash-ok'),
  mode: 'ASYNC',
  gateway_id: 'gw-1/4242',
  clearance: 'VALID',
  clearance_level: 18,
  clearance_age_s: 1234,
};

const vectors: Vector[] = [
  { name: 'decide_request_full', type: 'DecideRequest', direction: 'encode', message: fullRequest },
  {
    name: 'decide_request_minimal', type: 'DecideRequest', direction: 'encode',
    message: { request_id: 'r1', ts_ms: 1, client_ip: '127.0.0.1', method: 'GET', host: 'h', path: '/', mode: 'MONITOR' },
  },
  {
    name: 'outcome_batch', type: 'OutcomeBatch', direction: 'encode',
    message: {
      gateway_id: 'gw-1/4242',
      outcomes: [
        {
          request_id: 'a1', ts_ms: 1795000000999, client_ip: '198.51.100.23', method: 'POST',
          path: '/api/auth/login', route_tag: 'login', status: 404, auth_result: 'user_not_found',
          upstream_ms: 12, bytes_sent: 5123456789, fail_open: 'timeout', from_cache: true,
        },
        { request_id: 'a2', ts_ms: 1795000001000, client_ip: '2001:db8::1', method: 'GET', path: '/', status: 200, action: 'BLOCK',
          request: { request_id: 'a2', client_ip: '2001:db8::1', method: 'GET', path: '/', header_names: ['host'], mode: 'ASYNC' } },
      ],
    },
  },
  {
    name: 'decide_response_block', type: 'DecideResponse', direction: 'decode',
    message: {
      request_id: '5f2b9c3e8d1a4b6c9e0f1a2b3c4d5e6f', action: 'BLOCK', score: 97,
      reasons: ['access.internal_route{from=external}', 'probe.sensitive_path'],
      cache_key: 'subnet:203.0.113.0/24', cache_ttl_s: 300, policy_version: 'default@3', dry_run: true,
    },
  },
  {
    name: 'decide_response_allow_unknown_fields', type: 'DecideResponse', direction: 'decode',
    message: { request_id: 'r2', score: 3 },
    // field 99 varint, field 100 length-delimited, field 101 fixed32, field 102 fixed64
    trailer: protobuf.Writer.create()
      .uint32((99 << 3) | 0).uint64(1795000000123)
      .uint32((100 << 3) | 2).string('future field')
      .uint32((101 << 3) | 5).fixed32(7)
      .uint32((102 << 3) | 1).fixed64(9)
      .finish(),
  },
  {
    name: 'outcome_ack', type: 'OutcomeAck', direction: 'decode',
    message: {
      accepted: 2,
      verdicts: [
        { request_id: 'a2', action: 'CHALLENGE', score: 60, reasons: ['enum.identifier_fanout{key=subnet}'], cache_key: 'ip:198.51.100.23', cache_ttl_s: 60, challenge_kind: 'POW', challenge_difficulty: 19, clearance_ttl_s: 1800 },
        { request_id: 'a3', action: 'TAG', score: 40, reasons: ['x', 'y'], cache_key: 'session:AQID', cache_ttl_s: 30, policy_version: 'p1' },
      ],
    },
  },
];

for (const v of vectors) {
  const type = root.lookupType(`verdict.v1.${v.type}`);
  const msg = type.fromObject(v.message);
  const back = type.toObject(msg, { enums: String, longs: Number, bytes: String });
  // the JSON must be exactly what protobufjs reads back, so encode-vectors compare byte for byte
  if (JSON.stringify(back) !== JSON.stringify(v.message)) {
    throw new Error(`vector ${v.name} does not round-trip in protobufjs: ${JSON.stringify(back)}`);
  }
  let bytes = type.encode(msg).finish();
  if (v.trailer) bytes = Buffer.concat([bytes, v.trailer]);
  writeFileSync(join(here, `${v.name}.bin`), bytes);
  writeFileSync(
    join(here, `${v.name}.json`),
    JSON.stringify({ type: `verdict.v1.${v.type}`, direction: v.direction, message: v.message }, null, 2) + '\n',
  );
  console.log(`${v.name}: ${bytes.length} bytes`);
}
