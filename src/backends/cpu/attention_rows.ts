// attention_rows.ts holds what the cpu attention drivers (attention.ts, attention_backward.ts) share: the
// choice of precision (f32 in the wasm SIMD kernel, wasm/attention_kernel.ts, for f32, f16 and bf16 data;
// f64 in plain JS for f64 data and engines without wasm SIMD), their working memory layout (rows padded to a
// multiple of 4 with zeros), the copies in and out of it, and the f64 path's three row operations
// (dots, combine, ger) with its softmax. The drivers address memory in elements.

import type { FloatDType, WorkArray } from "./convert.js";
import { readFloats, writeFloats } from "./convert.js";
import { hasAttentionKernel } from "./wasm/attention_kernel.js";

/** The f64 path's row operations over `mem`, on rows of `dp` elements (the head dim rounded up to 4; padding stays 0). */
export interface RowOps {
  readonly mem: WorkArray;
  readonly dp: number;
  /** out[j] = x . rows[j] for j < n. */
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

/** Whether data of this dtype is computed in f32 (the wasm kernel) rather than f64 (f64RowOps). */
export const computesInF32 = (dtype: FloatDType): boolean => dtype !== "f64" && hasAttentionKernel();

/** Row operations in doubles in JS over a zeroed memory of `size` elements. */
export function f64RowOps(dp: number, size: number): RowOps {
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

/**
 * Which query rows see keys, for the kernel's conventions: rows i >= i0 see keys j < min(tk, n0 + (i - i0) inc)
 * with n0 >= 1; rows below i0 see none (causal with tq > tk, or tk = 0).
 */
export function visibleRows(tq: number, tk: number, causal: boolean): { i0: number; n0: number; inc: number } {
  if (tk === 0) return { i0: tq, n0: 0, inc: 0 };
  if (!causal) return { i0: 0, n0: tk, inc: 0 };
  const i0 = Math.max(0, tq - tk);
  return { i0, n0: i0 + tk - tq + 1, inc: 1 };
}
