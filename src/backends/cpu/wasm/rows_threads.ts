// rows_threads.ts: the few-rows (decode) matmul's share of work per thread, for B stored (n, k) (x @ W^T).
// The task is cut into units of nb of B's rows (C's columns; nb a multiple of 4, one dot tile's width) and
// the threads claim units one at a time (matmul_threads.ts); a thread copies its unit's rows into its own
// chunk area of the shared wasm memory (f16/bf16 widened there by the kernel) and runs the dot tiles
// against every row of A. A B that lives in the wasm memory (resident_heap.ts: buf 0) is not copied: f32
// rows are read in place, f16/bf16 rows widened from where they are. So each weight byte is read once, by one
// thread, and every element of C is one dot computed exactly as on one thread: bit-identical results
// whatever the thread count. Written once as source text, so the pool's workers run the same code as the
// calling thread. It owns this split and the task's fields; the pool (matmul_threads.ts) owns the fork/join.

import { CONVERT_GROUP } from "./convert_kernel.js";

/**
 * One shared GEMV-like product (every address and stride in bytes of wasm memory, B in elements of its
 * own buffer): C[rows x n] at cOff (ldc) = A rows at aOff (lda) . B^T, B's row j at element bElem + j*k of
 * the buffer registered as `buf` (0: the wasm memory itself, B resident), as f32 (dtype 0), f16 (1) or bf16 (2) bits. Thread t's chunk area starts
 * at bOff + t*stride: nb rows of f32 B, and 16-bit staging at +raw.
 */
export interface DotsTask {
  readonly aOff: number;
  readonly lda: number;
  readonly cOff: number;
  readonly ldc: number;
  readonly rows: number;
  readonly n: number;
  readonly k: number;
  readonly buf: number;
  readonly bElem: number;
  readonly dtype: number;
  readonly bOff: number;
  readonly stride: number;
  readonly raw: number;
  readonly nb: number;
}

export const DOTS_FIELDS = ["aOff", "lda", "cOff", "ldc", "rows", "n", "k", "buf", "bElem", "dtype", "bOff", "stride", "raw", "nb"] as const;

/** The wasm functions a share calls (the kernel module's exports). */
export interface DotsExports {
  dots(a: number, lda: number, b: number, ldb: number, c: number, ldc: number, rows: number, quads: number, kv: number, rem: number): void;
  f16_to_f32(src: number, dst: number, groups: number): void;
  bf16_to_f32(src: number, dst: number, groups: number): void;
}

/** Views over the wasm memory as it is now, and over B's buffer (f32 or u16 by the task's dtype). */
export interface DotsViews {
  readonly f32: Float32Array;
  readonly u16: Uint16Array;
}

/** Units (chunks of nb of B's rows) a task splits into; threads claim them one at a time. */
export const dotsUnits = (p: DotsTask): number => Math.ceil(p.n / p.nb);

export const DOTS_SOURCE = `function runDots(ex, mem, src, t, u, p) {
  const j0 = u * p.nb, cols = Math.min(p.nb, p.n - j0);
  const area = p.bOff + t * p.stride;
  const s = p.bElem + j0 * p.k, count = cols * p.k;
  if (p.buf === 0 && p.dtype === 0) {
    // Resident f32 B: its rows read in place. A last partial group of 4 rows is copied into the chunk area,
    // as the dot tile reads 4 rows and the rows past B's end may lie past the memory's.
    const full = cols & ~3;
    if (full > 0) ex.dots(p.aOff, p.lda, 4 * s, 4 * p.k, p.cOff + 4 * j0, p.ldc, p.rows, full >> 2, p.k >> 2, p.k & 3);
    if (full === cols) return;
    mem.f32.copyWithin(area >>> 2, s + full * p.k, s + count);
    ex.dots(p.aOff, p.lda, area, 4 * p.k, p.cOff + 4 * (j0 + full), p.ldc, p.rows, 1, p.k >> 2, p.k & 3);
    return;
  }
  if (p.buf === 0) {
    // Resident f16/bf16 B: widened straight from where it lives into the chunk area.
    const groups = Math.ceil(count / ${CONVERT_GROUP});
    if (p.dtype === 1) ex.f16_to_f32(2 * s, area, groups);
    else ex.bf16_to_f32(2 * s, area, groups);
  } else if (p.dtype === 0) mem.f32.set(src.subarray(s, s + count), area >> 2);
  else {
    mem.u16.set(src.subarray(s, s + count), (area + p.raw) >> 1);
    const groups = Math.ceil(count / ${CONVERT_GROUP});
    if (p.dtype === 1) ex.f16_to_f32(area + p.raw, area, groups);
    else ex.bf16_to_f32(area + p.raw, area, groups);
  }
  ex.dots(p.aOff, p.lda, area, 4 * p.k, p.cOff + 4 * j0, p.ldc, p.rows, Math.ceil(cols / 4), p.k >> 2, p.k & 3);
}`;

/** Unit u of a dots task (B's rows [u*nb, (u+1)*nb)), run by thread t in its own chunk area. */
export const runDots = new Function(`return ${DOTS_SOURCE}`)() as (ex: DotsExports, mem: DotsViews, src: Float32Array | Uint16Array | undefined, t: number, u: number, p: DotsTask) => void;
