// emit.ts: what every source renderer shares: walking a kernel expression once, children first,
// giving each distinct subtree one named temporary (CSE), and telling loop-invariant nodes apart.
// The spelling of each node is the renderer's (a callback); this file owns only the bookkeeping.

import type { Expr, VarName } from "./ir.js";
import { exprKey, toposort } from "./ir.js";

export interface Spelling {
  /** `const` (JS), `let` (WGSL), or a typed declaration per node (C: `const float`). */
  readonly decl: string | ((e: ComputedExpr) => string);
  readonly constant: (v: number, e: Expr) => string;
  /** Spell a load, ALU op or cast whose operands are already named by `ref`. */
  readonly node: (e: ComputedExpr, ref: (x: Expr) => string) => string;
}

/** The nodes a renderer spells: constants and variables are named by `ref` directly. */
export type ComputedExpr = Exclude<Expr, { readonly k: "const" } | { readonly k: "var" }>;

/** Emits `decl tN = ...;` lines for expression trees, sharing equal subtrees across calls. */
export class Emitter {
  private readonly names = new Map<string, string>();
  private count = 0;
  constructor(private readonly prefix: string, private readonly spelling: Spelling) {}

  /**
   * Lines for every node of `root` not emitted yet; nodes for which `skip` holds are left to an
   * inner scope (and then so is the root: the result is "" when it was skipped).
   */
  emit(root: Expr, lines: string[], skip: (e: Expr) => boolean = () => false): string {
    for (const e of toposort(root)) {
      const key = exprKey(e);
      if (this.names.has(key) || skip(e) || e.k === "const" || e.k === "var") continue;
      const spelled = this.spelling.node(e, this.ref);
      // A node that spells as a bare name (a cast within one compute type) reuses that name.
      if (/^[A-Za-z_]\w*$/.test(spelled)) {
        this.names.set(key, spelled);
        continue;
      }
      const name = `${this.prefix}${this.count++}`;
      const decl = typeof this.spelling.decl === "string" ? this.spelling.decl : this.spelling.decl(e);
      lines.push(`${decl} ${name} = ${spelled};`);
      this.names.set(key, name);
    }
    return skip(root) ? "" : this.ref(root);
  }

  readonly ref = (e: Expr): string => {
    if (e.k === "const") return this.spelling.constant(e.v, e);
    if (e.k === "var") return e.name;
    const name = this.names.get(exprKey(e));
    if (!name) throw new Error(`emit: ${exprKey(e)} used before it was emitted`);
    return name;
  };
}

/**
 * Which nodes read variable `name` (directly or below): for a reduction, those stay inside its loop.
 * Nodes for which `invariant` holds count as not reading it, whatever is below them (a row loop's
 * `gid / D`: constant within the row).
 */
export function dependsOn(root: Expr, name: VarName, invariant?: (e: Expr) => boolean): (e: Expr) => boolean {
  const memo = new Map<string, boolean>();
  const dep = (e: Expr): boolean => {
    const key = exprKey(e);
    let r = memo.get(key);
    if (r !== undefined) return r;
    if (invariant?.(e)) r = false;
    else if (e.k === "var") r = e.name === name;
    else if (e.k === "load") r = dep(e.idx);
    else if (e.k === "alu") r = e.src.some(dep);
    else if (e.k === "cast") r = dep(e.src);
    else r = false;
    memo.set(key, r);
    return r;
  };
  dep(root);
  return dep;
}
