// linalg.ts: matmul, softmax and attention. Each becomes one routine node (a hand-written kernel)
// when the backend has one for the spec and routines are enabled, and otherwise the same math from
// primitives, which is also the routine's reference (below). Gradients of routine nodes are
// recorded against the logical inputs; autograd/rules.ts differentiates them (attention's through
// attentionBackward: the attention_backward routine, or the same equations composed from matmul and softmax).

import type { DType } from "../core/dtype.js";
import { isFloat } from "../core/dtype.js";
import { Node } from "../core/graph.js";
import type { RoutineName } from "../core/ops.js";
import type { AttentionSpec, MatmulSpec, RoutineSpecs } from "../core/routines.js";
import { attentionBackwardSizes } from "../core/routines.js";
import { areRoutinesEnabled, autocast, currentMatmulPolicy, isGradEnabled, noGrad } from "./context.js";
import { broadcastShapes, fmt, normAxis } from "./shape.js";
import { Tensor } from "./tensor.js";

/** A routine node over already-shaped operands; records a gradient context over `logical` inputs. */
function routineTensor<R extends RoutineName>(
  name: R, spec: RoutineSpecs[R], operands: Tensor[], shape: number[], dtype: DType, logical: Tensor[],
): Tensor {
  const backend = operands[0]!.backend;
  const node = new Node(backend, "routine", operands.map((t) => t.node), { kind: "routine", name, spec }, shape, dtype);
  const out = new Tensor(node);
  if (isGradEnabled() && logical.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.ctx = { op: "routine", arg: { kind: "routine", name, spec }, inputs: logical };
  }
  return out;
}

const useRoutine = <R extends RoutineName>(t: Tensor, name: R, spec: RoutineSpecs[R]) =>
  areRoutinesEnabled() && t.backend.supportsRoutine(name, spec);

/** If t is a transpose of its last two axes, the tensor it transposes. */
export function untransposed(t: Tensor): Tensor | undefined {
  const n = t.node;
  if (n.op !== "permute" || n.arg.kind !== "permute" || t.ndim < 2) return undefined;
  const p = n.arg.perm;
  const swapsLast = p.every((a, i) => (i < p.length - 2 ? a === i : a === (i === p.length - 2 ? p.length - 1 : p.length - 2)));
  return swapsLast ? new Tensor(n.src[0]!) : undefined;
}

/** a @ b with NumPy semantics: 1-D operands are promoted and squeezed; batch axes broadcast. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.ndim === 0 || b.ndim === 0) throw new Error(`matmul: operands must have at least 1 axis, got ${a} and ${b}`);
  if (a.ndim === 1) return matmul(a.unsqueeze(0), b).squeeze(-2);
  if (b.ndim === 1) return matmul(a, b.unsqueeze(-1)).squeeze(-1);
  const [m, k] = [a.shape[a.ndim - 2]!, a.shape[a.ndim - 1]!];
  const [k2, n] = [b.shape[b.ndim - 2]!, b.shape[b.ndim - 1]!];
  if (k !== k2) throw new Error(`matmul: inner dimensions differ: ${fmt(a.shape)} @ ${fmt(b.shape)} on ${a.backend.name}`);
  if (a.dtype !== b.dtype) throw new Error(`matmul: dtypes differ: ${a.dtype} @ ${b.dtype} (cast one first)`);
  if (!isFloat(a.dtype)) throw new Error(`matmul: needs float tensors, got ${a.dtype}`);
  const policy = currentMatmulPolicy();
  if (policy) return autocast(undefined, () => policy(a, b, matmul));
  const batchShape = broadcastShapes("matmul", a.shape.slice(0, -2), b.shape.slice(0, -2));
  const batch = batchShape.reduce((x, y) => x * y, 1);
  const outShape = [...batchShape, m, n];

  // Operand layout for the routine: (batch or 1, rows, cols), transposed storage when that saves a copy.
  const operand = (t: Tensor, rows: number, cols: number): { t: Tensor; trans: boolean; stride: number } => {
    const tb = t.shape.slice(0, -2);
    const broadcast = tb.every((d) => d === 1);
    const full = broadcast ? t : t.broadcastTo([...batchShape, rows, cols]);
    const src = untransposed(full);
    const base = src ?? full;
    return { t: base.reshape([broadcast ? 1 : batch, src ? cols : rows, src ? rows : cols]), trans: !!src, stride: broadcast ? 0 : rows * cols };
  };
  const A = operand(a, m, k);
  const B = operand(b, k, n);
  const spec: MatmulSpec = {
    batch, m, n, k, transA: A.trans, transB: B.trans, aBatchStride: A.stride, bBatchStride: B.stride, dtype: a.dtype, out: a.dtype,
  };
  if (useRoutine(a, "matmul", spec)) {
    return routineTensor("matmul", spec, [A.t, B.t], [batch, m, n], a.dtype, [a, b]).reshape(outShape);
  }
  return matmulReference(a, b);
}

/** matmul from primitives: broadcast multiply, then sum over k. One fused reduce kernel. */
export function matmulReference(a: Tensor, b: Tensor): Tensor {
  if (a.ndim === 1) return matmulReference(a.unsqueeze(0), b).squeeze(-2);
  if (b.ndim === 1) return matmulReference(a, b.unsqueeze(-1)).squeeze(-1);
  return a.unsqueeze(-1).mul(b.unsqueeze(-3)).sum(-2);
}

/** Softmax along an axis; the routine handles the last axis, other axes are moved there and back. */
export function softmax(x: Tensor, axis = -1): Tensor {
  const ax = normAxis("softmax", axis, x.ndim, x.shape);
  if (!isFloat(x.dtype)) throw new Error(`softmax: needs a float tensor, got ${x}`);
  const cols = x.shape[ax]!;
  const rows = x.numel / Math.max(cols, 1);
  const spec = { rows, cols, dtype: x.dtype, out: x.dtype };
  if (ax === x.ndim - 1 && x.numel > 0 && useRoutine(x, "softmax", spec)) {
    return routineTensor("softmax", spec, [x.reshape([rows, cols])], [rows, cols], x.dtype, [x]).reshape(x.shape);
  }
  return softmaxReference(x, ax);
}

export function softmaxReference(x: Tensor, axis = -1): Tensor {
  // NOTE: softmax is shift-invariant, so the max needs no gradient.
  const e = x.sub(x.max(axis, true).detach()).exp();
  return e.div(e.sum(axis, true));
}

export interface AttentionOptions {
  readonly causal?: boolean;
  /** Defaults to 1/sqrt(head dim). */
  readonly scale?: number;
}

/** softmax(q k^T * scale, causal) v for q (B, H, Tq, D), k and v (B, KVH, Tk, D), grouped-query when KVH < H. */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const spec = attentionSpec(q, k, v, opts);
  if (useRoutine(q, "attention", spec)) {
    return routineTensor("attention", spec, [q, k, v], [...q.shape], q.dtype, [q, k, v]);
  }
  return attentionReference(q, k, v, opts);
}

export function attentionSpec(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): AttentionSpec {
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) {
    throw new Error(`attention: q, k, v must be (B, H, T, D); got ${fmt(q.shape)}, ${fmt(k.shape)}, ${fmt(v.shape)}`);
  }
  const [batch, heads, tq, headDim] = q.shape as [number, number, number, number];
  const [kb, kvHeads, tk, kd] = k.shape as [number, number, number, number];
  const vOk = v.shape.every((d, i) => d === k.shape[i]);
  if (kb !== batch || kd !== headDim || !vOk || kvHeads === 0 || heads % kvHeads !== 0 || (opts.causal && tq > tk)) {
    throw new Error(`attention: incompatible q ${fmt(q.shape)}, k ${fmt(k.shape)}, v ${fmt(v.shape)} (heads must be a multiple of kv heads; causal needs Tq <= Tk)`);
  }
  if (q.dtype !== k.dtype || q.dtype !== v.dtype || !isFloat(q.dtype)) {
    throw new Error(`attention: q, k, v must share a float dtype, got ${q.dtype}, ${k.dtype}, ${v.dtype}`);
  }
  const scale = opts.scale ?? 1 / Math.sqrt(headDim);
  return { batch, heads, kvHeads, tq, tk, headDim, causal: !!opts.causal, scale, dtype: q.dtype, out: q.dtype };
}

/** The causal mask of attention: (Tq, Tk) bool, true where query i sees key j <= i + (Tk - Tq). */
function causalMask(like: Tensor, tq: number, tk: number): Tensor {
  return noGrad(() => {
    const i = new Tensor(new Node(like.backend, "iota", [], { kind: "none" }, [tq], "i32")).reshape([tq, 1]);
    const j = new Tensor(new Node(like.backend, "iota", [], { kind: "none" }, [tk], "i32")).reshape([1, tk]);
    return j.le(i.add(tk - tq));
  });
}

/** Dense attention from primitives: the reference for the flash-attention routine. */
export function attentionReference(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const { batch, heads, kvHeads, tq, tk, headDim, causal, scale } = attentionSpec(q, k, v, opts);
  const rep = heads / kvHeads;
  // (B, KVH, T, D) -> (B, H, T, D): each kv head serves `rep` query heads.
  const repeat = (t: Tensor) => t.unsqueeze(2).broadcastTo([batch, kvHeads, rep, tk, headDim]).reshape([batch, heads, tk, headDim]);
  let scores = matmulReference(q, repeat(k).transpose(-2, -1)).mul(scale); // (B, H, Tq, Tk)
  if (causal) scores = causalMask(q, tq, tk).where(scores, -Infinity);
  return matmulReference(softmaxReference(scores, -1), repeat(v));
}

/**
 * dQ, dK, dV of o = attention(q, k, v, opts), given o and its gradient dO (all as in the forward): the
 * attention_backward routine where the backend has one for the spec, else attentionBackwardComposed.
 */
export function attentionBackward(q: Tensor, k: Tensor, v: Tensor, o: Tensor, dO: Tensor, opts: AttentionOptions = {}): [Tensor, Tensor, Tensor] {
  const spec = attentionSpec(q, k, v, opts);
  for (const [name, t] of [["o", o], ["dO", dO]] as const) {
    if (t.shape.join() !== q.shape.join() || t.dtype !== q.dtype) {
      throw new Error(`attentionBackward: ${name} must be ${fmt(q.shape)} ${q.dtype} like q, got ${fmt(t.shape)} ${t.dtype}`);
    }
  }
  if (q.numel > 0 && k.numel > 0 && useRoutine(q, "attention_backward", spec)) {
    const { dq, dkv, total } = attentionBackwardSizes(spec);
    // NOTE: no gradient context: gradients of gradients through attention are not supported (backward runs under noGrad).
    const flat = routineTensor("attention_backward", spec, [q, k, v, o, dO], [total], spec.out, []);
    return [flat.slice(0, 0, dq).reshape(q.shape), flat.slice(0, dq, dq + dkv).reshape(k.shape), flat.slice(0, dq + dkv, total).reshape(v.shape)];
  }
  return attentionBackwardComposed(q, k, v, o, dO, opts);
}

/**
 * The attention backward composed from matmul and softmax (FlashAttention-2's equations, dense over
 * (B, H, Tq, Tk)): P = softmax(mask(Q K^T s)), dV = P^T dO, dP = dO V^T, dS = P (dP - rowsum(dO O)) s,
 * dQ = dS K, dK = dS^T Q, kv-head gradients summed over their query heads. It runs on the matmul and
 * softmax routines where they exist (not the dense reference's broadcast-multiply reductions), and from
 * primitives with routines off: the fallback and the reference of the attention_backward routine.
 */
export function attentionBackwardComposed(q: Tensor, k: Tensor, v: Tensor, o: Tensor, dO: Tensor, opts: AttentionOptions = {}): [Tensor, Tensor, Tensor] {
  const { batch: b, heads, kvHeads, tq, tk, headDim: d, causal, scale } = attentionSpec(q, k, v, opts);
  const rep = heads / kvHeads;
  const repeat = (t: Tensor) => (rep === 1 ? t : t.unsqueeze(2).broadcastTo([b, kvHeads, rep, tk, d]).reshape([b, heads, tk, d]));
  const unrepeat = (t: Tensor) => (rep === 1 ? t : t.reshape([b, kvHeads, rep, tk, d]).sum(2));
  const [kr, vr] = [repeat(k), repeat(v)]; // (B, H, Tk, D)
  let scores = matmul(q, kr.transpose(-2, -1)).mul(scale); // (B, H, Tq, Tk)
  if (causal) scores = causalMask(q, tq, tk).where(scores, -Infinity);
  const p = softmax(scores, -1);
  const dp = matmul(dO, vr.transpose(-2, -1)); // (B, H, Tq, Tk)
  const ds = p.mul(dp.sub(dO.mul(o).sum(-1, true))).mul(scale);
  return [matmul(ds, kr), unrepeat(matmul(ds.transpose(-2, -1), q)), unrepeat(matmul(p.transpose(-2, -1), dO))];
}
