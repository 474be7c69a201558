// Fixed-size distinct counting: exact for small sets (up to SMALL members, the common case for
// most keys), then a HyperLogLog with 2^7 registers (~9% standard error) — at most 128 bytes a
// sketch whatever the number of members.

export const SMALL = 24;
export const P = 7;
export const M = 1 << P;
const ALPHA = 0.7213 / (1 + 1.079 / M);

/** FNV-1a's starting state. */
export const FNV_OFFSET = 0x811c9dc5;

/** FNV-1a of `s` continued from state `h` (hash32 of a concatenation, without making it). */
export function fnv1a(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h;
}

/** 32-bit FNV-1a of a string, then a murmur3 finaliser so low and high bits are both well mixed. */
export function hash32(s: string): number {
  return mix32(fnv1a(FNV_OFFSET, s));
}

export function mix32(x: number): number {
  let h = x | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class DistinctSketch {
  /** Exact members while small; undefined once promoted to registers. */
  small: number[] | undefined = [];
  registers: Uint8Array | undefined = undefined;

  add(h: number): void {
    const small = this.small;
    if (small) {
      if (small.includes(h)) return;
      if (small.length < SMALL) {
        small.push(h);
        return;
      }
      this.registers = new Uint8Array(M);
      for (const x of small) addToRegisters(this.registers, x);
      this.small = undefined;
    }
    addToRegisters(this.registers as Uint8Array, h);
  }

  count(): number {
    if (this.small) return this.small.length;
    return estimate(this.registers as Uint8Array);
  }

  /** Distinct count of the union of this sketch and another. */
  unionCount(other: DistinctSketch): number {
    if (this.small && other.small) {
      let n = this.small.length;
      for (const x of other.small) if (!this.small.includes(x)) n++;
      return n;
    }
    const regs = new Uint8Array(M);
    for (const s of [this, other]) {
      if (s.small) for (const x of s.small) addToRegisters(regs, x);
      else for (let i = 0; i < M; i++) regs[i] = Math.max(regs[i] ?? 0, s.registers?.[i] ?? 0);
    }
    return estimate(regs);
  }

  reset(): void {
    this.small = [];
    this.registers = undefined;
  }
}

/** HyperLogLog register index of a 32-bit member. */
export function registerOf(h: number): number {
  return h >>> (32 - P);
}

/** HyperLogLog rank (leading zeros + 1 of the remaining bits) of a 32-bit member. */
export function rankOf(h: number): number {
  const w = (h << P) >>> 0;
  return w === 0 ? 32 - P + 1 : Math.clz32(w) + 1;
}

export function addToRegisters(regs: Uint8Array, h: number): void {
  const idx = registerOf(h);
  const rank = rankOf(h);
  if (rank > (regs[idx] ?? 0)) regs[idx] = rank;
}

/**
 * 2^-r for every value a register can hold (a byte): estimate() reads one per register, and a
 * table read costs a fraction of `2 ** -r` (which made the estimate ~2 µs, most of a busy key's
 * add when its sketch changed).
 */
const INV_POW2 = Float64Array.from({ length: 256 }, (_, r) => 2 ** -r);

/** HyperLogLog estimate of M registers (linear counting while many are empty). */
export function estimate(regs: Uint8Array): number {
  let sum = 0;
  let zeros = 0;
  for (let i = 0; i < M; i++) {
    const r = regs[i] ?? 0;
    sum += INV_POW2[r] as number;
    if (r === 0) zeros++;
  }
  const raw = (ALPHA * M * M) / sum;
  if (raw <= 2.5 * M && zeros > 0) return Math.round(M * Math.log(M / zeros));
  return Math.round(raw);
}
