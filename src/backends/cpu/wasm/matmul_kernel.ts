// matmul_kernel.ts emits and instantiates the WebAssembly SIMD module behind the cpu matmul routine: a
// register-blocked f32 micro-kernel (3 x 12 tiles with FMA, 4 x 8 without) that reads A and B in place (strided, as they were copied into
// its memory) and a driver that sweeps it over one (mc x kc) block of A times one (kc x n) block of B,
// storing or accumulating into C; plus the few-rows functions (rows_kernel.ts) and the f16/bf16 -> f32
// conversions (convert_kernel.ts), which share its memory. It owns the module, its memory and the operand
// layouts it reads; copying in, dtypes and epilogues live in the drivers. Where the engine has relaxed SIMD
// the micro-kernel multiplies and adds with f32x4.relaxed_madd (useFma), else with a separate mul and add.

import { nodeBuiltin } from "../../../core/host.js";
import { assertNever } from "../../../core/ops.js";
import { bf16ToF32, f16ToF32 } from "./convert_kernel.js";
import { encodeModule, FuncBody, I32, V128 } from "./encoder.js";
import { WasmArena } from "./arena.js";
import type { TileProduct } from "./matmul_threads.js";
import { MatmulPool, matmulThreadCount } from "./matmul_threads.js";
import { dotsDriver, dotTile, rowsDriver } from "./rows_kernel.js";
import { ResidentHeap, residentWanted, setResidentHeap } from "./resident_heap.js";

/**
 * Rows of C per micro-tile of the plain (mul + add) kernel, and of the few-rows path's A panels.
 * NOTE: measured on x64 (V8, Node 20): MR=4 (8 accumulators) runs near the 128-bit peak, about 40 GFLOP/s
 * per core; MR=5 and MR=6 ran at 23-28 GFLOP/s (most likely spills: x64 wasm SIMD has 16 xmm registers).
 */
export const MR = 4;
/** Columns of C per micro-tile of the plain kernel (B panel width): two f32x4 vectors. */
export const NR = 8;

/** A micro-tile: MR rows by NR columns of C (NR a multiple of 4: f32x4 vectors). */
export interface Tile {
  readonly MR: number;
  readonly NR: number;
}

/**
 * The micro-tile per kernel. FMA: 3 x 12 (9 accumulators, 3 B vectors, 3 A splats: 15 xmm registers).
 * NOTE: V8's scheduler puts a loop step's loads (effectful, in order) before its arithmetic (pure, placed
 * late), so every B vector and A splat of a step is live at once next to the accumulators: a tile fits when
 * MR*NR/4 + MR + NR/4 <= 15 (x64 keeps one xmm as scratch). Measured per cpu-second on one Zen 5 core
 * (15:30 UTC, loaded): 3 x 12 FMA 39-45 GFLOP/s at 512^3 and 41-45 at 192 x 768 x 2048, where 4 x 8 FMA
 * ran 39-42 and 24-25; 6 x 8, 4 x 12 and a k-unrolled 4 x 8 spill (15-20). The plain kernel needs one more
 * register for the product before its add: 3 x 12 without FMA spilled (19), so it keeps 4 x 8.
 */
export const FMA_TILE: Tile = { MR: 3, NR: 12 };
export const PLAIN_TILE: Tile = { MR, NR };
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
 *   B(kk, j) at b + kk*ldb + 4j: row-major (k, n) rows, an NR-column tile read with NR/4 v128 loads;
 *   C row-major, ldc bytes per row. The first k-block stores its tile into C, later ones add to it.
 * A tile reads MR rows and NR columns whatever m and n are: the caller leaves slack after A and B and
 * pads C to whole tiles (the extra rows and columns are never read back).
 */

/**
 * The row stride (floats) the drivers give B's rows of `cols` floats in wasm memory: cols, plus 4 when the
 * row is a multiple of 256 bytes. NOTE: a tile steps through B by whole rows, and L1 (Zen 5: 48 KiB,
 * 12-way, 64 sets of 64-byte lines) maps addresses 4 KiB apart to one set: with rows of 2048 floats a
 * kc = 256 B tile lands in 2 of the 64 sets and misses L1 on every step. Measured per cpu-second on one core
 * (15:55 UTC, loaded): 192 x 768 x 2048, ldb 2048 -> 2064 floats: 21-26 -> 35-44 GFLOP/s; 512^3, 512 -> 528:
 * 31-42 -> 35-44.
 */
export function bStride(cols: number): number {
  return cols % 64 === 0 ? cols + 4 : cols;
}

/**
 * micro(ap, bp, cp, kc, ldc, ldb, rsA, csA, store): C[MR x NR] at cp (=, or += when store is 0)
 * A rows (ap + r*rsA, stepping csA) . B rows (bp, stepping ldb), kc >= 1 steps.
 * NOTE: one pointer per row of A, each bumped per step, serves both of A's layouts with one kernel.
 */
function microKernel(tile: Tile, fma: boolean): FuncBody {
  const { MR: mr } = tile;
  const nv = tile.NR / 4; // B vectors per step
  const f = new FuncBody(9);
  const [ap, bp, cp, kc, ldc, ldb, rsA, csA, store] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const acc = Array.from({ length: mr * nv }, () => f.local(V128));
  const b = Array.from({ length: nv }, () => f.local(V128));
  const a = f.local(V128);
  const arow = Array.from({ length: mr }, () => f.local(I32));
  const addr = f.local(I32);
  for (const x of acc) f.v128Zero().set(x);
  f.get(ap).set(arow[0]!);
  for (let r = 1; r < mr; r++) f.get(arow[r - 1]!).get(rsA).i32Add().set(arow[r]!);
  f.loop();
  for (let h = 0; h < nv; h++) f.get(bp).v128Load(16 * h).set(b[h]!);
  for (let r = 0; r < mr; r++) {
    f.get(arow[r]!).v128Load32Splat(0).set(a);
    for (let h = 0; h < nv; h++) {
      const x = acc[nv * r + h]!;
      if (fma) f.get(a).get(b[h]!).get(x).f32x4RelaxedMadd().set(x);
      else f.get(x).get(a).get(b[h]!).f32x4Mul().f32x4Add().set(x);
    }
  }
  for (let r = 0; r < mr; r++) f.get(arow[r]!).get(csA).i32Add().set(arow[r]!);
  f.get(bp).get(ldb).i32Add().set(bp);
  f.get(kc).i32(1).i32Sub().tee(kc).brIf(0);
  f.end();
  // C tile = accumulators (first k-block), or += them, row by row.
  f.get(cp).set(addr);
  f.get(store).if();
  for (let r = 0; r < mr; r++) {
    for (let h = 0; h < nv; h++) f.get(addr).get(acc[nv * r + h]!).v128Store(16 * h);
    f.get(addr).get(ldc).i32Add().set(addr);
  }
  f.ret();
  f.end();
  for (let r = 0; r < mr; r++) {
    for (let h = 0; h < nv; h++) {
      f.get(addr).get(addr).v128Load(16 * h).get(acc[nv * r + h]!).f32x4Add().v128Store(16 * h);
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
 * block(ap, bp, cp, mTiles, nTiles, kc, ldc, ldb, rsA, csA, store): for every NR-column tile of B (outer)
 * and MR-row tile of A (inner) of the block, micro(A tile, B tile, C tile). Addresses of the block's
 * first tiles; strides in bytes; sizes >= 1. NOTE: B outer: a B tile (kc x NR) stays in L1 while A streams.
 */
function blockDriver(micro: number, tile: Tile): FuncBody {
  const { MR: mr, NR: nr } = tile;
  const f = new FuncBody(11);
  const [ap, bp, cp, mTiles, nTiles, kc, ldc, ldb, rsA, csA, store] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const [ir, jr, acur, ccur, ccol, aStep, cStep] = Array.from({ length: 7 }, () => f.local(I32)) as [
    number, number, number, number, number, number, number,
  ];
  f.get(rsA).i32(mr).i32Mul().set(aStep);
  f.get(ldc).i32(mr).i32Mul().set(cStep);
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
    f.get(bp).i32(nr * 4).i32Add().set(bp);
    f.get(ccol).i32(nr * 4).i32Add().set(ccol);
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
  /** The packed path's micro-tile (FMA_TILE or PLAIN_TILE): how products pad A's rows and B's columns. */
  readonly tile: Tile;
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
    case "micro": return microKernel(fma ? FMA_TILE : PLAIN_TILE, fma);
    case "block": return blockDriver(at("micro"), fma ? FMA_TILE : PLAIN_TILE);
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
 * FMA3): when the engine validates it (Node 22+, Chromium 114+; Node 20 once relaxedSimdInNode enabled it)
 * and KILN_CPU_FMA is not "0" (which keeps the plain SIMD path).
 * NOTE: an FMA rounds once per product where mul + add rounds twice: results move by f32 rounding, and stay
 * the same for every thread count (all threads run the same module).
 */
export function useFma(): boolean {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.KILN_CPU_FMA;
  if (env === "0") return false;
  if (env !== undefined && env !== "" && env !== "1") throw new Error(`KILN_CPU_FMA must be 0 or 1, got ${JSON.stringify(env)}`);
  if (typeof WebAssembly !== "object") return false;
  const valid = () => WebAssembly.validate(kernelModule(false, true));
  return valid() || (relaxedSimdInNode() && valid());
}

/**
 * Node 20 (V8 11.3) implements relaxed SIMD but validates it only behind --experimental-wasm-relaxed-simd;
 * V8 takes that flag at run time too (v8.setFlagsFromString), before the module is compiled, and the
 * worker threads, which get the compiled module, run it as well. Returns whether it could ask (Node).
 * NOTE: asked only after a plain validate failed, so a runtime that ships relaxed SIMD (Node 22+) never
 * sees the flag. The FMA kernel (3 x 12 tiles) measured 1.2x the plain one per cpu-second on a 512^3 matmul
 * (docs/benchmarks.md).
 */
function relaxedSimdInNode(): boolean {
  const v8 = nodeBuiltin("node:v8");
  if (!v8) return false;
  v8.setFlagsFromString("--experimental-wasm-relaxed-simd");
  return true;
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
  const tile = fma ? FMA_TILE : PLAIN_TILE;
  const pool = MatmulPool.start(threads, module, memory, block, { MR: tile.MR, NR: tile.NR, KC, MC_PANELS });
  const arena = new WasmArena(memory, "cpu matmul");
  kernel = {
    reserve: (need) => {
      if (heap && need > SCRATCH_CAP) throw new Error(`cpu matmul: an operand layout of ${need} bytes does not fit the kernel's ${SCRATCH_CAP}-byte scratch (resident buffers live above it); KILN_CPU_RESIDENT=0 lifts the limit`);
      return arena.reserve(need);
    },
    u16: () => arena.u16(),
    threads,
    fma,
    tile,
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
