// index_expr.ts: a position in a shape, as kernel expressions, in whichever form is cheaper.
// Movement ops never copy: lowering composes their index maps, so a view costs index arithmetic
// inside the kernel that reads it. Keeping both forms (flat and per-dimension) lazily means an
// elementwise chain over same-shaped tensors, and any reshape, costs no index math at all.

import type { Expr } from "./ir.js";
import { add, c, idiv, mod, mul } from "./ir.js";
import { contiguousStrides } from "./graph.js";

export class Index {
  private lin: Expr | undefined;
  private dimsCache: Expr[] | undefined;

  private constructor(readonly shape: readonly number[], lin?: Expr, dims?: Expr[]) {
    this.lin = lin;
    this.dimsCache = dims;
  }

  static flat(shape: readonly number[], linear: Expr): Index {
    return new Index(shape, linear);
  }

  static ofDims(shape: readonly number[], dims: Expr[]): Index {
    if (dims.length !== shape.length) throw new Error(`index of rank ${dims.length} for shape (${shape.join(", ")})`);
    return new Index(shape, undefined, dims);
  }

  /** The row-major flat position. */
  linear(): Expr {
    if (!this.lin) {
      const strides = contiguousStrides(this.shape);
      let e: Expr = c(0);
      this.dims().forEach((d, i) => {
        if (this.shape[i] !== 1) e = add(e, mul(d, c(strides[i]!)));
      });
      this.lin = e;
    }
    return this.lin;
  }

  /** One expression per dimension. */
  dims(): Expr[] {
    if (!this.dimsCache) {
      // An empty shape has no positions: any index will do, and dividing by its zero strides would not.
      if (this.shape.includes(0)) return (this.dimsCache = this.shape.map(() => c(0)));
      const strides = contiguousStrides(this.shape);
      const lin = this.lin!;
      // The outermost non-trivial dimension needs no modulo: the flat index is in range.
      const first = this.shape.findIndex((s) => s !== 1);
      this.dimsCache = this.shape.map((s, i) => {
        if (s === 1) return c(0);
        const q = idiv(lin, c(strides[i]!));
        return i === first ? q : mod(q, c(s));
      });
    }
    return this.dimsCache;
  }
}
