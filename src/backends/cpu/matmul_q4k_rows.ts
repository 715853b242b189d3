// matmul_q4k_rows.ts: the Q4_K GEMV's row loop (m = 1, a decode step: out[r] = dot(x, dequant(w row r)) with
// w's 144-byte Q4_K super-blocks read in place), written as source text so the cpu worker threads
// (wasm/matmul_threads.ts) run the very code the calling thread runs, as matmul_q_rows.ts does for Q8_0/Q4_0.
// It takes the same task (QDotsTask, with q4 = 2) and one more convention of its own: the 32-element
// sub-block sums of x (k / 32 floats) follow x in the scratch, so out starts at xOff + k + k / 32.
// It owns this loop only; matmul_q4k.ts owns the routine (the sums, the GEMM path).

import type { QDotsTask } from "./matmul_q_rows.js";

/** QDotsTask.q4 for a Q4_K task. */
export const Q4K_TASK = 2;

/**
 * runQ4KDots(f16, w, s, u, p): rows [u*rowsPerUnit, ...) of the task. Per super-block (layout:
 * models/formats/encode_q4k.ts): y += d * sum_j sc_j * dot(q_j, x_j) - dmin * sum_j m_j * sum(x_j), so the
 * nibbles are dotted as integers and the scales and mins are applied once per 32-element sub-block.
 */
export const Q4K_DOTS_SOURCE = `function runQ4KDots(f16, w, s, u, p) {
  const r0 = u * p.rowsPerUnit, r1 = Math.min(p.n, r0 + p.rowsPerUnit);
  const wb = w.u8, x = s.f32, nb = p.k / 256, xOff = p.xOff, sumOff = p.xOff + p.k;
  for (let r = r0; r < r1; r++) {
    const rowOff = p.wByte + r * p.rowBytes;
    let acc = 0;
    for (let b = 0, o = rowOff, xo = xOff, so = sumOff; b < nb; b++, o += 144, xo += 256, so += 8) {
      const sc = o + 4;
      let sumQ = 0, sumM = 0;
      for (let c = 0; c < 4; c++) {
        const j0 = 2 * c, j1 = j0 + 1;
        let s0, m0, s1, m1;
        if (c < 2) {
          s0 = wb[sc + j0] & 63; m0 = wb[sc + j0 + 4] & 63;
          s1 = wb[sc + j1] & 63; m1 = wb[sc + j1 + 4] & 63;
        } else {
          s0 = (wb[sc + j0 + 4] & 15) | ((wb[sc + j0 - 4] >> 6) << 4); m0 = (wb[sc + j0 + 4] >> 4) | ((wb[sc + j0] >> 6) << 4);
          s1 = (wb[sc + j1 + 4] & 15) | ((wb[sc + j1 - 4] >> 6) << 4); m1 = (wb[sc + j1 + 4] >> 4) | ((wb[sc + j1] >> 6) << 4);
        }
        const q = o + 16 + 32 * c, xa = xo + 64 * c, xb = xa + 32;
        let dl = 0, dh = 0;
        for (let l = 0; l < 32; l += 2) {
          const b0 = wb[q + l], b1 = wb[q + l + 1];
          dl += (b0 & 15) * x[xa + l] + (b1 & 15) * x[xa + l + 1];
          dh += (b0 >> 4) * x[xb + l] + (b1 >> 4) * x[xb + l + 1];
        }
        sumQ += s0 * dl + s1 * dh;
        sumM += m0 * x[so + j0] + m1 * x[so + j1];
      }
      acc += f16[wb[o] | (wb[o + 1] << 8)] * sumQ - f16[wb[o + 2] | (wb[o + 3] << 8)] * sumM;
    }
    x[p.outOff + r] = acc;
  }
}`;

export const runQ4KDots = new Function(`return ${Q4K_DOTS_SOURCE}`)() as (f16: Float32Array, w: { u8: Uint8Array }, s: { f32: Float32Array }, u: number, p: QDotsTask) => void;
