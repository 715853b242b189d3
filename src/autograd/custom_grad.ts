// custom_grad.ts: a value whose gradient is given by the caller instead of derived from its graph
// (PyTorch's autograd.Function). Mixed precision needs it: fp8 training rounds the *gradient* that
// flows into a matmul to e5m2 while the forward value passes unchanged, and quantizers pass the
// gradient straight through the rounding (whose true derivative is 0 almost everywhere).
// NOTE: no new op: the value is an ordinary graph (built without recording), and only the tape entry
// says how to go back (Tensor's customGradient, which fused composites such as crossEntropy use too),
// so backends, the scheduler and jit see nothing new.

import { noGrad } from "../tensor/context.js";
import type { Tensor } from "../tensor/tensor.js";
import { customGradient } from "../tensor/tensor.js";

/**
 * `forward()` built without recording gradients; on the way back, `backward(g)` gives one gradient per
 * input (undefined for none), each of that input's shape. Without a recording input it is just the value.
 */
export function customGrad(inputs: readonly Tensor[], forward: () => Tensor, backward: (g: Tensor) => readonly (Tensor | undefined)[]): Tensor {
  const value = noGrad(forward);
  return customGradient(value, inputs, (g) => {
    const grads = [...backward(g)];
    if (grads.length !== inputs.length) throw new Error(`customGrad: backward gave ${grads.length} gradients for ${inputs.length} inputs`);
    grads.forEach((gi, i) => {
      const want = inputs[i]!.shape;
      if (gi && (gi.ndim !== want.length || gi.shape.some((d, j) => d !== want[j]))) {
        throw new Error(`customGrad: gradient ${i} has shape (${gi.shape.join(", ")}), its input (${want.join(", ")})`);
      }
    });
    return grads;
  });
}
