// train_plan.ts: the training planner: for a model, a cluster, a token budget and an optional target
// time, it enumerates layouts (tensor/pipeline/data/expert parallel degrees, ZeRO stage,
// checkpointing, offload, microbatch size), keeps those that fit in memory, ranks them by
// throughput, and explains the choice, or says which constraint failed and by how much. Memory is
// train_memory.ts, step time train_step.ts.

import type { GpuSpec } from "./gpus.js";
import type { PlanModel } from "./plan_model.js";
import type { ParamCounts } from "./accounting.js";
import { countParams, matmulParams, trainingFlopsPerToken } from "./accounting.js";
import type { StepEstimate } from "./train_step.js";
import { estimateStep, trainMatmulFlops } from "./train_step.js";
import type { CommModel } from "./collectives.js";
import type { TrainLayout, TrainMemory } from "./train_memory.js";
import { trainMemoryPerGpu } from "./train_memory.js";
import { PlanInputError, formatBytes, formatCount, formatInt, formatPercent } from "./units.js";
import { batchNotes, gpusForTarget, maxUsefulGpus } from "./train_advice.js";
import type { FixedLayout } from "./train_layouts.js";
import { checkFixedLayout, enumerateLayouts, optionsOf } from "./train_layouts.js";
import { checkTrainOptions, precisionOf } from "./train_options.js";
import { checkLora, loraTrainingFlopsPerToken } from "./lora.js";

export { enumerateLayouts } from "./train_layouts.js";

/** Share of a GPU's memory a plan may fill: the rest is the CUDA context, NCCL buffers, fragmentation. */
export const USABLE_MEMORY_FRACTION = 0.9;
/** Tokens per optimizer step when not given (Llama 2's 4M-token batches). */
export const DEFAULT_BATCH_TOKENS = 4 * 1024 * 1024;
/**
 * Bounds past which an input is a typo, not a plan: 1e15 tokens is 60x Llama 3's 15T, a million GPUs
 * several times the largest clusters, a 1e10-token batch 600x Llama 3's 16M, a century of training.
 */
export const MAX_TOKENS = 1e15;
export const MAX_GPUS = 1e6;
export const MAX_BATCH_TOKENS = 1e10;
export const MAX_TARGET_DAYS = 36500;

export interface TrainRequest {
  readonly model: PlanModel;
  readonly gpu: GpuSpec;
  readonly gpus: number;
  /** Training tokens in all. */
  readonly tokens: number;
  readonly targetDays?: number;
  /** Default: the model's context, at most 8192. */
  readonly seqLen?: number;
  /** Tokens per optimizer step (global batch). Default DEFAULT_BATCH_TOKENS. */
  readonly batchTokens?: number;
  /** Link efficiencies and collective latencies (default COMM_DEFAULTS: published NCCL figures). */
  readonly comm?: CommModel;
  /** Values of the layout the user fixed (the rest is searched); all of them: one layout evaluated. */
  readonly fixed?: FixedLayout;
  /** MFU to assume instead of the step model's (time and cost follow from it; memory does not change). */
  readonly mfu?: number;
}

export interface TrainCandidate {
  readonly layout: TrainLayout;
  readonly memory: TrainMemory;
  readonly fits: boolean;
  readonly step: StepEstimate;
  readonly tokensPerSecond: number;
  readonly days: number;
  readonly gpuHours: number;
  readonly cost: number;
  readonly costPerMillionTokens: number;
  /** With a given MFU (TrainRequest.mfu), the step model's own estimate; `step` then runs at the given MFU. */
  readonly modelledStep?: StepEstimate;
}

export interface TrainPlan {
  readonly model: string;
  readonly gpu: string;
  readonly gpus: number;
  readonly tokens: number;
  readonly seqLen: number;
  readonly batchTokens: number;
  readonly params: ParamCounts;
  /** 6N's N: the weights a token multiplies by (no embedding lookup or norms; active ones for an MoE). */
  readonly flopsParams: number;
  /** 6N + attention, the whole run. */
  readonly trainingFlops: number;
  readonly usableMemoryBytes: number;
  readonly considered: number;
  readonly feasible: number;
  /** The chosen layout; absent when nothing fits (see failure). */
  readonly best?: TrainCandidate;
  /** The best feasible candidates, fastest first (the best is the first). */
  readonly ranked: readonly TrainCandidate[];
  /** Why the best was chosen: one sentence per decision. */
  readonly reasons: readonly string[];
  /** What failed when nothing fits, or the target time is missed. */
  readonly failure?: string;
  readonly targetDays?: number;
  readonly meetsTarget?: boolean;
  /** For a missed target: the fewest whole-node GPUs that, re-planned, meet it (absent when none does). */
  readonly suggestedGpus?: number;
  /** What the plan changed or doubts about the request: a batch rounded to fit, a batch too small. */
  readonly notes: readonly string[];
}

function evaluate(req: TrainRequest, layout: TrainLayout, usable: number): TrainCandidate {
  const memory = trainMemoryPerGpu(req.model, layout);
  const modelled = estimateStep(req.model, req.gpu, layout, req.comm);
  // NOTE: a given MFU sets the step time from the model FLOPs; the breakdown stays the step model's.
  const step = req.mfu === undefined ? modelled : { ...modelled, stepSeconds: modelled.modelFlopsPerStep / (req.mfu * req.gpus * req.gpu.bf16Flops), mfu: req.mfu };
  const tokensPerSecond = step.tokensPerStep / step.stepSeconds;
  const seconds = req.tokens / tokensPerSecond;
  const gpuHours = (seconds / 3600) * req.gpus;
  const cost = gpuHours * req.gpu.pricePerHour;
  return {
    layout, memory, fits: memory.total <= usable, step, tokensPerSecond, days: seconds / 86400, gpuHours, cost, costPerMillionTokens: cost / (req.tokens / 1e6),
    ...(req.mfu === undefined ? {} : { modelledStep: modelled }),
  };
}

/** "tp=8 pp=4 dp=32 zero=1 ckpt mb=1x16" */
export function describeLayout(l: TrainLayout): string {
  const parts = [`tp=${l.tp}`, `pp=${l.pp}`, `dp=${l.dp}`];
  if (l.ep > 1) parts.push(`ep=${l.ep}`);
  parts.push(`zero=${l.zero}`);
  if (l.checkpointing) parts.push("ckpt");
  if (l.offload) parts.push("offload");
  if ((l.cp ?? 1) > 1) parts.push(`cp=${l.cp}`);
  if (l.pp > 1 && (l.interleave ?? 1) > 1) parts.push(`v=${l.interleave}`);
  if (l.pp > 1 && l.schedule === "zb-h1") parts.push("zb-h1");
  if (l.selective) parts.push("selective");
  if (l.precision && l.precision !== "bf16") parts.push(l.precision);
  if (l.attention === "eager") parts.push("eager");
  if (l.sequenceParallel === false && l.tp > 1) parts.push("no-sp");
  if (l.lora) parts.push(`${l.lora.qlora ? "qlora" : "lora"}=${l.lora.rank}`);
  parts.push(`mb=${l.microBatch}x${l.microBatches}`);
  return parts.join(" ");
}

const KNOBS = ["tp", "pp", "ep", "zero", "checkpointing", "offload", "microBatch"] as const;
const knobText = (k: (typeof KNOBS)[number], l: TrainLayout): string =>
  k === "checkpointing" ? (l.checkpointing ? "with checkpointing" : "without checkpointing")
  : k === "offload" ? (l.offload ? "with offload" : "without offload")
  : k === "microBatch" ? `microbatch ${l.microBatch}` : `${k}=${l[k]}`;

function overBy(c: TrainCandidate, usable: number): string {
  return `needs ${formatBytes(c.memory.total)} per GPU, ${formatBytes(c.memory.total - usable)} (${((c.memory.total / usable - 1) * 100).toFixed(0)}%) over the ${formatBytes(usable)} usable`;
}

/** One sentence per knob: what the best alternative value would cost, or why none fits. */
function explain(best: TrainCandidate, all: readonly TrainCandidate[], usable: number, gpu: GpuSpec): string[] {
  const s = best.modelledStep ?? best.step;
  const exposed = s.comm.reduce((a, c) => a + c.exposedSeconds, 0);
  const top = [...s.comm].sort((a, b) => b.exposedSeconds - a.exposedSeconds)[0];
  const reasons = [
    `fits: ${formatBytes(best.memory.total)} of ${formatBytes(usable)} usable per GPU (weights ${formatBytes(best.memory.weights)}, gradients ${formatBytes(best.memory.grads)}, optimizer ${formatBytes(best.memory.optimizer)}, activations ${formatBytes(best.memory.activations)})`,
    (best.modelledStep ? `step ${best.step.stepSeconds.toFixed(2)} s at the given MFU of ${formatPercent(best.step.mfu)}; the step model's would be ` : "") +
    `step ${s.stepSeconds.toFixed(2)} s: compute ${formatPercent(s.computeSeconds / s.stepSeconds)}, exposed communication ${formatPercent(exposed / s.stepSeconds)}` +
      (top ? ` (most: ${top.kind} parallel over ${top.link})` : "") + `, pipeline bubble ${formatPercent(s.bubbleSeconds / s.stepSeconds)} (these add to 100%); MFU ${formatPercent(s.mfu)} of ${gpu.name}'s dense bf16 peak`,
  ];
  for (const k of KNOBS) {
    const others = all.filter((c) => c.layout[k] !== best.layout[k]);
    if (others.length === 0) continue;
    const fitting = others.filter((c) => c.fits);
    if (fitting.length > 0) {
      const alt = fitting.reduce((a, c) => (c.tokensPerSecond > a.tokensPerSecond ? c : a));
      const slower = 1 - alt.tokensPerSecond / best.tokensPerSecond;
      reasons.push(slower < 5e-4
        ? `${knobText(k, best.layout)}: about as fast as ${knobText(k, alt.layout)} (${describeLayout(alt.layout)}), which needs ${formatBytes(Math.abs(alt.memory.total - best.memory.total))} ${alt.memory.total >= best.memory.total ? "more" : "less"} memory per GPU`
        : `${knobText(k, best.layout)}: the best layout ${knobText(k, alt.layout)} (${describeLayout(alt.layout)}) is ${formatPercent(slower)} slower`);
    } else {
      const closest = others.reduce((a, c) => (c.memory.total < a.memory.total ? c : a));
      reasons.push(`${knobText(k, best.layout)}: no layout ${k === "checkpointing" || k === "offload" ? knobText(k, closest.layout) : `with another ${k === "microBatch" ? "microbatch" : k}`} fits; the closest (${describeLayout(closest.layout)}) ${overBy(closest, usable)}`);
    }
  }
  return reasons;
}

export function planTraining(req: TrainRequest): TrainPlan {
  const { model: m, gpu, gpus, tokens } = req;
  if (!(Number.isInteger(gpus) && gpus >= 1)) throw new PlanInputError(`gpus: ${gpus} is not a positive whole number`);
  if (!(tokens > 0)) throw new PlanInputError(`tokens: ${tokens} is not positive`);
  const tooMuch = (flag: string, v: number | undefined, max: number) => {
    if (v !== undefined && v > max) throw new PlanInputError(`${flag}: ${v} is more than ${max.toLocaleString("en-US")}, beyond any plan (a typo?)`);
  };
  tooMuch("--gpus", gpus, MAX_GPUS);
  tooMuch("--tokens", tokens, MAX_TOKENS);
  tooMuch("--batch-tokens", req.batchTokens, MAX_BATCH_TOKENS);
  tooMuch("--target-days", req.targetDays, MAX_TARGET_DAYS);
  const seqLen = req.seqLen ?? Math.min(m.maxSeqLen, 8192);
  // NOTE: a model trained (or positioned) for a shorter context cannot simply take longer sequences.
  if (seqLen > m.maxSeqLen) throw new PlanInputError(`--seq-len ${seqLen} is longer than ${m.name}'s context of ${m.maxSeqLen} tokens`);
  const batchTokens = req.batchTokens ?? DEFAULT_BATCH_TOKENS;
  const usable = gpu.memoryBytes * USABLE_MEMORY_FRACTION;
  const params = countParams(m);
  const base = {
    model: m.name, gpu: gpu.name, gpus, tokens, seqLen, batchTokens, params, flopsParams: matmulParams(m), notes: [] as string[],
    trainingFlops: (req.fixed?.lora ? loraTrainingFlopsPerToken(m, seqLen, req.fixed.lora.rank) : trainingFlopsPerToken(m, seqLen)) * tokens, usableMemoryBytes: usable,
    ...(req.targetDays === undefined ? {} : { targetDays: req.targetDays }),
  };
  if (req.mfu !== undefined && !(req.mfu > 0 && req.mfu <= 1)) throw new PlanInputError(`--mfu: ${req.mfu} is not a share of peak in (0, 1] (40% is 0.4)`);
  const fixed = req.fixed ?? {};
  checkFixedLayout(m, gpus, fixed);
  checkTrainOptions(seqLen, fixed, fixed);
  if (fixed.lora) checkLora(m, fixed.lora);
  trainMatmulFlops(gpu, precisionOf(fixed)); // throws for fp8 on a GPU without fp8 tensor cores
  const layouts = enumerateLayouts(m, gpu, gpus, seqLen, batchTokens, fixed);
  if (layouts.length === 0) {
    const sequences = Math.floor(batchTokens / seqLen);
    const mb = fixed.microBatch ?? 1;
    return { ...base, considered: 0, feasible: 0, ranked: [], reasons: [],
      failure: Object.keys(fixed).length > 0
        ? `no layout: the global batch of ${batchTokens} tokens is ${sequences} sequences of ${seqLen}, fewer than the fixed layout's data-parallel ranks x microbatch need (at least ${fixed.dp ?? gpus / ((fixed.tp ?? 1) * (fixed.pp ?? 1))} x ${mb}; raise --batch-tokens)`
        : `no layout: the global batch of ${batchTokens} tokens is ${sequences} sequences of ${seqLen}, fewer than the ${gpus} GPUs' smallest data-parallel degree needs (raise --batch-tokens or use fewer GPUs)` };
  }
  const all = layouts.map((l) => evaluate(req, l, usable));
  const ranked = all.filter((c) => c.fits).sort((a, b) => b.tokensPerSecond - a.tokensPerSecond || a.memory.total - b.memory.total);
  const best = ranked[0];
  if (!best) {
    const closest = all.reduce((a, c) => (c.memory.total < a.memory.total ? c : a));
    return { ...base, considered: all.length, feasible: 0, ranked: [], reasons: [],
      failure: `memory: no layout fits on ${gpus} x ${gpu.name}. The smallest (${describeLayout(closest.layout)}) ${overBy(closest, usable)}: use more GPUs, GPUs with more memory, or shorter sequences` };
  }
  const reasons = explain(best, all, usable, gpu);
  const notes = batchNotes(best, batchTokens, gpus);
  let failure: string | undefined;
  let meetsTarget: boolean | undefined;
  let suggestedGpus: number | undefined;
  if (req.targetDays !== undefined) {
    meetsTarget = best.days <= req.targetDays;
    if (!meetsTarget) {
      const missed = `target time: the fastest layout takes ${best.days.toFixed(1)} days, ${(best.days - req.targetDays).toFixed(1)} days (${((best.days / req.targetDays - 1) * 100).toFixed(0)}%) over the ${req.targetDays}-day target`;
      // NOTE: re-planned without the target, or each count would search again.
      const maxGpus = Math.min(MAX_GPUS, maxUsefulGpus(m, gpu, Math.floor(batchTokens / seqLen)));
      const found = gpusForTarget({ gpus, gpusPerNode: gpu.gpusPerNode, maxGpus, days: req.targetDays, daysNow: best.days },
        (n) => planTraining({ model: m, gpu, gpus: n, tokens, seqLen, batchTokens, ...(req.comm ? { comm: req.comm } : {}), ...(req.mfu ? { mfu: req.mfu } : {}), fixed: optionsOf(fixed) }));
      if (found.meets) {
        suggestedGpus = found.gpus;
        const b = found.plan.best!;
        failure = `${missed}; re-planned, ${formatInt(found.gpus)} ${gpu.name} GPUs (${formatInt(found.gpus / gpu.gpusPerNode)} nodes, the fewest whole nodes that do) meet it: ${describeLayout(b.layout)}, ${b.days.toFixed(1)} days at ${formatPercent(b.step.mfu)} MFU`;
      } else {
        failure = `${missed}; no whole-node count of ${gpu.name} GPUs meets the ${req.targetDays}-day target: the fastest found is ${found.days.toFixed(1)} days on ${formatInt(found.gpus)} GPUs (with ${formatCount(batchTokens)}-token batches at most ${formatInt(found.maxGpus)} GPUs have work; a larger --batch-tokens or more time)`;
      }
    } else {
      reasons.push(`meets the ${req.targetDays}-day target with ${(req.targetDays - best.days).toFixed(1)} days to spare`);
    }
  }
  return {
    ...base, notes, considered: all.length, feasible: ranked.length, best, ranked: ranked.slice(0, 10), reasons, ...(failure ? { failure } : {}),
    ...(meetsTarget === undefined ? {} : { meetsTarget }), ...(suggestedGpus === undefined ? {} : { suggestedGpus }),
  };
}
