// gradients.ts: reverse-mode differentiation over the tensors' gradient contexts. `gradients`
// returns d(outputs)/d(inputs) without touching any .grad; `backward` accumulates into the .grad of
// every leaf that requires one (so calling it per micro-batch accumulates, as in PyTorch).

import { concat } from "../tensor/composites.js";
import { noGrad } from "../tensor/context.js";
import { Tensor, setBackwardImpl } from "../tensor/tensor.js";
import { GRAD } from "./rules.js";

/** Tensors with a gradient context reachable from the roots, users after their inputs (reversed later). */
function tape(roots: readonly Tensor[]): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, boolean][] = roots.map((r) => [r, false]);
  while (stack.length) {
    const [t, done] = stack.pop()!;
    if (done) { order.push(t); continue; }
    if (seen.has(t)) continue;
    seen.add(t);
    stack.push([t, true]);
    for (const i of t.ctx?.inputs ?? []) if (i.requiresGrad && !seen.has(i)) stack.push([i, false]);
  }
  return order;
}

/**
 * A tensor's gradient contributions as one tensor. Slices of one tensor along one axis (q, k and v
 * cut from a fused qkv projection) each give a padded gradient; when those pads tile the axis they are
 * joined with concat (each element copied from its own part) rather than summed (every element
 * reading every part through its pad).
 */
function combine(gs: readonly Tensor[]): Tensor {
  if (gs.length === 1) return gs[0]!;
  return joinDisjointPads(gs) ?? gs.reduce((a, b) => a.add(b));
}

/** concat of the pads' sources when every contribution is a pad along one axis and they tile it. */
function joinDisjointPads(gs: readonly Tensor[]): Tensor | undefined {
  let axis = -1;
  const parts: { lo: number; t: Tensor }[] = [];
  for (const g of gs) {
    const n = g.node;
    if (n.op !== "pad" || n.arg.kind !== "pad" || n.realized) return undefined;
    const padded = n.arg.pads.flatMap(([lo, hi], i) => (lo !== 0 || hi !== 0 ? [i] : []));
    if (padded.length !== 1 || (axis !== -1 && padded[0] !== axis)) return undefined;
    axis = padded[0]!;
    parts.push({ lo: n.arg.pads[axis]![0], t: new Tensor(n.src[0]!) });
  }
  parts.sort((a, b) => a.lo - b.lo);
  let at = 0;
  for (const p of parts) {
    if (p.lo !== at) return undefined;
    at += p.t.shape[axis]!;
  }
  return at === gs[0]!.shape[axis] ? concat(parts.map((p) => p.t), axis) : undefined;
}

/** Run the rules from the outputs back; returns every tensor's total gradient. */
function propagate(outputs: readonly Tensor[], gradOutputs: readonly Tensor[]): Map<Tensor, Tensor> {
  const pending = new Map<Tensor, Tensor[]>();
  const accumulate = (t: Tensor, g: Tensor) => {
    if (g.dtype !== t.dtype) g = g.cast(t.dtype);
    const list = pending.get(t);
    if (list) list.push(g);
    else pending.set(t, [g]);
  };
  outputs.forEach((o, i) => {
    const g = gradOutputs[i]!;
    if (g.shape.length !== o.shape.length || g.shape.some((d, j) => d !== o.shape[j])) {
      throw new Error(`backward: gradient shape (${g.shape.join(", ")}) does not match output ${o}`);
    }
    accumulate(o, g);
  });
  const order = tape(outputs).reverse();
  const grads = new Map<Tensor, Tensor>();
  noGrad(() => {
    for (const t of order) {
      const list = pending.get(t);
      if (!list) continue;
      const g = combine(list);
      grads.set(t, g);
      if (!t.ctx) continue;
      const ins = t.ctx.vjp ? t.ctx.vjp(g, t) : GRAD[t.ctx.op](t.ctx, g, t);
      t.ctx.inputs.forEach((input, i) => {
        const gi = ins[i];
        if (gi && input.requiresGrad) accumulate(input, gi);
      });
    }
  });
  return grads;
}

/** d(outputs)/d(inputs) weighted by gradOutputs (vector-Jacobian product); undefined where unreachable. */
export function gradients(outputs: readonly Tensor[], inputs: readonly Tensor[], gradOutputs: readonly Tensor[]): (Tensor | undefined)[] {
  const grads = propagate(outputs, gradOutputs);
  return inputs.map((t) => grads.get(t));
}

export function backward(loss: Tensor, grad?: Tensor): void {
  if (!loss.requiresGrad) throw new Error(`backward: ${loss} does not require a gradient (no input had requiresGrad)`);
  if (!grad && loss.numel !== 1) throw new Error(`backward: ${loss} is not a scalar; pass its gradient`);
  const grads = propagate([loss], [grad ?? loss.full(loss.shape, 1)]);
  for (const [t, g] of grads) {
    if (t.ctx || !t.requiresGrad) continue; // only leaves keep a .grad
    t.grad = t.grad ? t.grad.add(g) : g;
  }
}

setBackwardImpl(backward);
