// ngx.hmac_sha1(hmac_key, value): the keyed hash the gateway sends instead of a session cookie,
// bearer token, API key, device id or password (gateway-plugin/CONTRACT.md, "Keyed hashes").

import { createHmac } from 'node:crypto';

/** HMAC-SHA1 (20 bytes) of `value`: bytes, or a string standing for bytes in `encoding`. */
export function keyedHash(key: string | Uint8Array, value: string | Uint8Array, encoding: 'utf8' | 'latin1' = 'utf8'): Buffer {
  const h = createHmac('sha1', key);
  if (typeof value === 'string') h.update(value, encoding);
  else h.update(value);
  return h.digest();
}
