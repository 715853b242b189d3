// prefill_steps.ts: the jit-captured prefill steps of a CachedDecoder (language_model.ts), one per prompt
// length, the few most recently used kept. A captured step replays its launches for a new prompt of the
// same length at any position: no graph building, scheduling or kernel compiling per prompt. It owns
// which lengths stay captured; what a step computes is the caller's.
// NOTE: measured on stories260K (64-token prompt), scheduling and compiling the eager forward was 40% of a
// prefill's cpu time once the kernels were fast (2026-12-07, busy 2-core EPYC).

import type { JitFunction, Tensor } from "../index.js";

/** Captured lengths kept: a chat or a benchmark repeats a few lengths; each step holds its activations. */
export const PREFILL_STEPS_KEPT = 4;

export type PrefillStep = JitFunction<[Tensor, Tensor]>;

export class PrefillSteps {
  /** By prompt length, least recently used first (a Map iterates in insertion order). */
  private readonly steps = new Map<number, PrefillStep>();

  /** The step for prompts of `length` tokens: the captured one, or make() (captured on its first call). */
  get(length: number, make: () => PrefillStep): PrefillStep {
    let step = this.steps.get(length);
    if (step) this.steps.delete(length);
    else {
      step = make();
      if (this.steps.size >= PREFILL_STEPS_KEPT) {
        const [oldest, old] = this.steps.entries().next().value as [number, PrefillStep];
        old.dispose();
        this.steps.delete(oldest);
      }
    }
    this.steps.set(length, step);
    return step;
  }

  /** Lengths captured now, least recently used first. */
  get lengths(): number[] {
    return [...this.steps.keys()];
  }

  dispose(): void {
    for (const s of this.steps.values()) s.dispose();
    this.steps.clear();
  }
}
