// The HyperLogLog estimate reads 2^-r from a table: it must give exactly what the formula gives,
// for every register value, in both of its regimes (linear counting and the raw estimate).
import t from 'tap';
import { estimate, M, mix32 } from '../../../decision-service/src/state/distinct.ts';

function reference(regs: Uint8Array): number {
  const alpha = 0.7213 / (1 + 1.079 / M);
  let sum = 0;
  let zeros = 0;
  for (const r of regs) {
    sum += 2 ** -r;
    if (r === 0) zeros++;
  }
  const raw = (alpha * M * M) / sum;
  if (raw <= 2.5 * M && zeros > 0) return Math.round(M * Math.log(M / zeros));
  return Math.round(raw);
}

t.test('estimate() equals the formula for every register value', async (t) => {
  const regs = new Uint8Array(M);
  t.equal(estimate(regs), reference(regs), 'all empty');
  for (let v = 0; v < 256; v++) {
    regs.fill(v);
    t.equal(estimate(regs), reference(regs), `every register ${v}`);
  }
  let seed = 1;
  for (let k = 0; k < 500; k++) {
    for (let i = 0; i < M; i++) regs[i] = (seed = mix32(seed + i)) % (k % 2 ? 27 : 4);
    t.equal(estimate(regs), reference(regs), `random registers ${k}`);
  }
});
