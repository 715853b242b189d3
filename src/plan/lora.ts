// lora.ts: fine-tuning with LoRA (Hu et al. 2021) and QLoRA (Dettmers et al. 2023): a frozen base
// model, in bf16 or in 4-bit NF4, and trainable rank-r adapters A (r x d_in) and B (d_out x r) on
// every linear layer of each transformer block (q, k, v, o, gate, up, down: QLoRA's choice, "LoRA on
// all linear transformer block layers"). What it changes: the weights' bytes, the trainable
// parameters (gradients, Adam state, the data-parallel all-reduce: the adapters' only) and the
// FLOPs (no weight gradients for the frozen base). Activations stay the full model's: every adapter
// needs its linear layer's input. train_memory.ts and train_step.ts call in here when a layout has
// `lora`.
//
// Bytes: the base's linear weights take 2 bytes (bf16) or, under QLoRA, NF4's 4 bits plus the
// double-quantized scales: an 8-bit scale per 64 weights and an fp32 scale per 256 of those, 4 +
// 8/64 + 32/(64 x 256) = 4.127 bits (QLoRA section 3, "Double Quantization": 0.127 bits a
// parameter). Embeddings, the head and the norms stay bf16 (bitsandbytes quantizes nn.Linear inside
// the blocks and keeps the output head). Adapters are trained in bf16, QLoRA's "computation data
// type", with bf16 gradients and Adam's m and v in fp32 (its paged 32-bit AdamW): 2 + 2 + 8 = 12
// bytes an adapter parameter.

import type { PlanModel } from "./plan_model.js";
import { countParams, matmulParams, trainingFlopsPerToken } from "./accounting.js";
import { PlanInputError } from "./units.js";

export interface LoraOptions {
  /** The adapters' rank r. */
  readonly rank: number;
  /** 4-bit NF4 base (QLoRA) instead of bf16. */
  readonly qlora: boolean;
}

export const NF4_BITS_PER_PARAM = 4 + 8 / 64 + 32 / (64 * 256);
/** bf16 adapter, bf16 gradient, fp32 Adam m and v. */
export const ADAPTER_BYTES = { weight: 2, grad: 2, optimizer: 8 } as const;

/** The linear layers of one block as (d_in, d_out) pairs: q, k, v, o and the MLP's (gated: gate, up, down). */
function blockLinears(m: PlanModel): [number, number][] {
  const h = m.dim;
  const dq = m.nHeads * m.headDim;
  const dkv = m.nKvHeads * m.headDim;
  const ff = m.hiddenDim;
  const mlp: [number, number][] = m.family === "gpt2" ? [[h, ff], [ff, h]] : [[h, ff], [h, ff], [ff, h]];
  return [[h, dq], [h, dkv], [h, dkv], [dq, h], ...mlp];
}

/** Trainable adapter parameters: r (d_in + d_out) for every linear layer of every block. */
export function loraAdapterParams(m: PlanModel, rank: number): number {
  return m.nLayers * blockLinears(m).reduce((a, [i, o]) => a + rank * (i + o), 0);
}

/** The frozen base's linear-layer weights inside the blocks (what QLoRA quantizes). */
export function blockLinearParams(m: PlanModel): number {
  return m.nLayers * blockLinears(m).reduce((a, [i, o]) => a + i * o, 0);
}

/** Bytes of the frozen base: its block linears at 2 bytes or NF4's 4.127 bits, the rest (embeddings, head, norms, biases) bf16. */
export function frozenBaseBytes(m: PlanModel, qlora: boolean): number {
  const linear = blockLinearParams(m);
  const rest = countParams(m).total - linear;
  return linear * (qlora ? NF4_BITS_PER_PARAM / 8 : 2) + rest * 2;
}

/**
 * Matmul FLOPs a token costs in training under LoRA: forward 2N, backward only the input gradients
 * through the frozen weights (2N, not 4N), and the adapters' own 6 per parameter. (QLoRA's
 * dequantization of each weight before its matmul is not counted.)
 */
export function loraMatmulFlopsPerToken(nMatmul: number, adapters: number): number {
  return 4 * nMatmul + 6 * adapters;
}

/** Model FLOPs of a training token under LoRA: the full model's 6N + attention, less the base's weight gradients (2N), plus the adapters' 6A. */
export function loraTrainingFlopsPerToken(m: PlanModel, seqLen: number, rank: number): number {
  return trainingFlopsPerToken(m, seqLen) - 2 * matmulParams(m) + 6 * loraAdapterParams(m, rank);
}

/** A rank that is not a positive whole number, or a mixture of experts (adapters on experts not modelled), is an error. */
export function checkLora(m: PlanModel, o: LoraOptions): void {
  if (!(Number.isInteger(o.rank) && o.rank >= 1)) throw new PlanInputError(`--lora: rank ${o.rank} is not a positive whole number`);
  if (o.rank > m.dim) throw new PlanInputError(`--lora: rank ${o.rank} is more than ${m.name}'s width of ${m.dim}`);
  if (m.moe) throw new PlanInputError(`--lora: ${m.name} is a mixture of experts; kiln models LoRA adapters on dense models only`);
}
