// make_trainer.ts: one way in for every ZeRO stage. ZeRO-1/2 are the Trainer's `sharding` option (an
// OptimizerSharding: src/dist/zero.ts zeroSharding(comm, stage)); ZeRO-3 is its own trainer (zero3_trainer.ts)
// over a ParameterSharding (src/dist/zero3.ts zero3Sharding(comm)). makeTrainer takes either in the same
// option, so a caller that builds its trainer options from a layout (`kiln train`'s parallel: { zero }) passes
// `sharding: zero3Sharding(comm)` for stage 3 exactly as it passes zeroSharding(comm, 1 | 2) for the others.
// The Trainer's options ZeRO-3 does not take yet are refused, naming them.

import type { BatchSource } from "./batches.js";
import type { TrainableModel } from "./loss.js";
import type { OptimizerSharding } from "./sharded_step.js";
import { Trainer, type TrainerOptions } from "./trainer.js";
import { type ParameterSharding, Zero3Trainer } from "./zero3_trainer.js";

export type AnySharding = OptimizerSharding | ParameterSharding;
export type MakeTrainerOptions = Omit<TrainerOptions, "sharding"> & { readonly sharding?: AnySharding; readonly regather?: boolean };

/** Whether `s` is ZeRO-3's (it gathers parameters) rather than ZeRO-1/2's (it gathers a flat buffer on the host). */
export function isParameterSharding(s: AnySharding | undefined): s is ParameterSharding {
  return !!s && typeof (s as ParameterSharding).gather === "function";
}

/** A Trainer, or with a ZeRO-3 sharding a Zero3Trainer (its options: schedule, optimizer, micro-batches, clipping, jit, regather). */
export function makeTrainer(model: TrainableModel, data: BatchSource, opts: MakeTrainerOptions): Trainer | Zero3Trainer {
  const { sharding, regather, ...rest } = opts;
  if (!isParameterSharding(sharding)) {
    if (regather !== undefined) throw new Error("makeTrainer: regather is ZeRO-3's option (a sharding from zero3Sharding)");
    return new Trainer(model, data, { ...rest, ...(sharding ? { sharding } : {}) });
  }
  const unsupported = (["precision", "memory", "gradientHook", "reduceGradient", "gradientNorm", "gradientSource", "hostGradientNorm"] as const).filter((k) => {
    const v = rest[k];
    return v !== undefined && !(k === "precision" && (v as { precision?: string }).precision === "fp32");
  });
  if (unsupported.length) throw new Error(`makeTrainer: ZeRO-3 does not take ${unsupported.join(", ")} yet (its trainer runs fp32, without offload or checkpointing options, and reduces the gradient itself)`);
  const { schedule, adamw, sgd, gradAccumSteps, maxGradNorm, jit } = rest;
  return new Zero3Trainer(model, data, { schedule, adamw, sgd, gradAccumSteps, maxGradNorm, jit, regather, sharding });
}
