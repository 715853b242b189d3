// reduce_order.ts decides how a generated cpu reduction walks memory: one output at a time with the reduced
// index inside (the plain form), or a block of COLUMN_BLOCK neighbouring outputs summed side by side in
// one pass over ridx. Only the decision and the IR rewrite it needs (gid shifted per column);
// render_js.ts spells both forms.

import type { Expr, KernelSpec } from "../../core/ir.js";
import { add, c, toposort } from "../../core/ir.js";
import { dependsOn } from "../../core/emit.js";

/**
 * Outputs summed side by side. NOTE: measured on a 768x128 column sum (AMD EPYC, Node 20, 2026-12-07):
 * 4 columns at a time 0.044 ms against 0.092 for one; 8 no better than 4; and ridx outside with a
 * Float64Array row of accumulators 0.121 ms, slower than one column (a load and a store per add).
 */
export const COLUMN_BLOCK = 4;

/**
 * Whether a reduction reads along its outputs rather than along its reduced axis: some load steps by 1
 * with gid and by more with ridx, and no load that moves with gid steps by 1 with ridx (loads of ridx
 * alone, a row's mean in a LayerNorm weight gradient, are read once per step either way). A column sum
 * (bias and LayerNorm weight gradients: (768, 128) -> (128)) is the case: the plain form reads one element
 * per cache line, at a stride of a row; summing neighbouring columns side by side reads a piece of each
 * row per cache line instead. NOTE: only a speed choice; both
 * forms sum each output over ridx in increasing order, in doubles, so they give the same bits. Steps are
 * measured at (gid, ridx) = (0, 0); index math that reads memory (a gather) keeps the plain form.
 */
export function reducesAlongOutputs(k: KernelSpec): boolean {
  if (!k.reduce || k.n < COLUMN_BLOCK || k.n % COLUMN_BLOCK !== 0 || k.reduce.size < 2) return false;
  let alongOutputs = false;
  for (const e of toposort(k.body)) {
    if (e.k !== "load") continue;
    const at = (gid: number, ridx: number) => indexAt(e.idx, gid, ridx, new Map());
    const [o, g, r] = [at(0, 0), at(1, 0), at(0, 1)];
    if (o === undefined || g === undefined || r === undefined) return false;
    if (r - o === 1 && dependsOn(e.idx, "gid")(e.idx)) return false;
    if (g - o === 1 && r !== o) alongOutputs = true;
  }
  return alongOutputs;
}

/** The value of integer index math at (gid, ridx); undefined where it reads memory or is not integer math. */
function indexAt(e: Expr, gid: number, ridx: number, memo: Map<Expr, number | undefined>): number | undefined {
  if (memo.has(e)) return memo.get(e);
  let r: number | undefined;
  if (e.k === "const") r = e.v;
  else if (e.k === "var") r = e.name === "gid" ? gid : e.name === "ridx" ? ridx : undefined;
  else if (e.k === "cast") r = e.dtype === "i32" || e.dtype === "u32" ? indexAt(e.src, gid, ridx, memo) : undefined;
  else if (e.k === "alu" && (e.dtype === "i32" || e.dtype === "u32" || e.dtype === "bool")) {
    const xs = e.src.map((s) => indexAt(s, gid, ridx, memo));
    r = xs.every((x) => x !== undefined) ? intOp(e.op, xs as number[]) : undefined;
  }
  memo.set(e, r);
  return r;
}

/** The integer ALU ops index math is built from (truncating division, as render_js spells it). */
function intOp(op: string, [a, b, c]: number[]): number | undefined {
  switch (op) {
    case "add": return (a! + b!) | 0;
    case "sub": return (a! - b!) | 0;
    case "mul": return Math.imul(a!, b!);
    case "div": return b === 0 ? a : Math.trunc(a! / b!) | 0;
    case "mod": return b === 0 ? 0 : (a! % b!) | 0;
    case "max": return Math.max(a!, b!);
    case "min": return Math.min(a!, b!);
    case "neg": return -a! | 0;
    case "cmplt": return a! < b! ? 1 : 0;
    case "cmpeq": return a === b ? 1 : 0;
    case "cmpne": return a !== b ? 1 : 0;
    case "and": return a! & b!;
    case "or": return a! | b!;
    case "where": return a ? b : c;
    default: return undefined;
  }
}

/** e with gid replaced by gid + j (the j-th column of a block); untouched subtrees are kept as they are. */
export function shiftGid(e: Expr, j: number, memo = new Map<Expr, Expr>()): Expr {
  const hit = memo.get(e);
  if (hit) return hit;
  let r: Expr;
  if (e.k === "var") r = e.name === "gid" && j !== 0 ? add(e, c(j)) : e;
  else if (e.k === "load") { const idx = shiftGid(e.idx, j, memo); r = idx === e.idx ? e : { ...e, idx }; }
  else if (e.k === "cast") { const src = shiftGid(e.src, j, memo); r = src === e.src ? e : { ...e, src }; }
  else if (e.k === "alu") {
    const src = e.src.map((s) => shiftGid(s, j, memo));
    r = src.every((s, i) => s === e.src[i]) ? e : { ...e, src };
  } else r = e;
  memo.set(e, r);
  return r;
}
