// attention_kernel.ts emits and instantiates the WebAssembly SIMD module behind the cpu attention routines:
// one call computes a whole block of query rows of one head against one kv head, so the drivers
// (attention.ts, attention_backward.ts) cross into wasm once per head instead of several times per row.
//   fwd: per query row, scores (f32x4 dots, 4 keys per step), scale and causal mask, row max, exp
//        (exp_f32.ts), row sum, P V; the output row is (sum_j e_j v_j) / sum_j e_j.
//   bwd: FlashAttention-2's recompute. Phase 1, per query row i: P_i as in fwd, D_i = dO_i . o_i,
//        dP_i = dO_i V^T, dS_i = P_i (dP_i - D_i) scale, dQ_i = dS_i K; P and dS rows are kept for the block.
//        Phase 2, per key j: dK_j += sum_i dS_ij q_i, dV_j += sum_i P_ij dO_i over the block's rows that see j.
//   exp: in place over f32x4s (the test's handle on exp_f32.ts).
// The module is emitted per head dim: with dv = dp/4 fixed, the loops over a row are unrolled with constant
// load offsets, a query row (or dO row) stays in dv registers while keys stream past, and P V keeps its dv
// accumulators in registers. It owns the module, its memory and these memory conventions; it does not
// know about batches, heads or dtypes.
// NOTE: the measured speed of the per-row design this replaces and of this one is in attention.ts and
// attention_backward.ts. Where the time goes (2026-12-07, AMD EPYC 2 vCPU under load, cpu time per launch at
// q/k/v (12, 4, 64, 32) causal, by removing one part at a time): backward 1.45 ms = phase 2 (dK, dV) 0.33 +
// dQ 0.15 + scores, exp, dP and dS 0.95; forward 0.86 ms = P V ~0.3 + exp ~0.15 + scores. A dots pass does
// about 110 wasm ops per 4 keys (32 loads, 32 mul, 32 add, the reduction), near 4 per cycle: what remains is
// the separate mul and add per product (wasm SIMD has no FMA outside relaxed-simd, which Node 20 lacks by
// default). Blocking 2 query rows per pass of keys would save about a tenth of the loads, not more.
// NOTE: phase 2 reads dS and P by column (key j of every row) instead of the row-wise rank-1 updates of
// dK, dV: a column sum keeps dK_j's dv accumulators in registers (one splat and dv loads per row) where a
// rank-1 update loads and stores every dK element per row.

import { encodeModule, FuncBody, I32, V128 } from "./encoder.js";
import { ExpF32, f32x4Const } from "./exp_f32.js";
import { WasmArena } from "./arena.js";

/*
 * Conventions (addresses in bytes, f32 data, every address a multiple of 16, rows RB = dv * 16 bytes apart):
 *   q, o, dO, dQ: rows query rows; k, v: tk key rows plus 3 readable rows of slack (dots read whole groups of
 *   4 keys), dK, dV: tk rows. Row r of the block sees keys j < min(tk, n0 + r * inc), n0 >= 1 (the driver
 *   handles rows that see none); inc is 1 for causal, 0 otherwise.
 *   consts: 16 bytes, the softmax scale in every lane. s: one row of pad4(tk) floats (fwd).
 *   pm, dsm: rows x (ps / 4) floats each, ps = pad4(tk) * 4 bytes (bwd's P and dS of the block).
 */

const NEG_INF = 0xff800000;

/** Emission helpers over one body with dv fixed. */
class Emit {
  readonly rb: number;
  constructor(readonly f: FuncBody, readonly dv: number) {
    this.rb = dv * 16;
  }

  /** regs[c] = row at address local `p` (dv vectors). */
  loadRow(regs: number[], p: number): void {
    for (let c = 0; c < this.dv; c++) this.f.get(p).v128Load(16 * c).set(regs[c]!);
  }

  /**
   * Four dots of the row in `x` regs with key rows at local `kp` (RB apart): pushes [x.k0, x.k1, x.k2, x.k3].
   * acc are 4 scratch vectors; each row's dot is one add chain over the dv vectors (fixed order).
   */
  dots4(x: number[], kp: number, acc: number[]): void {
    const f = this.f;
    for (let rr = 0; rr < 4; rr++) {
      for (let c = 0; c < this.dv; c++) {
        f.get(x[c]!).get(kp).v128Load(rr * this.rb + 16 * c).f32x4Mul();
        if (c > 0) f.f32x4Add();
      }
      f.set(acc[rr]!);
    }
    // [a0[0]+a0[2], a1[0]+a1[2], a0[1]+a0[3], a1[1]+a1[3]] and likewise for a2, a3; then the two halves.
    const half = (a: number, b: number) => {
      f.get(a).get(b).f32x4Shuffle([0, 4, 1, 5]);
      f.get(a).get(b).f32x4Shuffle([2, 6, 3, 7]);
      f.f32x4Add();
    };
    half(acc[0]!, acc[1]!);
    f.set(acc[0]!);
    half(acc[2]!, acc[3]!);
    f.set(acc[2]!);
    f.get(acc[0]!).get(acc[2]!).f32x4Shuffle([0, 1, 4, 5]);
    f.get(acc[0]!).get(acc[2]!).f32x4Shuffle([2, 3, 6, 7]);
    f.f32x4Add();
  }

  /**
   * Pops a vector, pushes it with every lane replaced by the lanes' max (or sum). The max is pmax (one x64
   * instruction; wasm's NaN-propagating max is a sequence): it may drop a NaN, which is harmless here as a NaN
   * score still makes its e, the row sum and so the whole row NaN.
   */
  horizontal(tmp: number, op: "max" | "add"): void {
    const f = this.f;
    const apply = () => (op === "max" ? f.f32x4Pmax() : f.f32x4Add());
    f.tee(tmp).get(tmp).get(tmp).f32x4Shuffle([2, 3, 0, 1]);
    apply();
    f.tee(tmp).get(tmp).get(tmp).f32x4Shuffle([1, 0, 3, 2]);
    apply();
  }

  /**
   * acc = (init ? 0 : acc) + sum_{j < n} coef[j] row_j: coefs from local `cp`, `cstride` bytes apart, rows
   * from local `rp`, `rstride` bytes apart (both constants); consumes cp, rp and j (the count n >= 1); cv is scratch.
   */
  combine(acc: number[], init: boolean, cp: number, cstride: number, rp: number, rstride: number, j: number, cv: number): void {
    const f = this.f;
    if (init) for (const a of acc) f.v128Zero().set(a);
    f.loop();
    f.get(cp).v128Load32Splat(0).set(cv);
    for (let c = 0; c < this.dv; c++) f.get(acc[c]!).get(cv).get(rp).v128Load(16 * c).f32x4Mul().f32x4Add().set(acc[c]!);
    f.get(cp).i32(cstride).i32Add().set(cp);
    f.get(rp).i32(rstride).i32Add().set(rp);
    f.get(j).i32(1).i32Sub().tee(j).brIf(0);
    f.end();
  }

  /** nn = min(n, tk). */
  clamp(nn: number, n: number, tk: number): void {
    const f = this.f;
    f.get(n).set(nn);
    f.get(n).get(tk).i32GtS().if();
    f.get(tk).set(nn);
    f.end();
  }

  /**
   * Scores of the row in `x` regs against keys at local `k`: for each group of 4 keys, scale, lanes >= nn set
   * to -Inf, stored at local `out` (16 bytes per group); pushes the row max (every lane).
   */
  scores(x: number[], k: number, out: number, nn: number, sv: number, l: ScoreLocals): void {
    const f = this.f;
    f.get(k).set(l.kp);
    f.get(out).set(l.sp);
    f.i32x4Const([0, 1, 2, 3]).set(l.idx);
    f.get(nn).i32x4Splat().set(l.nv);
    f32x4Const(f, -Infinity).set(l.mx);
    f.get(nn).i32(3).i32Add().i32(2).i32ShrU().set(l.quads);
    f.loop();
    f.get(l.sp);
    this.dots4(x, l.kp, l.acc);
    f.get(sv).f32x4Mul();
    f.i32x4Const([NEG_INF, NEG_INF, NEG_INF, NEG_INF]);
    f.get(l.nv).get(l.idx).i32x4GtS().v128Bitselect().tee(l.acc[0]!).v128Store(0);
    f.get(l.mx).get(l.acc[0]!).f32x4Pmax().set(l.mx);
    f.get(l.idx).i32x4Const([4, 4, 4, 4]).i32x4Add().set(l.idx);
    f.get(l.kp).i32(4 * this.rb).i32Add().set(l.kp);
    f.get(l.sp).i32(16).i32Add().set(l.sp);
    f.get(l.quads).i32(1).i32Sub().tee(l.quads).brIf(0);
    f.end();
    f.get(l.mx);
    this.horizontal(l.acc[0]!, "max");
  }

  /** In place over the groups of `nn` scores at local `sp0`: e = exp(s - m); pushes the sum (every lane). */
  expRow(sp0: number, nn: number, m: number, l: ScoreLocals, exp: ExpF32): void {
    const f = this.f;
    f.get(sp0).set(l.sp);
    f.v128Zero().set(l.mx); // the running sum
    f.get(nn).i32(3).i32Add().i32(2).i32ShrU().set(l.quads);
    f.loop();
    f.get(l.sp);
    f.get(l.sp).v128Load(0).get(m).f32x4Sub();
    exp.emit();
    f.tee(l.acc[0]!).v128Store(0);
    f.get(l.mx).get(l.acc[0]!).f32x4Add().set(l.mx);
    f.get(l.sp).i32(16).i32Add().set(l.sp);
    f.get(l.quads).i32(1).i32Sub().tee(l.quads).brIf(0);
    f.end();
    f.get(l.mx);
    this.horizontal(l.acc[0]!, "add");
  }
}

/**
 * One query row's unnormalized probabilities, shared by fwd and bwd: nn = min(n, tk) visible keys, the
 * row at local `row` loaded into `x`, e = exp(scaled score - max) stored at local `out`; m gets the max
 * and inv 1 / sum(e) (every lane).
 */
function probabilities(e: Emit, x: number[], row: number, k: number, out: number, n: number, nn: number, tk: number, sv: number, m: number, inv: number, l: ScoreLocals, exp: ExpF32): void {
  const f = e.f;
  e.clamp(nn, n, tk);
  e.loadRow(x, row);
  e.scores(x, k, out, nn, sv, l);
  f.set(m);
  e.expRow(out, nn, m, l, exp);
  f.set(inv);
  f32x4Const(f, 1).get(inv).f32x4Div().set(inv);
}

interface ScoreLocals {
  kp: number; sp: number; quads: number; idx: number; nv: number; mx: number; acc: number[];
}

function scoreLocals(f: FuncBody): ScoreLocals {
  return {
    kp: f.local(I32), sp: f.local(I32), quads: f.local(I32),
    idx: f.local(V128), nv: f.local(V128), mx: f.local(V128),
    acc: [f.local(V128), f.local(V128), f.local(V128), f.local(V128)],
  };
}

const vecs = (f: FuncBody, n: number): number[] => Array.from({ length: n }, () => f.local(V128));

/** fwd(q, k, v, o, s, rows, n0, inc, tk, consts). */
function fwd(dv: number): FuncBody {
  const f = new FuncBody(10);
  const [q, k, v, o, s, rows, n0, inc, tk, consts] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const e = new Emit(f, dv);
  const exp = new ExpF32(f);
  exp.init();
  const l = scoreLocals(f);
  const x = vecs(f, dv);
  const [sv, m, inv, cv] = vecs(f, 4) as [number, number, number, number];
  const [n, nn, cp, rp, j] = [f.local(I32), f.local(I32), f.local(I32), f.local(I32), f.local(I32)];
  f.get(consts).v128Load(0).set(sv);
  f.get(n0).set(n);
  f.loop();
  {
    probabilities(e, x, q, k, s, n, nn, tk, sv, m, inv, l, exp);
    // x reused as the P V accumulators.
    f.get(s).set(cp);
    f.get(v).set(rp);
    f.get(nn).set(j);
    e.combine(x, true, cp, 4, rp, e.rb, j, cv);
    for (let c = 0; c < dv; c++) f.get(o).get(x[c]!).get(inv).f32x4Mul().v128Store(16 * c);
    f.get(q).i32(e.rb).i32Add().set(q);
    f.get(o).i32(e.rb).i32Add().set(o);
    f.get(n).get(inc).i32Add().set(n);
    f.get(rows).i32(1).i32Sub().tee(rows).brIf(0);
  }
  f.end();
  return f;
}

/** bwd(q, k, v, o, dO, dq, dk, dvv, pm, dsm, ps, rows, n0, inc, tk, consts). */
function bwd(dv: number): FuncBody {
  const f = new FuncBody(16);
  const [q, k, v, o, dO, dq, dk, dvv, pm, dsm, ps, rows, n0, inc, tk, consts] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
  const e = new Emit(f, dv);
  const exp = new ExpF32(f);
  exp.init();
  const l = scoreLocals(f);
  const x = vecs(f, dv);
  const [sv, m, inv, cv, dd, pv] = vecs(f, 6) as [number, number, number, number, number, number];
  const i32 = () => f.local(I32);
  const [n, nn, cp, rp, j, r, qp, op, dop, dqp, pp, dsp, key, start] = [i32(), i32(), i32(), i32(), i32(), i32(), i32(), i32(), i32(), i32(), i32(), i32(), i32(), i32()];
  f.get(consts).v128Load(0).set(sv);
  // ---- phase 1: per query row ----
  f.get(n0).set(n);
  f.get(q).set(qp);
  f.get(o).set(op);
  f.get(dO).set(dop);
  f.get(dq).set(dqp);
  f.get(pm).set(pp);
  f.get(dsm).set(dsp);
  f.get(rows).set(r);
  f.loop();
  {
    probabilities(e, x, qp, k, pp, n, nn, tk, sv, m, inv, l, exp);
    // D = dO_i . o_i (every lane), with dO_i in x for the dP dots.
    e.loadRow(x, dop);
    for (let c = 0; c < dv; c++) {
      f.get(x[c]!).get(op).v128Load(16 * c).f32x4Mul();
      if (c > 0) f.f32x4Add();
    }
    e.horizontal(dd, "add");
    f.set(dd);
    // Per group of 4 keys: P = e inv, dS = P (dP - D) scale.
    f.get(v).set(l.kp);
    f.get(pp).set(cp);
    f.get(dsp).set(rp);
    f.get(nn).i32(3).i32Add().i32(2).i32ShrU().set(l.quads);
    f.loop();
    {
      e.dots4(x, l.kp, l.acc);
      f.get(dd).f32x4Sub().set(l.mx);
      f.get(cp).get(cp).v128Load(0).get(inv).f32x4Mul().tee(pv).v128Store(0);
      f.get(rp).get(pv).get(l.mx).f32x4Mul().get(sv).f32x4Mul().v128Store(0);
      f.get(l.kp).i32(4 * e.rb).i32Add().set(l.kp);
      f.get(cp).i32(16).i32Add().set(cp);
      f.get(rp).i32(16).i32Add().set(rp);
      f.get(l.quads).i32(1).i32Sub().tee(l.quads).brIf(0);
    }
    f.end();
    // dQ_i = dS_i K.
    f.get(dsp).set(cp);
    f.get(k).set(rp);
    f.get(nn).set(j);
    e.combine(x, true, cp, 4, rp, e.rb, j, cv);
    for (let c = 0; c < dv; c++) f.get(dqp).get(x[c]!).v128Store(16 * c);
    for (const p of [qp, op, dop, dqp]) f.get(p).i32(e.rb).i32Add().set(p);
    for (const p of [pp, dsp]) f.get(p).get(ps).i32Add().set(p);
    f.get(n).get(inc).i32Add().set(n);
    f.get(r).i32(1).i32Sub().tee(r).brIf(0);
  }
  f.end();
  // ---- phase 2: per key j, the rows r >= start = max(0, j - n0 + 1) see it ----
  f.i32(0).set(key);
  f.loop();
  {
    f.get(key).get(n0).i32Sub().i32(1).i32Add().set(start);
    f.i32(0).get(start).i32GtS().if();
    f.i32(0).set(start);
    f.end();
    f.get(rows).get(start).i32GtS().if();
    {
      for (const [acc, mat, src] of [[dk, dsm, q], [dvv, pm, dO]] as const) {
        // acc_j += sum_{r >= start} mat[r][j] src_r
        f.get(key).i32(e.rb).i32Mul().get(acc).i32Add().set(qp);
        e.loadRow(x, qp);
        f.get(start).get(ps).i32Mul().get(mat).i32Add().get(key).i32(4).i32Mul().i32Add().set(cp);
        f.get(start).i32(e.rb).i32Mul().get(src).i32Add().set(rp);
        f.get(rows).get(start).i32Sub().set(j);
        combineStrided(e, x, cp, ps, rp, j, cv);
        for (let c = 0; c < dv; c++) f.get(qp).get(x[c]!).v128Store(16 * c);
      }
    }
    f.end();
    f.get(key).i32(1).i32Add().tee(key).get(tk).i32Ne().brIf(0);
  }
  f.end();
  return f;
}

/** acc += sum_{j} coef[j] row_j with coefs `cstride` (a local) bytes apart, rows RB apart; j >= 1. */
function combineStrided(e: Emit, acc: number[], cp: number, cstride: number, rp: number, j: number, cv: number): void {
  const f = e.f;
  f.loop();
  f.get(cp).v128Load32Splat(0).set(cv);
  for (let c = 0; c < e.dv; c++) f.get(acc[c]!).get(cv).get(rp).v128Load(16 * c).f32x4Mul().f32x4Add().set(acc[c]!);
  f.get(cp).get(cstride).i32Add().set(cp);
  f.get(rp).i32(e.rb).i32Add().set(rp);
  f.get(j).i32(1).i32Sub().tee(j).brIf(0);
  f.end();
}

/** exp(p, n4): n4 f32x4 at p replaced by their exp. */
function expFn(): FuncBody {
  const f = new FuncBody(2);
  const [p, n4] = [0, 1];
  const exp = new ExpF32(f);
  exp.init();
  f.loop();
  f.get(p);
  f.get(p).v128Load(0);
  exp.emit();
  f.v128Store(0);
  f.get(p).i32(16).i32Add().set(p);
  f.get(n4).i32(1).i32Sub().tee(n4).brIf(0);
  f.end();
  return f;
}

export interface AttentionKernel {
  /** Make the memory at least this many bytes; returns a Float32Array over all of it (fresh after a grow). */
  reserve(bytes: number): Float32Array;
  fwd(q: number, k: number, v: number, o: number, s: number, rows: number, n0: number, inc: number, tk: number, consts: number): void;
  bwd(q: number, k: number, v: number, o: number, dO: number, dq: number, dk: number, dv: number, pm: number, dsm: number,
    ps: number, rows: number, n0: number, inc: number, tk: number, consts: number): void;
  exp(p: number, n4: number): void;
}

function kernelModule(dv: number): Uint8Array<ArrayBuffer> {
  return encodeModule([{ name: "fwd", body: fwd(dv) }, { name: "bwd", body: bwd(dv) }, { name: "exp", body: expFn() }]);
}

let simd: boolean | undefined;

/** Whether this JS engine runs the kernel (it needs WebAssembly SIMD); without it the drivers compute in JS. */
export function hasAttentionKernel(): boolean {
  simd ??= typeof WebAssembly === "object" && WebAssembly.validate(kernelModule(1));
  return simd;
}

// One memory for every head dim's instance (the drivers reserve before each launch).
let arena: WasmArena | undefined;
const kernels = new Map<number, AttentionKernel>();

/**
 * The process-wide kernel for rows of dv f32x4 (head dim padded to 4, over 4), compiled on first use.
 * NOTE: compiled synchronously: 6.7 KB at head dim 32, 16 KB at 128; Chromium allows that on the main thread
 * up to 8 MB since version 114 (see matmul_kernel.ts), and the browser app runs the engine in a Worker.
 */
/**
 * The memory for one launch: `size` floats, zeroed (pad lanes must read 0), with the scale in the four
 * constant floats at `consts` (the kernels' `consts` argument).
 */
export function launchMemory(kern: AttentionKernel, size: number, consts: number, scale: number): Float32Array {
  const mem = kern.reserve(size * 4);
  mem.fill(0, 0, size);
  mem.fill(scale, consts, consts + 4);
  return mem;
}

export function attentionKernel(dv: number): AttentionKernel {
  const have = kernels.get(dv);
  if (have) return have;
  arena ??= new WasmArena(new WebAssembly.Memory({ initial: 1 }), "cpu attention");
  const a = arena;
  const ex = new WebAssembly.Instance(new WebAssembly.Module(kernelModule(dv)), { env: { memory: a.memory } }).exports;
  const kernel: AttentionKernel = {
    reserve: (need) => a.reserve(need),
    fwd: ex.fwd as AttentionKernel["fwd"],
    bwd: ex.bwd as AttentionKernel["bwd"],
    exp: ex.exp as AttentionKernel["exp"],
  };
  kernels.set(dv, kernel);
  return kernel;
}
