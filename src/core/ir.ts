// ir.ts is the kernel expression IR: what a renderer turns into JS, WGSL or CUDA C.
// A kernel computes one value per output element `gid` (optionally a reduction over `ridx`),
// as a tree of plain-data expressions. Index arithmetic is written in the same expressions (i32).
// It owns the builders (with constant folding, so index math stays small) and the KernelSpec shape;
// it does not decide what goes into a kernel (schedule.ts) nor how it is spelled (the renderers).

import type { DType } from "./dtype.js";
import { isFloat, roundTo } from "./dtype.js";
import type { AluOp, ReduceOp } from "./ops.js";
import { COMPARISONS } from "./ops.js";

/** Names a kernel expression may refer to: the output element, the reduction step, the reduced value. */
export type VarName = "gid" | "ridx" | "acc";

export type Expr =
  | { readonly k: "const"; readonly v: number; readonly dtype: DType }
  | { readonly k: "var"; readonly name: VarName; readonly dtype: DType }
  | { readonly k: "load"; readonly slot: number; readonly idx: Expr; readonly dtype: DType }
  | { readonly k: "alu"; readonly op: AluOp; readonly src: readonly Expr[]; readonly dtype: DType }
  | { readonly k: "cast"; readonly src: Expr; readonly dtype: DType };

/**
 * One generated kernel: out[gid] = epilogue(reduce_{ridx < size}(body)) or out[gid] = body.
 * Buffer slot 0 is the output; slots 1.. are the inputs, in `inputs` order.
 */
export interface KernelSpec {
  readonly name: string;
  readonly n: number; // output elements
  readonly out: DType;
  readonly inputs: readonly DType[];
  readonly reduce?: { readonly op: ReduceOp; readonly size: number; readonly dtype: DType };
  readonly body: Expr;
  /** Applied to the reduced value (`acc`) when reduce is set. */
  readonly epilogue?: Expr;
}

// ---- builders ----

export const c = (v: number, dtype: DType = "i32"): Expr => ({ k: "const", v: roundTo(v, dtype), dtype });
export const v = (name: VarName, dtype: DType = "i32"): Expr => ({ k: "var", name, dtype });
export const load = (slot: number, idx: Expr, dtype: DType): Expr => ({ k: "load", slot, idx, dtype });

const isConst = (e: Expr, x?: number): e is Extract<Expr, { k: "const" }> =>
  e.k === "const" && (x === undefined || e.v === x);

/** The dtype an ALU op yields for these operands. */
export function aluDType(op: AluOp, src: readonly Expr[]): DType {
  if (COMPARISONS.has(op)) return "bool";
  if (op === "where") return src[1]!.dtype;
  return src[0]!.dtype;
}

export function alu(op: AluOp, ...src: Expr[]): Expr {
  const dtype = aluDType(op, src);
  // Constant folding keeps index arithmetic small; only for ints and bool, where it is exact.
  const intLike = (e: Expr) => !isFloat(e.dtype);
  if (src.every(intLike) && dtype !== "f32") {
    if (src.every((s) => isConst(s))) {
      const [a, b] = src.map((s) => (s as { v: number }).v);
      const folded = foldInt(op, a!, b, src);
      if (folded !== undefined) return c(folded, dtype);
    }
    const [a, b] = src;
    if (op === "add") { if (isConst(a!, 0)) return b!; if (isConst(b!, 0)) return a!; }
    if (op === "sub" && isConst(b!, 0)) return a!;
    if (op === "mul") {
      if (isConst(a!, 0) || isConst(b!, 0)) return c(0, dtype);
      if (isConst(a!, 1)) return b!;
      if (isConst(b!, 1)) return a!;
    }
    if (op === "div" && isConst(b!, 1)) return a!;
    if (op === "mod" && isConst(b!, 1)) return c(0, dtype);
    if (op === "and" && dtype === "bool") { if (isConst(a!, 1)) return b!; if (isConst(b!, 1)) return a!; }
  }
  if (op === "where" && isConst(src[0]!)) return src[0].v ? src[1]! : src[2]!;
  return { k: "alu", op, src, dtype };
}

function foldInt(op: AluOp, a: number, b: number | undefined, src: readonly Expr[]): number | undefined {
  if (b === undefined) {
    if (op === "neg") return -a;
    if (op === "not") return src[0]!.dtype === "bool" ? (a ? 0 : 1) : ~a;
    if (op === "abs") return Math.abs(a);
    return undefined;
  }
  switch (op) {
    case "add": return a + b;
    case "sub": return a - b;
    case "mul": return a * b;
    case "div": return b === 0 ? undefined : Math.trunc(a / b);
    case "mod": return b === 0 ? undefined : a % b;
    case "max": return Math.max(a, b);
    case "min": return Math.min(a, b);
    case "cmplt": return a < b ? 1 : 0;
    case "cmpeq": return a === b ? 1 : 0;
    case "cmpne": return a !== b ? 1 : 0;
    default: return undefined;
  }
}

export const cast = (src: Expr, dtype: DType): Expr => {
  if (src.dtype === dtype) return src;
  if (isConst(src)) return c(dtype === "bool" ? (src.v ? 1 : 0) : src.v, dtype);
  return { k: "cast", src, dtype };
};

export const add = (a: Expr, b: Expr) => alu("add", a, b);
export const mul = (a: Expr, b: Expr) => alu("mul", a, b);
export const idiv = (a: Expr, b: Expr) => alu("div", a, b);
export const mod = (a: Expr, b: Expr) => alu("mod", a, b);
export const lt = (a: Expr, b: Expr) => alu("cmplt", a, b);
export const and = (a: Expr, b: Expr) => alu("and", a, b);
export const where = (cond: Expr, a: Expr, b: Expr) => alu("where", cond, a, b);

/** Structural key of an expression: equal keys mean equal values (used for CSE and caching). */
const keyCache = new WeakMap<Expr, string>();
export function exprKey(e: Expr): string {
  let key = keyCache.get(e);
  if (key === undefined) keyCache.set(e, (key = computeKey(e)));
  return key;
}

function computeKey(e: Expr): string {
  switch (e.k) {
    case "const": return `${e.dtype}:${Object.is(e.v, -0) ? "-0" : e.v}`;
    case "var": return e.name;
    case "load": return `L${e.slot}[${exprKey(e.idx)}]`;
    case "alu": return `${e.op}(${e.src.map(exprKey).join(",")})`;
    case "cast": return `${e.dtype}(${exprKey(e.src)})`;
  }
}

/** Visit every node once, children before parents (the order renderers emit temporaries in). */
export function toposort(root: Expr): Expr[] {
  const seen = new Map<string, Expr>();
  const visit = (e: Expr) => {
    const key = exprKey(e);
    if (seen.has(key)) return;
    if (e.k === "load") visit(e.idx);
    else if (e.k === "alu") e.src.forEach(visit);
    else if (e.k === "cast") visit(e.src);
    seen.set(key, e);
  };
  visit(root);
  return [...seen.values()];
}

/** A short, stable hash of a string (FNV-1a), for names. Never a cache key by itself: 32 bits collide. */
export function hashString(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, "0");
}
