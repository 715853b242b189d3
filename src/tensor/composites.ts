// composites.ts: ops written once from primitives, so every backend runs them and autograd
// differentiates them with no rule of their own. The scheduler fuses each into few kernels.

import { NO_ARG, Node } from "../core/graph.js";
import { isFloat } from "../core/dtype.js";
import type { ConcatSpec } from "../core/routines.js";
import { areRoutinesEnabled, isGradEnabled } from "./context.js";
import { softmax } from "./linalg.js";
import { fmt, normAxis } from "./shape.js";
import { Tensor, customGradient } from "./tensor.js";

const iota = (like: Tensor, n: number): Tensor => new Tensor(new Node(like.backend, "iota", [], NO_ARG, [n], "i32"));

export const relu = (x: Tensor): Tensor => x.maximum(0);
export const sigmoid = (x: Tensor): Tensor => x.neg().exp().add(1).recip();
export const silu = (x: Tensor): Tensor => x.mul(sigmoid(x));

/** GELU; "tanh" is GPT-2's approximation, "erf" the exact form (erf to 1.5e-7, Abramowitz & Stegun 7.1.26). */
export function gelu(x: Tensor, approximate: "tanh" | "erf" = "tanh"): Tensor {
  if (approximate === "tanh") {
    const inner = x.add(x.mul(x).mul(x).mul(0.044715)).mul(Math.sqrt(2 / Math.PI));
    return x.mul(0.5).mul(inner.tanh().add(1));
  }
  return x.mul(0.5).mul(erf(x.mul(Math.SQRT1_2)).add(1));
}

export function erf(x: Tensor): Tensor {
  const sign = x.lt(0).where(-1, 1).cast(x.dtype);
  const a = x.abs();
  const t = a.mul(0.3275911).add(1).recip();
  const poly = t.mul(1.061405429).add(-1.453152027).mul(t).add(1.421413741).mul(t).add(-0.284496736).mul(t).add(0.254829592).mul(t);
  return sign.mul(poly.mul(a.mul(a).neg().exp()).rsub(1));
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  const m = x.max(axis, true).detach();
  const shifted = x.sub(m);
  return shifted.sub(shifted.exp().sum(axis, true).log());
}

export { softmax };
export { scatterAdd, scatterAddReference } from "./scatter.js";

/**
 * Mean negative log-likelihood of integer targets (N,) under logits (N, C): logsumexp(row) - row[target].
 * A target outside [0, C) makes its row contribute 0 (the mean still divides by N).
 * NOTE: fused, with its own gradient (softmax(logits) - onehot) / N: the forward keeps only each row's
 * logsumexp (N, 1) and reads the target logit with a gather; the backward is one elementwise pass,
 * exp(x - lse) - onehot, instead of the graph autograd would build from log-softmax's primitives
 * (probabilities materialised in the forward and again, with a broadcast reduction, in the backward).
 */
export function crossEntropy(logits: Tensor, targets: Tensor): Tensor {
  if (logits.ndim !== 2 || targets.ndim !== 1 || targets.shape[0] !== logits.shape[0] || isFloat(targets.dtype)) {
    throw new Error(`crossEntropy: need logits (N, C) and integer targets (N,), got ${fmt(logits.shape)} ${logits.dtype} and ${fmt(targets.shape)} ${targets.dtype}`);
  }
  if (!isFloat(logits.dtype)) throw new Error(`crossEntropy: logits must be a float tensor, got ${logits.dtype}`);
  const [n, c] = logits.shape as [number, number];
  const x = logits.detach();
  const t = targets.cast("i32");
  const valid = t.ge(0).and(t.lt(c)); // (N,)
  const m = x.max(-1, true);
  const lse = x.sub(m).exp().sum(-1, true).log().add(m); // (N, 1)
  // Row r's target logit is element r * C + target of the flat logits; an invalid target reads nothing.
  const flat = valid.where(iota(x, n).mul(c).add(t), -1);
  const picked = x.reshape([n * c]).gather(0, flat); // (N,)
  const loss = valid.where(lse.reshape([n]).sub(picked), 0).mean();
  return customGradient(loss, [logits], (g) => {
    const probs = x.sub(lse).exp(); // softmax(x), computed once, from the forward's lse
    const hot = oneHot(t, c).cast(x.dtype);
    return [valid.reshape([n, 1]).where(probs.sub(hot).mul(g.div(n)), 0)];
  });
}

/** (N,) integers -> (N, C) bool. */
export function oneHot(indices: Tensor, classes: number): Tensor {
  return indices.cast("i32").unsqueeze(-1).eq(iota(indices, classes).reshape([1, classes]));
}

export function rmsnorm(x: Tensor, weight: Tensor | undefined, eps = 1e-5): Tensor {
  const y = x.mul(x.square().mean(-1, true).add(eps).rsqrt());
  return weight ? y.mul(weight) : y;
}

export function layernorm(x: Tensor, weight?: Tensor, bias?: Tensor, eps = 1e-5): Tensor {
  const centered = x.sub(x.mean(-1, true));
  let y = centered.mul(centered.square().mean(-1, true).add(eps).rsqrt());
  if (weight) y = y.mul(weight);
  if (bias) y = y.add(bias);
  return y;
}

/**
 * Join tensors along an axis: one concat routine (each element copied from its own part) when the
 * backend has one for the dtype, else concatReference.
 */
export function concat(tensors: readonly Tensor[], axis = 0): Tensor {
  const { ax, shape } = concatShape(tensors, axis);
  const first = tensors[0]!;
  const outer = shape.slice(0, ax).reduce((a, b) => a * b, 1);
  const inner = shape.slice(ax + 1).reduce((a, b) => a * b, 1);
  const spec: ConcatSpec = { outer, parts: tensors.map((t) => t.shape[ax]! * inner), dtype: first.dtype };
  if (tensors.length === 1 || !areRoutinesEnabled() || tensors.some((t) => t.dtype !== first.dtype || t.backend !== first.backend) ||
      !first.backend.supportsRoutine("concat", spec)) {
    return concatReference(tensors, ax);
  }
  const total = spec.parts.reduce((a, b) => a + b, 0);
  const operands = tensors.map((t, p) => t.reshape([outer, spec.parts[p]!]).node);
  const out = new Tensor(new Node(first.backend, "routine", operands, { kind: "routine", name: "concat", spec }, [outer, total], first.dtype));
  if (isGradEnabled() && tensors.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.ctx = { op: "routine", arg: { kind: "routine", name: "concat", spec }, inputs: tensors };
  }
  return out.reshape(shape);
}

function concatShape(tensors: readonly Tensor[], axis: number): { ax: number; shape: number[] } {
  if (tensors.length === 0) throw new Error("concat: needs at least one tensor");
  const first = tensors[0]!;
  const ax = normAxis("concat", axis, first.ndim, first.shape);
  for (const t of tensors) {
    if (t.ndim !== first.ndim || t.shape.some((d, i) => i !== ax && d !== first.shape[i])) {
      throw new Error(`concat: shapes ${tensors.map((x) => fmt(x.shape)).join(", ")} differ off axis ${ax}`);
    }
  }
  const total = tensors.reduce((s, t) => s + t.shape[ax]!, 0);
  return { ax, shape: first.shape.map((d, i) => (i === ax ? total : d)) };
}

/** The reference: each tensor is padded to the full length and the pads summed (one fused kernel). */
export function concatReference(tensors: readonly Tensor[], axis = 0): Tensor {
  const { ax, shape } = concatShape(tensors, axis);
  const total = shape[ax]!;
  let at = 0;
  let out: Tensor | undefined;
  for (const t of tensors) {
    const pads = t.shape.map((_, i) => (i === ax ? [at, total - at - t.shape[ax]!] as const : [0, 0] as const));
    at += t.shape[ax]!;
    const p = t.pad(pads);
    out = out ? out.add(p) : p;
  }
  return out!;
}

/** Index of the largest value along an axis (the first, on ties). */
export function argmax(x: Tensor, axis = -1, keepdim = false): Tensor {
  const ax = normAxis("argmax", axis, x.ndim, x.shape);
  const n = x.shape[ax]!;
  const shape = x.shape.map((d, i) => (i === ax ? d : 1));
  const pos = iota(x, n).reshape(shape);
  // First maximum: the largest (n - position) among the maxima.
  // NOTE: a NaN counts as the maximum (NumPy's rule): max() propagates it, so no element equals the max
  // and the row would otherwise answer n, an index out of range.
  const score = x.eq(x.max(ax, true)).or(x.ne(x)).where(pos.rsub(n), 0);
  return score.max(ax, keepdim).rsub(n);
}
