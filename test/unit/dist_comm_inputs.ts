// dist_comm_inputs.ts: the arrays each rank contributes in dist_comm.test.ts, a pure function of (rank, n,
// salt), so the test can compute every collective's expected result on its own. Values spread over several
// magnitudes and signs, so the order in which sums are taken shows in the low bits.

export function rankInput(rank: number, n: number, salt: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let h = Math.imul(i + 1, 0x9e3779b1) ^ Math.imul(rank + 1, 0x85ebca6b) ^ Math.imul(salt + 1, 0xc2b2ae35);
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
    h = Math.imul(h ^ (h >>> 12), 0x297a2d39) ^ (h >>> 15);
    const u = (h >>> 0) / 4294967296; // [0, 1)
    out[i] = (u - 0.5) * 10 ** ((h >>> 0) % 5 - 2);
  }
  return out;
}
