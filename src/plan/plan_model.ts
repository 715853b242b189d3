// plan_model.ts: the shape of a model as the planner sees it (PlanModel): the fields of kiln's
// ModelConfig plus what planning needs and ModelConfig lacks (mixture-of-experts routing, the MLP's
// kind), and the conversions into it from a ModelConfig or a Hugging Face config.json. It counts
// nothing (accounting.ts does) and reads no files (resolve_model.ts does).

import type { ModelConfig } from "../models/types.js";
import { configFromHf } from "../models/formats/hf_config.js";
import { PlanInputError } from "./units.js";

/** Mixture of experts: each MoE layer's MLP is `experts` routed experts (top-k per token) plus shared ones. */
export interface MoeShape {
  readonly experts: number;
  /** Routed experts each token goes through. */
  readonly topK: number;
  /** Experts every token goes through (DeepSeek/Kimi style); 0 for Mixtral. */
  readonly sharedExperts: number;
  /** Hidden size of one expert's gated MLP. */
  readonly expertHiddenDim: number;
  /** The first layers keep a dense MLP of PlanModel.hiddenDim (DeepSeek's first_k_dense_replace). */
  readonly denseLayers: number;
}

export interface PlanModel {
  readonly name: string;
  /**
   * "llama": RMSNorm, rotary positions, no biases, gated SiLU MLP (3 matrices).
   * "gpt2": LayerNorm with bias, learned positions, biases everywhere, GELU MLP of 4 x dim (2 matrices).
   */
  readonly family: "llama" | "gpt2";
  readonly dim: number;
  readonly nLayers: number;
  readonly nHeads: number;
  /** Fewer than nHeads under grouped-query attention. */
  readonly nKvHeads: number;
  readonly headDim: number;
  /** The dense MLP's hidden size. */
  readonly hiddenDim: number;
  readonly vocabSize: number;
  readonly maxSeqLen: number;
  readonly tiedEmbeddings: boolean;
  readonly moe?: MoeShape;
}

/** A ModelConfig (as loadModel or a GGUF file gives it) as a PlanModel. */
export function planModelFromConfig(c: ModelConfig, name: string): PlanModel {
  if (c.arch === "gpt2") {
    return {
      name, family: "gpt2", dim: c.dim, nLayers: c.nLayers, nHeads: c.nHeads, nKvHeads: c.nHeads, headDim: c.dim / c.nHeads,
      hiddenDim: 4 * c.dim, vocabSize: c.vocabSize, maxSeqLen: c.maxSeqLen, tiedEmbeddings: true,
    };
  }
  return {
    name, family: "llama", dim: c.dim, nLayers: c.nLayers, nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim,
    hiddenDim: c.hiddenDim, vocabSize: c.vocabSize, maxSeqLen: c.maxSeqLen, tiedEmbeddings: c.tiedEmbeddings,
  };
}

type Json = Record<string, unknown>;

function int(cfg: Json, file: string, keys: readonly string[], fallback?: number): number {
  const key = keys.find((k) => cfg[k] !== undefined && cfg[k] !== null);
  const v = key === undefined ? fallback : cfg[key];
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    throw new PlanInputError(`${file}: ${keys.join(" / ")}: ${v === undefined ? "missing" : `expected a whole number, got ${JSON.stringify(v)}`}`);
  }
  return v;
}

/** MoE routing from the keys Mixtral (num_local_experts), Qwen-MoE (num_experts) and DeepSeek/Kimi (n_routed_experts) use. */
function moeFromHf(cfg: Json, file: string): MoeShape | undefined {
  const experts = int(cfg, file, ["num_local_experts", "num_experts", "n_routed_experts"], 0);
  if (experts === 0) return undefined;
  const topK = int(cfg, file, ["num_experts_per_tok", "moe_top_k"]);
  if (topK < 1 || topK > experts) throw new PlanInputError(`${file}: num_experts_per_tok ${topK} is not in [1, ${experts}]`);
  return {
    experts,
    topK,
    sharedExperts: int(cfg, file, ["n_shared_experts"], 0),
    expertHiddenDim: int(cfg, file, ["moe_intermediate_size", "intermediate_size"]),
    denseLayers: int(cfg, file, ["first_k_dense_replace"], 0),
  };
}

/**
 * A parsed config.json as a PlanModel. Llama and GPT-2 configs go through kiln's own reader (and its
 * checks); any other decoder (Mistral, Qwen, Mixtral, DeepSeek-style MoE, ...) is read as Llama-shaped
 * from the standard keys, which is what planning needs: sizes, heads, experts.
 */
export function planModelFromHf(cfg: Json, file: string, name: string): PlanModel {
  const moe = moeFromHf(cfg, file);
  const archs = Array.isArray(cfg.architectures) ? cfg.architectures.map(String) : [];
  const known = archs.includes("LlamaForCausalLM") || archs.includes("GPT2LMHeadModel") || (archs.length === 0 && (cfg.model_type === "llama" || cfg.model_type === "gpt2"));
  if (known && !moe) {
    try {
      return planModelFromConfig(configFromHf(cfg, file), name);
    } catch (err) {
      throw new PlanInputError((err as Error).message);
    }
  }
  const dim = int(cfg, file, ["hidden_size"]);
  const nHeads = int(cfg, file, ["num_attention_heads"]);
  const nKvHeads = int(cfg, file, ["num_key_value_heads"], nHeads);
  if (dim < 1 || nHeads < 1 || nKvHeads < 1 || nHeads % nKvHeads !== 0) {
    throw new PlanInputError(`${file}: hidden_size ${dim}, num_attention_heads ${nHeads}, num_key_value_heads ${nKvHeads} do not describe an attention layer`);
  }
  const hiddenDim = int(cfg, file, ["intermediate_size"]);
  return {
    name, family: "llama", dim, nLayers: int(cfg, file, ["num_hidden_layers"]), nHeads, nKvHeads,
    headDim: int(cfg, file, ["head_dim"], Math.floor(dim / nHeads)),
    hiddenDim, vocabSize: int(cfg, file, ["vocab_size"]), maxSeqLen: int(cfg, file, ["max_position_embeddings"], 4096),
    tiedEmbeddings: cfg.tie_word_embeddings === true,
    ...(moe ? { moe } : {}),
  };
}
