// tensor.ts is the user-facing Tensor: a lazy node plus autograd bookkeeping. Every method here is
// one primitive of the op table (checked: shapes, dtypes, axes) or a thin spelling of one; composite
// ops live in composites.ts, matmul/softmax/attention in linalg.ts, factories in create.ts.
// Nothing runs until realize()/data(): ops only build the graph.

import type { Backend } from "../core/backend.js";
import type { DType } from "../core/dtype.js";
import { decode, isFloat, itemsize, promote } from "../core/dtype.js";
import type { NodeArg } from "../core/graph.js";
import { NO_ARG, Node, numel } from "../core/graph.js";
import type { BinaryOp, Op, ReduceOp, UnaryOp } from "../core/ops.js";
import { COMPARISONS, FLOAT_ONLY, INT_ONLY } from "../core/ops.js";
import { realize } from "../core/realize.js";
import { isGradEnabled } from "./context.js";
import { broadcastShapes, fmt, normAxis, resolveReshape } from "./shape.js";

/** What autograd needs to differentiate through an op: plain data plus the input tensors. */
export interface GradContext {
  readonly op: Op;
  readonly arg: NodeArg;
  readonly inputs: readonly Tensor[];
  /**
   * A function's own backward in place of the op's rule (autograd/checkpoint.ts: recompute, then
   * differentiate): the output's gradient -> one gradient per input.
   */
  readonly custom?: (g: Tensor) => (Tensor | undefined)[];
}

export type Scalar = number | boolean;
export type TypedData = Float64Array | Float32Array | Int32Array | Uint32Array | Uint8Array;

type BackwardImpl = (t: Tensor, grad?: Tensor) => void;
let backwardImpl: BackwardImpl | undefined;
/** Installed by autograd/gradients.ts (autograd builds on Tensor, so Tensor cannot import it). */
export function setBackwardImpl(fn: BackwardImpl): void {
  backwardImpl = fn;
}

export class Tensor {
  requiresGrad: boolean;
  grad: Tensor | undefined;
  ctx: GradContext | undefined;

  constructor(readonly node: Node, requiresGrad = false) {
    this.requiresGrad = requiresGrad;
  }

  get shape(): readonly number[] { return this.node.shape; }
  get dtype(): DType { return this.node.dtype; }
  get backend(): Backend { return this.node.backend; }
  get ndim(): number { return this.node.shape.length; }
  get numel(): number { return this.node.numel; }
  toString(): string { return `Tensor${fmt(this.shape)} ${this.dtype} on ${this.backend.name}`; }

  /** Make an op's output, recording how to differentiate it when any input needs a gradient. */
  static make(op: Op, inputs: readonly Tensor[], arg: NodeArg, shape: readonly number[], dtype: DType): Tensor {
    const backend = inputs[0]?.backend;
    if (!backend) throw new Error(`${op}: needs at least one input`);
    for (const t of inputs) {
      if (t.node.disposed) throw new Error(`${op}: use of a disposed tensor ${t}`);
      if (t.backend !== backend) throw new Error(`${op}: inputs live on different backends (${backend.name} and ${t.backend.name})`);
    }
    const out = new Tensor(new Node(backend, op, inputs.map((t) => t.node), arg, shape, dtype));
    if (isGradEnabled() && inputs.some((t) => t.requiresGrad)) {
      out.requiresGrad = true;
      out.ctx = { op, arg, inputs };
    }
    return out;
  }

  /** A constant of this tensor's backend (and dtype unless given), any shape, costing no memory. */
  full(shape: readonly number[], value: number, dtype: DType = this.dtype): Tensor {
    return new Tensor(new Node(this.backend, "const", [], { kind: "const", value }, shape, dtype));
  }

  private operand(op: string, x: Tensor | Scalar): Tensor {
    if (x instanceof Tensor) return x;
    // A JS number takes the tensor's dtype, except a fraction with an int tensor, which makes it f32.
    const dtype = typeof x === "number" && !Number.isInteger(x) && !isFloat(this.dtype) ? "f32" : this.dtype;
    if (typeof x !== "number" && typeof x !== "boolean") throw new Error(`${op}: operand must be a Tensor or a number`);
    return this.full([], Number(x), dtype);
  }

  // ---- elementwise ----

  unary(op: UnaryOp): Tensor {
    if (FLOAT_ONLY.has(op) && !isFloat(this.dtype)) throw new Error(`${op}: needs a float tensor, got ${this}`);
    if (INT_ONLY.has(op) && isFloat(this.dtype)) throw new Error(`${op}: needs an integer or bool tensor, got ${this}`);
    return Tensor.make(op, [this], NO_ARG, this.shape, this.dtype);
  }

  binary(op: BinaryOp, other: Tensor | Scalar, reverse = false): Tensor {
    let [a, b] = reverse ? [this.operand(op, other), this as Tensor] : [this as Tensor, this.operand(op, other)];
    const dtype = promote(a.dtype, b.dtype);
    if (FLOAT_ONLY.has(op) && !isFloat(dtype)) throw new Error(`${op}: needs float tensors, got ${a} and ${b}`);
    if (INT_ONLY.has(op) && isFloat(dtype)) throw new Error(`${op}: needs integer or bool tensors, got ${a} and ${b}`);
    const shape = broadcastShapes(`${op} (${a.dtype}, ${b.dtype} on ${this.backend.name})`, a.shape, b.shape);
    a = a.cast(dtype).broadcastTo(shape);
    b = b.cast(dtype).broadcastTo(shape);
    return Tensor.make(op, [a, b], NO_ARG, shape, COMPARISONS.has(op) ? "bool" : dtype);
  }

  add(x: Tensor | Scalar) { return this.binary("add", x); }
  sub(x: Tensor | Scalar) { return this.binary("sub", x); }
  rsub(x: Tensor | Scalar) { return this.binary("sub", x, true); }
  mul(x: Tensor | Scalar) { return this.binary("mul", x); }
  div(x: Tensor | Scalar) { return this.binary("div", x); }
  rdiv(x: Tensor | Scalar) { return this.binary("div", x, true); }
  pow(x: Tensor | Scalar) { return this.binary("pow", x); }
  mod(x: Tensor | Scalar) { return this.binary("mod", x); }
  maximum(x: Tensor | Scalar) { return this.binary("max", x); }
  minimum(x: Tensor | Scalar) { return this.binary("min", x); }
  lt(x: Tensor | Scalar) { return this.binary("cmplt", x); }
  gt(x: Tensor | Scalar) { return this.binary("cmplt", x, true); }
  // NOTE: spelled with or(eq) rather than not(gt) so that NaN compares false, as in IEEE.
  le(x: Tensor | Scalar) { return this.lt(x).or(this.eq(x)); }
  ge(x: Tensor | Scalar) { return this.gt(x).or(this.eq(x)); }
  eq(x: Tensor | Scalar) { return this.binary("cmpeq", x); }
  ne(x: Tensor | Scalar) { return this.binary("cmpne", x); }
  and(x: Tensor | Scalar) { return this.binary("and", x); }
  or(x: Tensor | Scalar) { return this.binary("or", x); }
  xor(x: Tensor | Scalar) { return this.binary("xor", x); }
  shl(x: Tensor | Scalar) { return this.binary("shl", x); }
  shr(x: Tensor | Scalar) { return this.binary("shr", x); }
  neg() { return this.unary("neg"); }
  recip() { return this.unary("recip"); }
  sqrt() { return this.unary("sqrt"); }
  rsqrt() { return this.sqrt().recip(); }
  exp() { return this.unary("exp"); }
  log() { return this.unary("log"); }
  sin() { return this.unary("sin"); }
  cos() { return this.unary("cos"); }
  tanh() { return this.unary("tanh"); }
  abs() { return this.unary("abs"); }
  floor() { return this.unary("floor"); }
  not() { return this.unary("not"); }
  square() { return this.mul(this); }

  /** cond.where(a, b): a where cond is true, else b (broadcast together). */
  where(a: Tensor | Scalar, b: Tensor | Scalar): Tensor {
    let x = a instanceof Tensor ? a : b instanceof Tensor ? b.operand("where", a) : this.full([], Number(a), "f32");
    let y = b instanceof Tensor ? b : x.operand("where", b);
    const dtype = promote(x.dtype, y.dtype);
    const shape = broadcastShapes("where", this.shape, x.shape, y.shape);
    const cond = this.cast("bool").broadcastTo(shape);
    x = x.cast(dtype).broadcastTo(shape);
    y = y.cast(dtype).broadcastTo(shape);
    return Tensor.make("where", [cond, x, y], NO_ARG, shape, dtype);
  }

  cast(dtype: DType): Tensor {
    if (dtype === this.dtype) return this;
    if (!this.backend.caps.dtypes.includes(dtype)) throw new Error(`cast: ${dtype} is not supported on ${this.backend.name}`);
    return Tensor.make("cast", [this], NO_ARG, this.shape, dtype);
  }

  // ---- reductions (keepdim by default false, like PyTorch) ----

  reduce(op: ReduceOp, axis?: number | readonly number[], keepdim = false): Tensor {
    const label = `${op} of ${this}`;
    const axes = axis === undefined ? this.shape.map((_, i) => i) : (typeof axis === "number" ? [axis] : [...axis]).map((a) => normAxis(label, a, this.ndim, this.shape));
    const kept = this.shape.map((d, i) => (axes.includes(i) ? 1 : d));
    const r = axes.length === 0 ? this : Tensor.make("reduce", [this], { kind: "reduce", op, axes: [...new Set(axes)].sort() }, kept, this.dtype);
    return keepdim ? r : r.reshape(this.shape.filter((_, i) => !axes.includes(i)));
  }
  sum(axis?: number | readonly number[], keepdim = false) { return this.reduce("sum", axis, keepdim); }
  max(axis?: number | readonly number[], keepdim = false) { return this.reduce("max", axis, keepdim); }
  min(axis?: number | readonly number[], keepdim = false) { return this.neg().reduce("max", axis, keepdim).neg(); }
  mean(axis?: number | readonly number[], keepdim = false) {
    const s = this.sum(axis, keepdim);
    return s.div(this.numel === 0 ? NaN : this.numel / Math.max(s.numel, 1));
  }

  // ---- movement (views: no copies, only index arithmetic where read) ----

  reshape(shape: readonly number[]): Tensor {
    let to: number[];
    try {
      to = resolveReshape(this.shape, shape);
    } catch (err) {
      throw new Error(`${(err as Error).message} (${this.dtype} on ${this.backend.name})`);
    }
    if (to.length === this.ndim && to.every((d, i) => d === this.shape[i])) return this;
    return Tensor.make("reshape", [this], NO_ARG, to, this.dtype);
  }
  flatten(): Tensor { return this.reshape([-1]); }
  /** The same values, stored in a buffer of their own when realized rather than recomputed by each reader. */
  contiguous(): Tensor {
    const t = Tensor.make("reshape", [this], NO_ARG, this.shape, this.dtype);
    t.node.keep = true;
    return t;
  }
  unsqueeze(axis: number): Tensor {
    const a = normAxis("unsqueeze", axis, this.ndim + 1, this.shape);
    return this.reshape([...this.shape.slice(0, a), 1, ...this.shape.slice(a)]);
  }
  squeeze(axis?: number): Tensor {
    if (axis === undefined) return this.reshape(this.shape.filter((d) => d !== 1));
    const a = normAxis("squeeze", axis, this.ndim, this.shape);
    if (this.shape[a] !== 1) throw new Error(`squeeze: axis ${axis} of ${fmt(this.shape)} is not 1`);
    return this.reshape(this.shape.filter((_, i) => i !== a));
  }

  permute(perm: readonly number[]): Tensor {
    const p = perm.map((a) => normAxis(`permute of ${this}`, a, this.ndim, this.shape));
    if (p.length !== this.ndim || new Set(p).size !== p.length) {
      throw new Error(`permute: ${fmt(perm)} is not a permutation of the axes of ${fmt(this.shape)}`);
    }
    if (p.every((a, i) => a === i)) return this;
    // A permute of a permute is one permute (often none: split heads, then merge them back), so a
    // routine operand stays a view of its buffer instead of a copy. NOTE: only off the gradient tape,
    // which records the tensors in between.
    const n = this.node;
    if (!this.requiresGrad && n.op === "permute" && n.arg.kind === "permute" && !n.realized) {
      const inner = n.arg.perm;
      return new Tensor(n.src[0]!).permute(p.map((a) => inner[a]!));
    }
    return Tensor.make("permute", [this], { kind: "permute", perm: p }, p.map((a) => this.shape[a]!), this.dtype);
  }
  transpose(a = -2, b = -1): Tensor {
    const perm = this.shape.map((_, i) => i);
    const [x, y] = [normAxis("transpose", a, this.ndim, this.shape), normAxis("transpose", b, this.ndim, this.shape)];
    [perm[x], perm[y]] = [perm[y]!, perm[x]!];
    return this.permute(perm);
  }

  /** Broadcast to a shape (leading axes added as needed). */
  broadcastTo(shape: readonly number[]): Tensor {
    if (shape.length < this.ndim) throw new Error(`expand: cannot expand ${fmt(this.shape)} to fewer dims ${fmt(shape)}`);
    const t = this.ndim < shape.length ? this.reshape([...new Array<number>(shape.length - this.ndim).fill(1), ...this.shape]) : this;
    if (t.shape.every((d, i) => d === shape[i])) return t;
    t.shape.forEach((d, i) => {
      if (d !== 1 && d !== shape[i]) throw new Error(`expand: cannot expand ${fmt(this.shape)} to ${fmt(shape)}`);
    });
    return Tensor.make("expand", [t], NO_ARG, shape, this.dtype);
  }
  expand(shape: readonly number[]): Tensor { return this.broadcastTo(shape.map((d, i) => (d === -1 ? this.shape[i - shape.length + this.ndim]! : d))); }

  /** Pad each axis with [before, after] zeros (then `value` if given). */
  pad(pads: readonly (readonly [number, number])[], value = 0): Tensor {
    if (pads.length !== this.ndim || pads.flat().some((p) => !Number.isInteger(p) || p < 0)) {
      throw new Error(`pad: need one [before, after] pair of non-negative ints per axis of ${fmt(this.shape)}, got ${JSON.stringify(pads)}`);
    }
    if (pads.every(([a, b]) => a === 0 && b === 0)) return this;
    const shape = this.shape.map((d, i) => d + pads[i]![0] + pads[i]![1]);
    const padded = Tensor.make("pad", [this], { kind: "pad", pads: pads.map(([a, b]) => [a, b] as const) }, shape, this.dtype);
    if (value === 0) return padded;
    const mask = this.full(this.shape, 1, "bool").pad(pads);
    return mask.where(padded, value);
  }

  /** Keep [start, end) of each axis. */
  shrink(ranges: readonly (readonly [number, number])[]): Tensor {
    if (ranges.length !== this.ndim || ranges.some(([s, e], i) => !(Number.isInteger(s) && Number.isInteger(e) && 0 <= s && s <= e && e <= this.shape[i]!))) {
      throw new Error(`shrink: ranges ${JSON.stringify(ranges)} do not fit shape ${fmt(this.shape)}`);
    }
    if (ranges.every(([s, e], i) => s === 0 && e === this.shape[i])) return this;
    return Tensor.make("shrink", [this], { kind: "shrink", ranges: ranges.map(([s, e]) => [s, e] as const) }, ranges.map(([s, e]) => e - s), this.dtype);
  }
  /** Slice one axis: [start, end) with Python-style negative indices. */
  slice(axis: number, start: number, end = this.shape[normAxis("slice", axis, this.ndim, this.shape)]!): Tensor {
    const a = normAxis("slice", axis, this.ndim, this.shape);
    const d = this.shape[a]!;
    const s = start < 0 ? start + d : start;
    const e = end < 0 ? end + d : end;
    return this.shrink(this.shape.map((x, i) => (i === a ? [s, e] as const : [0, x] as const)));
  }

  /** out[..., i, ...] = this[..., indices[i], ...] along `axis` (indices: 1-D ints; out-of-range reads 0). */
  gather(axis: number, indices: Tensor): Tensor {
    const a = normAxis(`gather of ${this}`, axis, this.ndim, this.shape);
    if (indices.ndim !== 1 || isFloat(indices.dtype)) throw new Error(`gather: indices must be a 1-D integer tensor, got ${indices}`);
    const shape = this.shape.map((d, i) => (i === a ? indices.shape[0]! : d));
    return Tensor.make("gather", [this, indices], { kind: "gather", axis: a }, shape, this.dtype);
  }

  // ---- realization ----

  async realize(): Promise<this> {
    await realize([this.node]);
    return this;
  }

  /** The values, read back to the host (f16/bf16 as Float32Array, bool as Uint8Array). */
  async data(): Promise<TypedData> {
    await this.realize();
    const bytes = this.numel === 0 ? new Uint8Array(0) : await this.backend.read(this.node.buffer!, this.numel * itemsize(this.dtype));
    return toTyped(bytes, this.dtype);
  }

  /** The values as nested JS arrays. */
  async toArray(): Promise<unknown> {
    const flat = Array.from(await this.data());
    const build = (dim: number, off: number): unknown => {
      if (dim === this.ndim) return flat[off];
      const stride = numel(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim]! }, (_, i) => build(dim + 1, off + i * stride));
    };
    return build(0, 0);
  }

  async item(): Promise<number> {
    if (this.numel !== 1) throw new Error(`item: needs exactly one element, got ${this}`);
    return (await this.data())[0]!;
  }

  /** Free the device memory now; any later use is an error. */
  dispose(): void {
    this.node.dispose();
  }

  /** Same values, cut off from the gradient graph. */
  detach(): Tensor {
    return new Tensor(this.node);
  }

  /** Accumulate d(this)/d(leaf) into every leaf's .grad (this must be a scalar unless grad is given). */
  backward(grad?: Tensor): void {
    if (!backwardImpl) throw new Error("backward: autograd is not loaded (import kiln's main entry, not tensor.ts alone)");
    backwardImpl(this, grad);
  }
}

function toTyped(bytes: Uint8Array, dtype: DType): TypedData {
  const buf = bytes.slice().buffer;
  switch (dtype) {
    case "f64": return new Float64Array(buf);
    case "f32": return new Float32Array(buf);
    case "i32": return new Int32Array(buf);
    case "u32": return new Uint32Array(buf);
    case "u8": case "bool": return new Uint8Array(buf);
    case "f16": case "bf16": return Float32Array.from(decode(bytes, dtype));
  }
}
