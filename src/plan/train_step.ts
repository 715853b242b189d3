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
import { moeLayerCount, trainingFlopsPerToken } from "./accounting.js";
import type { CommModel } from "./collectives.js";
import { COMM_DEFAULTS, allGatherTime, allReduceTime, allToAllTime, groupLink, p2pTime, reduceScatterTime } from "./collectives.js";
import type { TrainLayout } from "./train_memory.js";
import { bytesPerParam, stageParams } from "./train_memory.js";

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

export type CommKind = "tensor" | "expert" | "pipeline" | "data" | "offload";

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
 * Pipeline bubble of 1F1B: (p - 1) / (m + p - 1); with the interleaved schedule (v model chunks per
 * GPU, Narayanan et al. 2021) the idle time shrinks v times: ((p - 1) / v) / (m + (p - 1) / v).
 */
export function pipelineBubble(pp: number, microBatches: number, interleave = 1): number {
  const idle = (pp - 1) / interleave;
  return idle / (microBatches + idle);
}

/** One step of a layout in bf16 mixed precision. */
export function estimateStep(m: PlanModel, gpu: GpuSpec, l: TrainLayout, links: CommModel = COMM_DEFAULTS): StepEstimate {
  const gpus = l.tp * l.pp * l.dp;
  const peak = gpu.bf16Flops;
  const b = bytesPerParam("bf16");
  const actBytes = b.activation;
  const tokensMb = l.microBatch * l.seqLen;
  const layers = Math.ceil(m.nLayers / l.pp);
  const moeLayers = Math.ceil(moeLayerCount(m) / l.pp);
  const recompute = l.checkpointing ? 4 / 3 : 1; // one more forward pass: forward is 1/3 of the work
  // NOTE: the slowest stage has ceil(layers / pp) of the layers; its GPUs split that work tp ways.
  const flopsMb = (trainingFlopsPerToken(m, l.seqLen) * tokensMb * (layers / m.nLayers)) / l.tp;
  const computeMb = (flopsMb * recompute) / (peak * TRAIN_COMPUTE_EFFICIENCY);

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
  const ppLink = groupLink(gpu, l.tp * l.dp, l.pp, links);
  // NOTE: interleaved, a microbatch crosses v times as many stage boundaries.
  const v = l.pp > 1 ? (l.interleave ?? 1) : 1;
  const ppMb = l.pp > 1 ? 2 * v * p2pTime((tokensMb * m.dim * actBytes) / l.tp, ppLink) : 0;

  const slot = computeMb + tpMb + epMb + ppMb;
  const idleSlots = (l.pp - 1) / v;
  const slots = l.microBatches + idleSlots;
  const bubbleFraction = pipelineBubble(l.pp, l.microBatches, v);

  // Data parallel: gradients of the shared weights over dp, of the experts over dp / ep.
  const stage = stageParams(m, l);
  const dpLink = groupLink(gpu, l.tp, l.dp, links);
  const edp = l.dp / l.ep;
  const edpLink = groupLink(gpu, l.tp * l.ep, edp, links);
  let dpSeconds: number;
  let dpExposed: number;
  if (l.zero === 3) {
    // every microbatch gathers the weights twice (forward, backward) and reduce-scatters the gradients
    const perMb =
      2 * allGatherTime(stage.shared * b.weight, l.dp, dpLink) + reduceScatterTime(stage.shared * b.grad, l.dp, dpLink) +
      2 * allGatherTime(stage.experts * b.weight, edp, edpLink) + reduceScatterTime(stage.experts * b.grad, edp, edpLink);
    dpSeconds = perMb * l.microBatches;
    dpExposed = Math.max(0, perMb - computeMb) * l.microBatches;
  } else if (l.zero === 2) {
    // ZeRO-2 keeps only its shard of the gradients, so every microbatch's backward reduce-scatters
    // them (as DeepSpeed stage 2 does): m reduce-scatters, then one all-gather of the updated
    // weights. Each reduce-scatter overlaps its microbatch's backward (2/3 of its compute); the
    // all-gather waits for the optimizer, after the last one.
    const rs = reduceScatterTime(stage.shared * b.grad, l.dp, dpLink) + reduceScatterTime(stage.experts * b.grad, edp, edpLink);
    const ag = allGatherTime(stage.shared * b.weight, l.dp, dpLink) + allGatherTime(stage.experts * b.weight, edp, edpLink);
    dpSeconds = l.microBatches * rs + ag;
    dpExposed = l.microBatches * Math.max(0, rs - (2 / 3) * computeMb) + ag;
  } else {
    // ZeRO 0 all-reduces the whole accumulated gradients once per step; ZeRO-1 reduce-scatters them
    // and all-gathers the updated weights, the same volume. It overlaps the last microbatch's
    // backward (2/3 of its compute).
    dpSeconds = allReduceTime(stage.shared * b.grad, l.dp, dpLink) + allReduceTime(stage.experts * b.grad, edp, edpLink);
    dpExposed = Math.max(0, dpSeconds - (2 / 3) * computeMb);
  }
  // Offload: this GPU's partition of gradients goes to the host, the host's Adam updates it, and the
  // updated bf16 weights come back.
  const partition = stage.shared / l.dp + stage.experts / edp;
  const offloadSeconds = l.offload ? (partition * (b.grad + b.weight)) / gpu.hostBytesPerS + partition / HOST_ADAM_PARAMS_PER_S : 0;

  const stepSeconds = slots * slot + dpExposed + offloadSeconds;
  const tokensPerStep = l.microBatches * l.microBatch * l.seqLen * l.dp;
  const modelFlopsPerStep = trainingFlopsPerToken(m, l.seqLen) * tokensPerStep;
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
  add("data", l.ep > 1 && edp > 1 && edpLink.name !== dpLink.name ? `${dpLink.name} / ${edpLink.name}` : dpLink.name, dpSeconds, dpExposed);
  add("offload", "host", offloadSeconds, offloadSeconds);
  return {
    computeSeconds: computeMb * l.microBatches,
    comm,
    bubbleFraction,
    bubbleSeconds: idleSlots * slot,
    stepSeconds,
    tokensPerStep,
    modelFlopsPerStep,
    mfu: modelFlopsPerStep / (stepSeconds * gpus * gpu.bf16Flops),
  };
}
