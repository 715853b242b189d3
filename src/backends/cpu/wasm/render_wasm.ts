// render_wasm.ts spells an f32 elementwise kernel (or a matmul's epilogue) as a WebAssembly SIMD function
// that computes four consecutive outputs per iteration. render_js.ts stays the spec of what each op means;
// this is a faster spelling of the subset where the two agree up to f32 rounding: f32 loads and stores,
// f32 arithmetic, exp (exp_f32.ts) and tanh (simd_math.ts), comparisons and `where`, and i32/bool index math.
//
// Lanes: with gid = 4q + lane, every index expression is rewritten in q and the lane (the `ridx` variable
// stands for the lane, bounded by 4) and simplified (core/simplify.ts). An index whose four lane values
// differ by the constants 0, 1, 2, 3 is one v128 load; equal lanes are one scalar load, splatted; other
// constant differences are four loads from one computed base; anything else computes each lane's index.
// Every load is bounds-checked against its input's length: an index out of range (read by a `where`'s
// untaken branch, as pads do) loads 0 instead of trapping, and a vector load that would cross an end
// falls back to per-lane loads, so in-range lanes still read their own values.
// It owns that lowering and the function's parameters; not the memory layout or launching (wasm_elementwise.ts).

import type { Expr, KernelSpec } from "../../../core/ir.js";
import { alu, c, cast, exprKey, load, toposort } from "../../../core/ir.js";
import { simplify } from "../../../core/simplify.js";
import { dependsOn } from "../../../core/emit.js";
import type { FuncBody, VecOp } from "./encoder.js";
import { FuncBody as Body, I32, V128 } from "./encoder.js";
import { ExpF32 } from "./exp_f32.js";
import { emitTanh } from "./simd_math.js";

/** Why a kernel has no wasm spelling (it then runs as JS). */
export class NotVectorizable extends Error {}

const F32_BINARY: Partial<Record<string, VecOp>> = {
  add: "f32x4.add", sub: "f32x4.sub", mul: "f32x4.mul", div: "f32x4.div", max: "f32x4.max", min: "f32x4.min",
};
const F32_UNARY: Partial<Record<string, VecOp>> = { neg: "f32x4.neg", abs: "f32x4.abs", sqrt: "f32x4.sqrt", floor: "f32x4.floor" };

/** Substitutes the loop variables of an expression (memoized on the node, so shared subtrees stay shared). */
function substitute(root: Expr, vars: (name: "gid" | "ridx" | "acc") => Expr | undefined): Expr {
  const memo = new Map<Expr, Expr>();
  const go = (e: Expr): Expr => {
    let out = memo.get(e);
    if (out) return out;
    switch (e.k) {
      case "const": out = e; break;
      case "var": out = vars(e.name) ?? e; break;
      case "load": out = load(e.slot, go(e.idx), e.dtype); break;
      case "cast": out = cast(go(e.src), e.dtype); break;
      case "alu": out = alu(e.op, ...e.src.map(go)); break;
    }
    memo.set(e, out);
    return out;
  };
  return go(root);
}

/**
 * The layout of a generated function's parameters (all i32):
 *   elementwise: (groups, outAddr, then addr, len per input slot 1..)
 *   epilogue:    (rows, first, cAddr, ldcBytes, then addr, len per epilogue input)
 * Addresses are bytes; lengths are f32 elements. Slots are numbered as in the expression.
 */
export interface WasmKernelShape {
  /** The expression's load slots, in parameter order. */
  readonly slots: readonly number[];
}

class Lowering {
  readonly f: FuncBody;
  private readonly scalars = new Map<string, number>();
  private readonly vectors = new Map<string, number>();
  private readonly laneCache = new Map<string, Expr[]>();
  /** Locals: the group index q (gid / 4), and per slot its address and length. */
  readonly q: number;
  accAddr = -1;
  /** exp's constants, set once before the loop (see begin()). */
  private exp: ExpF32 | undefined;
  private readonly slotParams = new Map<number, { addr: number; len: number }>();

  constructor(nparams: number, private readonly groups: number, slots: readonly number[], firstSlotParam: number) {
    this.f = new Body(nparams);
    this.q = this.f.local(I32);
    slots.forEach((s, i) => this.slotParams.set(s, { addr: firstSlotParam + 2 * i, len: firstSlotParam + 2 * i + 1 }));
  }

  /** Code that runs once before the loop: exp's constants, when the expression has an exp. */
  begin(e: Expr): void {
    if (toposort(e).some((x) => x.k === "alu" && x.op === "exp" && x.dtype === "f32")) {
      this.exp = new ExpF32(this.f);
      this.exp.init();
    }
  }

  /** An expression's value in lane l (0..3), simplified: it no longer reads the lane. */
  private lanes(e: Expr): Expr[] {
    const key = exprKey(e);
    let out = this.laneCache.get(key);
    if (!out) {
      out = [0, 1, 2, 3].map((l) => simplify(substitute(e, (n) => (n === "ridx" ? c(l) : undefined)), { gid: this.groups }));
      this.laneCache.set(key, out);
    }
    return out;
  }

  private readsLane(e: Expr): boolean {
    return dependsOn(e, "ridx")(e);
  }

  // ---- i32 and bool values that do not depend on the lane: one scalar per iteration ----

  scalar(e: Expr): number {
    if (e.dtype !== "i32" && e.dtype !== "bool") throw new NotVectorizable(`a ${e.dtype} value where an index was expected`);
    const key = exprKey(e);
    let local = this.scalars.get(key);
    if (local !== undefined) return local;
    const f = this.f;
    if (e.k === "const") f.i32(e.v);
    else if (e.k === "var") {
      if (e.name !== "gid") throw new NotVectorizable(`variable ${e.name} in index math`);
      f.get(this.q);
    } else if (e.k === "cast") {
      const s = this.scalar(e.src);
      if (e.dtype === "bool") f.get(s).i32(0).scalar("i32.ne");
      else f.get(s);
    } else if (e.k === "load") {
      throw new NotVectorizable(`a ${e.dtype} load in index math`);
    } else this.scalarAlu(e);
    local = f.local(I32);
    f.set(local);
    this.scalars.set(key, local);
    return local;
  }

  private scalarAlu(e: Extract<Expr, { k: "alu" }>): void {
    const f = this.f;
    const s = e.src.map((x) => this.scalar(x));
    const [a, b] = [s[0]!, s[1]!];
    const bool = e.dtype === "bool" && e.src[0]!.dtype === "bool";
    const constDivisor = (x: Expr) => x.k === "const" && x.v !== 0 && x.v !== -1;
    switch (e.op) {
      case "add": f.get(a).get(b).scalar(bool ? "i32.or" : "i32.add"); break;
      case "sub": f.get(a).get(b).scalar("i32.sub"); break;
      case "mul": f.get(a).get(b).scalar(bool ? "i32.and" : "i32.mul"); break;
      case "div":
        if (!constDivisor(e.src[1]!)) throw new NotVectorizable("an integer division by a non-constant");
        f.get(a).get(b).scalar("i32.div_s");
        break;
      case "mod":
        if (!constDivisor(e.src[1]!)) throw new NotVectorizable("an integer remainder by a non-constant");
        f.get(a).get(b).scalar("i32.rem_s");
        break;
      case "max": f.get(a).get(b).get(a).get(b).scalar("i32.gt_s").scalar("select"); break;
      case "min": f.get(a).get(b).get(a).get(b).scalar("i32.lt_s").scalar("select"); break;
      case "neg": f.i32(0).get(a).scalar("i32.sub"); break;
      case "abs": f.i32(0).get(a).scalar("i32.sub").get(a).get(a).i32(0).scalar("i32.lt_s").scalar("select"); break;
      case "not": if (e.dtype === "bool") f.get(a).scalar("i32.eqz"); else f.get(a).i32(-1).scalar("i32.xor"); break;
      case "cmplt": f.get(a).get(b).scalar("i32.lt_s"); break;
      case "cmpeq": f.get(a).get(b).scalar("i32.eq"); break;
      case "cmpne": f.get(a).get(b).scalar("i32.ne"); break;
      case "and": f.get(a).get(b).scalar("i32.and"); break;
      case "or": f.get(a).get(b).scalar("i32.or"); break;
      case "xor": f.get(a).get(b).scalar("i32.xor"); break;
      case "shl": f.get(a).get(b).scalar("i32.shl"); break;
      case "shr": f.get(a).get(b).scalar("i32.shr_s"); break;
      case "where": f.get(b).get(s[2]!).get(a).scalar("select"); break;
      default: throw new NotVectorizable(`integer ${e.op}`);
    }
  }

  /** An i32/bool value per lane, as four scalars (lane-independent values share one). */
  private laneScalars(e: Expr): number[] {
    if (!this.readsLane(e)) {
      const s = this.scalar(e);
      return [s, s, s, s];
    }
    return this.lanes(e).map((x) => this.scalar(x));
  }

  // ---- f32 values and masks: one v128 per iteration ----

  vector(e: Expr): number {
    const key = exprKey(e);
    let local = this.vectors.get(key);
    if (local !== undefined) return local;
    local = this.computeVector(e);
    this.vectors.set(key, local);
    return local;
  }

  /** A bool as a lane mask (all ones where true). */
  private mask(e: Expr): number {
    if (e.dtype !== "bool") throw new NotVectorizable(`a ${e.dtype} condition`);
    if (!this.hasFloat(e)) return this.fromLanes(this.laneScalars(e), (f, s) => f.i32(0).get(s).scalar("i32.sub"), "i32");
    return this.vector(e);
  }

  private hasFloat(e: Expr): boolean {
    return toposort(e).some((x) => x.dtype === "f32");
  }

  /** A v128 from four lane scalars, each pushed through `each` (which leaves an i32 or f32). */
  private fromLanes(s: number[], each: (f: FuncBody, s: number) => void, as: "i32" | "f32"): number {
    const f = this.f;
    const out = f.local(V128);
    each(f, s[0]!);
    f.vec(as === "i32" ? "i32x4.splat" : "f32x4.splat");
    if (s.some((x) => x !== s[0])) {
      for (let l = 1; l < 4; l++) {
        each(f, s[l]!);
        if (as === "i32") f.i32x4ReplaceLane(l);
        else f.f32x4ReplaceLane(l);
      }
    }
    f.set(out);
    return out;
  }

  private computeVector(e: Expr): number {
    const f = this.f;
    if (e.dtype === "bool" && !this.hasFloat(e)) return this.mask(e);
    if (e.dtype !== "f32" && e.dtype !== "bool") throw new NotVectorizable(`a ${e.dtype} value`);
    switch (e.k) {
      case "const": {
        const out = f.local(V128);
        f.f32Const(e.v).vec("f32x4.splat").set(out);
        return out;
      }
      case "var": {
        if (e.name !== "acc" || this.accAddr < 0) throw new NotVectorizable(`variable ${e.name} as a float`);
        const out = f.local(V128);
        f.get(this.accAddr).v128Load(0).set(out);
        return out;
      }
      case "load": return this.load(e);
      case "cast": {
        const from = e.src.dtype;
        const out = f.local(V128);
        if (e.dtype === "f32" && from === "bool") f.get(this.mask(e.src)).f32Const(1).vec("f32x4.splat").vec("v128.and").set(out);
        else if (e.dtype === "f32" && from === "i32") return this.fromLanes(this.laneScalars(e.src), (g, s) => g.get(s).scalar("f32.convert_i32_s"), "f32");
        else if (e.dtype === "bool" && from === "f32") f.get(this.vector(e.src)).f32Const(0).vec("f32x4.splat").vec("f32x4.ne").set(out);
        else throw new NotVectorizable(`a cast from ${from} to ${e.dtype}`);
        return out;
      }
      case "alu": return this.vectorAlu(e);
    }
  }

  private vectorAlu(e: Extract<Expr, { k: "alu" }>): number {
    const f = this.f;
    const op = e.op;
    if (op === "where") {
      const out = f.local(V128);
      f.get(this.vector(e.src[1]!)).get(this.vector(e.src[2]!)).get(this.mask(e.src[0]!)).vec("v128.bitselect").set(out);
      return out;
    }
    if (e.dtype === "bool") {
      // Masks from float comparisons, combined.
      const out = f.local(V128);
      if (op === "not") f.get(this.mask(e.src[0]!)).vec("v128.not");
      else if (op === "and" || op === "mul" || op === "min") f.get(this.mask(e.src[0]!)).get(this.mask(e.src[1]!)).vec("v128.and");
      else if (op === "or" || op === "add" || op === "max") f.get(this.mask(e.src[0]!)).get(this.mask(e.src[1]!)).vec("v128.or");
      else if (op === "xor" || op === "cmpne") {
        if (e.src[0]!.dtype !== "bool") f.get(this.vector(e.src[0]!)).get(this.vector(e.src[1]!)).vec("f32x4.ne");
        else f.get(this.mask(e.src[0]!)).get(this.mask(e.src[1]!)).vec("v128.xor");
      } else if (op === "cmplt" && e.src[0]!.dtype === "f32") f.get(this.vector(e.src[0]!)).get(this.vector(e.src[1]!)).vec("f32x4.lt");
      else if (op === "cmpeq" && e.src[0]!.dtype === "f32") f.get(this.vector(e.src[0]!)).get(this.vector(e.src[1]!)).vec("f32x4.eq");
      else throw new NotVectorizable(`bool ${op} of ${e.src[0]!.dtype}`);
      f.set(out);
      return out;
    }
    const x = this.vector(e.src[0]!);
    if (op === "exp") {
      const out = f.local(V128);
      f.get(x);
      this.exp!.emit();
      f.set(out);
      return out;
    }
    if (op === "tanh") return emitTanh(f, x);
    const out = f.local(V128);
    const unary = F32_UNARY[op];
    const binary = F32_BINARY[op];
    if (unary) f.get(x).vec(unary);
    else if (op === "recip") f.f32Const(1).vec("f32x4.splat").get(x).vec("f32x4.div");
    else if (binary) f.get(x).get(this.vector(e.src[1]!)).vec(binary);
    else throw new NotVectorizable(`f32 ${op}`);
    f.set(out);
    return out;
  }

  /** Pushes the byte address of element `idx` (an i32 local) of a slot, or of element 0 where idx is out of range. */
  private address(slot: number, idx: number): void {
    const p = this.slotParam(slot);
    const f = this.f;
    f.get(p.addr);
    f.get(idx).i32(0).get(idx).get(p.len).scalar("i32.lt_u").scalar("select");
    f.i32(2).scalar("i32.shl").scalar("i32.add");
  }

  private slotParam(slot: number): { addr: number; len: number } {
    const p = this.slotParams.get(slot);
    if (!p) throw new Error(`render_wasm: slot ${slot} has no parameter`);
    return p;
  }

  private load(e: Extract<Expr, { k: "load" }>): number {
    if (e.dtype !== "f32") throw new NotVectorizable(`a ${e.dtype} load`);
    const f = this.f;
    const out = f.local(V128);
    if (!this.readsLane(e.idx)) {
      this.address(e.slot, this.scalar(e.idx));
      f.v128Load32Splat(0).set(out);
      return out;
    }
    const lanes = this.lanes(e.idx);
    const diffs = lanes.map((l) => simplify(alu("sub", l, lanes[0]!), { gid: this.groups }));
    const steps = diffs.every((d) => d.k === "const") ? diffs.map((d) => (d as { v: number }).v) : undefined;
    const perLane = (idx: readonly number[]) => {
      this.address(e.slot, idx[0]!);
      f.v128Load32Splat(0);
      for (let l = 1; l < 4; l++) {
        this.address(e.slot, idx[l]!);
        f.f32Load(0).f32x4ReplaceLane(l);
      }
      f.set(out);
    };
    if (!steps) {
      perLane(lanes.map((l) => this.scalar(l)));
      return out;
    }
    const base = this.scalar(lanes[0]!);
    const at = [base, ...steps.slice(1).map(() => f.local(I32))];
    if (steps.join() !== "0,1,2,3") {
      steps.forEach((s, l) => l > 0 && f.get(base).i32(s).scalar("i32.add").set(at[l]!));
      perLane(at);
      return out;
    }
    // Contiguous: one v128 load where all four lanes are in range, else per lane (each checked).
    const p = this.slotParam(e.slot);
    f.get(base).i32(0).scalar("i32.ge_s").get(base).get(p.len).i32(4).scalar("i32.sub").scalar("i32.le_s").scalar("i32.and");
    f.if();
    f.get(p.addr).get(base).i32(2).scalar("i32.shl").scalar("i32.add").v128Load(0).set(out);
    f.else();
    for (let l = 1; l < 4; l++) f.get(base).i32(l).scalar("i32.add").set(at[l]!);
    perLane(at);
    f.end();
    return out;
  }
}

/** The slots an expression loads, in increasing order. */
function slotsOf(e: Expr): number[] {
  return [...new Set(toposort(e).flatMap((x) => (x.k === "load" ? [x.slot] : [])))].sort((a, b) => a - b);
}

/** gid = 4q + lane, simplified for q < groups. */
function inLanes(e: Expr, groups: number): Expr {
  const q = { k: "var", name: "gid", dtype: "i32" } as const;
  const gid4 = alu("add", alu("mul", q, c(4)), { k: "var", name: "ridx", dtype: "i32" });
  return simplify(substitute(e, (n) => (n === "gid" ? gid4 : n === "ridx" ? c(0) : undefined)), { gid: groups, ridx: 4 });
}

/**
 * An elementwise kernel as a wasm function `run(groups, out, addr1, len1, ...)`, or NotVectorizable.
 * Only f32 outputs over f32 inputs, with n a multiple of 4.
 */
export function renderWasmKernel(k: KernelSpec): { body: FuncBody; shape: WasmKernelShape } {
  if (k.reduce) throw new NotVectorizable("a reduction");
  if (k.out !== "f32") throw new NotVectorizable(`a ${k.out} output`);
  if (k.n % 4 !== 0) throw new NotVectorizable(`n = ${k.n} is not a multiple of 4`);
  if (k.inputs.some((d) => d !== "f32")) throw new NotVectorizable("a non-f32 input");
  if (dependsOn(k.body, "ridx")(k.body)) throw new NotVectorizable("ridx in an elementwise body");
  const groups = k.n / 4;
  const body = inLanes(k.body, groups);
  const slots = k.inputs.map((_, i) => i + 1);
  const low = new Lowering(2 + 2 * slots.length, groups, slots, 2);
  const f = low.f;
  const [G, OUT] = [0, 1];
  f.get(G).i32Eqz().if().ret().end();
  low.begin(body);
  f.i32(0).set(low.q);
  f.loop();
  const v = low.vector(body);
  f.get(OUT).get(low.q).i32(4).scalar("i32.shl").scalar("i32.add").get(v).v128Store(0);
  f.get(low.q).i32(1).i32Add().tee(low.q).get(G).i32LtS().brIf(0);
  f.end();
  return { body: f, shape: { slots } };
}

/**
 * A matmul epilogue over C in place: `run(rows, first, cAddr, ldcBytes, addr, len per input)` rewrites
 * C's rows [0, rows) (output rows first.., n columns, a multiple of 4) as epilogue(acc). `total` is the
 * output's element count (the bound its gid was simplified with).
 */
export function renderWasmEpilogue(expr: Expr, inputs: readonly string[], firstSlot: number, n: number, total: number): { body: FuncBody; shape: WasmKernelShape } {
  if (n % 4 !== 0 || total % 4 !== 0) throw new NotVectorizable(`n = ${n} is not a multiple of 4`);
  if (inputs.some((d) => d !== "f32")) throw new NotVectorizable("a non-f32 epilogue input");
  const groups = total / 4;
  const e = inLanes(expr, groups);
  const slots = inputs.map((_, i) => firstSlot + i);
  if (slotsOf(e).some((s) => !slots.includes(s))) throw new Error("render_wasm: the epilogue loads a slot outside its inputs");
  const low = new Lowering(4 + 2 * slots.length, groups, slots, 4);
  const f = low.f;
  const [ROWS, FIRST, C, LDC] = [0, 1, 2, 3];
  const r = f.local(I32);
  const rowQ = f.local(I32);
  const jq = f.local(I32);
  low.accAddr = f.local(I32);
  f.get(ROWS).i32Eqz().if().ret().end();
  low.begin(e);
  f.i32(0).set(r);
  f.loop();
  {
    f.get(FIRST).get(r).i32Add().i32(n / 4).i32Mul().set(rowQ);
    f.get(C).get(r).get(LDC).i32Mul().i32Add().set(low.accAddr);
    f.i32(0).set(jq);
    f.loop();
    {
      f.get(rowQ).get(jq).i32Add().set(low.q);
      const v = low.vector(e);
      f.get(low.accAddr).get(v).v128Store(0);
      f.get(low.accAddr).i32(16).i32Add().set(low.accAddr);
      f.get(jq).i32(1).i32Add().tee(jq).i32(n / 4).i32LtS().brIf(0);
    }
    f.end();
    f.get(r).i32(1).i32Add().tee(r).get(ROWS).i32LtS().brIf(0);
  }
  f.end();
  return { body: f, shape: { slots } };
}
