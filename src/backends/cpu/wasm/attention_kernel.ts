// attention_kernel.ts emits and instantiates the WebAssembly SIMD module behind the cpu attention routines
// (forward and backward): three f32x4 vector loops over one query row and a block of key rows, which the
// drivers (attention.ts, attention_backward.ts) combine with the softmax they compute in JS.
//   dots:    out[j] = x . row_j                    (scores q k_j, and dO v_j in the backward)
//   combine: acc += sum_j coef[j] row_j            (P V in the forward, dS K for dQ)
//   ger:     row_j += coef[j] x for every j        (dK += dS^T q, dV += P^T dO: a rank-1 update)
// It owns the module, its memory and these functions' memory conventions; it does not know about heads,
// masks or dtypes. NOTE: exp has no wasm instruction; the per-row softmax stays in JS between the calls.

import { encodeModule, FuncBody, I32, V128 } from "./encoder.js";
import { WasmArena } from "./arena.js";

/*
 * Conventions (addresses and strides in bytes, f32 data, every address a multiple of 16):
 *   a vector (x, acc) is dv f32x4 (a row of D floats zero-padded to a multiple of 4);
 *   row j of a block is at rows + j*stride, dv f32x4 each;
 *   coef and out are f32 arrays, one per row.
 *   dots works on groups of 4 rows: it reads rows and writes out up to the next multiple of 4 past n, so a
 *   block needs 3 rows of readable slack after it and out room for ceil(n / 4) * 4 values (the extra are garbage).
 * n >= 1 and dv >= 1 (the callers skip empty blocks).
 */

/** Pushes [x0[0] + x0[2], x1[0] + x1[2], x0[1] + x0[3], x1[1] + x1[3]]: half of a 4-way horizontal sum. */
function halfSum(f: FuncBody, x0: number, x1: number): void {
  f.get(x0).get(x1).f32x4Shuffle([0, 4, 1, 5]);
  f.get(x0).get(x1).f32x4Shuffle([2, 6, 3, 7]);
  f.f32x4Add();
}

/** dots(x, rows, stride, n, dv, out): out[j] = dot(x, row_j), four rows per step (one x load serves four). */
function dots(): FuncBody {
  const f = new FuncBody(6);
  const [x, rows, stride, n, dv, out] = [0, 1, 2, 3, 4, 5];
  const acc = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
  const xv = f.local(V128);
  const p = [f.local(I32), f.local(I32), f.local(I32), f.local(I32)];
  const [xp, c, quads] = [f.local(I32), f.local(I32), f.local(I32)];
  // quads = ceil(n / 4)
  f.get(n).i32(3).i32Add().i32(2).i32ShrU().set(quads);
  f.loop();
  {
    for (const a of acc) f.v128Zero().set(a);
    f.get(rows).set(p[0]!);
    for (let r = 1; r < 4; r++) f.get(p[r - 1]!).get(stride).i32Add().set(p[r]!);
    f.get(x).set(xp);
    f.get(dv).set(c);
    f.loop();
    {
      f.get(xp).v128Load(0).set(xv);
      for (let r = 0; r < 4; r++) f.get(acc[r]!).get(xv).get(p[r]!).v128Load(0).f32x4Mul().f32x4Add().set(acc[r]!);
      f.get(xp).i32(16).i32Add().set(xp);
      for (const q of p) f.get(q).i32(16).i32Add().set(q);
      f.get(c).i32(1).i32Sub().tee(c).brIf(0);
    }
    f.end();
    halfSum(f, acc[0]!, acc[1]!);
    f.set(acc[0]!);
    halfSum(f, acc[2]!, acc[3]!);
    f.set(acc[2]!);
    f.get(out);
    f.get(acc[0]!).get(acc[2]!).f32x4Shuffle([0, 1, 4, 5]);
    f.get(acc[0]!).get(acc[2]!).f32x4Shuffle([2, 3, 6, 7]);
    f.f32x4Add().v128Store(0);
    f.get(out).i32(16).i32Add().set(out);
    f.get(rows).get(stride).i32(4).i32Mul().i32Add().set(rows);
    f.get(quads).i32(1).i32Sub().tee(quads).brIf(0);
  }
  f.end();
  return f;
}

/**
 * combine(coef, rows, stride, n, dv, acc): acc += sum_j coef[j] row_j. Column vector outer, rows inner, so
 * two accumulators stay in registers (two independent add chains) while the rows stream past.
 */
function combine(): FuncBody {
  const f = new FuncBody(6);
  const [coef, rows, stride, n, dv, acc] = [0, 1, 2, 3, 4, 5];
  const [a0, a1, cv] = [f.local(V128), f.local(V128), f.local(V128)];
  const [rp, cp, j, col] = [f.local(I32), f.local(I32), f.local(I32), f.local(I32)];
  f.i32(0).set(col);
  f.loop();
  {
    f.get(acc).get(col).i32Add().v128Load(0).set(a0);
    f.v128Zero().set(a1);
    f.get(rows).get(col).i32Add().set(rp);
    f.get(coef).set(cp);
    f.get(n).set(j);
    // Pairs of rows into the two accumulators, then a last odd row.
    f.block().loop();
    {
      f.get(j).i32(2).i32LtS().brIf(1);
      f.get(cp).v128Load32Splat(0).set(cv);
      f.get(a0).get(cv).get(rp).v128Load(0).f32x4Mul().f32x4Add().set(a0);
      f.get(cp).v128Load32Splat(4).set(cv);
      f.get(a1).get(cv).get(rp).get(stride).i32Add().v128Load(0).f32x4Mul().f32x4Add().set(a1);
      f.get(cp).i32(8).i32Add().set(cp);
      f.get(rp).get(stride).i32(2).i32Mul().i32Add().set(rp);
      f.get(j).i32(2).i32Sub().set(j);
      f.br(0);
    }
    f.end().end();
    f.get(j).if();
    f.get(cp).v128Load32Splat(0).set(cv);
    f.get(a0).get(cv).get(rp).v128Load(0).f32x4Mul().f32x4Add().set(a0);
    f.end();
    f.get(acc).get(col).i32Add();
    f.get(a0).get(a1).f32x4Add().v128Store(0);
    f.get(col).i32(16).i32Add().tee(col);
    f.get(dv).i32(16).i32Mul().i32Ne().brIf(0);
  }
  f.end();
  return f;
}

/** ger(coef, x, rows, stride, n, dv): row_j += coef[j] x for j < n. */
function ger(): FuncBody {
  const f = new FuncBody(6);
  const [coef, x, rows, stride, n, dv] = [0, 1, 2, 3, 4, 5];
  const cv = f.local(V128);
  const [rp, xp, c] = [f.local(I32), f.local(I32), f.local(I32)];
  f.loop();
  {
    f.get(coef).v128Load32Splat(0).set(cv);
    f.get(rows).set(rp);
    f.get(x).set(xp);
    f.get(dv).set(c);
    f.loop();
    {
      f.get(rp);
      f.get(rp).v128Load(0).get(cv).get(xp).v128Load(0).f32x4Mul().f32x4Add().v128Store(0);
      f.get(rp).i32(16).i32Add().set(rp);
      f.get(xp).i32(16).i32Add().set(xp);
      f.get(c).i32(1).i32Sub().tee(c).brIf(0);
    }
    f.end();
    f.get(coef).i32(4).i32Add().set(coef);
    f.get(rows).get(stride).i32Add().set(rows);
    f.get(n).i32(1).i32Sub().tee(n).brIf(0);
  }
  f.end();
  return f;
}

export interface AttentionKernel {
  /** Make the memory at least this many bytes; returns a Float32Array over all of it (fresh after a grow). */
  reserve(bytes: number): Float32Array;
  dots(x: number, rows: number, stride: number, n: number, dv: number, out: number): void;
  combine(coef: number, rows: number, stride: number, n: number, dv: number, acc: number): void;
  ger(coef: number, x: number, rows: number, stride: number, n: number, dv: number): void;
}

let kernel: AttentionKernel | undefined;
let moduleBytes: Uint8Array<ArrayBuffer> | undefined;

function kernelModule(): Uint8Array<ArrayBuffer> {
  moduleBytes ??= encodeModule([{ name: "dots", body: dots() }, { name: "combine", body: combine() }, { name: "ger", body: ger() }]);
  return moduleBytes;
}

/** Whether this JS engine runs the kernel (it needs WebAssembly SIMD); without it the drivers compute in JS. */
export function hasAttentionKernel(): boolean {
  return typeof WebAssembly === "object" && WebAssembly.validate(kernelModule());
}

/** The process-wide kernel instance, compiled on first use (a few hundred bytes, synchronously). */
export function attentionKernel(): AttentionKernel {
  if (kernel) return kernel;
  const memory = new WebAssembly.Memory({ initial: 1 });
  const ex = new WebAssembly.Instance(new WebAssembly.Module(kernelModule()), { env: { memory } }).exports;
  const arena = new WasmArena(memory, "cpu attention");
  kernel = {
    reserve: (need) => arena.reserve(need),
    dots: ex.dots as AttentionKernel["dots"],
    combine: ex.combine as AttentionKernel["combine"],
    ger: ex.ger as AttentionKernel["ger"],
  };
  return kernel;
}
