// lower.ts turns the part of the graph that one kernel computes into a kernel expression.
// Everything between the kernel's root and the materialized nodes it reads is inlined: elementwise
// math as ALU ops, movement ops as index arithmetic (Index), gathers as data-dependent loads.
// Which nodes are materialized is decided by schedule.ts; this file only follows that decision.

import type { DType } from "./dtype.js";
import type { Expr } from "./ir.js";
import { add, alu, and, c, cast, lt, load, where } from "./ir.js";
import type { Node } from "./graph.js";
import { Index } from "./index_expr.js";
import { assertNever, isAlu } from "./ops.js";

export class Lowering {
  /** Materialized nodes this kernel reads, in slot order (slot = position + firstSlot). */
  readonly inputs: Node[] = [];
  private readonly slots = new Map<Node, number>();
  private readonly memo = new Map<Node, Map<Index, Expr>>();
  /** Set when the kernel absorbed a producer as its `acc` (see canFuse). */
  fused: Node | undefined;

  constructor(
    private readonly isMaterialized: (n: Node) => boolean,
    /** Whether a materialized producer may become the kernel's `acc` (it feeds this kernel alone). */
    private readonly canFuse: (n: Node) => boolean,
    private readonly firstSlot = 1,
  ) {}

  slotOf(n: Node): number {
    let s = this.slots.get(n);
    if (s === undefined) {
      s = this.firstSlot + this.inputs.length;
      this.slots.set(n, s);
      this.inputs.push(n);
    }
    return s;
  }

  /** Set when a fusable producer was also read at another index: the kernel must be lowered again without fusing it. */
  fusionBroken = false;

  /** The value of `n` at `idx`; `identity` says idx is the root's own output index (needed to fuse a producer). */
  lower(n: Node, idx: Index, identity = true): Expr {
    let byIdx = this.memo.get(n);
    const hit = byIdx?.get(idx);
    if (hit) return hit;
    const e = this.compute(n, idx, identity);
    if (!byIdx) this.memo.set(n, (byIdx = new Map()));
    byIdx.set(idx, e);
    return e;
  }

  /** The kernel's own value: the root is computed here even though it is materialized. */
  lowerRoot(n: Node, idx: Index): Expr {
    this.root = n;
    return this.lower(n, idx);
  }
  private root: Node | undefined;

  private compute(n: Node, idx: Index, identity: boolean): Expr {
    if (n.disposed) throw new Error(`use of a disposed tensor: ${n.describe()}`);
    if (n.realized || (n !== this.root && this.isMaterialized(n))) {
      if (!n.realized && this.canFuse(n)) {
        if (identity && (this.fused === undefined || this.fused === n)) {
          this.fused = n;
          // Routines hand their epilogue an f32 accumulator (f64 on the reference dtype).
          const dtype = n.op !== "routine" ? n.dtype : n.dtype === "f64" ? "f64" : "f32";
          const acc: Expr = { k: "var", name: "acc", dtype };
          // NOTE: a routine whose output is f16/bf16 is seen rounded to it, as the unfused graph stores it
          // (without this, a bf16 matmul followed by a cast to f32 kept the f32 accumulator's bits).
          return dtype === n.dtype ? acc : cast(acc, n.dtype);
        }
        // NOTE: once another producer is this kernel's acc, a second one is simply read from its buffer.
        if (this.fused === undefined || this.fused === n) this.fusionBroken = true;
      }
      return load(this.slotOf(n), idx.linear(), n.dtype);
    }
    const src = n.src;
    const down = (s: Node, i: Index, keepsIdentity: boolean) => this.lower(s, i, identity && keepsIdentity);
    const op = n.op;
    if (isAlu(op)) return alu(op, ...src.map((s) => down(s, idx, true)));
    switch (op) {
      case "cast": return cast(down(src[0]!, idx, true), n.dtype);
      case "const": return c(n.arg.kind === "const" ? n.arg.value : 0, n.dtype);
      case "iota": return cast(idx.linear(), n.dtype);
      case "reshape": return down(src[0]!, Index.flat(src[0]!.shape, idx.linear()), true);
      case "permute": {
        if (n.arg.kind !== "permute") throw badArg(n);
        const d = idx.dims();
        const sd = new Array<Expr>(d.length);
        n.arg.perm.forEach((p, i) => (sd[p] = d[i]!));
        return down(src[0]!, Index.ofDims(src[0]!.shape, sd), false);
      }
      case "expand": {
        const s = src[0]!.shape;
        const d = idx.dims().map((x, i) => (s[i] === 1 && n.shape[i] !== 1 ? c(0) : x));
        return down(src[0]!, Index.ofDims(s, d), false);
      }
      case "shrink": {
        if (n.arg.kind !== "shrink") throw badArg(n);
        const ranges = n.arg.ranges;
        const d = idx.dims().map((x, i) => add(x, c(ranges[i]![0])));
        return down(src[0]!, Index.ofDims(src[0]!.shape, d), false);
      }
      case "pad": {
        if (n.arg.kind !== "pad") throw badArg(n);
        const pads = n.arg.pads;
        const s = src[0]!.shape;
        let valid: Expr = c(1, "bool");
        const d = idx.dims().map((x, i) => {
          const [lo, hi] = pads[i]!;
          if (lo === 0 && hi === 0) return x;
          const y = add(x, c(-lo));
          valid = and(valid, inRange(y, s[i]!));
          return y;
        });
        return where(valid, down(src[0]!, Index.ofDims(s, d), false), zero(n.dtype));
      }
      case "gather": {
        if (n.arg.kind !== "gather") throw badArg(n);
        const axis = n.arg.axis;
        const [data, indices] = [src[0]!, src[1]!];
        const d = idx.dims();
        const at = cast(down(indices, Index.ofDims(indices.shape, [d[axis]!]), false), "i32");
        const sd = d.map((x, i) => (i === axis ? at : x));
        // NOTE: an index out of range reads 0 on every backend rather than whatever memory is there.
        return where(inRange(at, data.shape[axis]!), down(data, Index.ofDims(data.shape, sd), false), zero(n.dtype));
      }
      case "reduce":
      case "routine":
      case "collective":
      case "buffer":
        throw new Error(`lower: ${n.describe()} must be materialized before it is read`);
      default:
        return assertNever(op, "op in lowering");
    }
  }
}

const zero = (dtype: DType): Expr => c(0, dtype);
const inRange = (x: Expr, size: number): Expr => and(alu("not", lt(x, c(0))), lt(x, c(size)));
const badArg = (n: Node) => new Error(`lower: ${n.describe()} has a malformed argument (${n.arg.kind})`);
