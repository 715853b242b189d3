// train_parallel.ts: the layout `kiln train` runs with, from its config's `parallel:` section: a fixed
// { dp, tp, pp, ep, zero } checked against the world size and the model, or `parallel: auto`, for
// which the capacity planner (src/plan) picks the fastest layout that fits this machine's memory for
// the world size. The CLI joins the two because train does not import plan (DESIGN.md layering).

import { totalmem } from "node:os";
import type { GpuSpec } from "../plan/index.js";
import { describeLayout, planModelFromConfig, planTraining } from "../plan/index.js";
import type { ParallelLayout, TrainConfig } from "../train/index.js";
import { checkParallelLayout, trainModelConfig } from "../train/index.js";

export interface ResolvedParallel {
  readonly layout: ParallelLayout;
  /** Where it came from: "the config", or the planner's choice and why. */
  readonly from: string;
}

/**
 * This machine as the planner's "GPU": `worldSize` ranks sharing its memory. Only the memory is this
 * host's; the speeds are round placeholders of a 2020s server (they rank layouts that fit, and no
 * time is reported from them).
 */
export function hostSpec(worldSize: number, memoryBytes = totalmem()): GpuSpec {
  return {
    name: "host", description: `this machine (${worldSize} ranks sharing ${(memoryBytes / 1e9).toFixed(1)} GB)`, memoryBytes: memoryBytes / worldSize,
    memoryBytesPerS: 20e9, bf16Flops: 1e11, fp8Flops: null, nodeLinkBytesPerS: 10e9, nodeLinkName: "shared memory", networkBytesPerS: 1.25e9,
    hostBytesPerS: 10e9, gpusPerNode: worldSize, pricePerHour: 0,
  };
}

/**
 * The run's layout, or undefined when the config has no `parallel` section. `vocabSize` sizes the
 * embedding for `auto` (the data, read later, fixes the real one; only the embedding's memory depends on it).
 */
export function resolveTrainParallel(cfg: TrainConfig, source: string, o: { worldSize: number; vocabSize: number; gpu?: GpuSpec }): ResolvedParallel | undefined {
  const p = cfg.parallel;
  if (p === undefined) return undefined;
  if (p !== "auto") return { layout: checkParallelLayout(p, o.worldSize, cfg, source), from: "the config" };
  const model = planModelFromConfig(trainModelConfig(cfg.model, o.vocabSize), "the config's model");
  const gpu = o.gpu ?? hostSpec(o.worldSize);
  const batchTokens = cfg.train.batchSize * cfg.train.gradAccumSteps * cfg.model.blockSize;
  const plan = planTraining({ model, gpu, gpus: o.worldSize, tokens: batchTokens * cfg.train.iters, seqLen: cfg.model.blockSize, batchTokens });
  const best = plan.best;
  if (!best) throw new Error(`${source}: parallel: auto: the planner found no layout for ${o.worldSize} rank(s): ${plan.failure}`);
  const l = best.layout;
  // NOTE: ZeRO shards over data-parallel replicas; with one there is nothing to shard (the planner ranks them equal).
  const layout: ParallelLayout = { dp: l.dp, tp: l.tp, pp: l.pp, ep: l.ep, zero: l.dp > 1 ? l.zero : 0 };
  return { layout: checkParallelLayout(layout, o.worldSize, cfg, `${source} (parallel: auto)`), from: `parallel: auto, planned for ${o.worldSize} rank(s) on ${gpu.description}: ${describeLayout(l)}` };
}

/**
 * The layouts kiln train does not run yet, as one "not yet" naming each missing piece; undefined: it runs this one.
 * Built: data parallel, ZeRO-1/2/3 over it (distributed checkpoints), tensor and pipeline parallel, and dp x tp x pp
 * with ZeRO-1/2 in any combination (the 4D run), expert parallel (ep inside dp, a model.moe Llama).
 * `run`: what else the config has (a checkpoint, export or eval.sample section, a model.moe) that some layouts cannot run yet.
 */
export function notYetParallel(
  l: ParallelLayout, source: string,
  run: { checkpoint?: boolean; moe?: boolean; sample?: boolean; export?: boolean; precision?: string; memory?: boolean } = {},
): string | undefined {
  const missing = [
    l.pp > 1 && l.ep > 1 && `parallel.pp ${l.pp} with parallel.ep ${l.ep} (the stages are dense model pieces, not MoE layers)`,
    // ZeRO-3 gathers parameters inside its own trainer's one graph; a pipeline's stages and tp's slices train through the Trainer.
    l.zero === 3 && (l.pp > 1 || l.tp > 1) && `parallel.zero 3 with ${l.pp > 1 ? `parallel.pp ${l.pp}` : `parallel.tp ${l.tp}`} (ZeRO-3's trainer takes no gradient source or tensor-parallel norm; zero 1 and 2 run with them)`,
    l.pp > 1 && run.moe && `parallel.pp ${l.pp} with model.moe (the pipeline's pieces are dense blocks)`,
    l.pp > 1 && run.sample && `parallel.pp ${l.pp} with eval.sample (sampling needs the whole model on one rank)`,
    l.pp > 1 && run.export && `parallel.pp ${l.pp} with an export section (the export needs the whole model on one rank)`,
    l.ep > 1 && l.tp > 1 && `parallel.ep ${l.ep} with parallel.tp ${l.tp} (a tensor-parallel MoE layer)`,
    l.tp > 1 && l.ep === 1 && run.moe && `parallel.tp ${l.tp} with model.moe (no tensor-parallel MoE layer; use parallel.ep)`,
    l.ep > 1 && l.zero > 0 && `parallel.ep ${l.ep} with parallel.zero ${l.zero} (ZeRO's sharding reduces the gradient itself, not expert parallel's way)`,
    l.ep > 1 && run.checkpoint && `checkpoints of parallel.ep ${l.ep} (each rank holds its experts: no checkpoint writer gathers them yet; leave the checkpoint section out)`,
    // ZeRO-3's trainer (src/train/zero3_trainer.ts) runs fp32 without the Trainer's memory options; reading its
    // weights is a gather every rank joins, which sampling and the export (one rank's work) do not do yet.
    l.zero === 3 && run.precision !== undefined && run.precision !== "fp32" && `parallel.zero 3 with precision ${run.precision} (ZeRO-3 trains fp32)`,
    l.zero === 3 && run.memory && "parallel.zero 3 with a memory section (activation checkpointing and offload are the other trainer's)",
    l.zero === 3 && run.moe && "parallel.zero 3 with model.moe",
    l.zero === 3 && run.sample && "parallel.zero 3 with eval.sample (sampling reads the whole model on one rank)",
    l.zero === 3 && run.export && "parallel.zero 3 with an export section (the export reads the whole model on one rank)",
  ].filter((x): x is string => typeof x === "string");
  return missing.length === 0 ? undefined : `${source}: not yet: kiln train does not run ${missing.join(", ")}; it runs parallel: { dp, tp, pp, zero: 0-2 } together (4D), zero 3 and ep beside dp alone`;
}
