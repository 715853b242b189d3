// matmul_fp8.ts is the cpu matmul_q routine for FP8 weights (fp8e4m3_b128: an f32 scale then 128 E4M3
// codes per block; src/models/formats/fp8_blocks.ts): out (m, n) = x (m, k) @ dequant(w)^T with w's blocks
// read in place. Semantics: src/core/routines.ts (QuantMatmulSpec); reference: src/tensor/quant.ts.
// NOTE: GEMV (m = 1) decodes each code through a 256-entry table and scales each block's dot once; GEMM
// (m > 1) expands one weight row at a time. Plain JS on the calling thread (not yet on the worker pool,
// which Q8_0/Q4_0/Q4_K use). Its own file so the FP8 kernel changes apart from the others.

import type { QuantMatmulSpec } from "../../core/routines.js";
import { STORAGE_FORMATS } from "../../core/dtype.js";
import { E4M3_VALUES } from "../../core/e4m3.js";
import { checkLength } from "./convert.js";

type Run = (views: ArrayBufferView[]) => void;
const QK = STORAGE_FORMATS.fp8e4m3_b128.blockElems;
const BLOCK = STORAGE_FORMATS.fp8e4m3_b128.blockBytes;

const E4M3 = E4M3_VALUES; // local name: read per weight in the row loop

export function buildMatmulFp8(s: QuantMatmulSpec): { source: string; run: Run } {
  const { m, n, k } = s;
  const nb = k / QK;
  const rowBytes = nb * BLOCK;
  const what = `matmul_q fp8e4m3_b128 (${m}, ${k}) @ (${n}, ${k})^T`;
  const row = new Float32Array(k);
  return {
    source: `// cpu routine ${what}: ${m === 1 ? "GEMV, each block's dot scaled once" : "GEMM, one expanded weight row at a time"}`,
    run(views) {
      const [out, x, w] = views as [Float32Array, Float32Array, Uint8Array];
      checkLength(out, m * n, `${what}: output`);
      checkLength(x, m * k, `${what}: x`);
      checkLength(w, n * rowBytes, `${what}: weight bytes`);
      const dv = new DataView(w.buffer, w.byteOffset, w.byteLength);
      if (m === 1) {
        for (let r = 0; r < n; r++) {
          let acc = 0;
          for (let b = 0, o = r * rowBytes; b < nb; b++, o += BLOCK) {
            let sum = 0;
            const xo = b * QK;
            for (let j = 0; j < QK; j++) sum += E4M3[w[o + 4 + j]!]! * x[xo + j]!;
            acc += dv.getFloat32(o, true) * sum;
          }
          out[r] = acc;
        }
        return;
      }
      for (let r = 0; r < n; r++) {
        for (let b = 0, o = r * rowBytes; b < nb; b++, o += BLOCK) {
          const sc = dv.getFloat32(o, true);
          for (let j = 0; j < QK; j++) row[b * QK + j] = Math.fround(sc * E4M3[w[o + 4 + j]!]!);
        }
        for (let i = 0; i < m; i++) {
          let acc = 0;
          const xo = i * k;
          for (let j = 0; j < k; j++) acc += x[xo + j]! * row[j]!;
          out[i * n + r] = acc;
        }
      }
    },
  };
}
