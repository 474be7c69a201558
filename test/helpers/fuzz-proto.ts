// Protobuf wire format at the byte level, for the fuzzer: split an encoded message into its
// fields (tag, wire type, raw value) and write fields back — including the ones a correct encoder
// never writes (wrong wire types, overlong varints, lengths past the end, reserved field numbers).
// Structure-aware mutation edits this list; the service must survive whatever comes out.

export const WT = { VARINT: 0, I64: 1, LEN: 2, SGROUP: 3, EGROUP: 4, I32: 5 } as const;

export interface WireField {
  no: number;
  wt: number;
  /** The value's bytes as they follow the tag (a LEN field's bytes exclude its length prefix). */
  value: Buffer;
}

export function varint(n: number | bigint): Buffer {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) b |= 0x80;
    out.push(b);
  } while (v !== 0n);
  return Buffer.from(out);
}

/** A varint padded with continuation bytes to `bytes` long (valid up to 10, malformed beyond). */
export function paddedVarint(n: number, bytes: number): Buffer {
  const base = [...varint(n)];
  while (base.length < bytes) {
    base[base.length - 1] = (base[base.length - 1] ?? 0) | 0x80;
    base.push(0);
  }
  return Buffer.from(base);
}

export function tag(no: number, wt: number): Buffer {
  return varint((BigInt(no) << 3n) | BigInt(wt & 7));
}

export function writeField(f: WireField): Buffer {
  const t = tag(f.no, f.wt);
  return f.wt === WT.LEN ? Buffer.concat([t, varint(f.value.length), f.value]) : Buffer.concat([t, f.value]);
}

export function writeFields(fields: readonly WireField[]): Buffer {
  return Buffer.concat(fields.map(writeField));
}

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let v = 0n;
  let shift = 0n;
  for (let i = pos; i < buf.length && i < pos + 10; i++) {
    const b = buf[i] ?? 0;
    v |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [v, i + 1];
    shift += 7n;
  }
  throw new Error('bad varint');
}

/** Splits a well-formed message into its top-level fields (throws on malformed input). */
export function readFields(buf: Buffer): WireField[] {
  const out: WireField[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [t, p] = readVarint(buf, pos);
    const no = Number(t >> 3n);
    const wt = Number(t & 7n);
    let end: number;
    let start = p;
    if (wt === WT.VARINT) end = readVarint(buf, p)[1];
    else if (wt === WT.I64) end = p + 8;
    else if (wt === WT.I32) end = p + 4;
    else if (wt === WT.LEN) {
      const [len, q] = readVarint(buf, p);
      start = q;
      end = q + Number(len);
    } else throw new Error(`wire type ${wt} not split`);
    if (end > buf.length) throw new Error('field past the end');
    out.push({ no, wt, value: Buffer.from(buf.subarray(start, end)) });
    pos = end;
  }
  return out;
}
