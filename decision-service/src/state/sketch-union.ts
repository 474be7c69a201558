// Register-level helpers for DistinctSketch (state/distinct.ts) that the Redis store needs:
// unions of several sketches, and the (register, rank) pair of a member so Redis can max-merge
// registers without knowing the hash. The constants mirror distinct.ts; a test pins them.

import { DistinctSketch } from './distinct.ts';

export const SKETCH_SMALL = 24;
export const SKETCH_P = 7;
export const SKETCH_M = 1 << SKETCH_P;

/** HyperLogLog register index of a 32-bit member. */
export function registerOf(h: number): number {
  return h >>> (32 - SKETCH_P);
}

/** HyperLogLog rank (leading zeros + 1 of the remaining bits) of a 32-bit member. */
export function rankOf(h: number): number {
  const w = (h << SKETCH_P) >>> 0;
  return w === 0 ? 32 - SKETCH_P + 1 : Math.clz32(w) + 1;
}

function promote(target: DistinctSketch): Uint8Array {
  if (target.registers) return target.registers;
  const regs = new Uint8Array(SKETCH_M);
  for (const x of target.small ?? []) {
    const i = registerOf(x);
    const r = rankOf(x);
    if (r > (regs[i] ?? 0)) regs[i] = r;
  }
  target.small = undefined;
  target.registers = regs;
  return regs;
}

/** Adds every member of `src` to `target` (a union in place; exact while both stay small). */
export function unionInto(target: DistinctSketch, src: DistinctSketch | undefined): void {
  if (!src) return;
  if (src.small) {
    for (const x of src.small) target.add(x);
    return;
  }
  const regs = promote(target);
  const from = src.registers as Uint8Array;
  for (let i = 0; i < SKETCH_M; i++) {
    const r = from[i] ?? 0;
    if (r > (regs[i] ?? 0)) regs[i] = r;
  }
}

/** A sketch from its Redis form: exact members, or 128 register values. */
export function sketchFrom(promoted: boolean, values: readonly number[]): DistinctSketch {
  const s = new DistinctSketch();
  if (!promoted) {
    s.small = values.slice(0, SKETCH_SMALL + 1);
    if (s.small.length > SKETCH_SMALL) promote(s);
    return s;
  }
  const regs = new Uint8Array(SKETCH_M);
  for (let i = 0; i < SKETCH_M && i < values.length; i++) regs[i] = values[i] ?? 0;
  s.small = undefined;
  s.registers = regs;
  return s;
}
