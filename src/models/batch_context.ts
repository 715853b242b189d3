// batch_context.ts: the AttentionContext of a training forward: B sequences of T tokens, each at
// positions 0..T-1, every token attending causally within its own sequence. The models run their
// blocks over the B*T rows as one (B*T, dim) matrix (so every linear is one matmul over all tokens,
// and its weight gradient one matmul too); only attention sees the batch axis. No cache: a training
// pass keeps its K/V as ordinary graph tensors, which autograd differentiates.
// NOTE: attention goes through attention() (the routine where the backend has one); its backward
// (autograd/rules.ts) recomputes the probabilities with the matmul and softmax routines.

import type { Tensor } from "../index.js";
import { attention } from "../index.js";
import type { AttentionContext } from "./kv_cache.js";

export class BatchContext implements AttentionContext {
  constructor(readonly batch: number, readonly length: number) {
    if (!(Number.isInteger(batch) && batch > 0 && Number.isInteger(length) && length > 0)) {
      throw new Error(`BatchContext: batch and length must be positive integers, got ${batch} and ${length}`);
    }
  }

  /** Rows 0..T-1 of a per-position table (maxSeq, ...), repeated for each sequence: (B*T, ...). */
  rows(table: Tensor): Tensor {
    const [b, t] = [this.batch, this.length];
    const rows = table.slice(0, 0, t); // (T, ...)
    return rows.unsqueeze(0).broadcastTo([b, ...rows.shape]).reshape([b * t, ...rows.shape.slice(1)]);
  }

  /** q (1, H, B*T, D), k and v (1, KVH, B*T, D) -> (1, H, B*T, D), causal within each sequence. */
  attend(_layer: number, q: Tensor, k: Tensor, v: Tensor): Tensor {
    const [b, t] = [this.batch, this.length];
    const split = (x: Tensor) => x.reshape([x.shape[1]!, b, t, x.shape[3]!]).permute([1, 0, 2, 3]); // (B, H, T, D)
    const o = attention(split(q), split(k), split(v), { causal: true }); // (B, H, T, D)
    const [, h, , d] = o.shape as [number, number, number, number];
    return o.permute([1, 0, 2, 3]).reshape([1, h, b * t, d]);
  }
}

/** Check a training batch of token ids: (B, T) integers with T within the model's context. */
export function batchShape(model: string, ids: Tensor, contextLength: number): [number, number] {
  if (ids.ndim !== 2 || ids.dtype !== "i32") throw new Error(`${model}.forward: ids must be (B, T) i32, got ${ids}`);
  const [b, t] = ids.shape as [number, number];
  if (b === 0 || t === 0) throw new Error(`${model}.forward: empty batch ${ids}`);
  if (t > contextLength) throw new Error(`${model}.forward: sequences of ${t} tokens exceed the context of ${contextLength}`);
  return [b, t];
}
