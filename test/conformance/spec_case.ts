// The shape of a spec case: inputs, an op applied to them, and the expected output written by hand
// from the op's meaning (two's complement, IEEE 754 round-to-nearest-even, the casts render_js.ts
// defines), never computed by kiln. spec.test.ts runs every case on every backend present.

import type { DType, Tensor } from "../../src/index.js";
import type { BinaryOp, UnaryOp } from "../../src/core/ops.js";
import type { Tolerance } from "./harness.js";

export interface SpecInput {
  readonly dtype: DType;
  readonly data: readonly number[];
  /** Defaults to [data.length]. */
  readonly shape?: readonly number[];
}

export interface SpecCase {
  /** Names the case in the test title and in the skip table (with the first input's dtype). */
  readonly name: string;
  readonly inputs: readonly SpecInput[];
  readonly fn: (...xs: Tensor[]) => Tensor;
  /** The output, flattened; bool as 0/1. */
  readonly want: readonly number[];
  readonly wantShape?: readonly number[];
  /** Exact unless given (for results a device may round differently, such as pow). */
  readonly tol?: Tolerance;
}

/** `op` over two 1-D inputs of one dtype. */
export function bin(op: BinaryOp, dtype: DType, what: string, a: readonly number[], b: readonly number[], want: readonly number[], tol?: Tolerance): SpecCase {
  return { name: `${op} ${dtype}: ${what}`, inputs: [{ dtype, data: a }, { dtype, data: b }], fn: (x, y) => x.binary(op, y!), want, tol };
}

/** `op` over one 1-D input. */
export function un(op: UnaryOp, dtype: DType, what: string, a: readonly number[], want: readonly number[], tol?: Tolerance): SpecCase {
  return { name: `${op} ${dtype}: ${what}`, inputs: [{ dtype, data: a }], fn: (x) => x.unary(op), want, tol };
}

/** A cast from one dtype to another. */
export function cast(from: DType, to: DType, what: string, a: readonly number[], want: readonly number[]): SpecCase {
  return { name: `cast ${from} -> ${to}: ${what}`, inputs: [{ dtype: from, data: a }], fn: (x) => x.cast(to), want };
}

export const EXACT: Tolerance = { rtol: 0, atol: 0 };
