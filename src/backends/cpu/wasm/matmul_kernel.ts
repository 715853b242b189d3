// matmul_kernel.ts emits and instantiates the WebAssembly SIMD module behind the cpu matmul routine: a
// register-blocked MR x 8 f32 micro-kernel that reads A and B in place (strided, as they were copied into
// its memory) and a driver that sweeps it over one (mc x kc) block of A times one (kc x n) block of B,
// storing or accumulating into C; plus the few-rows functions (rows_kernel.ts) and the f16/bf16 -> f32
// conversions (convert_kernel.ts), which share its memory. It owns the module, its memory and the operand
// layouts it reads; copying in, dtypes and epilogues live in the drivers. Where the engine has relaxed SIMD
// the micro-kernel multiplies and adds with f32x4.relaxed_madd (useFma), else with a separate mul and add.

import { assertNever } from "../../../core/ops.js";
import { bf16ToF32, f16ToF32 } from "./convert_kernel.js";
import { encodeModule, FuncBody, I32, V128 } from "./encoder.js";
import { WasmArena } from "./arena.js";
import type { TileProduct } from "./matmul_threads.js";
import { MatmulPool, matmulThreadCount } from "./matmul_threads.js";
import { dotsDriver, dotTile, rowsDriver } from "./rows_kernel.js";
import { ResidentHeap, residentWanted, setResidentHeap } from "./resident_heap.js";

/**
 * Rows of C per micro-tile (A panel height).
 * NOTE: measured on x64 (V8, Node 20): MR=4 (8 accumulators) runs near the 128-bit peak, about 40 GFLOP/s
 * per core; MR=5 and MR=6 ran at 23-28 GFLOP/s (most likely spills: x64 wasm SIMD has 16 xmm registers).
 */
export const MR = 4;
/** Columns of C per micro-tile (B panel width): two f32x4 vectors. */
export const NR = 8;
/** k-block depth: one B tile (KC rows x NR f32, 8 KiB of data) stays in L1 while A's row tiles stream past it. */
export const KC = 256;
/** A row tiles (of MR rows) per block: an (MC_PANELS * MR) x KC block of A (256 KiB) stays in L2. */
export const MC_PANELS = 64;
/** Largest shared memory (64 KiB pages: 4 GiB, all wasm32 can address); only address space is reserved. */
const SHARED_MAX_PAGES = 65536;
/**
 * With a resident heap the shared memory is laid out as scratch [0, SCRATCH_CAP), which reserve() grows for
 * the kernels' operands, and the heap [SCRATCH_CAP, 4 GiB) where large cpu buffers live (resident_heap.ts).
 * NOTE: 1 GiB of scratch holds a packed 4096 x 768 x 32000 product's A, B and C (0.6 GiB); grown, untouched pages
 * between scratch's top and the heap cost no resident memory.
 */
export const SCRATCH_CAP = 1 << 30;

/*
 * Operands in place (f32, in wasm memory; every address and stride in bytes):
 *   A(i, kk) at a + i*rsA + kk*csA: row-major A (rsA = 4k, csA = 4) or A stored (k, m) (rsA = 4, csA = 4m);
 *   B(kk, j) at b + kk*ldb + 4j: row-major (k, n) rows, an 8-column tile read with two v128 loads;
 *   C row-major, ldc bytes per row. The first k-block stores its tile into C, later ones add to it.
 * A tile reads MR rows and NR columns whatever m and n are: the caller leaves slack after A and B and
 * pads C to whole tiles (the extra rows and columns are never read back).
 */

/**
 * micro(ap, bp, cp, kc, ldc, ldb, rsA, csA, store): C[MR x NR] at cp (=, or += when store is 0)
 * A rows (ap + r*rsA, stepping csA) . B rows (bp, stepping ldb), kc >= 1 steps.
 * NOTE: one pointer per row of A, each bumped per step, serves both of A's layouts with one kernel.
 */
function microKernel(fma: boolean): FuncBody {
  const f = new FuncBody(9);
  const [ap, bp, cp, kc, ldc, ldb, rsA, csA, store] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const acc = Array.from({ length: MR * 2 }, () => f.local(V128));
  const b0 = f.local(V128);
  const b1 = f.local(V128);
  const a = f.local(V128);
  const arow = Array.from({ length: MR }, () => f.local(I32));
  const addr = f.local(I32);
  for (const x of acc) f.v128Zero().set(x);
  f.get(ap).set(arow[0]!);
  for (let r = 1; r < MR; r++) f.get(arow[r - 1]!).get(rsA).i32Add().set(arow[r]!);
  f.loop();
  f.get(bp).v128Load(0).set(b0);
  f.get(bp).v128Load(16).set(b1);
  for (let r = 0; r < MR; r++) {
    f.get(arow[r]!).v128Load32Splat(0).set(a);
    for (let h = 0; h < 2; h++) {
      const x = acc[2 * r + h]!;
      if (fma) f.get(a).get(h === 0 ? b0 : b1).get(x).f32x4RelaxedMadd().set(x);
      else f.get(x).get(a).get(h === 0 ? b0 : b1).f32x4Mul().f32x4Add().set(x);
    }
  }
  for (let r = 0; r < MR; r++) f.get(arow[r]!).get(csA).i32Add().set(arow[r]!);
  f.get(bp).get(ldb).i32Add().set(bp);
  f.get(kc).i32(1).i32Sub().tee(kc).brIf(0);
  f.end();
  // C tile = accumulators (first k-block), or += them, row by row.
  f.get(cp).set(addr);
  f.get(store).if();
  for (let r = 0; r < MR; r++) {
    for (let h = 0; h < 2; h++) f.get(addr).get(acc[2 * r + h]!).v128Store(16 * h);
    f.get(addr).get(ldc).i32Add().set(addr);
  }
  f.ret();
  f.end();
  for (let r = 0; r < MR; r++) {
    for (let h = 0; h < 2; h++) {
      f.get(addr).get(addr).v128Load(16 * h).get(acc[2 * r + h]!).f32x4Add().v128Store(16 * h);
    }
    f.get(addr).get(ldc).i32Add().set(addr);
  }
  return f;
}

/**
 * micro_r(ap, bp, cp, kc, ldcBytes, ldbBytes), for the few-rows path: C[rows x NR] at cp += the first `rows`
 * rows of an A panel ([kc][MR] floats) . B read in place (row kk of the tile at bp + kk*ldb). kc >= 1.
 */
function rowsMicroKernel(rows: number): FuncBody {
  const f = new FuncBody(6);
  const [ap, bp, cp, kc, ldc, ldb] = [0, 1, 2, 3, 4, 5];
  const acc = Array.from({ length: rows * 2 }, () => f.local(V128));
  const b0 = f.local(V128);
  const b1 = f.local(V128);
  const a = f.local(V128);
  const addr = f.local(I32);
  for (const x of acc) f.v128Zero().set(x);
  f.loop();
  f.get(bp).v128Load(0).set(b0);
  f.get(bp).v128Load(16).set(b1);
  for (let r = 0; r < rows; r++) {
    f.get(ap).v128Load32Splat(4 * r).set(a);
    f.get(acc[2 * r]!).get(a).get(b0).f32x4Mul().f32x4Add().set(acc[2 * r]!);
    f.get(acc[2 * r + 1]!).get(a).get(b1).f32x4Mul().f32x4Add().set(acc[2 * r + 1]!);
  }
  f.get(ap).i32(MR * 4).i32Add().set(ap);
  f.get(bp).get(ldb).i32Add().set(bp);
  f.get(kc).i32(1).i32Sub().tee(kc).brIf(0);
  f.end();
  // C tile += accumulators, row by row.
  f.get(cp).set(addr);
  for (let r = 0; r < rows; r++) {
    for (let h = 0; h < 2; h++) {
      f.get(addr).get(addr).v128Load(16 * h).get(acc[2 * r + h]!).f32x4Add().v128Store(16 * h);
    }
    f.get(addr).get(ldc).i32Add().set(addr);
  }
  return f;
}

/**
 * block(ap, bp, cp, mTiles, nTiles, kc, ldc, ldb, rsA, csA, store): for every 8-column tile of B (outer)
 * and MR-row tile of A (inner) of the block, micro(A tile, B tile, C tile). Addresses of the block's
 * first tiles; strides in bytes; sizes >= 1. NOTE: B outer: a B tile (kc x 8) stays in L1 while A streams.
 */
function blockDriver(micro: number): FuncBody {
  const f = new FuncBody(11);
  const [ap, bp, cp, mTiles, nTiles, kc, ldc, ldb, rsA, csA, store] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const [ir, jr, acur, ccur, ccol, aStep, cStep] = Array.from({ length: 7 }, () => f.local(I32)) as [
    number, number, number, number, number, number, number,
  ];
  f.get(rsA).i32(MR).i32Mul().set(aStep);
  f.get(ldc).i32(MR).i32Mul().set(cStep);
  f.get(nTiles).set(jr);
  f.get(cp).set(ccol);
  f.loop();
  {
    f.get(mTiles).set(ir);
    f.get(ap).set(acur);
    f.get(ccol).set(ccur);
    f.loop();
    {
      f.get(acur).get(bp).get(ccur).get(kc).get(ldc).get(ldb).get(rsA).get(csA).get(store).call(micro);
      f.get(acur).get(aStep).i32Add().set(acur);
      f.get(ccur).get(cStep).i32Add().set(ccur);
      f.get(ir).i32(1).i32Sub().tee(ir).brIf(0);
    }
    f.end();
    f.get(bp).i32(NR * 4).i32Add().set(bp);
    f.get(ccol).i32(NR * 4).i32Add().set(ccol);
    f.get(jr).i32(1).i32Sub().tee(jr).brIf(0);
  }
  f.end();
  return f;
}

/**
 * transpose4(src, dst, nq, kq, lds, ldd): dst (kq*4 rows, ldd bytes apart) = the transpose of src (nq*4 rows
 * of kq*4 floats, lds bytes apart), by 4 x 4 blocks in registers (shuffles). For B stored (n, k) -> (k, n)
 * rows; the caller leaves slack for the rows and columns past n and k that the last blocks read and write.
 */
function transposeKernel(): FuncBody {
  const f = new FuncBody(6);
  const [src, dst, nq, kq, lds, ldd] = [0, 1, 2, 3, 4, 5];
  const [jb, kb, sp, dp, dcol] = Array.from({ length: 5 }, () => f.local(I32)) as [number, number, number, number, number];
  const r = Array.from({ length: 4 }, () => f.local(V128));
  const t = Array.from({ length: 4 }, () => f.local(V128));
  f.get(nq).set(jb);
  f.get(dst).set(dcol);
  f.loop();
  {
    f.get(kq).set(kb);
    f.get(src).set(sp);
    f.get(dcol).set(dp);
    f.loop();
    {
      // r_i = src rows 4jb + i, columns 4kb .. 4kb + 3
      f.get(sp).v128Load(0).set(r[0]!);
      f.get(sp).get(lds).i32Add().v128Load(0).set(r[1]!);
      f.get(sp).get(lds).i32(2).i32Mul().i32Add().v128Load(0).set(r[2]!);
      f.get(sp).get(lds).i32(3).i32Mul().i32Add().v128Load(0).set(r[3]!);
      f.get(r[0]!).get(r[1]!).f32x4Shuffle([0, 4, 1, 5]).set(t[0]!);
      f.get(r[2]!).get(r[3]!).f32x4Shuffle([0, 4, 1, 5]).set(t[1]!);
      f.get(r[0]!).get(r[1]!).f32x4Shuffle([2, 6, 3, 7]).set(t[2]!);
      f.get(r[2]!).get(r[3]!).f32x4Shuffle([2, 6, 3, 7]).set(t[3]!);
      // dst row 4kb + c, columns 4jb .. 4jb + 3 = column c of the block
      f.get(dp).get(t[0]!).get(t[1]!).f32x4Shuffle([0, 1, 4, 5]).v128Store(0);
      f.get(dp).get(ldd).i32Add().set(dp);
      f.get(dp).get(t[0]!).get(t[1]!).f32x4Shuffle([2, 3, 6, 7]).v128Store(0);
      f.get(dp).get(ldd).i32Add().set(dp);
      f.get(dp).get(t[2]!).get(t[3]!).f32x4Shuffle([0, 1, 4, 5]).v128Store(0);
      f.get(dp).get(ldd).i32Add().set(dp);
      f.get(dp).get(t[2]!).get(t[3]!).f32x4Shuffle([2, 3, 6, 7]).v128Store(0);
      f.get(dp).get(ldd).i32Add().set(dp);
      f.get(sp).i32(16).i32Add().set(sp);
      f.get(kb).i32(1).i32Sub().tee(kb).brIf(0);
    }
    f.end();
    f.get(src).get(lds).i32(4).i32Mul().i32Add().set(src);
    f.get(dcol).i32(16).i32Add().set(dcol);
    f.get(jb).i32(1).i32Sub().tee(jb).brIf(0);
  }
  f.end();
  return f;
}

export interface MatmulKernel {
  /** Make the memory at least this many bytes; returns a Float32Array over all of it (fresh after a grow). */
  reserve(bytes: number): Float32Array;
  /** A Uint16Array over the memory as last reserved (for copying f16/bf16 bits in). */
  u16(): Uint16Array;
  /** Threads that share a large product (1: no worker pool). */
  readonly threads: number;
  /** Whether the micro-kernel uses relaxed-SIMD FMA (useFma). */
  readonly fma: boolean;
  /** The memory, for other modules that work on C in place (wasm_epilogue.ts), and its shared maximum (pages) when shared. */
  readonly memory: WebAssembly.Memory;
  readonly sharedMaxPages: number | undefined;
  /** C = A . B over operands in place (see TileProduct), on the pool's threads when it is large. */
  product(p: TileProduct): void;
  dots(a: number, lda: number, b: number, ldb: number, c: number, ldc: number, rows: number, quads: number, kv: number, rem: number): void;
  rows(ap: number, panelBytes: number, bp: number, ldb: number, cp: number, ldc: number, rows: number, tiles: number, kc: number): void;
  f16ToF32(src: number, dst: number, groups: number): void;
  bf16ToF32(src: number, dst: number, groups: number): void;
  transpose4(src: number, dst: number, nq: number, kq: number, lds: number, ldd: number): void;
}

let kernel: MatmulKernel | undefined;
let moduleBytes: Uint8Array<ArrayBuffer> | undefined;
let sharedBytes: Uint8Array<ArrayBuffer> | undefined;

/** The module's functions, in index order (a `call` names its callee by index). */
const FUNCS = [
  "micro", "block", "micro_s1", "micro_s2", "micro_s3", "micro_s4", "rows", "dot1", "dot2", "dots", "f16_to_f32", "bf16_to_f32", "transpose4",
] as const;
type FuncName = (typeof FUNCS)[number];
const at = (name: FuncName): number => FUNCS.indexOf(name);

function funcBody(name: FuncName, fma: boolean): FuncBody {
  switch (name) {
    case "micro": return microKernel(fma);
    case "block": return blockDriver(at("micro"));
    case "micro_s1": return rowsMicroKernel(1);
    case "micro_s2": return rowsMicroKernel(2);
    case "micro_s3": return rowsMicroKernel(3);
    case "micro_s4": return rowsMicroKernel(4);
    case "rows": return rowsDriver([at("micro_s1"), at("micro_s2"), at("micro_s3"), at("micro_s4")]);
    case "dot1": return dotTile(1);
    case "dot2": return dotTile(2);
    case "dots": return dotsDriver(at("dot2"), at("dot1"));
    case "f16_to_f32": return f16ToF32();
    case "bf16_to_f32": return bf16ToF32();
    case "transpose4": return transposeKernel();
    default: return assertNever(name, "cpu matmul kernel function");
  }
}

function kernelModule(shared = false, fma = false): Uint8Array<ArrayBuffer> {
  const funcs = () => FUNCS.map((name) => ({ name, body: funcBody(name, fma) }));
  if (fma) return encodeModule(funcs(), shared ? SHARED_MAX_PAGES : undefined);
  if (shared) return (sharedBytes ??= encodeModule(funcs(), SHARED_MAX_PAGES));
  return (moduleBytes ??= encodeModule(funcs()));
}

/**
 * Whether the micro-kernel multiplies and adds in one relaxed-SIMD f32x4.relaxed_madd (an FMA on x64 with
 * FMA3): when the engine validates it (Node 22+, Chromium 114+; Node 20 only with
 * --experimental-wasm-relaxed-simd) and KILN_CPU_FMA is not "0" (which keeps the plain SIMD path).
 * NOTE: an FMA rounds once per product where mul + add rounds twice: results move by f32 rounding, and stay
 * the same for every thread count (all threads run the same module).
 */
export function useFma(): boolean {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.KILN_CPU_FMA;
  if (env === "0") return false;
  if (env !== undefined && env !== "" && env !== "1") throw new Error(`KILN_CPU_FMA must be 0 or 1, got ${JSON.stringify(env)}`);
  return typeof WebAssembly === "object" && WebAssembly.validate(kernelModule(false, true));
}

let simd: boolean | undefined;

/**
 * Whether this JS engine runs the kernel (it needs WebAssembly SIMD); without it callers use another path.
 * NOTE: asked once: every matmul node's routine check calls this, and validating the module each time was 7%
 * of a stories260K prefill.
 */
export function hasMatmulKernel(): boolean {
  simd ??= typeof WebAssembly === "object" && WebAssembly.validate(kernelModule());
  return simd;
}

/**
 * The kernel's memory: shared with threads (the workers instantiate the module over it), and also with one
 * thread when large buffers are to live in it (KILN_CPU_RESIDENT=1, resident_heap.ts) and the host can share
 * memory (Node; a browser page when cross-origin isolated); else an unshared one (its growth detaches old views: nothing may live there).
 */
function kernelMemory(threads: number): WebAssembly.Memory {
  const sharable = threads > 1 || (residentWanted(threads) && typeof SharedArrayBuffer === "function" && (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated !== false);
  if (sharable) {
    try {
      return new WebAssembly.Memory({ initial: 1, maximum: SHARED_MAX_PAGES, shared: true });
    } catch (e) {
      if (threads > 1) throw e;
    }
  }
  return new WebAssembly.Memory({ initial: 1 });
}

/**
 * The process-wide kernel instance, compiled on first use.
 * NOTE: compiled synchronously (about 5.2 KB); Chromium allows that on the main thread up to 8 MB since
 * version 114 (4 KB before); the browser app runs the engine in a Worker, where there is no limit anyway.
 */
export function matmulKernel(): MatmulKernel {
  if (kernel) return kernel;
  const threads = matmulThreadCount();
  const fma = useFma();
  const memory = kernelMemory(threads);
  const shared = typeof SharedArrayBuffer === "function" && memory.buffer instanceof SharedArrayBuffer;
  const module = new WebAssembly.Module(kernelModule(shared, fma));
  const heap = shared && residentWanted(threads) ? new ResidentHeap(memory, SCRATCH_CAP, SHARED_MAX_PAGES * 65536) : undefined;
  setResidentHeap(heap);
  const ex = new WebAssembly.Instance(module, { env: { memory } }).exports;
  const block = ex.block as Parameters<typeof MatmulPool.start>[3];
  const pool = MatmulPool.start(threads, module, memory, block, { MR, NR, KC, MC_PANELS });
  const arena = new WasmArena(memory, "cpu matmul");
  kernel = {
    reserve: (need) => {
      if (heap && need > SCRATCH_CAP) throw new Error(`cpu matmul: an operand layout of ${need} bytes does not fit the kernel's ${SCRATCH_CAP}-byte scratch (resident buffers live above it); KILN_CPU_RESIDENT=0 lifts the limit`);
      return arena.reserve(need);
    },
    u16: () => arena.u16(),
    threads,
    fma,
    memory,
    sharedMaxPages: shared ? SHARED_MAX_PAGES : undefined,
    product: (p) => pool.run(p),
    dots: ex.dots as MatmulKernel["dots"],
    rows: ex.rows as MatmulKernel["rows"],
    f16ToF32: ex.f16_to_f32 as MatmulKernel["f16ToF32"],
    bf16ToF32: ex.bf16_to_f32 as MatmulKernel["bf16ToF32"],
    transpose4: ex.transpose4 as MatmulKernel["transpose4"],
  };
  return kernel;
}
