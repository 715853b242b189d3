// paged.ts: the two ops a serving engine needs over a paged KV cache: write new K/V rows at slots
// (in place: the cache is persistent state) and attend from a ragged batch of tokens through block
// tables. Each is a routine when the backend has one; the references below, from primitives, define
// what they mean (functional: the reference write returns a new cache) and are what the
// conformance suite checks the routines against.

import { isFloat } from "../core/dtype.js";
import { NO_ARG, Node } from "../core/graph.js";
import type { KvWriteSpec, PagedAttentionSpec } from "../core/routines.js";
import { areRoutinesEnabled } from "./context.js";
import { matmulReference, softmaxReference } from "./linalg.js";
import { fmt } from "./shape.js";
import { Tensor } from "./tensor.js";

const iota = (like: Tensor, n: number) => new Tensor(new Node(like.backend, "iota", [], NO_ARG, [n], "i32"));

function kvWriteSpec(cache: Tensor, slots: Tensor, values: Tensor): KvWriteSpec {
  const [numSlots, rowSize] = cache.shape as [number, number];
  if (cache.ndim !== 2 || slots.ndim !== 1 || values.ndim !== 2 || values.shape[1] !== rowSize || values.shape[0] !== slots.shape[0]) {
    throw new Error(`kvWrite: need cache (slots, row), slots (n,) and values (n, row); got ${fmt(cache.shape)}, ${fmt(slots.shape)}, ${fmt(values.shape)}`);
  }
  if (slots.dtype !== "i32" || values.dtype !== cache.dtype) {
    throw new Error(`kvWrite: slots must be i32 and values ${cache.dtype} like the cache; got ${slots.dtype} and ${values.dtype}`);
  }
  return { numSlots, rowSize, rows: slots.shape[0]!, dtype: cache.dtype };
}

/**
 * Write values' rows into the cache at slots (negative slots skip), in place when the backend has the
 * routine and the cache is realized; the returned tensor is the updated cache, to be read after the write.
 */
export function kvWrite(cache: Tensor, slots: Tensor, values: Tensor): Tensor {
  const spec = kvWriteSpec(cache, slots, values);
  if (areRoutinesEnabled() && cache.node.realized && cache.backend.supportsRoutine("kv_write", spec)) {
    const node = new Node(cache.backend, "routine", [cache.node, slots.node, values.node], { kind: "routine", name: "kv_write", spec }, cache.shape, cache.dtype);
    return new Tensor(node);
  }
  return kvWriteReference(cache, slots, values);
}

/** The functional reference: row r of the result is values[i] where slots[i] == r, else cache[r]. */
export function kvWriteReference(cache: Tensor, slots: Tensor, values: Tensor): Tensor {
  const { numSlots, rows } = kvWriteSpec(cache, slots, values);
  const hit = iota(cache, numSlots).reshape([numSlots, 1]).eq(slots.reshape([1, rows])); // (numSlots, rows)
  const written = matmulReference(hit.cast(values.dtype), values);
  return hit.max(1, true).where(written, cache);
}

export interface PagedAttentionInputs {
  readonly q: Tensor; // (numTokens, heads, headDim)
  readonly kCache: Tensor; // (numBlocks * blockSize, kvHeads, headDim)
  readonly vCache: Tensor;
  readonly blockTables: Tensor; // (numSeqs, maxBlocksPerSeq) i32
  readonly tokenSeq: Tensor; // (numTokens) i32
  readonly tokenPos: Tensor; // (numTokens) i32
  readonly blockSize: number;
  readonly scale?: number;
}

function pagedSpec(x: PagedAttentionInputs): PagedAttentionSpec {
  const { q, kCache, vCache, blockTables, tokenSeq, tokenPos, blockSize } = x;
  const [numTokens, heads, headDim] = q.shape as [number, number, number];
  const [rows, kvHeads, kd] = kCache.shape as [number, number, number];
  const ok = q.ndim === 3 && kCache.ndim === 3 && vCache.shape.join() === kCache.shape.join() && kd === headDim &&
    blockTables.ndim === 2 && tokenSeq.shape.join() === `${numTokens}` && tokenPos.shape.join() === `${numTokens}` &&
    Number.isInteger(blockSize) && blockSize > 0 && rows % blockSize === 0 && kvHeads > 0 && heads % kvHeads === 0;
  if (!ok) {
    throw new Error(`pagedAttention: incompatible q ${fmt(q.shape)}, caches ${fmt(kCache.shape)}/${fmt(vCache.shape)}, ` +
      `block tables ${fmt(blockTables.shape)}, tokenSeq ${fmt(tokenSeq.shape)}, tokenPos ${fmt(tokenPos.shape)}, block size ${blockSize}`);
  }
  if (!isFloat(q.dtype) || kCache.dtype !== q.dtype || vCache.dtype !== q.dtype || [blockTables, tokenSeq, tokenPos].some((t) => t.dtype !== "i32")) {
    throw new Error(`pagedAttention: q and caches must share a float dtype and the index tensors be i32`);
  }
  const [numSeqs, maxBlocksPerSeq] = blockTables.shape as [number, number];
  return {
    numTokens, heads, kvHeads, headDim, blockSize, numBlocks: rows / blockSize, numSeqs, maxBlocksPerSeq,
    scale: x.scale ?? 1 / Math.sqrt(headDim), dtype: q.dtype, out: q.dtype,
  };
}

export function pagedAttention(x: PagedAttentionInputs): Tensor {
  const spec = pagedSpec(x);
  if (areRoutinesEnabled() && spec.numTokens > 0 && x.q.backend.supportsRoutine("paged_attention", spec)) {
    const operands = [x.q, x.kCache, x.vCache, x.blockTables, x.tokenSeq, x.tokenPos].map((t) => t.node);
    return new Tensor(new Node(x.q.backend, "routine", operands, { kind: "routine", name: "paged_attention", spec }, x.q.shape, x.q.dtype));
  }
  return pagedAttentionReference(x);
}

/** Gather every token's whole key range through its block table, mask past its position, attend densely. */
export function pagedAttentionReference(x: PagedAttentionInputs): Tensor {
  const { numTokens: t, heads, kvHeads, headDim: d, blockSize, maxBlocksPerSeq, scale } = pagedSpec(x);
  const ctx = maxBlocksPerSeq * blockSize;
  const j = iota(x.q, ctx).reshape([1, ctx]);
  const entry = x.tokenSeq.reshape([t, 1]).mul(maxBlocksPerSeq).add(j.div(blockSize)); // (t, ctx) into the flat tables
  const rows = x.blockTables.reshape([-1]).gather(0, entry.reshape([-1])).reshape([t, ctx]).mul(blockSize).add(j.mod(blockSize));
  const rep = heads / kvHeads;
  const keys = (cache: Tensor) =>
    cache.reshape([-1, kvHeads * d]).gather(0, rows.reshape([-1])).reshape([t, ctx, kvHeads, 1, d])
      .broadcastTo([t, ctx, kvHeads, rep, d]).reshape([t, ctx, heads, d]).permute([0, 2, 1, 3]); // (t, H, ctx, d)
  const scores = matmulReference(x.q.reshape([t, heads, 1, d]), keys(x.kCache).transpose(-2, -1)).mul(scale); // (t, H, 1, ctx)
  const visible = j.le(x.tokenPos.reshape([t, 1])).reshape([t, 1, 1, ctx]);
  const out = matmulReference(softmaxReference(visible.where(scores, -Infinity)), keys(x.vCache)).reshape([t, heads, d]);
  return x.tokenPos.ge(0).reshape([t, 1, 1]).where(out, 0);
}
