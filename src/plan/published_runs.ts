// published_runs.ts: the fixed-layout mode against published training throughput: Megatron-LM's
// weak-scaling runs (Narayanan et al. 2021, "Efficient Large-Scale Language Model Training on GPU
// Clusters Using Megatron-LM", Table 1: GPT models on A100 80GB, full activation recomputation) and
// Llama 3 405B on H100s (Llama Team 2024, "The Llama 3 Herd of Models", Table 4). Each run's
// published layout goes through the same code as `kiln plan train --tp --pp --dp ...`; docs/planning.md
// embeds the table this renders.

import type { GpuSpec } from "./gpus.js";
import { findGpu } from "./gpus.js";
import type { PlanModel } from "./plan_model.js";
import { findPreset } from "./presets.js";
import { trainingFlopsPerToken } from "./accounting.js";
import { estimateStep } from "./train_step.js";
import type { TrainLayout } from "./train_memory.js";
import { trainMemoryPerGpu } from "./train_memory.js";
import { USABLE_MEMORY_FRACTION, describeLayout, planTraining } from "./train_plan.js";
import { formatBytes, formatCount, formatInt, formatPercent } from "./units.js";

/** One row of Megatron-LM's Table 1: the GPT model, its layout, the batch and the achieved TFLOP/s per GPU. */
export interface MegatronRun {
  readonly billions: number;
  readonly heads: number;
  readonly hidden: number;
  readonly layers: number;
  readonly tp: number;
  readonly pp: number;
  readonly gpus: number;
  readonly batch: number;
  readonly tflopsPerGpu: number;
}

// Narayanan et al. 2021, Table 1 (vocabulary 51,200, sequences of 2048, A100 80GB on Selene).
export const MEGATRON_TABLE1: readonly MegatronRun[] = [
  { billions: 1.7, heads: 24, hidden: 2304, layers: 24, tp: 1, pp: 1, gpus: 32, batch: 512, tflopsPerGpu: 137 },
  { billions: 3.6, heads: 32, hidden: 3072, layers: 30, tp: 2, pp: 1, gpus: 64, batch: 512, tflopsPerGpu: 138 },
  { billions: 7.5, heads: 32, hidden: 4096, layers: 36, tp: 4, pp: 1, gpus: 128, batch: 512, tflopsPerGpu: 142 },
  { billions: 18.4, heads: 48, hidden: 6144, layers: 40, tp: 8, pp: 1, gpus: 256, batch: 1024, tflopsPerGpu: 135 },
  { billions: 39.1, heads: 64, hidden: 8192, layers: 48, tp: 8, pp: 2, gpus: 512, batch: 1536, tflopsPerGpu: 138 },
  { billions: 76.1, heads: 80, hidden: 10240, layers: 60, tp: 8, pp: 4, gpus: 1024, batch: 1792, tflopsPerGpu: 140 },
  { billions: 145.6, heads: 96, hidden: 12288, layers: 80, tp: 8, pp: 8, gpus: 1536, batch: 2304, tflopsPerGpu: 148 },
  { billions: 310.1, heads: 128, hidden: 16384, layers: 96, tp: 8, pp: 16, gpus: 1920, batch: 2160, tflopsPerGpu: 155 },
  { billions: 529.6, heads: 128, hidden: 20480, layers: 105, tp: 8, pp: 35, gpus: 2520, batch: 2520, tflopsPerGpu: 163 },
  { billions: 1008, heads: 160, hidden: 25600, layers: 128, tp: 8, pp: 64, gpus: 3072, batch: 3072, tflopsPerGpu: 163 },
];
export const MEGATRON_SEQ = 2048;
export const MEGATRON_VOCAB = 51200;

/** Megatron's GPT: LayerNorm, learned positions, a GELU MLP of 4h, the head tied to the embedding. */
export function megatronModel(r: MegatronRun): PlanModel {
  return {
    name: `gpt-${r.billions}b`, family: "gpt2", dim: r.hidden, nLayers: r.layers, nHeads: r.heads, nKvHeads: r.heads, headDim: r.hidden / r.heads,
    hiddenDim: 4 * r.hidden, vocabSize: MEGATRON_VOCAB, maxSeqLen: MEGATRON_SEQ, tiedEmbeddings: true,
  };
}

/**
 * The paper's FLOPs per token (its equation 3 over B x s tokens), activation recomputation included:
 * 96 l h^2 (1 + s / 6h + V / 16lh). Its achieved TFLOP/s divided by this is its tokens/s per GPU.
 */
export function megatronFlopsPerToken(r: MegatronRun): number {
  const { layers: l, hidden: h } = r;
  return 96 * l * h * h * (1 + MEGATRON_SEQ / (6 * h) + MEGATRON_VOCAB / (16 * l * h));
}

export interface PublishedComparison {
  readonly run: string;
  readonly layout: string;
  readonly published: string;
  readonly publishedTokensPerS: number;
  readonly kiln: string;
  readonly kilnTokensPerS: number;
  readonly ratio: number;
  readonly note: string;
}

function megatronRow(r: MegatronRun, a100: GpuSpec): PublishedComparison {
  const m = megatronModel(r);
  const dp = r.gpus / (r.tp * r.pp);
  // NOTE: the paper's runs recompute every layer's activations, keep no ZeRO, and (with pipelines) use 1-sequence microbatches.
  const p = planTraining({
    model: m, gpu: a100, gpus: r.gpus, tokens: 3e11, seqLen: MEGATRON_SEQ, batchTokens: r.batch * MEGATRON_SEQ,
    fixed: { tp: r.tp, pp: r.pp, dp, zero: 0, microBatch: 1, checkpointing: true, offload: false },
  });
  const b = p.best;
  if (!b) throw new Error(`published runs: Megatron ${r.billions}B does not fit in kiln's memory model: ${p.failure}`);
  const published = (r.tflopsPerGpu * 1e12 * r.gpus) / megatronFlopsPerToken(r);
  return {
    run: `Megatron-LM GPT ${r.billions}B, ${formatInt(r.gpus)} A100 80GB, batch ${r.batch}`, layout: describeLayout(b.layout),
    published: `${r.tflopsPerGpu} TFLOP/s per GPU = ${formatCount(published)} tokens/s`, publishedTokensPerS: published,
    kiln: `${formatCount(b.tokensPerSecond)} tokens/s (MFU ${formatPercent(b.step.mfu)}, ${formatBytes(b.memory.total)} per GPU)`, kilnTokensPerS: b.tokensPerSecond,
    ratio: b.tokensPerSecond / published, note: "",
  };
}

/**
 * The paper's GPT-3 estimate: 175B parameters on 300B tokens, 1024 A100s, batch 1536, 140 TFLOP/s per
 * GPU: 34 days (its equation 4, 8TP / nX). The paper gives no layout for it; kiln assumes its 145.6B
 * run's tp=8 and pp=8.
 */
export const GPT3_ESTIMATE = { tokens: 300e9, params: 175e9, gpus: 1024, batch: 1536, tflopsPerGpu: 140, days: 34, tp: 8, pp: 8 } as const;

function gpt3Row(a100: GpuSpec): PublishedComparison {
  const e = GPT3_ESTIMATE;
  const m: PlanModel = {
    name: "gpt3-175b", family: "gpt2", dim: 12288, nLayers: 96, nHeads: 96, nKvHeads: 96, headDim: 128, hiddenDim: 4 * 12288,
    vocabSize: MEGATRON_VOCAB, maxSeqLen: MEGATRON_SEQ, tiedEmbeddings: true,
  };
  const p = planTraining({
    model: m, gpu: a100, gpus: e.gpus, tokens: e.tokens, seqLen: MEGATRON_SEQ, batchTokens: e.batch * MEGATRON_SEQ,
    fixed: { tp: e.tp, pp: e.pp, dp: e.gpus / (e.tp * e.pp), zero: 0, microBatch: 1, checkpointing: true, offload: false },
  });
  const b = p.best;
  if (!b) throw new Error(`published runs: GPT-3 175B does not fit in kiln's memory model: ${p.failure}`);
  const publishedDays = (8 * e.tokens * e.params) / (e.gpus * e.tflopsPerGpu * 1e12) / 86400;
  return {
    run: `Megatron-LM's GPT-3 175B estimate, ${formatInt(e.gpus)} A100 80GB, batch ${e.batch}, 300B tokens`, layout: describeLayout(b.layout),
    published: `${e.days} days (8TP / nX = ${publishedDays.toFixed(1)}) = ${formatCount(e.tokens / (publishedDays * 86400))} tokens/s`, publishedTokensPerS: e.tokens / (publishedDays * 86400),
    kiln: `${b.days.toFixed(1)} days, ${formatCount(b.tokensPerSecond)} tokens/s (MFU ${formatPercent(b.step.mfu)})`, kilnTokensPerS: b.tokensPerSecond,
    ratio: b.tokensPerSecond / (e.tokens / (publishedDays * 86400)), note: "The paper gives no layout for the estimate: tp=8 pp=8 is its 145.6B run's",
  };
}

/** Llama 3 405B's published layouts (Table 4): 16M-token batches of 8192-token sequences, MFU in bf16. */
export const LLAMA3_RUNS = [
  { gpus: 8192, tp: 8, pp: 16, dp: 64, mfu: 0.43 },
  { gpus: 16384, tp: 8, pp: 16, dp: 128, mfu: 0.41 },
] as const;
/** Model chunks per GPU assumed for Llama 3's interleaved schedule (the paper names the schedule, not v). */
export const LLAMA3_INTERLEAVE = 4;

function llamaRows(h100: GpuSpec): PublishedComparison[] {
  const m = findPreset("llama3-405b")!;
  const seqLen = 8192;
  const sequences = (16 * 2 ** 20) / seqLen;
  return LLAMA3_RUNS.map((r) => {
    const layout = (checkpointing: boolean): TrainLayout => ({
      tp: r.tp, pp: r.pp, dp: r.dp, ep: 1, zero: 1, checkpointing, offload: false, microBatch: 1, microBatches: sequences / r.dp, seqLen, interleave: LLAMA3_INTERLEAVE,
    });
    const step = estimateStep(m, h100, layout(false));
    const ckpt = estimateStep(m, h100, layout(true));
    const mem = trainMemoryPerGpu(m, layout(false));
    const tokens = (mfu: number) => (mfu * r.gpus * h100.bf16Flops) / trainingFlopsPerToken(m, seqLen);
    return {
      run: `Llama 3 405B, ${formatInt(r.gpus)} H100, 16M-token batch`, layout: describeLayout(layout(false)),
      published: `MFU ${formatPercent(r.mfu)} = ${formatCount(tokens(r.mfu))} tokens/s`, publishedTokensPerS: tokens(r.mfu),
      kiln: `${formatCount(step.tokensPerStep / step.stepSeconds)} tokens/s (MFU ${formatPercent(step.mfu)})`, kilnTokensPerS: step.tokensPerStep / step.stepSeconds,
      ratio: step.tokensPerStep / step.stepSeconds / tokens(r.mfu),
      note: `v=${LLAMA3_INTERLEAVE} is assumed. kiln's memory model puts this layout at ${formatBytes(mem.total)} per GPU, over the ${formatBytes(USABLE_MEMORY_FRACTION * h100.memoryBytes)} usable ` +
        `(1F1B's worst stage holds ${r.pp} microbatches of 8 layers; Meta balanced its first and last stages), so the search would not pick it; with full recomputation, which fits, kiln gives MFU ${formatPercent(ckpt.mfu)}.`,
    };
  });
}

export function publishedRuns(): PublishedComparison[] {
  const a100 = findGpu("a100-80");
  return [...MEGATRON_TABLE1.map((r) => megatronRow(r, a100)), gpt3Row(a100), ...llamaRows(findGpu("h100"))];
}

export function publishedRunsMarkdown(): string {
  return [
    "| Run | Layout | Published | kiln | kiln / published |",
    "|---|---|---|---|---|",
    ...publishedRuns().map((c) => `| ${c.run} | ${c.layout} | ${c.published} | ${c.kiln}${c.note ? `. ${c.note}` : ""} | ${c.ratio.toFixed(2)} |`),
  ].join("\n");
}
