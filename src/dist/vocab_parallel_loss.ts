// vocab_parallel_loss.ts: Megatron-LM's vocab-parallel cross-entropy: each rank holds its slice of the
// logits (N, V/tp) (a vocab-parallel head's output) and the whole (N, V) is never gathered: each row's max
// is all-reduced (max), its sum of exp all-reduced (sum), and the target logit is read on the one rank whose
// slice holds it and all-reduced (sum). Every rank ends with the same mean loss.
// NOTE: the gradient is its own (softmax - onehot) / N on this rank's slice, from the forward's all-reduced
// logsumexp: no collective in the backward (each rank backpropagates its own copy of the loss; the
// parallel regions before the head sum what must be summed).
// It matches crossEntropy (tensor/composites.ts): a target outside [0, V) contributes 0, the mean still
// divides by N.

import type { Tensor } from "../index.js";
import { arange } from "../index.js";
import { customGradient } from "../tensor/tensor.js";
import type { Communicator } from "./comm.js";
import { allReduce } from "./graph_collectives.js";

/** Mean cross-entropy of targets (N,) i32 under logits whose vocabulary is split over `tp`: local (N, V/tp). */
export function vocabParallelCrossEntropy(localLogits: Tensor, targets: Tensor, tp: Communicator): Tensor {
  if (localLogits.ndim !== 2 || targets.ndim !== 1 || targets.shape[0] !== localLogits.shape[0] || targets.dtype !== "i32") {
    throw new Error(`vocabParallelCrossEntropy: need local logits (N, V/tp) and i32 targets (N,), got ${localLogits} and ${targets}`);
  }
  if (localLogits.dtype !== "f32") throw new Error(`vocabParallelCrossEntropy: the logits must be f32 (collectives carry f32), got ${localLogits.dtype}`);
  const [n, vl] = localLogits.shape as [number, number];
  const start = tp.rank * vl;
  const vocab = vl * tp.size;
  const at = { backend: localLogits.backend };
  const x = localLogits.detach();
  const local = targets.sub(start); // (N,) this rank's column of each target, if it holds it
  const mine = local.ge(0).and(local.lt(vl));
  const valid = targets.ge(0).and(targets.lt(vocab));
  const m = allReduce(x.max(-1, true), tp, "max"); // (N, 1)
  const sumExp = allReduce(x.sub(m).exp().sum(-1, true), tp); // (N, 1)
  const lse = sumExp.log().add(m);
  // Row r's target logit is flat element r * vl + local; a row whose target is elsewhere reads nothing (0).
  const flat = mine.where(arange(n, undefined, 1, at).mul(vl).add(local), -1);
  const picked = allReduce(x.reshape([n * vl]).gather(0, flat), tp); // (N,)
  const loss = valid.where(lse.reshape([n]).sub(picked), 0).mean();
  return customGradient(loss, [localLogits], (g) => {
    const probs = x.sub(lse).exp(); // this rank's slice of softmax(logits)
    const hot = local.unsqueeze(-1).eq(arange(vl, undefined, 1, at).reshape([1, vl])).cast(x.dtype);
    return [valid.reshape([n, 1]).where(probs.sub(hot).mul(g.div(n)), 0)];
  });
}
