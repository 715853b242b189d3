// spec_decode.ts: speculative decoding's effect on decode (Leviathan et al. 2023, "Fast Inference
// from Transformers via Speculative Decoding"): a draft proposes k tokens, the target verifies them
// in one step over k + 1 positions, and with a per-token acceptance rate α the expected tokens a
// target step yields is (1 - α^(k+1)) / (1 - α) (their equation 1). The draft's k steps cost c each,
// c being the draft's step time as a share of the target's; Leviathan's speed-up is then
// (1 - α^(k+1)) / ((1 - α)(c k + 1)) when verifying costs one ordinary step. serve_plan.ts times the
// verify step itself (k + 1 tokens a sequence: the same weight read, k + 1 times the FLOPs).

import { PlanInputError } from "./units.js";

export interface SpecDecode {
  /** Draft tokens per target step. */
  readonly k: number;
  /** Per-token acceptance rate α, in [0, 1). */
  readonly accept: number;
  /** The draft's step time as a share of the target's (c). */
  readonly draftCost: number;
}

/** (1 - α^(k+1)) / (1 - α): tokens a sequence gains per target step. */
export function expectedTokensPerStep(k: number, accept: number): number {
  return (1 - Math.pow(accept, k + 1)) / (1 - accept);
}

export function checkSpecDecode(s: SpecDecode): void {
  if (!(Number.isInteger(s.k) && s.k >= 1 && s.k <= 64)) throw new PlanInputError(`--spec-k: ${s.k} is not a whole number of draft tokens from 1 to 64`);
  if (!(s.accept >= 0 && s.accept < 1)) throw new PlanInputError(`--spec-accept: ${s.accept} is not an acceptance rate in [0, 1)`);
  if (!(s.draftCost >= 0 && s.draftCost < 1)) throw new PlanInputError(`--spec-draft-cost: ${s.draftCost} is not the draft's step time as a share of the target's, in [0, 1)`);
}

/** Seconds per output token of a sequence: (k draft steps + one verify step) / expected tokens. */
export function specTimePerToken(s: SpecDecode, targetStepS: number, verifyStepS: number): number {
  return (s.k * s.draftCost * targetStepS + verifyStepS) / expectedTokensPerStep(s.k, s.accept);
}
