// routines.ts names the hand-written kernels and the plain-data specs a backend is asked to build.
// Semantics live in the references (src/routines/*), which every backend's version is tested against.
// Buffer slots: 0 is the output, then the routine's operands, then any epilogue inputs.

import type { DType } from "./dtype.js";
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

export interface RoutineSpecs {
  matmul: MatmulSpec;
  softmax: SoftmaxSpec;
  attention: AttentionSpec;
}
export type RoutineSpec = RoutineSpecs[RoutineName];

/** Number of operand slots (after the output) each routine takes before its epilogue inputs. */
export const ROUTINE_OPERANDS: Readonly<Record<RoutineName, number>> = { matmul: 2, softmax: 1, attention: 3 };

/**
 * Routines that write into one of their operands instead of a new buffer (a KV cache written at new
 * slots). The operand must be realized (persistent state); the routine's output node shares its
 * buffer, so later reads of that output in the same graph see the write in order.
 */
export const ROUTINE_IN_PLACE: Readonly<Partial<Record<RoutineName, number>>> = {};
