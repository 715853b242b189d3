// matmul_q.ts is the cpu matmul_q routine: out (m, n) = x (m, k) @ dequant(w)^T with w's Q8_0 / Q4_0 blocks
// read in place (GGUF's bytes, no f32 copy of the weight). Semantics and layout: src/core/routines.ts
// (QuantMatmulSpec); reference: src/tensor/quant.ts.
// NOTE: two paths. GEMV (m = 1, a decode step) dots x with each block's integers and scales the block's
// sum once (y += d * sum(q * x)), reading every weight byte once. GEMM (m > 1, prefill) expands one weight
// row at a time into a k-float scratch and dots it with all m rows of x, so each block is decoded once per
// row of W instead of once per row of x. Plain JS for now: a wasm SIMD version is the next step (docs/quantization.md).
// The GEMV's row loop is matmul_q_rows.ts's, which the cpu worker threads share (by rows of w) when there are any.

import type { QuantMatmulSpec } from "../../core/routines.js";
import { STORAGE_FORMATS } from "../../core/dtype.js";
import { checkLength, f16Values } from "./convert.js";
import type { QDotsTask, QViews } from "./matmul_q_rows.js";
import { qdotsUnits, qScratch, runQDots, weightViews } from "./matmul_q_rows.js";
import { buildMatmulQ4K } from "./matmul_q4k.js";
import { buildMatmulFp8 } from "./matmul_fp8.js";
import { matmulPool } from "./wasm/matmul_threads.js";

type Run = (views: ArrayBufferView[]) => void;

/** Why the cpu backend cannot run this spec, or undefined. */
export function matmulQReason(s: QuantMatmulSpec): string | undefined {
  if (![s.m, s.n, s.k].every((x) => Number.isInteger(x) && x >= 0)) return "m, n and k must be integers >= 0";
  if (s.dtype !== "f32" || s.out !== "f32") return `x and out must be f32 (got ${s.dtype} -> ${s.out})`;
  if (!(s.format in STORAGE_FORMATS) || !["q8_0", "q4_0", "q4_k", "fp8e4m3_b128"].includes(s.format)) return `format ${String(s.format)} is not q8_0, q4_0, q4_k or fp8e4m3_b128`;
  const qk = STORAGE_FORMATS[s.format].blockElems;
  if (s.k % qk !== 0) return `k = ${s.k} is not a whole number of ${s.format} blocks (${qk} elements each)`;
  return undefined;
}

/** Expands row `r` of w (k elements) into dst. */
function expandRow(format: "q8_0" | "q4_0", w: Uint8Array, wi: Int8Array, rowOff: number, k: number, dst: Float32Array): void {
  const f16 = f16Values();
  const nb = k / 32;
  if (format === "q8_0") {
    for (let b = 0, o = rowOff; b < nb; b++, o += 34) {
      const d = f16[w[o]! | (w[o + 1]! << 8)]!;
      const base = b * 32;
      for (let j = 0; j < 32; j++) dst[base + j] = d * wi[o + 2 + j]!;
    }
    return;
  }
  for (let b = 0, o = rowOff; b < nb; b++, o += 18) {
    const d = f16[w[o]! | (w[o + 1]! << 8)]!;
    const base = b * 32;
    for (let j = 0; j < 16; j++) {
      const byte = w[o + 2 + j]!;
      dst[base + j] = d * ((byte & 15) - 8);
      dst[base + j + 16] = d * ((byte >> 4) - 8);
    }
  }
}

/** Rows of w per unit of work a thread claims. */
const ROWS_PER_UNIT = 64;


/** out (n) = x (k) . dequant(w)^T, a row of w per output, on the worker threads when w's buffer is shared. */
function gemv(format: "q8_0" | "q4_0", out: Float32Array, x: Float32Array, w: Uint8Array, n: number, k: number, rowBytes: number): void {
  const pool = matmulPool();
  const id = pool && n >= 2 * ROWS_PER_UNIT ? pool.share(w.buffer) : undefined;
  const s = qScratch(k + n, id !== undefined);
  const sid = id !== undefined ? pool!.share(s.u8.buffer)! : 0;
  s.f32.set(x.subarray(0, k), 0);
  const wv = weightViews(w.buffer);
  const task: QDotsTask = { buf: id ?? 0, wByte: w.byteOffset, q4: format === "q8_0" ? 0 : 1, rowBytes, k, n, rowsPerUnit: ROWS_PER_UNIT, sbuf: sid, xOff: 0, outOff: k };
  if (pool && id !== undefined) pool.runQDots(task, f16Values(), wv, s);
  else for (let u = 0, units = qdotsUnits(task); u < units; u++) runQDots(f16Values(), wv, s, u, task);
  out.set(s.f32.subarray(k, k + n));
}

export function buildMatmulQ(s: QuantMatmulSpec): { source: string; run: Run } {
  if (s.format === "q4_k") return buildMatmulQ4K(s); // its own kernel: matmul_q4k.ts
  if (s.format === "fp8e4m3_b128") return buildMatmulFp8(s); // and matmul_fp8.ts
  const { m, n, k } = s;
  const format = s.format as "q8_0" | "q4_0";
  const rowBytes = (k / 32) * STORAGE_FORMATS[format].blockBytes;
  const what = `matmul_q ${format} (${m}, ${k}) @ (${n}, ${k})^T`;
  const scratch = new Float32Array(k);
  return {
    source: `// cpu routine ${what}: ${m === 1 ? "GEMV, blocks scaled after their integer dot" : "GEMM, one expanded weight row at a time"}`,
    run(views) {
      const [out, x, w] = views as [Float32Array, Float32Array, Uint8Array];
      checkLength(out, m * n, `${what}: output`);
      checkLength(x, m * k, `${what}: x`);
      checkLength(w, n * rowBytes, `${what}: weight bytes`);
      if (m === 1) return gemv(format, out, x, w, n, k, rowBytes);
      const wi = new Int8Array(w.buffer, w.byteOffset, w.byteLength);
      for (let r = 0; r < n; r++) {
        expandRow(format, w, wi, r * rowBytes, k, scratch);
        for (let i = 0; i < m; i++) {
          let acc = 0;
          const xo = i * k;
          for (let j = 0; j < k; j++) acc += x[xo + j]! * scratch[j]!;
          out[i * n + r] = acc;
        }
      }
    },
  };
}
