// matmul_rows.ts is the cpu matmul routine's few-rows path (decode: a batch of 1..64 rows of A against a
// weight matrix B; matmul.ts sends it up to 128 or 256 rows, where it still measured faster), f32/f16/bf16. B is never packed: it is copied into wasm memory a cache-sized chunk at a
// time (f16/bf16 bits widened there by the wasm kernel) and streamed once per call, against all rows of A;
// a B resident in that memory (wasm/resident_heap.ts) is read where it is (f16/bf16 widened from there):
//   B stored (n, k) (x @ W^T): dot tiles, c[i][j] = dot(a_i, b_j), over chunks of B rows;
//   B stored (k, n): C (rows x n) accumulates in wasm memory over chunks of B rows, read in place.
// It owns that memory layout and the chunking; the kernels are wasm/rows_kernel.ts's, the choice of path
// and the packed path are matmul.ts's, the output store and epilogue matmul_epilogue.ts's.

import type { MatmulSpec } from "../../core/routines.js";
import type { FloatDType } from "./convert.js";
import { readFloats } from "./convert.js";
import type { RowSink } from "./matmul_epilogue.js";
import { storeRows } from "./matmul_epilogue.js";
import { CONVERT_GROUP } from "./wasm/convert_kernel.js";
import type { MatmulKernel } from "./wasm/matmul_kernel.js";
import { matmulKernel, MR as KERNEL_MR } from "./wasm/matmul_kernel.js";
import { matmulPool } from "./wasm/matmul_threads.js";
import type { DotsExports } from "./wasm/rows_threads.js";
import { wasmAddress } from "./wasm/resident_heap.js";

// NOTE: a local copy: tsx's CommonJS transform turns each read of an imported binding into a getter call.
const MR = KERNEL_MR;

/**
 * B stored (n, k): bytes of f32 B per chunk of its rows, so a chunk stays in L2 between the copy in and
 * the dot tiles' reads. NOTE: 32 KiB to 512 KiB measured the same (within noise) at k = 512 and 4096.
 */
const CHUNK_BYTES_T = 64 << 10;
/**
 * B stored (k, n): rows of B per chunk, as C (rows x n) is read and written once per chunk. NOTE: measured at
 * n = 32000 on one Zen 4 core: 16 or 32 rows cost 2x at 64 rows of A (C traffic, short micro-kernel runs),
 * 128 rows or more cost up to 2x at 1 row of A (the chunk falls out of L3); 64 was best throughout.
 */
const KC_ROWS = 64;
/** ... and at most this many bytes of f32 B per chunk (fewer rows when n is very large). */
const CHUNK_MAX_BYTES = 16 << 20;
/**
 * B stored (n, k): bytes of B from which its rows are split over the worker threads (when B's buffer is
 * shared, see backend.ts). NOTE: below this the fork/join (~5-20 us, bench/threads_overhead.ts) costs
 * more than the second thread saves.
 */
export const SHARED_MIN_BYTES_T = 128 << 10;
/** Bytes the kernels may read or write past a chunk's end: a masked tail vector, a last 8-column tile, a conversion group. */
const SLACK = 64;

const align16 = (bytes: number): number => Math.ceil(bytes / 16) * 16;

let aScratch = new Float32Array(0);
/** A's batch matrix bi as f32 (m x k, or k x m when transA): the view itself when f32, else converted. */
function aMatrix(spec: MatmulSpec, a: ArrayBufferView, bi: number): { src: Float32Array; off: number } {
  const len = spec.m * spec.k;
  const off = bi * spec.aBatchStride;
  if (spec.dtype === "f32") return { src: a as Float32Array, off };
  if (aScratch.length < len) aScratch = new Float32Array(len);
  readFloats(a, spec.dtype as FloatDType, off, len, aScratch, 0);
  return { src: aScratch, off: 0 };
}

/**
 * Calls put(row, src, off, cs) for each row of A in batches [b0, b0 + count), numbered from 0 across them
 * (row = (bi - b0) * m + i): element kk of the row is src[off + kk * cs] (f32).
 */
function gatherA(spec: MatmulSpec, a: ArrayBufferView, b0: number, count: number, put: (row: number, src: Float32Array, off: number, cs: number) => void): void {
  const { m, k, transA } = spec;
  for (let bi = b0; bi < b0 + count; bi++) {
    const A = aMatrix(spec, a, bi);
    for (let i = 0; i < m; i++) put((bi - b0) * m + i, A.src, transA ? A.off + i : A.off + i * k, transA ? m : 1);
  }
}

/**
 * Copies B's elements [start, start + count) into wasm memory as f32 at byte address dst; f16/bf16 bits go
 * to the staging area at `raw` first and are widened by the kernel. One typed-array copy per chunk.
 */
export function copyB(kern: MatmulKernel, b: ArrayBufferView, dtype: FloatDType, start: number, count: number, dst: number, raw: number): void {
  if (dtype === "f32") {
    kern.reserve(0).set((b as Float32Array).subarray(start, start + count), dst >> 2);
    return;
  }
  kern.u16().set((b as Uint16Array).subarray(start, start + count), raw >> 1);
  const groups = Math.ceil(count / CONVERT_GROUP);
  if (dtype === "f16") kern.f16ToF32(raw, dst, groups);
  else kern.bf16ToF32(raw, dst, groups);
}

/** f16/bf16 B resident at byte address src: its `count` elements widened into wasm memory at dst, no copy in. */
function widenB(kern: MatmulKernel, dtype: FloatDType, src: number, count: number, dst: number): void {
  const groups = Math.ceil(count / CONVERT_GROUP);
  if (dtype === "f16") kern.f16ToF32(src, dst, groups);
  else kern.bf16ToF32(src, dst, groups);
}

/** One pass: `rows` rows of A (batches [b0, b0 + count)) against B matrix at bBase, into output rows from `first`. */
interface Pass {
  readonly b0: number;
  readonly count: number;
  readonly rows: number;
  readonly bBase: number;
  readonly first: number;
}

/** Passes that read B in place (resident) or copied it in, and packed products that read W / B in place (matmul.ts, matmul_swapped.ts): for tests that must know which path ran. */
export const rowsPasses = { resident: 0, copied: 0, packedResident: 0 };

/** B stored (n, k): C[rows x n] = A . B^T, B's rows in chunks of `nb`. */
function passTransB(spec: MatmulSpec, a: ArrayBufferView, b: ArrayBufferView, p: Pass, sink: RowSink): void {
  const { n, k } = spec;
  const dtype = spec.dtype as FloatDType;
  const kern = matmulKernel();
  const lda = Math.ceil(k / 4) * 4; // floats; rows zero-padded so the masked tail multiplies zeros
  const ldc = Math.ceil(n / 4) * 4;
  const nb = Math.max(4, Math.floor(CHUNK_BYTES_T / (4 * Math.max(k, 1)) / 4) * 4);
  // Wasm memory (bytes): A (rows x lda), C (rows x ldc), B chunk (nb rows, a multiple of 4, so a last partial
  // group of 4 rows reads stale rows inside it), 16-bit staging.
  const aOff = 0;
  const cOff = aOff + 4 * p.rows * lda;
  const bOff = cOff + 4 * p.rows * ldc;
  const rawOff = bOff + align16(4 * nb * k + SLACK);
  const mem = kern.reserve(rawOff + (dtype === "f32" ? 0 : align16(2 * nb * k + SLACK)));
  mem.fill(0, aOff >> 2, (aOff >> 2) + p.rows * lda);
  gatherA(spec, a, p.b0, p.count, (row, src, off, cs) => {
    const d = (aOff >> 2) + row * lda;
    if (cs === 1) mem.set(src.subarray(off, off + k), d);
    else for (let kk = 0; kk < k; kk++) mem[d + kk] = src[off + kk * cs]!;
  });
  const pool = matmulPool();
  const size = dtype === "f32" ? 4 : 2;
  // B's first element's wasm address when it lives in the kernel memory (then read in place, no copy).
  const at = wasmAddress(b);
  const bAddr = at === undefined ? undefined : at + size * p.bBase;
  rowsPasses[bAddr === undefined ? "copied" : "resident"]++;
  const split = pool !== undefined && pool.threads > 1 && n >= 8 * pool.threads && n * k * size >= SHARED_MIN_BYTES_T;
  const id = !split ? undefined : bAddr !== undefined ? 0 : pool.share(b.buffer);
  if (pool && id !== undefined) {
    // Each thread streams its own range of B's rows through its own chunk area (rows_threads.ts).
    const raw = align16(4 * nb * k + SLACK);
    const stride = raw + (dtype === "f32" ? 0 : align16(2 * nb * k + SLACK));
    const all = kern.reserve(bOff + pool.threads * stride);
    const src = id === 0 ? undefined : dtype === "f32" ? new Float32Array(b.buffer) : new Uint16Array(b.buffer);
    const task = { aOff, lda: 4 * lda, cOff, ldc: 4 * ldc, rows: p.rows, n, k, buf: id, bElem: b.byteOffset / size + p.bBase, dtype: dtype === "f32" ? 0 : dtype === "f16" ? 1 : 2, bOff, stride, raw, nb };
    pool.runDots(task, dotsExports(kern), { f32: all, u16: kern.u16() }, src);
  } else if (bAddr !== undefined && dtype === "f32") {
    // B's rows in place, all of them in one sweep; a last partial group of 4 rows through the chunk area
    // (the dot tile reads 4 rows, and rows past B's end may lie past the memory's).
    const full = n & ~3;
    if (full > 0) kern.dots(aOff, 4 * lda, bAddr, 4 * k, cOff, 4 * ldc, p.rows, full >> 2, k >> 2, k & 3);
    if (full < n) {
      copyB(kern, b, dtype, p.bBase + full * k, (n - full) * k, bOff, rawOff);
      kern.dots(aOff, 4 * lda, bOff, 4 * k, cOff + 4 * full, 4 * ldc, p.rows, 1, k >> 2, k & 3);
    }
  } else {
    for (let j0 = 0; j0 < n; j0 += nb) {
      const cols = Math.min(nb, n - j0);
      if (bAddr !== undefined) widenB(kern, dtype, bAddr + size * j0 * k, cols * k, bOff);
      else copyB(kern, b, dtype, p.bBase + j0 * k, cols * k, bOff, rawOff);
      kern.dots(aOff, 4 * lda, bOff, 4 * k, cOff + 4 * j0, 4 * ldc, p.rows, Math.ceil(cols / 4), k >> 2, k & 3);
    }
  }
  storeRows(sink, kern.reserve(0), cOff >> 2, ldc, p.first, p.rows);
}

let exportsOf: DotsExports | undefined;
/** The kernel's functions under the names the shared share code calls them by. */
function dotsExports(kern: MatmulKernel): DotsExports {
  return (exportsOf ??= { dots: kern.dots, f16_to_f32: kern.f16ToF32, bf16_to_f32: kern.bf16ToF32 });
}

/** B stored (k, n): C[rows x n] += A panels . B, B's rows in chunks of `kc`, read in place by 8-column tiles. */
function passB(spec: MatmulSpec, a: ArrayBufferView, b: ArrayBufferView, p: Pass, sink: RowSink): void {
  const { n, k } = spec;
  const dtype = spec.dtype as FloatDType;
  const kern = matmulKernel();
  const panels = Math.ceil(p.rows / MR);
  const ldc = Math.ceil(n / 8) * 8;
  const kc = Math.max(1, Math.min(KC_ROWS, Math.floor(CHUNK_MAX_BYTES / (4 * n))));
  // Wasm memory (bytes): A panels ([k][MR] each), C (rows x ldc), B chunk (kc rows), 16-bit staging.
  const aOff = 0;
  const cOff = aOff + 4 * panels * k * MR;
  const bOff = cOff + 4 * p.rows * ldc;
  const rawOff = bOff + align16(4 * kc * n + SLACK);
  const mem = kern.reserve(rawOff + (dtype === "f32" ? 0 : align16(2 * kc * n + SLACK)));
  gatherA(spec, a, p.b0, p.count, (row, src, off, cs) => {
    let d = (aOff >> 2) + Math.floor(row / MR) * k * MR + (row % MR);
    for (let kk = 0; kk < k; kk++, d += MR) mem[d] = src[off + kk * cs]!;
  });
  mem.fill(0, cOff >> 2, (cOff >> 2) + p.rows * ldc);
  const at = wasmAddress(b);
  const size = dtype === "f32" ? 4 : 2;
  rowsPasses[at === undefined ? "copied" : "resident"]++;
  for (let k0 = 0; k0 < k; k0 += kc) {
    const rowsB = Math.min(kc, k - k0);
    // NOTE: a resident f32 B is read in place: its 8-column tiles read at most 28 bytes past its last row, inside the heap's slack.
    if (at !== undefined && dtype === "f32") {
      kern.rows(aOff + 4 * k0 * MR, 4 * k * MR, at + 4 * (p.bBase + k0 * n), 4 * n, cOff, 4 * ldc, p.rows, ldc / 8, rowsB);
      continue;
    }
    if (at !== undefined) widenB(kern, dtype, at + size * (p.bBase + k0 * n), rowsB * n, bOff);
    else copyB(kern, b, dtype, p.bBase + k0 * n, rowsB * n, bOff, rawOff);
    kern.rows(aOff + 4 * k0 * MR, 4 * k * MR, bOff, 4 * n, cOff, 4 * ldc, p.rows, ldc / 8, rowsB);
  }
  storeRows(sink, kern.reserve(0), cOff >> 2, ldc, p.first, p.rows);
}

/**
 * Rows of A one pass handles: with B broadcast over the batch (bBatchStride 0) every batch's rows go in one
 * pass (B is streamed once for all of them), else one batch per pass.
 */
export const rowsPerPass = (s: MatmulSpec): number => (s.bBatchStride === 0 ? s.batch * s.m : s.m);

/** C[b] = A[b] @ B[b] for few rows (see rowsPerPass), through the sink. */
export function runRows(spec: MatmulSpec, views: readonly ArrayBufferView[], sink: RowSink): void {
  const [, a, b] = views as [ArrayBufferView, ArrayBufferView, ArrayBufferView];
  const fold = spec.bBatchStride === 0;
  const per = fold ? spec.batch : 1;
  const pass = spec.transB ? passTransB : passB;
  for (let b0 = 0; b0 < spec.batch; b0 += per) {
    pass(spec, a, b, { b0, count: per, rows: per * spec.m, bBase: b0 * spec.bBatchStride, first: b0 * spec.m }, sink);
  }
}
