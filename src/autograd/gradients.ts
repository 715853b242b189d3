// gradients.ts: reverse-mode differentiation over the tensors' gradient contexts. `gradients`
// returns d(outputs)/d(inputs) without touching any .grad; `backward` accumulates into the .grad of
// every leaf that requires one (so calling it per micro-batch accumulates, as in PyTorch).

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

/** Run the rules from the outputs back; returns every tensor's total gradient. */
function propagate(outputs: readonly Tensor[], gradOutputs: readonly Tensor[]): Map<Tensor, Tensor> {
  const grads = new Map<Tensor, Tensor>();
  const accumulate = (t: Tensor, g: Tensor) => {
    if (g.dtype !== t.dtype) g = g.cast(t.dtype);
    const prev = grads.get(t);
    grads.set(t, prev ? prev.add(g) : g);
  };
  outputs.forEach((o, i) => {
    const g = gradOutputs[i]!;
    if (g.shape.length !== o.shape.length || g.shape.some((d, j) => d !== o.shape[j])) {
      throw new Error(`backward: gradient shape (${g.shape.join(", ")}) does not match output ${o}`);
    }
    accumulate(o, g);
  });
  const order = tape(outputs).reverse();
  noGrad(() => {
    for (const t of order) {
      const g = grads.get(t);
      if (!g || !t.ctx) continue;
      const ins = t.ctx.custom ? t.ctx.custom(g) : GRAD[t.ctx.op](t.ctx, g, t);
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
