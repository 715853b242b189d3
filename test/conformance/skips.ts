// The one skip table: every known gap of a backend, with its reason. A case listed here is reported
// as skipped, never silently passed. Keep it short: each entry is a bug or a documented limit.

import type { DType } from "../../src/index.js";

interface Skip {
  readonly backend: string;
  /** Case name, or a pattern over case names. */
  readonly match: string | RegExp;
  readonly dtype?: DType;
  readonly reason: string;
}

export const SKIPS: readonly Skip[] = [
  {
    backend: "webgpu",
    match: /^nan (max|min)/,
    reason: "WGSL max/min on NaN operands is implementation-defined (SwiftShader returns the other operand); JS propagates NaN",
  },
];

export function skipReason(backend: string, name: string, dtype: DType): string | undefined {
  const hit = SKIPS.find(
    (s) => s.backend === backend && (s.dtype === undefined || s.dtype === dtype) && (typeof s.match === "string" ? s.match === name : s.match.test(name)),
  );
  return hit?.reason;
}
