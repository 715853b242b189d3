// clip.ts: global-norm gradient clipping, on the device: the norm over every gradient as one scalar
// tensor, and the factor min(1, maxNorm / (norm + 1e-6)) (PyTorch's clip_grad_norm_) that scales them.
// Nothing is read back: the trainer reads the norm with the loss, after the step's one schedule.

import type { Tensor } from "../index.js";

/** sqrt(sum of every gradient's squares): a scalar tensor. */
export function globalNorm(grads: readonly Tensor[]): Tensor {
  if (grads.length === 0) throw new Error("globalNorm: no gradients");
  let sq: Tensor | undefined;
  grads.forEach((g, i) => {
    const s = g.mul(g).sum();
    sq = sq ? sq.add(s) : s;
    // NOTE: each term is a reduction's buffer, and the sum of all of them would be one kernel binding
    // one buffer per parameter (WebGPU allows 8 to 12 per shader): materialize every 8 terms.
    if (i % 8 === 7) sq = sq.contiguous();
  });
  return sq!.sqrt();
}

/** The gradients scaled so that their global norm is at most maxNorm. */
export function clipByGlobalNorm(grads: readonly Tensor[], norm: Tensor, maxNorm: number): Tensor[] {
  if (!(maxNorm > 0)) throw new Error(`clipByGlobalNorm: maxNorm must be > 0, got ${maxNorm}`);
  const scale = norm.add(1e-6).rdiv(maxNorm).minimum(1);
  return grads.map((g) => g.mul(scale));
}
