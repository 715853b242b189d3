// train_advice.ts: what the training planner tells a user beyond the chosen layout: notes on the
// batch (rounded down to what the layout divides; too small for the cluster) and, for a missed
// target time, the fewest whole nodes that meet it once re-planned. The planner itself is
// train_plan.ts's, passed in as a function, so that this file does not import it back.

import type { GpuSpec } from "./gpus.js";
import type { PlanModel } from "./plan_model.js";
import type { TrainCandidate, TrainPlan } from "./train_plan.js";
import { idleSlots } from "./train_step.js";
import { formatCount, formatInt, formatPercent } from "./units.js";

/** A pipeline bubble above this share means the batch is too small for the cluster (warned about). */
export const BUBBLE_WARN = 0.2;

/**
 * The most GPUs that have work with `sequences` sequences per step: tp up to 8 (one node's NVLink),
 * every layer its own pipeline stage, one sequence per data-parallel rank; in whole nodes.
 */
export function maxUsefulGpus(m: PlanModel, gpu: GpuSpec, sequences: number): number {
  const node = gpu.gpusPerNode;
  return Math.max(node, Math.floor((Math.min(node, 8) * m.nLayers * sequences) / node) * node);
}

/**
 * What the user should know about the batch: that it was rounded down to what the layout divides
 * (the step then trains on fewer tokens than asked), and that it is too small for the cluster when
 * the pipeline bubble it leaves is over BUBBLE_WARN, with the batch that brings it under.
 */
export function batchNotes(best: TrainCandidate, batchTokens: number, gpus: number): string[] {
  const l = best.layout;
  const notes: string[] = [];
  const actual = best.step.tokensPerStep;
  if (actual !== batchTokens) {
    notes.push(`the global batch is ${formatCount(actual)} tokens per step (${formatInt(actual / l.seqLen)} sequences of ${l.seqLen}), not the ${formatCount(batchTokens)} asked: ` +
      `it must be a whole number of dp x microbatch = ${l.dp} x ${l.microBatch} sequences`);
  }
  const bubble = best.step.bubbleFraction;
  if (bubble > BUBBLE_WARN) {
    // idle / (m + idle) <= 1/5 when m >= 4 x idle (1F1B's idle is p - 1; interleaved (p - 1) / v, ZB-H1 (p - 1) / 3)
    const microBatches = Math.ceil(4 * idleSlots(l.pp, l.interleave ?? 1, l.schedule) - 1e-9);
    const fits = microBatches * l.dp * l.microBatch * l.seqLen;
    notes.push(`the batch is too small for ${formatInt(gpus)} GPUs: ${l.microBatches} microbatch${l.microBatches === 1 ? "" : "es"} per step through ${l.pp} pipeline stages leave a ${formatPercent(bubble)} bubble (MFU ${formatPercent(best.step.mfu)}); ` +
      `a batch of ${formatCount(fits)} tokens (${microBatches} microbatches of ${l.dp} x ${l.microBatch} sequences) brings it to ${formatPercent(BUBBLE_WARN)}, or use fewer GPUs`);
  }
  return notes;
}

/**
 * The fewest whole nodes of GPUs whose re-planned best layout meets `days`: doubling from the
 * request's count, then bisecting (more GPUs are assumed not to be slower). None meets it when even
 * `maxGpus` (maxUsefulGpus) does not; then the fastest count seen is given.
 */
export function gpusForTarget(
  q: { gpus: number; gpusPerNode: number; maxGpus: number; days: number; daysNow: number },
  plan: (gpus: number) => TrainPlan,
): { meets: true; gpus: number; plan: TrainPlan } | { meets: false; gpus: number; days: number; maxGpus: number } {
  const node = q.gpusPerNode;
  const plans = new Map<number, TrainPlan>();
  const planAt = (n: number): TrainPlan => {
    let p = plans.get(n);
    if (!p) plans.set(n, (p = plan(n)));
    return p;
  };
  const meets = (n: number): boolean => (planAt(n).best?.days ?? Infinity) <= q.days;
  let lo = q.gpus;
  let hi = Math.ceil((2 * q.gpus) / node) * node;
  while (hi < q.maxGpus && !meets(hi)) {
    lo = hi;
    hi = Math.ceil((2 * hi) / node) * node;
  }
  hi = Math.min(hi, q.maxGpus);
  if (hi <= lo || !meets(hi)) {
    const fastest = [...plans.entries()].reduce((a, [n, p]) => ((p.best?.days ?? Infinity) < a.days ? { gpus: n, days: p.best!.days } : a), { gpus: q.gpus, days: q.daysNow });
    return { meets: false, gpus: fastest.gpus, days: fastest.days, maxGpus: q.maxGpus };
  }
  while (hi - lo > node) {
    const mid = Math.floor((lo + hi) / 2 / node) * node;
    if (mid <= lo) break;
    if (meets(mid)) hi = mid;
    else lo = mid;
  }
  return { meets: true, gpus: hi, plan: planAt(hi) };
}
