// rules.ts: the gradient of every primitive op, keyed by the op table (a missing op fails to compile),
// and of every routine, keyed by routine name. A rule maps the output's gradient to one gradient per
// input (undefined where an input gets none). Rules are written with Tensor ops, so they run on
// every backend and fuse like any other graph.

import type { Op, RoutineName } from "../core/ops.js";
import { isFloat } from "../core/dtype.js";
import type { AttentionSpec, ConcatSpec } from "../core/routines.js";
import { attentionBackward, matmul, untransposed } from "../tensor/linalg.js";
import { scatterAdd } from "../tensor/composites.js";
import type { GradContext } from "../tensor/tensor.js";
import type { Tensor } from "../tensor/tensor.js";

export type GradRule = (ctx: GradContext, g: Tensor, out: Tensor) => (Tensor | undefined)[];

const none: GradRule = (ctx) => ctx.inputs.map(() => undefined);

/** Sum a gradient over the axes that broadcasting added, back to `shape`. */
export function sumTo(t: Tensor, shape: readonly number[]): Tensor {
  const lead = t.ndim - shape.length;
  const axes = t.shape.map((d, i) => i).filter((i) => i < lead || (shape[i - lead] === 1 && t.shape[i] !== 1));
  return (axes.length ? t.sum(axes, true) : t).reshape(shape);
}

/** Share a gradient between tied maxima (or minima), as the mask of where they were. */
function tieShare(g: Tensor, mask: Tensor, other: Tensor): Tensor {
  return mask.where(g, other.where(g.mul(0.5), 0));
}

export const GRAD: Readonly<Record<Op, GradRule>> = {
  neg: (_, g) => [g.neg()],
  recip: (_, g, out) => [g.mul(out).mul(out).neg()],
  sqrt: (_, g, out) => [g.div(out.mul(2))],
  exp: (_, g, out) => [g.mul(out)],
  log: ({ inputs: [x] }, g) => [g.div(x!)],
  sin: ({ inputs: [x] }, g) => [g.mul(x!.cos())],
  cos: ({ inputs: [x] }, g) => [g.mul(x!.sin()).neg()],
  tanh: (_, g, out) => [g.mul(out.mul(out).rsub(1))],
  abs: ({ inputs: [x] }, g) => [x!.lt(0).where(g.neg(), x!.gt(0).where(g, 0))],
  floor: none,
  not: none,
  add: (_, g) => [g, g],
  sub: (_, g) => [g, g.neg()],
  mul: ({ inputs: [a, b] }, g) => [g.mul(b!), g.mul(a!)],
  div: ({ inputs: [a, b] }, g) => [g.div(b!), g.mul(a!).div(b!.mul(b!)).neg()],
  max: ({ inputs: [a, b] }, g) => [tieShare(g, a!.gt(b!), a!.eq(b!)), tieShare(g, b!.gt(a!), a!.eq(b!))],
  min: ({ inputs: [a, b] }, g) => [tieShare(g, a!.lt(b!), a!.eq(b!)), tieShare(g, b!.lt(a!), a!.eq(b!))],
  pow: ({ inputs: [a, b] }, g, out) => [
    g.mul(b!).mul(a!.pow(b!.sub(1))),
    g.mul(out).mul(a!.gt(0).where(a!.log(), 0)),
  ],
  // NOTE: a % b is piecewise a - k*b with k constant almost everywhere.
  mod: ({ inputs: [a, b] }, g) => [g, g.mul(a!.div(b!).floor()).neg()],
  cmplt: none, cmpeq: none, cmpne: none, and: none, or: none, xor: none, shl: none, shr: none,
  where: ({ inputs: [c] }, g) => [undefined, c!.where(g, 0), c!.where(0, g)],
  cast: ({ inputs: [x] }, g) => [isFloat(x!.dtype) ? g.cast(x!.dtype) : undefined],
  reduce: ({ arg, inputs: [x] }, g, out) => {
    if (arg.kind !== "reduce") throw new Error("grad: reduce without its argument");
    if (arg.op === "sum") return [g.broadcastTo(x!.shape)];
    const mask = x!.eq(out.broadcastTo(x!.shape)).cast(x!.dtype);
    return [g.broadcastTo(x!.shape).mul(mask).div(mask.sum(arg.axes, true))];
  },
  reshape: ({ inputs: [x] }, g) => [g.reshape(x!.shape)],
  permute: ({ arg }, g) => {
    if (arg.kind !== "permute") throw new Error("grad: permute without its argument");
    const inv = new Array<number>(arg.perm.length);
    arg.perm.forEach((p, i) => (inv[p] = i));
    return [g.permute(inv)];
  },
  expand: ({ inputs: [x] }, g) => [sumTo(g, x!.shape)],
  pad: ({ arg, inputs: [x] }, g) => {
    if (arg.kind !== "pad") throw new Error("grad: pad without its argument");
    return [g.shrink(arg.pads.map(([lo], i) => [lo, lo + x!.shape[i]!] as const))];
  },
  shrink: ({ arg, inputs: [x] }, g) => {
    if (arg.kind !== "shrink") throw new Error("grad: shrink without its argument");
    return [g.pad(arg.ranges.map(([s, e], i) => [s, x!.shape[i]! - e] as const))];
  },
  gather: ({ arg, inputs: [data, indices] }, g) => {
    if (arg.kind !== "gather") throw new Error("grad: gather without its argument");
    const ax = arg.axis;
    // Move the gathered axis first, scatter rows back, move it home.
    const perm = [ax, ...g.shape.map((_, i) => i).filter((i) => i !== ax)];
    const inv = new Array<number>(perm.length);
    perm.forEach((p, i) => (inv[p] = i));
    return [scatterAdd(data!.shape[ax]!, indices!, g.permute(perm)).permute(inv), undefined];
  },
  buffer: none,
  const: none,
  iota: none,
  routine: (ctx, g, out) => {
    if (ctx.arg.kind !== "routine") throw new Error("grad: routine without its argument");
    return ROUTINE_GRAD[ctx.arg.name](ctx, g, out);
  },
  // NOTE: a collective's gradient depends on how the ranks' values relate (Megatron's f and g are both an
  // all-reduce one way and the identity the other): src/dist/parallel_regions.ts gives each pair its own.
  collective: () => { throw new Error("grad: a raw collective node has no gradient rule; differentiate through src/dist's parallel-region functions (copyToParallel, reduceFromParallel, ...)"); },
};

export const ROUTINE_GRAD: Readonly<Record<RoutineName, GradRule>> = {
  matmul: ({ inputs: [a, b] }, g) => {
    const g2 = g.reshape([...g.shape.slice(0, -3), ...outBatch(a!, b!), ...g.shape.slice(-2)]);
    // NOTE: an operand that is a transpose view (Linear's W^T) gets its gradient computed transposed,
    // (g^T a)^T instead of a^T g: the permute rule's transpose back then cancels this one, and W's
    // gradient is the matmul's output in W's own layout. Computed as a^T g it was stored (in, out) and
    // the optimizer's kernels read it with a stride of `out`.
    const gradA = untransposed(a!)
      ? sumTo(matmul(b!, g2.transpose(-2, -1)), swapLast(a!.shape)).transpose(-2, -1)
      : sumTo(matmul(g2, b!.transpose(-2, -1)), a!.shape);
    const gradB = untransposed(b!)
      ? sumTo(matmul(g2.transpose(-2, -1), a!), swapLast(b!.shape)).transpose(-2, -1)
      : sumTo(matmul(a!.transpose(-2, -1), g2), b!.shape);
    return [gradA, gradB];
  },
  softmax: ({ inputs: [x] }, g, out) => {
    const gy = g.mul(out);
    return [gy.sub(out.mul(gy.sum(-1, true))).reshape(x!.shape)];
  },
  // NOTE: flash attention keeps no probabilities to differentiate; the backward recomputes them, in the
  // attention_backward routine where the backend has one, else composed from matmul and softmax (linalg.ts).
  attention: ({ arg, inputs: [q, k, v] }, g, out) => {
    if (arg.kind !== "routine" || arg.name !== "attention") throw new Error("grad: attention without its spec");
    const { causal, scale } = arg.spec as AttentionSpec;
    return attentionBackward(q!, k!, v!, out, g, { causal, scale });
  },
  attention_backward: () => { throw new Error("grad: attention_backward (a gradient) is not differentiated again; use attention() from primitives for higher-order gradients"); },
  // NOTE: serving-only routines: a KV cache write and attention over it are never trained through.
  kv_write: () => { throw new Error("grad: kv_write (a KV cache update) is not differentiable"); },
  paged_attention: () => { throw new Error("grad: paged_attention is inference-only; train with attention()"); },
  // d out[indices[i]] / d src[i] = 1: the gradient of src is g's rows gathered back (0 where out of range).
  // Each part's gradient is its own columns of the (outer, total) output's gradient.
  concat: ({ arg, inputs }, g) => {
    if (arg.kind !== "routine" || arg.name !== "concat") throw new Error("grad: concat without its spec");
    let at = 0;
    return (arg.spec as ConcatSpec).parts.map((len, p) => {
      at += len;
      return g.slice(1, at - len, at).reshape(inputs[p]!.shape);
    });
  },
  scatter_add: ({ inputs: [indices, src] }, g) => [undefined, g.gather(0, indices!).reshape(src!.shape)],
  // NOTE: quantized weights are inference-only (tensor/quant.ts records no gradient context for them).
  matmul_q: () => { throw new Error("grad: matmul_q (a quantized weight) is inference-only; train on f32/f16/bf16 weights"); },
};

/** A shape with its last two axes swapped. */
const swapLast = (s: readonly number[]): number[] => [...s.slice(0, -2), s[s.length - 1]!, s[s.length - 2]!];

/** The broadcast batch shape of a matmul's logical operands. */
function outBatch(a: Tensor, b: Tensor): number[] {
  const ab = a.shape.slice(0, -2), bb = b.shape.slice(0, -2);
  const rank = Math.max(ab.length, bb.length);
  return Array.from({ length: rank }, (_, i) => {
    const x = ab[i - rank + ab.length] ?? 1, y = bb[i - rank + bb.length] ?? 1;
    return x === 1 ? y : x;
  });
}
