// matmul_kernel.ts emits and instantiates the WebAssembly SIMD module behind the cpu matmul routine: a
// register-blocked MR x 8 f32 micro-kernel over packed panels and a driver that sweeps it over one
// (mc x kc) block of packed A times one (kc x n) block of packed B, accumulating into C; plus the few-rows
// functions (rows_kernel.ts) and the f16/bf16 -> f32 conversions (convert_kernel.ts), which share its memory.
// It owns the module, its memory and the packed layouts; packing, dtypes and epilogues live in the drivers.

import { assertNever } from "../../../core/ops.js";
import { bf16ToF32, f16ToF32 } from "./convert_kernel.js";
import { encodeModule, FuncBody, I32, V128 } from "./encoder.js";
import { WasmArena } from "./arena.js";
import type { PackedProduct } from "./matmul_threads.js";
import { MatmulPool, matmulThreadCount } from "./matmul_threads.js";
import { dotsDriver, dotTile, rowsDriver } from "./rows_kernel.js";

/**
 * Rows of C per micro-tile (A panel height).
 * NOTE: measured on x64 (V8, Node 20): MR=4 (8 accumulators) runs near the 128-bit peak, about 40 GFLOP/s
 * per core; MR=5 and MR=6 ran at 23-28 GFLOP/s (most likely spills: x64 wasm SIMD has 16 xmm registers).
 */
export const MR = 4;
/** Columns of C per micro-tile (B panel width): two f32x4 vectors. */
export const NR = 8;
/** k-block depth of the packed path: one B panel (KC x NR f32 = 8 KiB) stays in L1 while A panels stream past it. */
export const KC = 256;
/** A panels per block: an (MC_PANELS * MR) x KC block of packed A (256 KiB) stays in L2. */
export const MC_PANELS = 64;
/** Largest shared memory (64 KiB pages: 4 GiB, all wasm32 can address); only address space is reserved. */
const SHARED_MAX_PAGES = 65536;

/*
 * Packed layouts (f32, in wasm memory), for one k-block of kc steps:
 *   A panel (MR rows):    [kc][MR]  element (kk, r) at kk*MR + r
 *   B panel (NR columns): [kc][NR]  element (kk, c) at kk*NR + c
 *   C: row-major, ldc floats per row; the kernel adds its tile into C (C must start zeroed).
 */

/**
 * micro(ap, bp, cp, kc, ldcBytes): C[MR x NR] at cp += A panel (kc x MR) . B panel (kc x NR). kc >= 1.
 * With `strided`, micro_r(ap, bp, cp, kc, ldcBytes, ldbBytes) reads B in place instead (row kk of the tile at
 * bp + kk*ldb) and only the first `rows` rows of the A panel, for the few-rows path.
 */
function microKernel(rows: number, strided: boolean): FuncBody {
  const f = new FuncBody(strided ? 6 : 5);
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
  if (strided) f.get(bp).get(ldb).i32Add().set(bp);
  else f.get(bp).i32(NR * 4).i32Add().set(bp);
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
 * block(ap, bp, cp, mPanels, nPanels, kc, ldc): for every B panel (outer) and A panel (inner) of the block,
 * micro(A panel, B panel, C tile). ap/bp point at the first packed panel, cp at C's top-left tile; sizes >= 1.
 */
function blockDriver(micro: number): FuncBody {
  const f = new FuncBody(7);
  const [ap, bp, cp, mPanels, nPanels, kc, ldc] = [0, 1, 2, 3, 4, 5, 6];
  const [ir, jr, acur, ccur, ccol, aStep, ldcBytes] = Array.from({ length: 7 }, () => f.local(I32)) as [
    number, number, number, number, number, number, number,
  ];
  f.get(kc).i32(MR * 4).i32Mul().set(aStep);
  f.get(ldc).i32(4).i32Mul().set(ldcBytes);
  f.get(nPanels).set(jr);
  f.get(cp).set(ccol);
  f.loop();
  {
    f.get(mPanels).set(ir);
    f.get(ap).set(acur);
    f.get(ccol).set(ccur);
    f.loop();
    {
      f.get(acur).get(bp).get(ccur).get(kc).get(ldcBytes).call(micro);
      f.get(acur).get(aStep).i32Add().set(acur);
      f.get(ccur).get(ldcBytes).i32(MR).i32Mul().i32Add().set(ccur);
      f.get(ir).i32(1).i32Sub().tee(ir).brIf(0);
    }
    f.end();
    f.get(bp).get(kc).i32(NR * 4).i32Mul().i32Add().set(bp);
    f.get(ccol).i32(NR * 4).i32Add().set(ccol);
    f.get(jr).i32(1).i32Sub().tee(jr).brIf(0);
  }
  f.end();
  return f;
}

export interface MatmulKernel {
  /** Make the memory at least this many bytes; returns a Float32Array over all of it (fresh after a grow). */
  reserve(bytes: number): Float32Array;
  /** A Uint16Array over the memory as last reserved (for copying f16/bf16 bits in). */
  u16(): Uint16Array;
  /** Threads that share a large packed product (1: no worker pool). */
  readonly threads: number;
  /** The memory, for other modules that work on C in place (wasm_epilogue.ts), and its shared maximum (pages) when shared. */
  readonly memory: WebAssembly.Memory;
  readonly sharedMaxPages: number | undefined;
  /** C += A . B over packed panels (see runPacked's layout), on the pool's threads when it is large. */
  product(p: PackedProduct): void;
  dots(a: number, lda: number, b: number, ldb: number, c: number, ldc: number, rows: number, quads: number, kv: number, rem: number): void;
  rows(ap: number, panelBytes: number, bp: number, ldb: number, cp: number, ldc: number, rows: number, tiles: number, kc: number): void;
  f16ToF32(src: number, dst: number, groups: number): void;
  bf16ToF32(src: number, dst: number, groups: number): void;
}

let kernel: MatmulKernel | undefined;
let moduleBytes: Uint8Array<ArrayBuffer> | undefined;
let sharedBytes: Uint8Array<ArrayBuffer> | undefined;

/** The module's functions, in index order (a `call` names its callee by index). */
const FUNCS = [
  "micro", "block", "micro_s1", "micro_s2", "micro_s3", "micro_s4", "rows", "dot1", "dot2", "dots", "f16_to_f32", "bf16_to_f32",
] as const;
type FuncName = (typeof FUNCS)[number];
const at = (name: FuncName): number => FUNCS.indexOf(name);

function funcBody(name: FuncName): FuncBody {
  switch (name) {
    case "micro": return microKernel(MR, false);
    case "block": return blockDriver(at("micro"));
    case "micro_s1": return microKernel(1, true);
    case "micro_s2": return microKernel(2, true);
    case "micro_s3": return microKernel(3, true);
    case "micro_s4": return microKernel(4, true);
    case "rows": return rowsDriver([at("micro_s1"), at("micro_s2"), at("micro_s3"), at("micro_s4")]);
    case "dot1": return dotTile(1);
    case "dot2": return dotTile(2);
    case "dots": return dotsDriver(at("dot2"), at("dot1"));
    case "f16_to_f32": return f16ToF32();
    case "bf16_to_f32": return bf16ToF32();
    default: return assertNever(name, "cpu matmul kernel function");
  }
}

function kernelModule(shared = false): Uint8Array<ArrayBuffer> {
  const funcs = () => FUNCS.map((name) => ({ name, body: funcBody(name) }));
  if (shared) return (sharedBytes ??= encodeModule(funcs(), SHARED_MAX_PAGES));
  return (moduleBytes ??= encodeModule(funcs()));
}

/** Whether this JS engine runs the kernel (it needs WebAssembly SIMD); without it callers use another path. */
export function hasMatmulKernel(): boolean {
  return typeof WebAssembly === "object" && WebAssembly.validate(kernelModule());
}

/**
 * The process-wide kernel instance, compiled on first use.
 * NOTE: compiled synchronously (about 4.6 KB); Chromium allows that on the main thread up to 8 MB since
 * version 114 (4 KB before); the browser app runs the engine in a Worker, where there is no limit anyway.
 */
export function matmulKernel(): MatmulKernel {
  if (kernel) return kernel;
  const threads = matmulThreadCount();
  const shared = threads > 1;
  const module = new WebAssembly.Module(kernelModule(shared));
  const memory = shared ? new WebAssembly.Memory({ initial: 1, maximum: SHARED_MAX_PAGES, shared: true }) : new WebAssembly.Memory({ initial: 1 });
  const ex = new WebAssembly.Instance(module, { env: { memory } }).exports;
  const block = ex.block as (ap: number, bp: number, cp: number, mPanels: number, nPanels: number, kc: number, ldc: number) => void;
  const pool = MatmulPool.start(threads, module, memory, block, { MR, NR, KC, MC_PANELS });
  const arena = new WasmArena(memory, "cpu matmul");
  kernel = {
    reserve: (need) => arena.reserve(need),
    u16: () => arena.u16(),
    threads,
    memory,
    sharedMaxPages: shared ? SHARED_MAX_PAGES : undefined,
    product: (p) => pool.run(p),
    dots: ex.dots as MatmulKernel["dots"],
    rows: ex.rows as MatmulKernel["rows"],
    f16ToF32: ex.f16_to_f32 as MatmulKernel["f16ToF32"],
    bf16ToF32: ex.bf16_to_f32 as MatmulKernel["bf16ToF32"],
  };
  return kernel;
}
