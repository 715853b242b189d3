// routines.ts names the hand-written kernels and the plain-data specs a backend is asked to build.
// Semantics live in the references from primitives (src/tensor/linalg.ts, paged.ts), which every backend's
// version is tested against.
// Buffer slots: 0 is the output, then the routine's operands, then any epilogue inputs.

import type { DType, QuantFormat } from "./dtype.js";
import type { Expr } from "./ir.js";
import type { RoutineName } from "./ops.js";

/**
 * An elementwise tail fused into a routine: out[gid] = expr, where `acc` (f32) is the routine's value
 * at output element `gid` and loads read slots numbered after the routine's own operands.
 */
export interface Epilogue {
  readonly expr: Expr;
  readonly inputs: readonly DType[];
}

/** C[b] = A[b] @ B[b] (+ epilogue). A is (m, k), or (k, m) stored when transA; B is (k, n), or (n, k) when transB. */
export interface MatmulSpec {
  readonly batch: number;
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly transA: boolean;
  readonly transB: boolean;
  /** Elements between consecutive batch matrices; 0 broadcasts one matrix over the batch. */
  readonly aBatchStride: number;
  readonly bBatchStride: number;
  readonly dtype: DType; // of A and B
  readonly out: DType;
  readonly epilogue?: Epilogue;
}

/** Softmax over the last axis of a (rows, cols) input. */
export interface SoftmaxSpec {
  readonly rows: number;
  readonly cols: number;
  readonly dtype: DType;
  readonly out: DType;
}

/**
 * out = softmax(q k^T * scale [+ causal mask]) v with q (B, H, Tq, D), k and v (B, KVH, Tk, D), H % KVH == 0.
 * Causal masking aligns the queries to the end of the keys: query i sees keys j <= i + (Tk - Tq).
 */
export interface AttentionSpec {
  readonly batch: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly tq: number;
  readonly tk: number;
  readonly headDim: number;
  readonly causal: boolean;
  readonly scale: number;
  readonly dtype: DType;
  readonly out: DType;
}

/**
 * The gradients of attention (the same spec as the forward it differentiates), recomputed from its inputs
 * as FlashAttention-2 does: operands q, k, v, o (the forward's output) and dO (o's gradient), all (B, H, Tq, D)
 * or (B, KVH, Tk, D) as in the forward. D_i = rowsum(dO_i o_i), P = softmax(mask(q k^T scale)),
 * dV = P^T dO, dS = P (dO v^T - D) scale, dQ = dS k, dK = dS^T q; a kv head's dK and dV sum over its query heads.
 * Output: one flat buffer [dQ (B, H, Tq, D) | dK (B, KVH, Tk, D) | dV (B, KVH, Tk, D)].
 * NOTE: a routine has one output buffer; the three gradients side by side in it are three contiguous
 * slices (views, no copy), and one kernel writing all three lets a backend accumulate dK and dV where
 * it computes them instead of launching a reduction over query heads.
 */
export type AttentionBackwardSpec = AttentionSpec;

/** Elements of attention_backward's flat output: dQ, then dK, then dV. */
export function attentionBackwardSizes(s: AttentionSpec): { dq: number; dkv: number; total: number } {
  const dq = s.batch * s.heads * s.tq * s.headDim;
  const dkv = s.batch * s.kvHeads * s.tk * s.headDim;
  return { dq, dkv, total: dq + 2 * dkv };
}

/**
 * cache[slots[i], :] = values[i, :] for i < rows, in place (cache is operand 0 and the output);
 * a negative slot skips its row (a padding token). cache (numSlots, rowSize), slots (rows) i32,
 * values (rows, rowSize), all of `dtype` but slots.
 */
export interface KvWriteSpec {
  readonly numSlots: number;
  readonly rowSize: number;
  readonly rows: number;
  readonly dtype: DType;
}

/**
 * Attention for a ragged batch of tokens over a paged KV cache. Token t belongs to sequence tokenSeq[t]
 * at position tokenPos[t] and attends to that sequence's keys 0..tokenPos[t]; key j of sequence s is
 * cache row blockTables[s][floor(j / blockSize)] * blockSize + j % blockSize.
 * q (numTokens, heads, headDim); kCache, vCache (numBlocks * blockSize, kvHeads, headDim);
 * blockTables (numSeqs, maxBlocksPerSeq) i32; tokenSeq, tokenPos (numTokens) i32.
 * A token with tokenPos < 0 is padding: its output is 0. Output (numTokens, heads, headDim).
 */
export interface PagedAttentionSpec {
  readonly numTokens: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly blockSize: number;
  readonly numBlocks: number;
  readonly numSeqs: number;
  readonly maxBlocksPerSeq: number;
  readonly scale: number;
  readonly dtype: DType;
  readonly out: DType;
}

/**
 * out = zeros(rows, cols) with out[indices[i], :] += src[i, :] for i < n: the gradient of a gather along
 * axis 0 (an embedding's). indices (n) i32, src (n, cols) and out (rows, cols) of `dtype`. An index outside
 * [0, rows) adds nothing, as a gather there reads 0. Sums run in ascending i (deterministic).
 */
export interface ScatterAddSpec {
  readonly rows: number;
  readonly cols: number;
  readonly n: number;
  readonly dtype: DType;
}

/**
 * out[o, :] = part 0's row o, then part 1's, ... for o < outer: a concatenation along one axis, with each
 * operand p viewed as (outer, parts[p]) (its axis length times the sizes after the axis). Bits are
 * copied as stored, any dtype.
 */
export interface ConcatSpec {
  readonly outer: number;
  readonly parts: readonly number[];
  readonly dtype: DType;
}

/**
 * out (m, n) = x (m, k) @ dequant(w)^T: a linear layer on a quantized weight, dequantized in registers.
 * w is (n, k) stored as `format` blocks row by row, as GGUF stores it: operand 2 is u8 bytes,
 * (n, quantRowBytes(format, k)). Reference: tensor/quant.ts (dequantize from primitives, then matmul).
 */
export interface QuantMatmulSpec {
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly format: QuantFormat;
  readonly dtype: DType; // of x
  readonly out: DType;
}

export interface RoutineSpecs {
  matmul: MatmulSpec;
  softmax: SoftmaxSpec;
  attention: AttentionSpec;
  attention_backward: AttentionBackwardSpec;
  kv_write: KvWriteSpec;
  paged_attention: PagedAttentionSpec;
  scatter_add: ScatterAddSpec;
  concat: ConcatSpec;
  matmul_q: QuantMatmulSpec;
}
export type RoutineSpec = RoutineSpecs[RoutineName];

/**
 * Number of operand slots (after the output) each routine takes before its epilogue inputs; a routine
 * whose count depends on its spec has none here (routineOperands asks the spec).
 */
export const ROUTINE_OPERANDS: Readonly<Record<Exclude<RoutineName, "concat">, number>> = {
  matmul: 2, softmax: 1, attention: 3, kv_write: 3, attention_backward: 5, paged_attention: 6, scatter_add: 2, matmul_q: 2,
};

/** The operand count of a routine node with this spec. */
export function routineOperands<R extends RoutineName>(name: R, spec: RoutineSpecs[R]): number {
  return name === "concat" ? (spec as ConcatSpec).parts.length : ROUTINE_OPERANDS[name as Exclude<RoutineName, "concat">];
}

/**
 * Routines that write into one of their operands instead of a new buffer (a KV cache written at new
 * slots). The operand must be realized (persistent state); the routine's output node shares its
 * buffer, so later reads of that output in the same graph see the write in order.
 */
export const ROUTINE_IN_PLACE: Readonly<Partial<Record<RoutineName, number>>> = { kv_write: 0 };
