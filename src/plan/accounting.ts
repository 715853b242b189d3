// accounting.ts: what a model costs, from its shape alone: parameters by component (total, and
// active per token for a mixture of experts), FLOPs per token forward and backward, and KV-cache
// bytes per token. Formulas only, in plain numbers; memory per GPU and time are train_memory.ts,
// train_step.ts and serve_plan.ts.
//
// FLOPs follow PaLM's accounting (Chowdhery et al. 2022, appendix B): a multiply-add is 2 FLOPs, so a
// token's forward pass costs 2 FLOPs per matmul weight it uses, plus attention's two context-long
// products QK^T and AV: 2 * 2 * layers * context * d_attn. Backward costs twice the forward.

import type { PlanModel } from "./plan_model.js";

export interface ParamCounts {
  /** Token (and for GPT-2, position) embeddings: a lookup, no matmul. */
  readonly embeddings: number;
  /** Q, K, V and output projections (and their biases) over every layer. */
  readonly attention: number;
  /** Dense MLPs, and shared experts of MoE layers. */
  readonly mlp: number;
  /** MoE router weights. */
  readonly router: number;
  /** Routed experts, all of them. */
  readonly experts: number;
  /** Norm weights (and LayerNorm biases), the final norm included. */
  readonly norms: number;
  /** The output head (0 when tied to the embeddings). */
  readonly head: number;
  readonly total: number;
  /** Parameters one token uses: the routed experts counted topK / experts. */
  readonly active: number;
}

/** One transformer layer's parameters: the part every token uses and its routed experts. */
export interface LayerParams {
  readonly shared: number;
  readonly experts: number;
}

const isMoeLayer = (m: PlanModel, layer: number): boolean => m.moe !== undefined && layer >= m.moe.denseLayers;

/** Number of layers with a mixture-of-experts MLP. */
export function moeLayerCount(m: PlanModel): number {
  return m.moe ? Math.max(0, m.nLayers - m.moe.denseLayers) : 0;
}

function attentionParams(m: PlanModel): number {
  const dq = m.nHeads * m.headDim;
  const dkv = m.nKvHeads * m.headDim;
  const weights = m.dim * dq + 2 * m.dim * dkv + dq * m.dim;
  return m.family === "gpt2" ? weights + dq + 2 * dkv + m.dim : weights;
}

function mlpParams(m: PlanModel, hidden: number): number {
  // NOTE: Llama's MLP is gated (gate, up, down: 3 matrices); GPT-2's is up and down with biases.
  return m.family === "gpt2" ? 2 * m.dim * hidden + hidden + m.dim : 3 * m.dim * hidden;
}

function layerNormParams(m: PlanModel): number {
  return m.family === "gpt2" ? 4 * m.dim : 2 * m.dim;
}

/** The parameters of one layer (dense, or MoE when `moe`): what every token uses, and the routed experts. */
export function layerParams(m: PlanModel, moe: boolean): LayerParams {
  const base = attentionParams(m) + layerNormParams(m);
  if (!moe || !m.moe) return { shared: base + mlpParams(m, m.hiddenDim), experts: 0 };
  const e = m.moe;
  return { shared: base + m.dim * e.experts + e.sharedExperts * mlpParams(m, e.expertHiddenDim), experts: e.experts * mlpParams(m, e.expertHiddenDim) };
}

/** The largest layer, for per-GPU memory (an MoE model's MoE layer). */
export function largestLayer(m: PlanModel): LayerParams {
  return layerParams(m, moeLayerCount(m) > 0);
}

/** Embedding table(s): tokens, and GPT-2's learned positions. */
export function embeddingParams(m: PlanModel): number {
  return m.vocabSize * m.dim + (m.family === "gpt2" ? m.maxSeqLen * m.dim : 0);
}

/** The final norm and the output head (the head's weights are the embedding's when tied). */
export function headParams(m: PlanModel): number {
  return (m.family === "gpt2" ? 2 * m.dim : m.dim) + (m.tiedEmbeddings ? 0 : m.vocabSize * m.dim);
}

export function countParams(m: PlanModel): ParamCounts {
  const moeLayers = moeLayerCount(m);
  const denseLayers = m.nLayers - moeLayers;
  const e = m.moe;
  const attention = m.nLayers * attentionParams(m);
  const mlp = denseLayers * mlpParams(m, m.hiddenDim) + (e ? moeLayers * e.sharedExperts * mlpParams(m, e.expertHiddenDim) : 0);
  const router = e ? moeLayers * m.dim * e.experts : 0;
  const experts = e ? moeLayers * e.experts * mlpParams(m, e.expertHiddenDim) : 0;
  const norms = m.nLayers * layerNormParams(m) + (m.family === "gpt2" ? 2 * m.dim : m.dim);
  const head = m.tiedEmbeddings ? 0 : m.vocabSize * m.dim;
  const embeddings = embeddingParams(m);
  const total = embeddings + attention + mlp + router + experts + norms + head;
  const active = e ? total - experts + (experts * e.topK) / e.experts : total;
  return { embeddings, attention, mlp, router, experts, norms, head, total, active };
}

/**
 * Weights one token multiplies by: the active parameters less the embedding lookup and the norms, plus
 * the head's matmul when it is tied to the embedding (its weights were counted as embeddings).
 */
export function matmulParams(m: PlanModel): number {
  const p = countParams(m);
  return p.active - p.embeddings - p.norms + (m.tiedEmbeddings ? m.vocabSize * m.dim : 0);
}

/**
 * Parameters a forward pass over `tokens` tokens reads from memory: everything but the routed experts,
 * plus the experts those tokens reach. With uniform routing a token misses a given expert with
 * probability 1 - topK/experts, so a batch reaches 1 - (1 - topK/experts)^tokens of them: decode at
 * batch 1 reads only the active parameters, a long prefill reads them all.
 */
export function paramsRead(m: PlanModel, tokens: number): number {
  const c = countParams(m);
  if (!m.moe) return c.total;
  return c.total - c.experts + c.experts * (1 - Math.pow(1 - m.moe.topK / m.moe.experts, tokens));
}

/** d_attn: the width of the attention products (query heads x head dim). */
export const attentionWidth = (m: PlanModel): number => m.nHeads * m.headDim;

/** Forward FLOPs of one token attending to `context` tokens: 2 * matmul weights + 4 * layers * context * d_attn. */
export function forwardFlopsPerToken(m: PlanModel, context: number): number {
  return 2 * matmulParams(m) + 4 * m.nLayers * context * attentionWidth(m);
}

/** Backward is twice the forward (gradients for activations and for weights). */
export function backwardFlopsPerToken(m: PlanModel, context: number): number {
  return 2 * forwardFlopsPerToken(m, context);
}

/**
 * Training FLOPs per token of a `seqLen`-token sequence: 6 * N + 12 * layers * seqLen * d_attn.
 * NOTE: PaLM's convention counts the full sequence as every token's context (no halving for the
 * causal mask), which is how MFU is usually reported; the real causal work is a little lower.
 */
export function trainingFlopsPerToken(m: PlanModel, seqLen: number): number {
  return forwardFlopsPerToken(m, seqLen) + backwardFlopsPerToken(m, seqLen);
}

/**
 * Forward FLOPs of prefilling a `tokens`-long prompt with causal attention: token p attends to p + 1
 * tokens, so attention is 2 * layers * tokens^2 * d_attn in all (half of `tokens` x full context).
 */
export function prefillFlops(m: PlanModel, tokens: number): number {
  return 2 * matmulParams(m) * tokens + 2 * m.nLayers * tokens * (tokens + 1) * attentionWidth(m);
}

/** KV-cache bytes per token: layers x KV heads x head dim x 2 (K and V) x bytes per element. */
export function kvBytesPerToken(m: PlanModel, bytesPerElement: number): number {
  return 2 * m.nLayers * m.nKvHeads * m.headDim * bytesPerElement;
}
