// attention_rows.ts gives the cpu attention drivers (attention.ts, attention_backward.ts) their working
// memory and the three row operations they are built from (dots, combine, ger: see wasm/attention_kernel.ts),
// in one of two precisions: f32 in WebAssembly SIMD (f32, f16 and bf16 data), or f64 in plain JS (f64 data,
// and engines without wasm SIMD). The drivers address memory in elements; this file turns that into bytes.
// It owns the choice of precision and the row layout (rows padded to a multiple of 4 with zeros), nothing else.

import type { FloatDType, WorkArray } from "./convert.js";
import { readFloats, writeFloats } from "./convert.js";
import { attentionKernel, hasAttentionKernel } from "./wasm/attention_kernel.js";

/** Row operations over `mem`, on rows of `dp` elements (the head dim rounded up to 4; padding stays 0). */
export interface RowOps {
  readonly mem: WorkArray;
  readonly dp: number;
  /** out[j] = x . rows[j] for j < n (may write up to the next multiple of 4 past n). */
  dots(x: number, rows: number, n: number, out: number): void;
  /** acc += sum_{j < n} coef[j] rows[j]. */
  combine(coef: number, rows: number, n: number, acc: number): void;
  /** rows[j] += coef[j] x for j < n. */
  ger(coef: number, x: number, rows: number, n: number): void;
}

export const pad4 = (n: number): number => Math.ceil(n / 4) * 4;

/** A bump allocator of element offsets, each a multiple of 4 (16 bytes in f32): regions for one launch. */
export class Layout {
  private top = 0;
  /** A region of n elements (a block that dots reads needs 3 rows of slack in n: it reads up to 3 rows past its end). */
  region(n: number): number {
    const at = this.top;
    this.top += pad4(n);
    return at;
  }
  get size(): number { return this.top; }
}

/** Row ops for data of `dtype` with head dim padded to dp, over a zeroed memory of `size` elements. */
export function rowOps(dtype: FloatDType, dp: number, size: number): RowOps {
  if (dtype !== "f64" && hasAttentionKernel()) return wasmOps(dp, size);
  return jsOps(dp, size);
}

/** Whether data of this dtype is computed in f32 (the wasm kernel) rather than f64. */
export const computesInF32 = (dtype: FloatDType): boolean => dtype !== "f64" && hasAttentionKernel();

function wasmOps(dp: number, size: number): RowOps {
  const k = attentionKernel();
  const mem = k.reserve(size * 4);
  mem.fill(0, 0, size);
  const stride = dp * 4;
  const dv = dp / 4;
  return {
    mem, dp,
    dots: (x, rows, n, out) => k.dots(x * 4, rows * 4, stride, n, dv, out * 4),
    combine: (coef, rows, n, acc) => k.combine(coef * 4, rows * 4, stride, n, dv, acc * 4),
    ger: (coef, x, rows, n) => k.ger(coef * 4, x * 4, rows * 4, stride, n, dv),
  };
}

function jsOps(dp: number, size: number): RowOps {
  const mem = new Float64Array(size);
  return {
    mem, dp,
    dots(x, rows, n, out) {
      for (let j = 0; j < n; j++) {
        const r = rows + j * dp;
        let s = 0;
        for (let c = 0; c < dp; c++) s += mem[x + c]! * mem[r + c]!;
        mem[out + j] = s;
      }
    },
    combine(coef, rows, n, acc) {
      for (let j = 0; j < n; j++) {
        const r = rows + j * dp;
        const cj = mem[coef + j]!;
        for (let c = 0; c < dp; c++) mem[acc + c] = mem[acc + c]! + cj * mem[r + c]!;
      }
    },
    ger(coef, x, rows, n) {
      for (let j = 0; j < n; j++) {
        const r = rows + j * dp;
        const cj = mem[coef + j]!;
        for (let c = 0; c < dp; c++) mem[r + c] = mem[r + c]! + cj * mem[x + c]!;
      }
    },
  };
}

/**
 * Rows [0, rows) of d values from a stored view at element `off` into mem at `at`, dp apart (padding untouched).
 * NOTE: one call per block when rows need no padding: per-row calls allocate a subarray each (GC in the profile).
 */
export function readRows(src: ArrayBufferView, dtype: FloatDType, off: number, rows: number, d: number, mem: WorkArray, at: number, dp: number): void {
  if (d === dp) return readFloats(src, dtype, off, rows * d, mem, at);
  for (let r = 0; r < rows; r++) readFloats(src, dtype, off + r * d, d, mem, at + r * dp);
}

/** Rows [0, rows) of mem at `at` (dp apart, d values each) into a stored view at element `off`, rounded to its dtype. */
export function writeRows(mem: WorkArray, at: number, dp: number, rows: number, d: number, dst: ArrayBufferView, dtype: FloatDType, off: number): void {
  if (d === dp) return writeFloats(mem, at, rows * d, dst, dtype, off);
  for (let r = 0; r < rows; r++) writeFloats(mem, at + r * dp, d, dst, dtype, off + r * d);
}

/**
 * One row's softmax over the scores mem[s .. s + n), scaled: mem[p + j] = exp(scale s_j - m) / l.
 * NaN-sticky like the dense formula (a NaN score, or a row whose max is infinite, gives NaN).
 */
export function softmaxRow(mem: WorkArray, s: number, p: number, n: number, scale: number): void {
  let m = -Infinity;
  for (let j = 0; j < n; j++) {
    const x = mem[s + j]! * scale;
    if (x > m || x !== x) m = x;
  }
  let l = 0;
  for (let j = 0; j < n; j++) {
    const e = Math.exp(mem[s + j]! * scale - m);
    mem[p + j] = e;
    l += e;
  }
  const inv = 1 / l;
  for (let j = 0; j < n; j++) mem[p + j] = mem[p + j]! * inv;
}
