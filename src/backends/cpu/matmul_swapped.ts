// matmul_swapped.ts is the cpu matmul routine's packed path for B stored (n, k) with fewer rows of A than
// columns of B: x @ W^T in a prefill or a training step, W a (n, k) weight. The micro-kernel reads its A
// operand in place (row-major, strided) but needs B as (k, n) rows, so the plain packed path (matmul.ts
// runPacked) transposes all of W on every call: n*k floats through the 4 x 4 transpose, 15% of a 64-token
// prefill of a 41M Llama. Here the product runs transposed instead, C^T (n, m) = W (n, k) . A^T (k, m):
// W is the kernel's A operand, read in place (no copy at all when W is resident in the kernel memory,
// wasm/resident_heap.ts); only A (m*k floats, none when A is stored (k, m)) and C^T
// (n*m) go through the transpose. Every element of C sums the same products in the same order as
// runPacked (k-blocks of KC, in increasing k): the same bits. It owns this layout; the kernel and the pool
// are wasm/matmul_kernel.ts's and wasm/matmul_threads.ts's, the copy in matmul_rows.ts's, the store
// matmul_epilogue.ts's.

import type { MatmulSpec } from "../../core/routines.js";
import type { FloatDType } from "./convert.js";
import type { RowSink } from "./matmul_epilogue.js";
import { storeRows } from "./matmul_epilogue.js";
import { copyB as copyIn, rowsPasses } from "./matmul_rows.js";
import { bStride, matmulKernel } from "./wasm/matmul_kernel.js";
import { wasmAddress } from "./wasm/resident_heap.js";

const ceil4 = (x: number): number => Math.ceil(x / 4) * 4;
const ceil8 = (x: number): number => Math.ceil(x / 8) * 8;

/** Floats the transposes move per call: swapped (A and C^T) against runPacked's (all of B, once per B matrix). */
export function swapPays(spec: MatmulSpec): boolean {
  const { batch, m, n, k, transA, transB } = spec;
  if (!transB) return false;
  const swapped = batch * ((transA ? 0 : m * k) + m * n);
  const plain = (spec.bBatchStride !== 0 ? batch : 1) * n * k;
  return swapped < plain;
}

/** C = A . B^T for B stored (n, k), computed as C^T = B . A^T (see the file comment). */
export function runSwapped(spec: MatmulSpec, views: readonly ArrayBufferView[], sink: RowSink): void {
  const { batch, m, n, k, transA } = spec;
  const dtype = spec.dtype as FloatDType;
  const kernel = matmulKernel();
  const { MR, NR } = kernel.tile;
  // The kernel's product: rows n (B's), columns m (A's), depth k.
  const mTiles = Math.ceil(n / MR);
  const nTiles = Math.ceil(m / NR);
  const mPad = mTiles * MR;
  const nPad = nTiles * NR;
  const ldb = transA ? m : bStride(nPad); // A stored (k, m) is already the kernel's (k, m) B rows
  const ldc = ceil4(n); // C's rows after the transpose back (n when n is a multiple of 4: one copy out)
  // Wasm memory (f32 offsets, each region a multiple of 8 floats): B as stored (the kernel's A, its last row
  // tile reading up to MR - 1 rows past it); A^T as (k, ldb) rows (+ NR of slack for the last column tile);
  // C^T (mPad x nPad); C (ceil4(m) x ldc); A as stored before its transpose; f16/bf16 bits before widening.
  // NOTE: the transposes' last 4 x 4 blocks read and write up to 3 rows and columns past their operands:
  // stale values that reach only padding rows and columns of C^T and C, which are never read.
  const aOff = 0;
  const bOff = aOff + ceil8(mPad * k);
  const ctOff = bOff + ceil8(ceil4(k) * ldb + NR);
  const cOff = ctOff + ceil8(mPad * nPad);
  const tOff = cOff + ceil8(ceil4(m) * ldc);
  const rawOff = tOff + (transA ? 0 : ceil8(ceil4(m) * k + 4));
  kernel.reserve((rawOff + (dtype === "f32" ? 0 : ceil8(Math.max(m, n) * k) / 2 + 8)) * 4);
  const [, a, b] = views as [ArrayBufferView, ArrayBufferView, ArrayBufferView];
  const product = { aOff, rsA: k, csA: 1, bOff, ldb, cOff: ctOff, ldc: nPad, k, mTiles, nTiles };
  // A resident f32 W is the kernel's A operand where it lives (no copy). NOTE: only when n is whole row
  // tiles: a last partial tile reads up to MR - 1 rows past W, which may lie past the memory's end.
  const at = dtype === "f32" && n % MR === 0 ? wasmAddress(b) : undefined;
  if (at !== undefined) rowsPasses.packedResident++;
  for (let bi = 0; bi < batch; bi++) {
    const here = at === undefined ? product : { ...product, aOff: (at + 4 * bi * spec.bBatchStride) / 4 };
    if (at === undefined && (bi === 0 || spec.bBatchStride !== 0)) copyIn(kernel, b, dtype, bi * spec.bBatchStride, k * n, 4 * aOff, 4 * rawOff);
    if (bi === 0 || spec.aBatchStride !== 0) {
      if (transA) copyIn(kernel, a, dtype, bi * spec.aBatchStride, m * k, 4 * bOff, 4 * rawOff);
      else {
        copyIn(kernel, a, dtype, bi * spec.aBatchStride, m * k, 4 * tOff, 4 * rawOff);
        kernel.transpose4(4 * tOff, 4 * bOff, Math.ceil(m / 4), Math.ceil(k / 4), 4 * k, 4 * ldb);
      }
    }
    kernel.product(here);
    kernel.transpose4(4 * ctOff, 4 * cOff, Math.ceil(n / 4), Math.ceil(m / 4), 4 * nPad, 4 * ldc);
    // NOTE: a fresh view per batch: the store (its wasm epilogue) may grow the memory.
    storeRows(sink, kernel.reserve(0), cOff, ldc, bi * m, m);
  }
}
