// kv_cache.ts: the contiguous KV cache and the ways a forward pass attends:
//   - FullContext: no cache, causal attention over the tokens of this pass (the reference forward);
//   - CacheContext: T tokens at given positions of one sequence: writes their K/V rows into the cache
//     in place (the kv_write routine) and attends from each token to the keys 0..its position (the
//     paged_attention routine, over a cache that is a single block of contextLength rows). Prefill
//     gives the positions start..start+T-1; a decode step gives one position as an i32 input tensor,
//     so one captured step serves every position, and its work grows with the position, not the context.
// A cache is one (contextLength, nKvHeads * headDim) tensor per layer for K and one for V: persistent
// state, written in place, never replaced (so a jit-captured step keeps using the same buffers).
// The models (llama.ts, gpt2.ts) see only AttentionContext; language_model.ts owns the cache.

import type { Backend, DType, Tensor } from "../index.js";
import { attention, tensor } from "../index.js";
// NOTE: the paged-cache ops are not in the public API yet (src/serve uses them the same way).
import { kvWrite, pagedAttention } from "../tensor/paged.js";

/** What every model takes besides its weights. */
export interface ModelOptions {
  /** The dtype weights, activations and the cache are stored in (f32 unless given). */
  readonly dtype?: DType;
  /**
   * Tokens the cache holds: the config's maxSeqLen (at most DEFAULT_CONTEXT_CAP) unless smaller is asked
   * (a 128K-token context would make the cache of a large model far bigger than its weights).
   */
  readonly contextLength?: number;
}

/**
 * The most positions a model gets when no contextLength is asked: Llama 3.1's 128K. NOTE: RoPE tables
 * and caches are sized by the context; a file claiming 2^24 positions took 3 GiB of tables before its
 * first token. A longer context is there for the asking (contextLength), up to the config's maxSeqLen.
 */
export const DEFAULT_CONTEXT_CAP = 1 << 17;

/** The context a model gets: maxSeqLen capped at DEFAULT_CONTEXT_CAP, or what is asked (at most maxSeqLen). */
export function contextLength(maxSeqLen: number, opts: ModelOptions): number {
  const asked = opts.contextLength;
  if (asked === undefined) return Math.min(maxSeqLen, DEFAULT_CONTEXT_CAP);
  if (!(Number.isInteger(asked) && asked > 0)) throw new Error(`contextLength must be a positive integer, got ${asked}`);
  return Math.min(asked, maxSeqLen);
}

export interface CacheShape {
  readonly layers: number;
  readonly kvHeads: number;
  readonly maxSeq: number;
  readonly headDim: number;
}

export interface KvCache {
  readonly shape: CacheShape;
  /** Per layer, (maxSeq, kvHeads * headDim). */
  readonly k: readonly Tensor[];
  readonly v: readonly Tensor[];
  /** [[0]]: the one block table, of the one sequence. */
  readonly blockTable: Tensor;
  /** [0]: the sequence of a single token. */
  readonly oneToken: Tensor;
}

/** A zeroed cache on the backend, in the model's dtype. */
export function allocateCache(shape: CacheShape, backend: Backend, dtype: DType): KvCache {
  const { layers, kvHeads, maxSeq, headDim } = shape;
  const rows = () => tensor(new Float32Array(maxSeq * kvHeads * headDim), { backend, dtype, shape: [maxSeq, kvHeads * headDim] });
  return {
    shape,
    k: Array.from({ length: layers }, rows),
    v: Array.from({ length: layers }, rows),
    blockTable: tensor(new Int32Array(1), { backend, dtype: "i32", shape: [1, 1] }),
    oneToken: tensor(new Int32Array(1), { backend, dtype: "i32" }),
  };
}

/** How a forward pass gets its positions and attends. */
export interface AttentionContext {
  /** This pass's rows of a per-position table (maxSeq, ...): (T, ...). */
  rows(table: Tensor): Tensor;
  /** q (1, H, T, D), k and v (1, KVH, T, D), already position-encoded -> (1, H, T, D). */
  attend(layer: number, q: Tensor, k: Tensor, v: Tensor): Tensor;
}

// NOTE: with one token, (T, heads, D) and (1, heads, T, D) have the same layout; a reshape (unlike a
// permute) lets a routine read the buffer as it is instead of a copy made for it.

/** (T, heads, D) -> (1, heads, T, D), the layout AttentionContext takes. */
export function splitHeads(x: Tensor): Tensor {
  const [t, heads, d] = x.shape as [number, number, number];
  return t === 1 ? x.reshape([1, heads, 1, d]) : x.reshape([1, t, heads, d]).permute([0, 2, 1, 3]);
}

/** (1, heads, T, D) -> (T, heads * D). */
export function mergeHeads(o: Tensor): Tensor {
  const [, heads, t, d] = o.shape as [number, number, number, number];
  return t === 1 ? o.reshape([1, heads * d]) : o.permute([0, 2, 1, 3]).reshape([t, heads * d]);
}

export class FullContext implements AttentionContext {
  constructor(private readonly length: number) {}
  rows(table: Tensor): Tensor {
    return table.slice(0, 0, this.length);
  }
  attend(_layer: number, q: Tensor, k: Tensor, v: Tensor): Tensor {
    return attention(q, k, v, { causal: true });
  }
}

/**
 * T tokens of the one sequence at `positions` (T,) i32 (consecutive; `rows` picks their table rows):
 * their K/V go into the cache at those rows, in place, and each attends to the keys up to its position.
 */
export class CacheContext implements AttentionContext {
  private readonly tokenSeq: Tensor;

  constructor(private readonly cache: KvCache, private readonly positions: Tensor, readonly rows: (table: Tensor) => Tensor) {
    const t = positions.shape[0]!;
    // NOTE: a captured decode step binds these buffers, so the one-token case uses the cache's own (kept alive with it).
    this.tokenSeq = t === 1 ? cache.oneToken : tensor(new Int32Array(t), { backend: positions.backend, dtype: "i32" });
  }

  attend(layer: number, q: Tensor, k: Tensor, v: Tensor): Tensor {
    const { kvHeads, maxSeq, headDim } = this.cache.shape;
    const [, heads, t] = q.shape as [number, number, number, number];
    const write = (cache: Tensor, x: Tensor) => {
      const out = kvWrite(cache, this.positions, tokenRows(x));
      // NOTE: the cache is state: a functional write (no kv_write routine) would leave it unchanged.
      if (out.node.op !== "routine") throw new Error(`kv cache: ${cache.backend.name} has no in-place kv_write routine for a (${maxSeq}, ${kvHeads * headDim}) ${cache.dtype} cache (or routines are off)`);
      return out.reshape([maxSeq, kvHeads, headDim]);
    };
    const o = pagedAttention({
      q: tokenRows(q).reshape([t, heads, headDim]),
      kCache: write(this.cache.k[layer]!, k),
      vCache: write(this.cache.v[layer]!, v),
      blockTables: this.cache.blockTable,
      tokenSeq: this.tokenSeq,
      tokenPos: this.positions,
      blockSize: maxSeq,
    }); // (T, H, D)
    return splitHeads(o);
  }
}

/** (1, n, T, D) -> (T, n * D): each token's row of the cache. */
const tokenRows = mergeHeads;
