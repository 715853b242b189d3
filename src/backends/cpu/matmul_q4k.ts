// matmul_q4k.ts is the cpu matmul_q routine for Q4_K weights: out (m, n) = x (m, k) @ dequant(w)^T with w's
// 144-byte super-blocks (256 weights: f16 d, f16 dmin, 6-bit scales and mins of eight 32-element
// sub-blocks, 4-bit quants) read in place. Semantics: src/core/routines.ts (QuantMatmulSpec); reference:
// src/tensor/quant.ts; layout: src/models/formats/encode_q4k.ts.
// NOTE: the same two paths as matmul_q.ts's Q8_0/Q4_0: GEMV (m = 1) over matmul_q4k_rows.ts's row loop,
// shared by rows of w with the worker threads when there are any; GEMM (m > 1) expands one weight row
// into a k-float scratch and dots it with every row of x. Plain JS, like the Q8_0/Q4_0 kernels.
// It is its own file so the Q4_K kernel changes apart from the Q8_0/Q4_0 one.

import type { QuantMatmulSpec } from "../../core/routines.js";
import { STORAGE_FORMATS } from "../../core/dtype.js";
import { checkLength, f16Values } from "./convert.js";
import type { QDotsTask, QViews } from "./matmul_q_rows.js";
import { qdotsUnits, qScratch, weightViews } from "./matmul_q_rows.js";
import { Q4K_TASK, runQ4KDots } from "./matmul_q4k_rows.js";
import { matmulPool } from "./wasm/matmul_threads.js";

type Run = (views: ArrayBufferView[]) => void;
const QK = 256;
const BLOCK = STORAGE_FORMATS.q4_k.blockBytes;

/** Expands row `r` of w (k elements at byte rowOff) into dst: w = (d * sc) * q - dmin * m, as ggml rounds it. */
function expandRow(w: Uint8Array, rowOff: number, k: number, dst: Float32Array): void {
  const f16 = f16Values();
  for (let b = 0, o = rowOff; b < k / QK; b++, o += BLOCK) {
    const d = f16[w[o]! | (w[o + 1]! << 8)]!, dmin = f16[w[o + 2]! | (w[o + 3]! << 8)]!;
    for (let j = 0; j < 8; j++) {
      const s = o + 4;
      const sc = j < 4 ? w[s + j]! & 63 : (w[s + j + 4]! & 15) | ((w[s + j - 4]! >> 6) << 4);
      const m = j < 4 ? w[s + j + 4]! & 63 : (w[s + j + 4]! >> 4) | ((w[s + j]! >> 6) << 4);
      const ds = Math.fround(d * sc), dm = Math.fround(dmin * m);
      const q = o + 16 + 32 * (j >> 1), shift = (j & 1) * 4, base = b * QK + 32 * j;
      for (let l = 0; l < 32; l++) dst[base + l] = Math.fround(ds * ((w[q + l]! >> shift) & 15)) - dm;
    }
  }
}

/** Rows of w per unit of work a thread claims (64 rows of 2048 Q4_K weights: 72 KiB). */
const ROWS_PER_UNIT = 64;


/** out (n) = x (k) . dequant(w)^T, a row of w per output, on the worker threads when w's buffer is shared. */
function gemv(out: Float32Array, x: Float32Array, w: Uint8Array, n: number, k: number, rowBytes: number): void {
  const pool = matmulPool();
  const id = pool && n >= 2 * ROWS_PER_UNIT ? pool.share(w.buffer) : undefined;
  const sums = k / 32;
  const s = qScratch(k + sums + n, id !== undefined);
  const sid = id !== undefined ? pool!.share(s.u8.buffer)! : 0;
  s.f32.set(x.subarray(0, k), 0);
  for (let j = 0; j < sums; j++) {
    let t = 0;
    for (let l = 0; l < 32; l++) t += x[32 * j + l]!;
    s.f32[k + j] = t;
  }
  const wv = weightViews(w.buffer);
  const task: QDotsTask = { buf: id ?? 0, wByte: w.byteOffset, q4: Q4K_TASK, rowBytes, k, n, rowsPerUnit: ROWS_PER_UNIT, sbuf: sid, xOff: 0, outOff: k + sums };
  if (pool && id !== undefined) pool.runQDots(task, f16Values(), wv, s);
  else for (let u = 0, units = qdotsUnits(task); u < units; u++) runQ4KDots(f16Values(), wv, s, u, task);
  out.set(s.f32.subarray(k + sums, k + sums + n));
}

export function buildMatmulQ4K(s: QuantMatmulSpec): { source: string; run: Run } {
  const { m, n, k } = s;
  const rowBytes = (k / QK) * BLOCK;
  const what = `matmul_q q4_k (${m}, ${k}) @ (${n}, ${k})^T`;
  const row = new Float32Array(k);
  return {
    source: `// cpu routine ${what}: ${m === 1 ? "GEMV, sub-blocks scaled after their integer dot" : "GEMM, one expanded weight row at a time"}`,
    run(views) {
      const [out, x, w] = views as [Float32Array, Float32Array, Uint8Array];
      checkLength(out, m * n, `${what}: output`);
      checkLength(x, m * k, `${what}: x`);
      checkLength(w, n * rowBytes, `${what}: weight bytes`);
      if (m === 1) return gemv(out, x, w, n, k, rowBytes);
      for (let r = 0; r < n; r++) {
        expandRow(w, r * rowBytes, k, row);
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
