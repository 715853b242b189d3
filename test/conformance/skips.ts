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

// NOTE: empty today. f64 is the reference dtype and cpu-only by design (WGSL has no f64), so the
// suite does not ask any backend for it; every other dtype passes on cpu and on webgpu.
export const SKIPS: readonly Skip[] = [];

export function skipReason(backend: string, name: string, dtype: DType): string | undefined {
  const hit = SKIPS.find(
    (s) => s.backend === backend && (s.dtype === undefined || s.dtype === dtype) && (typeof s.match === "string" ? s.match === name : s.match.test(name)),
  );
  return hit?.reason;
}
