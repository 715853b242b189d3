// paged_context.ts: an AttentionContext over the paged KV cache, so a model of src/models (which
// sees only AttentionContext) runs one ragged batch: tokens of many requests, each at its own
// position, in one forward. Per layer it writes the batch's new K/V rows at their slots (in place,
// before attention reads them, since a prompt chunk attends to itself) and attends through the block
// tables. It owns the tensor plumbing of one forward; which tokens are in the batch and where their
// slots are is the model runner's (model_runner.ts), which blocks exist kv_memory.ts's.
//
// Padding tokens (to reach a captured bucket size) have position -1 and slot -1: kv_write skips them,
// paged attention gives them 0, and their rotary rows read as 0 (a gather out of range reads 0).

import type { Tensor } from "../index.js";
import type { AttentionContext, CacheShape } from "../models/kv_cache.js";
import { kvWrite, pagedAttention } from "../tensor/paged.js";
import type { KvCaches } from "./kv_memory.js";

/** One step's batch as device tensors (all i32). */
export interface PagedBatch {
  /** (T,) the position of each token in its request; -1 for padding. */
  readonly positions: Tensor;
  /** (T,) the cache row each token's K/V goes to: blockIds[p / blockSize] * blockSize + p % blockSize; -1 for padding. */
  readonly slots: Tensor;
  /** (T,) the row of blockTables of each token's request. */
  readonly tokenSeq: Tensor;
  /** (numSeqs, maxBlocksPerSeq) each request's block ids, padded with 0. */
  readonly blockTables: Tensor;
}

export class PagedContext implements AttentionContext {
  constructor(
    private readonly shape: CacheShape,
    private readonly caches: KvCaches,
    private readonly batch: PagedBatch,
    private readonly blockSize: number,
  ) {}

  /** Rows of a per-position table (rotary cos/sin, position embeddings) at each token's position. */
  rows(table: Tensor): Tensor {
    return table.gather(0, this.batch.positions);
  }

  /** q (1, H, T, D), k and v (1, KVH, T, D) -> (1, H, T, D). */
  attend(layer: number, q: Tensor, k: Tensor, v: Tensor): Tensor {
    const { kvHeads, headDim } = this.shape;
    const [, heads, t] = q.shape as [number, number, number, number];
    const rowsOf = (x: Tensor, n: number) => x.permute([0, 2, 1, 3]).reshape([t, n * headDim]); // (T, n D)
    const kAll = kvWrite(this.caches.k[layer]!, this.batch.slots, rowsOf(k, kvHeads)).reshape([-1, kvHeads, headDim]);
    const vAll = kvWrite(this.caches.v[layer]!, this.batch.slots, rowsOf(v, kvHeads)).reshape([-1, kvHeads, headDim]);
    const o = pagedAttention({
      q: rowsOf(q, heads).reshape([t, heads, headDim]),
      kCache: kAll,
      vCache: vAll,
      blockTables: this.batch.blockTables,
      tokenSeq: this.batch.tokenSeq,
      tokenPos: this.batch.positions,
      blockSize: this.blockSize,
    }); // (T, H, D)
    return o.reshape([1, t, heads, headDim]).permute([0, 2, 1, 3]);
  }
}
