// ngx.decode_args(body, max) of lua-nginx-module 0.10.x (ngx_http_lua_parse_args), on bytes:
// pairs split at '&', key and value at the first '=', both unescaped as URI components ('+' is
// a space; a '%' not followed by two hex digits stays as it is); a key without '=' is `true`;
// pairs with an empty key are dropped; a key given twice holds all its values (a table in Lua);
// parsing stops after `max` '&'-terminated pairs (empty ones count).

/** A decoded value: the bytes, `true` (a key without '='), or several (the key repeated). */
export type FormValue = Buffer | true | Array<Buffer | true>;

const PLUS = 0x2b;
const PERCENT = 0x25;
const AMP = 0x26;
const EQ = 0x3d;

function hex(c: number | undefined): number {
  if (c === undefined) return -1;
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1;
}

/** ngx_http_lua_unescape_uri(..., NGX_UNESCAPE_URI_COMPONENT) of bytes [from, to). */
function unescape(b: Buffer, from: number, to: number): Buffer {
  const pct = b.indexOf(PERCENT, from);
  const plus = b.indexOf(PLUS, from);
  if ((pct === -1 || pct >= to) && (plus === -1 || plus >= to)) return b.subarray(from, to);
  const out = Buffer.allocUnsafe(to - from);
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = b[i] as number;
    if (c === PERCENT && i + 2 < to && hex(b[i + 1]) >= 0 && hex(b[i + 2]) >= 0) {
      out[n++] = hex(b[i + 1]) * 16 + hex(b[i + 2]);
      i += 2;
    } else {
      out[n++] = c === PLUS ? 0x20 : c;
    }
  }
  return out.subarray(0, n);
}

/**
 * The decoded pairs by key (keys as latin1 strings of their bytes, so any byte sequence is one
 * key), in the shape ngx.decode_args returns.
 */
export function decodeFormArgs(body: Buffer, max: number): Map<string, FormValue> {
  const args = new Map<string, FormValue>();
  const set = (key: Buffer, value: Buffer | true) => {
    if (key.length === 0) return; // "ignore empty string key pairs"
    const k = key.toString('latin1');
    const prev = args.get(k);
    if (prev === undefined) args.set(k, value);
    else if (Array.isArray(prev)) prev.push(value);
    else args.set(k, [prev, value]);
  };
  let count = 0;
  let q = 0;
  let key: Buffer | undefined;
  for (let p = 0; p < body.length; p++) {
    const c = body[p];
    if (c === EQ && key === undefined) {
      key = unescape(body, q, p);
      q = p + 1;
    } else if (c === AMP) {
      const v = unescape(body, q, p);
      if (key === undefined) set(v, true);
      else set(key, v);
      key = undefined;
      q = p + 1;
      if (max > 0 && ++count === max) return args;
    }
  }
  if (q < body.length || key !== undefined) {
    const v = unescape(body, q, body.length);
    if (key === undefined) set(v, true);
    else set(key, v);
  }
  return args;
}
