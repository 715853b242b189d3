// matmul.ts is the cpu matmul routine: C[b] = A[b] @ B[b] (+ epilogue). It picks the path per spec: f64 (the
// reference dtype) in plain JS doubles; few rows of A (decode) through matmul_rows.ts, which streams B once
// without packing it; otherwise the wasm SIMD micro-kernel (wasm/matmul_kernel.ts) reading A and B in place
// in wasm memory, whose copy in (f16/bf16 -> f32 and B stored (n, k) -> (k, n) happen here) and memory
// layout it owns. Not the kernels, the output store (matmul_epilogue.ts), nor the spec's meaning
// (src/core/routines.ts).

import type { MatmulSpec } from "../../core/routines.js";
import type { FloatDType, WorkArray } from "./convert.js";
import { checkLength } from "./convert.js";
import type { RowSink } from "./matmul_epilogue.js";
import { compileEpilogue, compileOuterStore, rowSink, storeRows } from "./matmul_epilogue.js";
import { copyB as copyIn, rowsPasses, rowsPerPass, runRows } from "./matmul_rows.js";
import { bStride, KC as KERNEL_KC, matmulKernel } from "./wasm/matmul_kernel.js";
import { MIN_SHARED_MACS } from "./wasm/matmul_threads.js";
import { wasmAddress } from "./wasm/resident_heap.js";
import { runSwapped, swapPays } from "./matmul_swapped.js";

// NOTE: a local copy, because module loaders that transpile to CommonJS (tsx) turn each read of an imported
// binding into a getter call, which showed up at 8% of a 512^3 matmul's profile in the (former) packing loops.
const KC = KERNEL_KC;

const ceil8 = (x: number): number => Math.ceil(x / 8) * 8;

/**
 * f32/f16/bf16 operands: copy A and B into wasm memory as they are laid out (one typed-array copy each;
 * f16/bf16 bits are widened there by the kernel, as the few-rows path does with B), run the SIMD kernel over them in place, store C through
 * the sink. Only B stored (n, k) is rearranged, into (k, n) rows, by the kernel's 4 x 4 transpose.
 */
function runPacked(spec: MatmulSpec, views: readonly ArrayBufferView[], sink: RowSink): void {
  const { batch, m, n, k, transA, transB } = spec;
  const dtype = spec.dtype as FloatDType;
  const kernel = matmulKernel();
  const { MR, NR } = kernel.tile;
  const mTiles = Math.ceil(m / MR);
  const nTiles = Math.ceil(n / NR);
  const mPad = mTiles * MR;
  const nPad = nTiles * NR;
  // B's rows padded off multiples of 256 bytes (bStride); f16/bf16 B is widened in one piece, at its width.
  const ldb = transB ? bStride(nPad) : dtype === "f32" ? bStride(n) : n;
  // Wasm memory (f32 offsets, each region a multiple of 8 floats): A as stored; B as (k, ldb) rows; C
  // (mPad x nPad); B stored (n, k) before its transpose; f16/bf16 bits before widening (8 at a time).
  // NOTE: the last row tile reads up to MR - 1 rows past A (row-major) or floats past it (A stored (k, m)),
  // the last column tile up to NR - 1 floats past B's last row, and the transpose's last blocks up to 3 rows
  // and columns past B: those slacks hold stale values that only reach C's padding rows and columns, which
  // are never read, and wasm float math cannot trap on them.
  const aOff = 0;
  const bOff = aOff + ceil8(mPad * k);
  const cOff = bOff + ceil8(Math.ceil(k / 4) * 4 * ldb + NR);
  const tOff = cOff + ceil8(mPad * nPad);
  const rawOff = tOff + (transB ? ceil8(Math.ceil(n / 4) * 4 * k + 4) : 0);
  kernel.reserve((rawOff + (dtype === "f32" ? 0 : ceil8(Math.max(m, n) * k) / 2 + 8)) * 4);
  const [, a, b] = views as [ArrayBufferView, ArrayBufferView, ArrayBufferView];
  const product = { aOff, rsA: transA ? 1 : k, csA: transA ? m : 1, bOff, ldb, cOff, ldc: nPad, k, mTiles, nTiles };
  // A resident f32 B stored (k, n) is read where it lives (ldb = n; its last column tile's NR - 1 floats of
  // over-read stay inside the heap's slack): no copy.
  const at = dtype === "f32" && !transB ? wasmAddress(b) : undefined;
  if (at !== undefined) rowsPasses.packedResident++;
  for (let bi = 0; bi < batch; bi++) {
    if (bi === 0 || spec.aBatchStride !== 0) copyIn(kernel, a, dtype, bi * spec.aBatchStride, m * k, 4 * aOff, 4 * rawOff);
    if (at !== undefined) {
      kernel.product({ ...product, bOff: (at + 4 * bi * spec.bBatchStride) / 4, ldb: n });
      storeRows(sink, kernel.reserve(0), cOff, nPad, bi * m, m);
      continue;
    }
    if (bi === 0 || spec.bBatchStride !== 0) {
      if (!transB && ldb !== n) copyRows(kernel.reserve(0), b as Float32Array, bi * spec.bBatchStride, k, n, bOff, ldb);
      else if (!transB) copyIn(kernel, b, dtype, bi * spec.bBatchStride, k * n, 4 * bOff, 4 * rawOff);
      else {
        copyIn(kernel, b, dtype, bi * spec.bBatchStride, k * n, 4 * tOff, 4 * rawOff);
        kernel.transpose4(4 * tOff, 4 * bOff, Math.ceil(n / 4), Math.ceil(k / 4), 4 * k, 4 * ldb);
      }
    }
    kernel.product(product);
    // NOTE: a fresh view per batch: the store (its wasm epilogue) may grow the memory, which detaches an
    // unshared memory's old buffer.
    storeRows(sink, kernel.reserve(0), cOff, nPad, bi * m, m);
  }
}

/** rows x cols f32 from src (from `start`, row-major) into mem at float offset dst, ld floats per row. */
function copyRows(mem: Float32Array, src: Float32Array, start: number, rows: number, cols: number, dst: number, ld: number): void {
  for (let r = 0; r < rows; r++) mem.set(src.subarray(start + r * cols, start + (r + 1) * cols), dst + r * ld);
}

/** Doubles per block of C that the JS paths fill before one store (64 KiB: stays in L2 with the rows it reads). */
const JS_BLOCK = 8192;
let jsBlock = new Float64Array(JS_BLOCK);
/** A reused block of at least len doubles. */
function blockOf(len: number): Float64Array {
  if (jsBlock.length < len) jsBlock = new Float64Array(len);
  return jsBlock;
}

/**
 * f64 operands (exact doubles), or f32 ones with n = 1 or k = 1 (a matrix-vector product or an outer
 * product, where packing panels would cost more than the math): JS doubles, i-k-j order so the inner loop
 * streams rows of B and C. C is built a block of rows at a time and stored with one call per block.
 * NOTE: n = 1 and k = 1 have loops of their own (LayerNorm's mean is x @ ones, its gradient an outer
 * product): a row of doubles and a store call per output row cost 0.5 ms per 768x128 launch, more than the
 * math; k = 1 forms its products inside the compiled store (matmul_epilogue.ts compileOuterStore). Every
 * path sums each element over kk in increasing order in doubles, so all give the same bits.
 */
function runJs(spec: MatmulSpec, views: readonly ArrayBufferView[], sink: RowSink): void {
  if (spec.k === 1) return runOuter(spec, views, sink);
  if (spec.n === 1) return runRowDots(spec, views, sink);
  const { batch, m, n, k, transA, transB } = spec;
  const [, a, b] = views as [ArrayBufferView, WorkArray, WorkArray];
  const rowsPerBlock = Math.max(1, Math.floor(JS_BLOCK / n));
  const c = blockOf(Math.min(m, rowsPerBlock) * n);
  const bT = new Float64Array(transB ? k * n : 0);
  for (let bi = 0; bi < batch; bi++) {
    const aBase = bi * spec.aBatchStride;
    let bm = b;
    let bBase = bi * spec.bBatchStride;
    if (transB) {
      // B is stored (n, k): lay it out (k, n) once per batch so rows of B are contiguous.
      for (let j = 0; j < n; j++) for (let kk = 0; kk < k; kk++) bT[kk * n + j] = b[bBase + j * k + kk]!;
      bm = bT;
      bBase = 0;
    }
    for (let i0 = 0; i0 < m; i0 += rowsPerBlock) {
      const rows = Math.min(rowsPerBlock, m - i0);
      c.fill(0, 0, rows * n);
      for (let r = 0; r < rows; r++) {
        const i = i0 + r;
        const o = r * n;
        for (let kk = 0; kk < k; kk++) {
          const av = transA ? a[aBase + kk * m + i]! : a[aBase + i * k + kk]!;
          const p = bBase + kk * n;
          for (let j = 0; j < n; j++) c[o + j] = c[o + j]! + av * bm[p + j]!;
        }
      }
      storeRows(sink, c, 0, n, bi * m + i0, rows);
    }
  }
}

/** n = 1: one dot product per row of A (B is a k-vector, the same memory stored (k, 1) or (1, k)). */
function runRowDots(spec: MatmulSpec, views: readonly ArrayBufferView[], sink: RowSink): void {
  const { batch, m, k, transA } = spec;
  const [, a, b] = views as [ArrayBufferView, WorkArray, WorkArray];
  const c = blockOf(Math.min(m, JS_BLOCK));
  // A's element (i, kk) at a[aBase + i*rs + kk*cs].
  const rs = transA ? 1 : k;
  const cs = transA ? m : 1;
  for (let bi = 0; bi < batch; bi++) {
    const aBase = bi * spec.aBatchStride;
    const bBase = bi * spec.bBatchStride;
    for (let i0 = 0; i0 < m; i0 += JS_BLOCK) {
      const rows = Math.min(JS_BLOCK, m - i0);
      for (let r = 0; r < rows; r++) {
        let acc = 0;
        let p = aBase + (i0 + r) * rs;
        for (let kk = 0; kk < k; kk++, p += cs) acc += a[p]! * b[bBase + kk]!;
        c[r] = acc;
      }
      storeRows(sink, c, 0, 1, bi * m + i0, rows);
    }
  }
}

/** k = 1: C = a b^T for a column a (m) and a row b (n), either stored transposed being the same memory. */
function runOuter(spec: MatmulSpec, views: readonly ArrayBufferView[], sink: RowSink): void {
  const [, a, b] = views as [ArrayBufferView, WorkArray, WorkArray];
  const outer = sink.outer;
  if (!outer) throw new Error("cpu matmul: the k = 1 path runs without its compiled outer-product store");
  for (let bi = 0; bi < spec.batch; bi++) outer(a, bi * spec.aBatchStride, b, bi * spec.bBatchStride, bi * spec.m, spec.m, sink.out, sink.epiViews);
}

/**
 * Most rows of A (per pass, see rowsPerPass) for which the few-rows path runs instead of packing B.
 * NOTE: measured with f32 on one Zen 4 core. B stored (n, k): the few-rows path was 1.1-1.2x faster at 256
 * rows (k, n = 64..2048), even at 512 rows x 512^2, and 0.8-0.9x at 512-1024 rows with k = 1024..4096.
 * B stored (k, n): even at 128 rows, 0.8x at 256 (n = 2048). Packing B costs k*n per call, so the few-rows
 * path wins further out as n grows (64 rows, n = 32000: 1.6x with B (n, k), 1.3x with B (k, n)).
 */
const ROWS_MAX_TRANS_B = 256;
const ROWS_MAX = 128;

/**
 * Whether a spec the few-rows path would take goes packed instead, because the packed path shares its
 * work across the kernel's worker threads and the few-rows path runs on one. NOTE: a weight gradient
 * (x^T dy: 128 x 768 x 512 in a small GPT-2's step) took 6% of the step single-threaded on the few-rows
 * path; decode (a handful of rows) stays there, as packing B would cost more than the math.
 */
function sharedAcrossThreads(spec: MatmulSpec): boolean {
  return spec.m >= 64 && spec.m * spec.n * spec.k >= MIN_SHARED_MACS && matmulKernel().threads > 1;
}

/** Which path runs a spec: plain doubles, the few-rows streaming path, or micro-kernel tiles. */
function pathOf(spec: MatmulSpec): { name: string; run: (spec: MatmulSpec, views: readonly ArrayBufferView[], sink: RowSink) => void } {
  const { n, k } = spec;
  if (spec.dtype === "f64") return { name: "f64 JS loop (i-k-j)", run: runJs };
  // NOTE: LayerNorm's mean is x @ ones (models/gpt2.ts), and its gradient an outer product; packed, each
  // padded n = 1 to an 8-column panel and cost ~25x the JS loop.
  if (spec.dtype === "f32" && (n === 1 || k === 1)) return { name: `f32 JS loop, ${k === 1 ? "k = 1: outer product formed in the store loop" : "n = 1: a dot per row"}`, run: runJs };
  if (rowsPerPass(spec) <= (spec.transB ? ROWS_MAX_TRANS_B : ROWS_MAX) && !sharedAcrossThreads(spec)) return { name: `wasm simd f32, few rows, B streamed ${spec.transB ? "(n, k): dot tiles" : "(k, n): strided tiles"}`, run: runRows };
  const { MR, NR } = matmulKernel().tile;
  if (swapPays(spec)) return { name: `wasm simd f32, ${MR}x${NR} micro-kernel tiles, swapped: C^T = B . A^T with B (n, k) in place, KC=${KC}`, run: runSwapped };
  return { name: `wasm simd f32, ${MR}x${NR} micro-kernel tiles over A and B in place, KC=${KC}`, run: runPacked };
}

/** A launchable matmul for one spec (the caller checked that the dtypes are floats). */
export function buildMatmul(spec: MatmulSpec): { source: string; run: (views: ArrayBufferView[]) => void } {
  const { batch, m, n, k } = spec;
  const shape = `matmul ${batch}x(${m}x${k} @ ${k}x${n}) ${spec.dtype}->${spec.out}`;
  const path = pathOf(spec);
  const outer = path.run === runJs && k === 1 ? compileOuterStore(spec.epilogue, spec.out as FloatDType, n) : undefined;
  const epi = spec.epilogue && !outer ? compileEpilogue(spec.epilogue, spec.out as FloatDType, n, batch * m * n) : undefined;
  const store = (spec.epilogue ? (outer ?? epi) : undefined)?.source;
  const source = `// cpu routine ${shape}: ${path.name}\n${store ?? "// no epilogue"}`;
  return {
    source,
    run(views) {
      if (batch === 0 || m === 0 || n === 0) return;
      checkLength(views[0]!, batch * m * n, `${shape}: output`);
      checkLength(views[1]!, (batch - 1) * spec.aBatchStride + m * k, `${shape}: A`);
      checkLength(views[2]!, (batch - 1) * spec.bBatchStride + k * n, `${shape}: B`);
      path.run(spec, views, rowSink(views, spec.out as FloatDType, n, epi, outer?.store));
    },
  };
}
