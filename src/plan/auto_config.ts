// auto_config.ts: the settings `kiln serve --kv-cache auto --max-batch auto` uses: how many KV blocks
// fit on the device after the weights and a step's working memory, how many sequences may run at
// once, and how many tokens one step may batch. The one function a serving layer calls is
// planServing(); serve_plan.ts asks the same question for capacity plans. It allocates nothing.

import type { ModelConfig } from "../models/types.js";
import type { PlanModel } from "./plan_model.js";
import { planModelFromConfig } from "./plan_model.js";
import { countParams, kvBytesPerToken } from "./accounting.js";
import { activationElementsPerToken } from "./train_memory.js";
import { formatBytes } from "./units.js";

/** Most sequences running at once (vLLM's default max_num_seqs). */
export const MAX_NUM_SEQS = 256;
/** A step's token budget for long contexts (vLLM's chunked-prefill default). */
export const STEP_TOKENS = 2048;

export interface ServingAutoInput {
  /** The model: a ModelConfig (as loaded) or a PlanModel. */
  readonly config: ModelConfig | PlanModel;
  /** Memory of one device, bytes. */
  readonly deviceMemoryBytes: number;
  /** Bytes of one cached K or V element, and of activations: 2 for f16/bf16 (default), 4 for f32, 1 for fp8. */
  readonly kvBytesPerElement?: number;
  /** Bytes of the whole model's weights as loaded; default parameters x kvBytesPerElement. */
  readonly weightsBytes?: number;
  /** Most tokens of one request; default the model's context. */
  readonly maxModelLen?: number;
  /** Tokens per KV block; default 16. */
  readonly blockSize?: number;
  /** Share of device memory to fill; default 0.9 (vLLM's gpu_memory_utilization). */
  readonly memoryFraction?: number;
  /** GPUs sharing the model (tensor parallel); default 1. Each holds 1/tp of the weights and KV heads. */
  readonly tensorParallel?: number;
  /** Tokens a typical request holds (prompt + output); default maxModelLen, so no request is ever preempted. */
  readonly expectedTokensPerSeq?: number;
  /** The device's largest buffer: one layer's K (or V) cache must fit in it. */
  readonly maxBufferBytes?: number;
}

export interface ServingAutoPlan {
  readonly numBlocks: number;
  readonly blockSize: number;
  readonly kvTokens: number;
  /** Max running sequences (the scheduler's maxNumSeqs). */
  readonly maxNumSeqs: number;
  /** Max tokens per step (the scheduler's maxNumBatchedTokens). */
  readonly maxNumBatchedTokens: number;
  /** KV bytes of one block on one device, every layer, K and V. */
  readonly bytesPerBlock: number;
  /** Weights on one device. */
  readonly weightsBytes: number;
  /** A step's working memory (activations and logits of maxNumBatchedTokens tokens). */
  readonly workspaceBytes: number;
  /** One line to print: what was chosen and from what. */
  readonly summary: string;
}

/** The sizing, or how many bytes are missing for one full-context request. */
export type ServingSizing = { readonly ok: true; readonly plan: ServingAutoPlan } | { readonly ok: false; readonly message: string; readonly shortBytes: number };

const asPlanModel = (c: ModelConfig | PlanModel): PlanModel => ("arch" in c ? planModelFromConfig(c, c.arch) : c);

function positiveInt(name: string, v: number): number {
  if (!(Number.isInteger(v) && v >= 1)) throw new Error(`planServing: ${name} must be a positive integer, got ${v}`);
  return v;
}

/** Like planServing, but reports a model that does not fit instead of throwing. */
export function sizeServing(input: ServingAutoInput): ServingSizing {
  const m = asPlanModel(input.config);
  const elem = input.kvBytesPerElement ?? 2;
  const tp = positiveInt("tensorParallel", input.tensorParallel ?? 1);
  const blockSize = positiveInt("blockSize", input.blockSize ?? 16);
  const maxModelLen = positiveInt("maxModelLen", input.maxModelLen ?? m.maxSeqLen);
  const expected = positiveInt("expectedTokensPerSeq", Math.min(input.expectedTokensPerSeq ?? maxModelLen, maxModelLen));
  const fraction = input.memoryFraction ?? 0.9;
  if (!(fraction > 0 && fraction <= 1)) throw new Error(`planServing: memoryFraction must be in (0, 1], got ${fraction}`);
  if (!(input.deviceMemoryBytes > 0)) throw new Error(`planServing: deviceMemoryBytes must be positive, got ${input.deviceMemoryBytes}`);

  const weightsBytes = (input.weightsBytes ?? countParams(m).total * elem) / tp;
  const maxNumBatchedTokens = Math.max(Math.min(STEP_TOKENS, maxModelLen), MAX_NUM_SEQS);
  // NOTE: one step's transient memory: every layer's activations for the step's tokens (the set
  // training keeps, an upper bound on what one layer holds at once) and fp32 logits.
  const workspaceBytes = (maxNumBatchedTokens * (activationElementsPerToken(m) * elem + 4 * m.vocabSize)) / tp;
  // With more GPUs than KV heads, each GPU keeps a copy of one head.
  const kvHeadsPerGpu = Math.max(1, m.nKvHeads / tp);
  const bytesPerToken = (kvBytesPerToken(m, elem) * kvHeadsPerGpu) / m.nKvHeads;
  const bytesPerBlock = bytesPerToken * blockSize;
  const budget = fraction * input.deviceMemoryBytes - weightsBytes - workspaceBytes;
  const blocksPerSeq = Math.ceil(maxModelLen / blockSize);
  const fits = Math.floor(budget / bytesPerBlock);
  const bufferCap = input.maxBufferBytes === undefined ? Infinity : Math.floor(input.maxBufferBytes / (bytesPerBlock / (2 * m.nLayers)));
  const useful = MAX_NUM_SEQS * blocksPerSeq;
  const numBlocks = Math.min(fits, bufferCap, useful);
  const from = `${fraction} x ${formatBytes(input.deviceMemoryBytes)} less ${formatBytes(weightsBytes)} of weights and ${formatBytes(workspaceBytes)} of step workspace`;
  if (numBlocks < blocksPerSeq) {
    const limit = numBlocks === bufferCap && bufferCap < fits ? `the largest buffer (${formatBytes(input.maxBufferBytes!)}) holds ${bufferCap} blocks per layer` : `${from} leaves ${formatBytes(Math.max(0, budget))}`;
    return { ok: false, shortBytes: (blocksPerSeq - numBlocks) * bytesPerBlock,
      message: `KV cache: one request of ${maxModelLen} tokens needs ${blocksPerSeq} blocks (${formatBytes(blocksPerSeq * bytesPerBlock)}), but ${limit}` };
  }
  const kvTokens = numBlocks * blockSize;
  const maxNumSeqs = Math.min(MAX_NUM_SEQS, Math.max(1, Math.floor(kvTokens / expected)));
  const why = numBlocks === fits ? from : numBlocks === useful ? `enough for ${MAX_NUM_SEQS} requests at full context` : `the largest buffer`;
  const summary = `KV cache ${numBlocks} blocks x ${blockSize} tokens = ${kvTokens} tokens, ${formatBytes(numBlocks * bytesPerBlock)} (${why}); ` +
    `max running seqs ${maxNumSeqs} (${kvTokens} KV tokens / ${expected} per request, at most ${MAX_NUM_SEQS}); max batched tokens ${maxNumBatchedTokens}`;
  return { ok: true, plan: { numBlocks, blockSize, kvTokens, maxNumSeqs, maxNumBatchedTokens, bytesPerBlock, weightsBytes, workspaceBytes, summary } };
}

/**
 * What `kiln serve` uses for `--kv-cache auto` and `--max-batch auto`: the KV blocks (numBlocks,
 * blockSize), the scheduler's maxNumSeqs and maxNumBatchedTokens, and a summary line to print.
 * Throws when not even one request of maxModelLen tokens fits, saying by how much.
 */
export function planServing(input: ServingAutoInput): ServingAutoPlan {
  const s = sizeServing(input);
  if (!s.ok) throw new Error(`planServing: ${s.message}`);
  return s.plan;
}
