// Register-level helpers for DistinctSketch (state/distinct.ts) that the Redis store needs:
// unions of several sketches in place, and a sketch rebuilt from its Redis form.

import { addToRegisters, DistinctSketch, M, SMALL } from './distinct.ts';

function promote(target: DistinctSketch): Uint8Array {
  if (target.registers) return target.registers;
  const regs = new Uint8Array(M);
  for (const x of target.small ?? []) addToRegisters(regs, x);
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
  for (let i = 0; i < M; i++) {
    const r = from[i] ?? 0;
    if (r > (regs[i] ?? 0)) regs[i] = r;
  }
}

/** A sketch from its Redis form: exact members, or 128 register values. */
export function sketchFrom(promoted: boolean, values: readonly number[]): DistinctSketch {
  const s = new DistinctSketch();
  if (!promoted) {
    s.small = values.slice(0, SMALL + 1);
    if (s.small.length > SMALL) promote(s);
    return s;
  }
  const regs = new Uint8Array(M);
  for (let i = 0; i < M && i < values.length; i++) regs[i] = values[i] ?? 0;
  s.small = undefined;
  s.registers = regs;
  return s;
}
