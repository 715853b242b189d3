// train_step.ts: how long one training step of a layout takes on a cluster: compute (with
// recomputation under checkpointing), the communication of each parallelism on its link, the
// pipeline bubble, and the MFU that results. Memory is train_memory.ts's; choosing a layout is
// train_plan.ts's.
//
// The model of a step (1F1B pipeline): every stage runs (microbatches + pp - 1) slots of one
// microbatch's forward and backward, its tensor- and expert-parallel collectives and its
// point-to-point sends; data-parallel gradient traffic then adds what it cannot hide behind the last
// microbatch's backward (ZeRO-3's parameter gathers hide behind each microbatch's compute).

import type { GpuSpec } from "./gpus.js";
import type { PlanModel } from "./plan_model.js";
import { matmulParams, moeLayerCount, trainingFlopsPerToken } from "./accounting.js";
import type { CommModel } from "./collectives.js";
import { COMM_DEFAULTS, allGatherTime, allReduceTime, allToAllTime, groupLink, p2pTime, reduceScatterTime } from "./collectives.js";
import type { TrainLayout } from "./train_memory.js";
import { bytesPerParam, stageParams } from "./train_memory.js";
import type { PipelineSchedule, TrainPrecision } from "./train_options.js";
import { cpOf, precisionOf } from "./train_options.js";
import { contextParallelTime } from "./context_parallel.js";
import { ADAPTER_BYTES, loraAdapterParams, loraMatmulFlopsPerToken, loraTrainingFlopsPerToken } from "./lora.js";
import { PlanInputError } from "./units.js";

/**
 * Share of dense peak that a transformer layer's kernels reach: large bf16 GEMMs run at 70-80% of
 * peak on H100, attention, norms, the optimizer step and elementwise kernels lower. With the terms
 * below it gives 40-60% MFU for well-laid-out dense models, the range Megatron-LM, torchtitan and
 * Llama 3 (38-43% for 405B on 16K H100s) report.
 */
export const TRAIN_COMPUTE_EFFICIENCY = 0.6;

/**
 * Parameters per second a GPU's share of the host CPU updates with Adam under offload (DeepSpeed's
 * vectorized CPU-Adam on one eighth of a two-socket server's cores).
 */
export const HOST_ADAM_PARAMS_PER_S = 1e9;

export type CommKind = "tensor" | "expert" | "pipeline" | "context" | "data" | "offload";

export interface CommTime {
  readonly kind: CommKind;
  /** Which link carries it ("NVLink 4", "network", "PCIe", ...). */
  readonly link: string;
  /** Seconds per step the transfers take. */
  readonly seconds: number;
  /** Of those, seconds the step waits (not hidden behind compute). */
  readonly exposedSeconds: number;
}

export interface StepEstimate {
  /** Seconds of computation per step on one GPU (recomputation included). */
  readonly computeSeconds: number;
  readonly comm: readonly CommTime[];
  /** (pp - 1) / (microbatches + pp - 1), or its interleaved form (pipelineBubble) */
  readonly bubbleFraction: number;
  readonly bubbleSeconds: number;
  readonly stepSeconds: number;
  readonly tokensPerStep: number;
  /** Model FLOPs (6N + attention) of a step, all GPUs. */
  readonly modelFlopsPerStep: number;
  /** Model FLOPs / (step time x GPUs x dense bf16 peak). */
  readonly mfu: number;
}

/**
 * Idle slots of a pipeline step, in units of one microbatch's forward + backward: 1F1B's p - 1; the
 * interleaved schedule's (v model chunks per GPU, Narayanan et al. 2021) (p - 1) / v; ZB-H1's (Qi et
 * al. 2023, "Zero Bubble Pipeline Parallelism", section 3.1) (p - 1)(T_F + T_B - T_W) against 1F1B's
 * (p - 1)(T_F + T_B + T_W): with kiln's equal forward, input-gradient and weight-gradient times
 * (each a third of the slot) that is (p - 1) / 3, at 1F1B's activation memory.
 */
export function idleSlots(pp: number, interleave = 1, schedule?: PipelineSchedule): number {
  return schedule === "zb-h1" ? (pp - 1) / 3 : (pp - 1) / interleave;
}

/** The bubble's share of the slots: idle / (m + idle); 1F1B's (p - 1) / (m + p - 1). */
export function pipelineBubble(pp: number, microBatches: number, interleave = 1, schedule?: PipelineSchedule): number {
  const idle = idleSlots(pp, interleave, schedule);
  return idle / (microBatches + idle);
}

/** The peak FLOP/s a precision's matmuls run at: TF32 tensor cores (half the bf16 rate on every GPU of the table) for fp32. */
export function trainMatmulFlops(gpu: GpuSpec, p: TrainPrecision): number {
  if (p === "fp32") return gpu.bf16Flops / 2;
  if (p === "fp8") {
    if (gpu.fp8Flops === null) throw new PlanInputError(`--train-precision fp8: ${gpu.name} (${gpu.description}) has no fp8 tensor cores`);
    return gpu.fp8Flops;
  }
  return gpu.bf16Flops;
}

/** One step of a layout (bf16 mixed precision unless the layout says otherwise). */
export function estimateStep(m: PlanModel, gpu: GpuSpec, l: TrainLayout, links: CommModel = COMM_DEFAULTS): StepEstimate {
  const cp = cpOf(l);
  const gpus = l.tp * l.pp * l.dp * cp;
  const precision = precisionOf(l);
  const b = bytesPerParam(precision);
  const actBytes = b.activation;
  // NOTE: with context parallelism each GPU holds s / cp tokens of every sequence of the microbatch.
  const tokensMb = (l.microBatch * l.seqLen) / cp;
  const layers = Math.ceil(m.nLayers / l.pp);
  const moeLayers = Math.ceil(moeLayerCount(m) / l.pp);
  const recompute = l.checkpointing ? 4 / 3 : 1; // one more forward pass: forward is 1/3 of the work
  // NOTE: the slowest stage has ceil(layers / pp) of the layers; its GPUs split that work tp ways. fp8
  // runs the matmuls (6N) at the fp8 rate and attention (bf16 flash attention) at the bf16 rate; fp32 both on TF32.
  const share = (layers / m.nLayers) * (tokensMb / l.tp);
  const n = matmulParams(m);
  const adapters = l.lora ? loraAdapterParams(m, l.lora.rank) : 0;
  // NOTE: full recomputation repeats the forward's matmuls (2N, and the adapters' 2A); LoRA's backward has no base weight gradients.
  const matmulFlopsMb = ((l.lora ? loraMatmulFlopsPerToken(n, adapters) : 6 * n) + (l.checkpointing ? 2 * n + 2 * adapters : 0)) * share;
  const attentionFlopsMb = (trainingFlopsPerToken(m, l.seqLen) - 6 * n) * share;
  // Selective recomputation with eager attention repeats the forward score and value products (a third of attention's work).
  const selective = l.selective === true && !l.checkpointing && l.attention === "eager" ? 1 / 3 : 0;
  const attentionPeak = precision === "fp32" ? gpu.bf16Flops / 2 : gpu.bf16Flops;
  const attentionSecondsMb = (attentionFlopsMb * (recompute + selective)) / (attentionPeak * TRAIN_COMPUTE_EFFICIENCY);
  const computeMb = matmulFlopsMb / (trainMatmulFlops(gpu, precision) * TRAIN_COMPUTE_EFFICIENCY) + attentionSecondsMb;

  // Tensor parallel (with sequence parallelism): per layer, forward and backward each move the
  // equivalent of two all-reduces of the layer's activations; recomputation repeats the forward two.
  const tpLink = groupLink(gpu, 1, l.tp, links);
  const collectivesPerLayer = l.checkpointing ? 6 : 4;
  const tpMb = layers * collectivesPerLayer * allReduceTime(tokensMb * m.dim * actBytes, l.tp, tpLink);
  // Expert parallel: dispatch and combine all-to-alls of each token's top-k copies, forward and backward.
  const epLink = groupLink(gpu, l.tp, l.ep, links);
  const topK = m.moe?.topK ?? 0;
  const epMb = moeLayers * collectivesPerLayer * allToAllTime((tokensMb / l.tp) * m.dim * actBytes * topK, l.ep, epLink);
  // Pipeline: each microbatch's activations forward and their gradients backward, once per boundary.
  // Ranks are laid out tp, then cp, then dp, then pp (Megatron's order).
  const ppLink = groupLink(gpu, l.tp * cp * l.dp, l.pp, links);
  // NOTE: interleaved, a microbatch crosses v times as many stage boundaries.
  const v = l.pp > 1 ? (l.interleave ?? 1) : 1;
  const ppMb = l.pp > 1 ? 2 * v * p2pTime((tokensMb * m.dim * actBytes) / l.tp, ppLink) : 0;
  const cpMb = contextParallelTime(m, gpu, l, attentionSecondsMb / layers, links);

  const slot = computeMb + tpMb + epMb + ppMb + cpMb.exposed;
  const idle = l.pp > 1 ? idleSlots(l.pp, v, l.schedule) : 0;
  const slots = l.microBatches + idle;
  const bubbleFraction = idle / slots;

  // Data parallel: gradients of the shared weights over dp (with cp: over dp x cp, which hold the same weights), of the experts over that / ep.
  const stage = stageParams(m, l);
  const dpLink = groupLink(gpu, l.tp, l.dp * cp, links);
  const edp = (l.dp * cp) / l.ep;
  const edpLink = groupLink(gpu, l.tp * l.ep, edp, links);
  const dpGroup = l.dp * cp;
  // NOTE: what crosses the wire is the bf16 (or fp32) weights; fp8's cached fp8 copies are made on each GPU.
  const wireWeight = precision === "fp8" ? 2 : b.weight;
  let dpSeconds: number;
  let dpExposed: number;
  if (l.zero === 3) {
    // every microbatch gathers the weights twice (forward, backward) and reduce-scatters the gradients
    const perMb =
      2 * allGatherTime(stage.shared * wireWeight, dpGroup, dpLink) + reduceScatterTime(stage.shared * b.grad, dpGroup, dpLink) +
      2 * allGatherTime(stage.experts * wireWeight, edp, edpLink) + reduceScatterTime(stage.experts * b.grad, edp, edpLink);
    dpSeconds = perMb * l.microBatches;
    dpExposed = Math.max(0, perMb - computeMb) * l.microBatches;
  } else if (l.zero === 2) {
    // ZeRO-2 keeps only its shard of the gradients, so every microbatch's backward reduce-scatters
    // them (as DeepSpeed stage 2 does): m reduce-scatters, then one all-gather of the updated
    // weights. Each reduce-scatter overlaps its microbatch's backward (2/3 of its compute); the
    // all-gather waits for the optimizer, after the last one.
    const rs = reduceScatterTime(stage.shared * b.grad, dpGroup, dpLink) + reduceScatterTime(stage.experts * b.grad, edp, edpLink);
    const ag = allGatherTime(stage.shared * wireWeight, dpGroup, dpLink) + allGatherTime(stage.experts * wireWeight, edp, edpLink);
    dpSeconds = l.microBatches * rs + ag;
    dpExposed = l.microBatches * Math.max(0, rs - (2 / 3) * computeMb) + ag;
  } else {
    // ZeRO 0 all-reduces the whole accumulated gradients once per step; ZeRO-1 reduce-scatters them
    // and all-gathers the updated weights, the same volume. It overlaps the last microbatch's
    // backward (2/3 of its compute).
    // (LoRA: the adapters' bf16 gradients alone)
    const sharedGradBytes = l.lora ? adapters * ADAPTER_BYTES.grad : stage.shared * b.grad;
    dpSeconds = allReduceTime(sharedGradBytes, dpGroup, dpLink) + allReduceTime(stage.experts * b.grad, edp, edpLink);
    dpExposed = Math.max(0, dpSeconds - (2 / 3) * computeMb);
  }
  // Offload: this GPU's partition of gradients goes to the host, the host's Adam updates it, and the
  // updated bf16 weights come back.
  const partition = stage.shared / dpGroup + stage.experts / edp;
  const offloadSeconds = l.offload ? (partition * (b.grad + wireWeight)) / gpu.hostBytesPerS + partition / HOST_ADAM_PARAMS_PER_S : 0;

  const stepSeconds = slots * slot + dpExposed + offloadSeconds;
  const tokensPerStep = l.microBatches * l.microBatch * l.seqLen * l.dp;
  const modelFlopsPerStep = (l.lora ? loraTrainingFlopsPerToken(m, l.seqLen, l.lora.rank) : trainingFlopsPerToken(m, l.seqLen)) * tokensPerStep;
  const comm: CommTime[] = [];
  const add = (kind: CommKind, link: string, seconds: number, exposed: number) => {
    if (seconds > 0) comm.push({ kind, link, seconds, exposedSeconds: exposed });
  };
  // NOTE: a stage runs m + p - 1 slots, but the p - 1 of them its microbatches do not fill are the
  // bubble (bubbleSeconds); the collectives exposed are those of its own m microbatches, so compute,
  // exposed communication and bubble add up to the step.
  add("tensor", tpLink.name, tpMb * l.microBatches, tpMb * l.microBatches);
  add("expert", epLink.name, epMb * l.microBatches, epMb * l.microBatches);
  add("pipeline", ppLink.name, ppMb * l.microBatches, ppMb * l.microBatches);
  add("context", cpMb.link, cpMb.seconds * l.microBatches, cpMb.exposed * l.microBatches);
  add("data", l.ep > 1 && edp > 1 && edpLink.name !== dpLink.name ? `${dpLink.name} / ${edpLink.name}` : dpLink.name, dpSeconds, dpExposed);
  add("offload", "host", offloadSeconds, offloadSeconds);
  return {
    computeSeconds: computeMb * l.microBatches,
    comm,
    bubbleFraction,
    bubbleSeconds: idle * slot,
    stepSeconds,
    tokensPerStep,
    modelFlopsPerStep,
    mfu: modelFlopsPerStep / (stepSeconds * gpus * gpu.bf16Flops),
  };
}
