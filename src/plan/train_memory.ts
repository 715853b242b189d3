// train_memory.ts: bytes per GPU of one training layout: weights, gradients, optimizer states and
// activations, for data/tensor/pipeline/expert parallel degrees, ZeRO stage 0-3, activation
// checkpointing and optimizer offload. The layout type lives here; time is train_step.ts's.
//
// Bytes per parameter: mixed precision ("bf16") keeps bf16 weights (2), gradients accumulated and
// reduced in an fp32 buffer (4: Megatron-LM's main_grad, which it forces on with bf16, since bf16
// sums of many microbatches lose precision) and, for Adam, an fp32 master copy, m and v
// (4 + 4 + 4): 18 in all, where the ZeRO paper's (Rajbhandari et al. 2020) bf16 gradients give 16.
// Pure fp32 keeps weights (4), gradients (4), m and v (4 + 4): also 16, with twice the activations.
// fp8 training (Transformer Engine's recipe, as Megatron-LM runs it) keeps bf16 mixed precision's 18
// and adds the fp8 copy of each weight and of its transpose (Hopper's fp8 GEMM takes only the TN
// layout), cached across microbatches: 1 + 1 more; activations are counted as bf16 (TE keeps the
// GEMM inputs in fp8, so this is an upper bound).
// Activations follow Korthikanti et al. 2022 ("Reducing activation recomputation") for flash
// attention and no dropout; with tensor parallelism, sequence parallelism divides them all by tp
// (without it, the 4h elements outside the tensor-parallel regions stay whole: the two norm inputs
// and the inputs of the QKV and first MLP matmuls). Eager (non-flash) attention adds the softmax
// output, a x s elements a token: Korthikanti's 5as/h bytes is that 2-byte output, the 1-byte dropout
// mask and the 2-byte dropout output, and kiln has no dropout. Selective recomputation drops it again.
// Context parallelism splits every sequence over cp GPUs: the activations of s / cp tokens each.

import type { PlanModel } from "./plan_model.js";
import { countParams, embeddingParams, headParams, largestLayer, moeLayerCount } from "./accounting.js";
import type { TrainOptions, TrainPrecision } from "./train_options.js";
import { cpOf, precisionOf } from "./train_options.js";
import { ADAPTER_BYTES, frozenBaseBytes, loraAdapterParams } from "./lora.js";

export type { TrainPrecision } from "./train_options.js";
export type ZeroStage = 0 | 1 | 2 | 3;

/** A layout and the options it runs with (train_options.ts; absent: bf16 mixed, 1F1B, flash, SP on). */
export interface TrainLayout extends TrainOptions {
  readonly tp: number;
  readonly pp: number;
  readonly dp: number;
  /** Expert parallel degree, carved out of dp (the experts' own data-parallel group is dp / ep). */
  readonly ep: number;
  readonly zero: ZeroStage;
  /** Full activation checkpointing: keep each layer's input, recompute the rest in backward. */
  readonly checkpointing: boolean;
  /** Optimizer states (and the fp32 master weights) in host memory, updated there (ZeRO-Offload). */
  readonly offload: boolean;
  /** Sequences per microbatch. */
  readonly microBatch: number;
  /**
   * Model chunks per GPU of the interleaved pipeline schedule (1 or absent: plain 1F1B). Only a fixed
   * layout sets it; the memory model keeps 1F1B's in-flight activations (interleaving adds a little).
   */
  readonly interleave?: number;
  /** Microbatches per step (gradient accumulation; what fills the pipeline). */
  readonly microBatches: number;
  readonly seqLen: number;
}

export interface TrainMemory {
  readonly weights: number;
  readonly grads: number;
  readonly optimizer: number;
  readonly activations: number;
  readonly total: number;
  /** Optimizer bytes kept in host memory instead (offload). */
  readonly hostOptimizer: number;
}

const BYTES: Readonly<Record<TrainPrecision, { weight: number; grad: number; optimizer: number; activation: number }>> = {
  bf16: { weight: 2, grad: 4, optimizer: 12, activation: 2 },
  fp32: { weight: 4, grad: 4, optimizer: 8, activation: 4 },
  fp8: { weight: 4, grad: 4, optimizer: 12, activation: 2 },
};

export const bytesPerParam = (p: TrainPrecision) => BYTES[p];

/** The parameters one GPU holds before ZeRO: its pipeline stage's share, split by tp (and experts by ep). */
export function stageParams(m: PlanModel, l: Pick<TrainLayout, "tp" | "pp" | "ep">): { shared: number; experts: number } {
  if (l.pp === 1) {
    const c = countParams(m);
    return { shared: (c.total - c.experts) / l.tp, experts: c.experts / (l.tp * l.ep) };
  }
  // NOTE: the worst stage: ceil(layers / pp) of the largest layer, and the embedding or the head.
  const layers = Math.ceil(m.nLayers / l.pp);
  const layer = largestLayer(m);
  const ends = Math.max(embeddingParams(m), headParams(m));
  return { shared: (layers * layer.shared + ends) / l.tp, experts: (layers * layer.experts) / (l.tp * l.ep) };
}

/** Activation elements one token leaves for backward in one layer (the largest layer). */
export function activationElementsPerToken(m: PlanModel): number {
  const h = m.dim;
  const dq = m.nHeads * m.headDim;
  const dkv = m.nKvHeads * m.headDim;
  // two norm inputs; attention: QKV input, Q, K, V, the output (flash attention keeps no scores).
  const attention = 2 * h + h + 2 * dq + 2 * dkv;
  // MLP input, then the hidden activations backward needs: gate and up outputs and their product
  // (gated) or the GELU input and output (GPT-2).
  const mlpHidden = (ff: number): number => (m.family === "gpt2" ? 2 * ff : 3 * ff);
  const e = m.moe;
  const mlp = e && moeLayerCount(m) > 0 ? h + (e.topK + e.sharedExperts) * (h + mlpHidden(e.expertHiddenDim)) : h + mlpHidden(m.hiddenDim);
  return attention + mlp;
}

/**
 * Activation elements one token keeps in one layer that tensor parallelism does not split: with
 * sequence parallelism none; without it the two norm inputs and the QKV and MLP inputs (4h).
 */
export function replicatedElementsPerToken(m: PlanModel, l: Pick<TrainLayout, "tp" | "sequenceParallel">): number {
  return l.tp > 1 && l.sequenceParallel === false ? 4 * m.dim : 0;
}

/** Attention-score elements one token keeps per layer: eager attention's softmax output (a x s), unless recomputed. */
export function scoreElementsPerToken(m: PlanModel, l: Pick<TrainLayout, "attention" | "selective" | "seqLen">): number {
  return l.attention === "eager" && l.selective !== true ? m.nHeads * l.seqLen : 0;
}

/** Per-GPU memory of a layout, for the most loaded pipeline stage. */
export function trainMemoryPerGpu(m: PlanModel, l: TrainLayout, precision: TrainPrecision = precisionOf(l)): TrainMemory {
  const b = BYTES[precision];
  const stage = stageParams(m, l);
  const cp = cpOf(l);
  // NOTE: weights are replicated over cp; ZeRO shards over the data-parallel and context-parallel ranks together (Megatron's dp x cp group).
  const dpShards = l.dp * cp;
  const expertDp = dpShards / l.ep;
  const sharded = (stageBytes: number, stageExpertBytes: number, on: boolean): number =>
    on ? stageBytes / dpShards + stageExpertBytes / expertDp : stageBytes + stageExpertBytes;
  const layer = largestLayer(m);
  // ZeRO-3 gathers each layer's full weights before using it; with prefetch two layers are whole at once.
  const gathered = l.zero === 3 ? (2 * (layer.shared + layer.experts / l.ep) / l.tp) * b.weight : 0;
  const adapters = l.lora ? loraAdapterParams(m, l.lora.rank) : 0;
  // NOTE: LoRA (data parallel only, ZeRO 0): the frozen base's bytes and the adapters; gradients and Adam state for the adapters alone.
  const weights = l.lora ? frozenBaseBytes(m, l.lora.qlora) + adapters * ADAPTER_BYTES.weight : sharded(stage.shared * b.weight, stage.experts * b.weight, l.zero >= 3) + gathered;
  const grads = l.lora ? adapters * ADAPTER_BYTES.grad : sharded(stage.shared * b.grad, stage.experts * b.grad, l.zero >= 2);
  const optimizerBytes = l.lora ? adapters * ADAPTER_BYTES.optimizer : sharded(stage.shared * b.optimizer, stage.experts * b.optimizer, l.zero >= 1);
  const optimizer = l.offload ? 0 : optimizerBytes;

  const tokens = (l.microBatch * l.seqLen) / cp;
  const replicated = replicatedElementsPerToken(m, l);
  const split = activationElementsPerToken(m) - replicated + scoreElementsPerToken(m, l);
  const perLayer = (split / l.tp + replicated) * b.activation * tokens;
  const layerInput = (m.dim * b.activation * tokens) / (replicated > 0 ? 1 : l.tp);
  const layers = Math.ceil(m.nLayers / l.pp);
  // NOTE: under 1F1B the first stage holds min(microbatches, pp) microbatches in flight, the last one;
  // with checkpointing each keeps its layers' inputs, plus one layer's full set while recomputing.
  const stored = (inFlight: number): number =>
    l.checkpointing ? inFlight * layers * layerInput + perLayer : inFlight * layers * perLayer;
  const logits = (tokens * m.vocabSize * 4) / l.tp; // fp32 logits for the loss, vocab-parallel
  const first = stored(Math.min(l.microBatches, l.pp));
  const activations = l.pp === 1 ? first + logits : Math.max(first, stored(1) + logits);
  return { weights, grads, optimizer, activations, total: weights + grads + optimizer + activations, hostOptimizer: l.offload ? optimizerBytes : 0 };
}
