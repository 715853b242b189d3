// context.ts: the switches ops read while building graphs: whether gradients are recorded and
// whether named routines (hand-written kernels) may be used, or their primitive references instead,
// and the autocast policy that float matmuls built in a scope go through (mixed precision).

import type { Tensor } from "./tensor.js";

let gradEnabled = true;
let routinesEnabled = true;

/**
 * How a float matmul built inside `autocast` is computed: given its operands and the plain matmul, the
 * result (e.g. operands cast to bf16; or quantized to fp8 with a gradient hook on the output). The
 * policy runs outside the scope, so the matmuls it builds are plain.
 */
export type MatmulPolicy = (a: Tensor, b: Tensor, matmul: (a: Tensor, b: Tensor) => Tensor) => Tensor;
let matmulPolicy: MatmulPolicy | undefined;

export const isGradEnabled = (): boolean => gradEnabled;
export const areRoutinesEnabled = (): boolean => routinesEnabled;
export const currentMatmulPolicy = (): MatmulPolicy | undefined => matmulPolicy;

function scoped<T>(set: (v: boolean) => boolean, value: boolean, fn: () => T): T {
  const before = set(value);
  try {
    return fn();
  } finally {
    set(before);
  }
}

/** Build graphs inside fn without recording gradients (inference, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  return scoped((v) => { const b = gradEnabled; gradEnabled = v; return b; }, false, fn);
}

export function enableGrad<T>(fn: () => T): T {
  return scoped((v) => { const b = gradEnabled; gradEnabled = v; return b; }, true, fn);
}

/** Build graphs inside fn with (true) or without (false) hand-written routines. */
export function withRoutines<T>(enabled: boolean, fn: () => T): T {
  return scoped((v) => { const b = routinesEnabled; routinesEnabled = v; return b; }, enabled, fn);
}

/**
 * Build graphs inside fn with every float matmul computed by `policy` (undefined: plain matmuls, e.g. a
 * reduction spelled as a matmul inside an autocast scope). Like PyTorch's autocast, the rest of the
 * graph keeps its dtypes: a low-precision matmul output meets f32 operands and is promoted to f32.
 */
export function autocast<T>(policy: MatmulPolicy | undefined, fn: () => T): T {
  const before = matmulPolicy;
  matmulPolicy = policy;
  try {
    return fn();
  } finally {
    matmulPolicy = before;
  }
}
