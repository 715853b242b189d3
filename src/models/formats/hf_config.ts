// hf_config.ts: Hugging Face config.json <-> kiln's ModelConfig for LlamaForCausalLM and
// GPT2LMHeadModel, with transformers' defaults for absent keys. It owns the key names and the
// checks on their values; it does not touch weights (hf_folder.ts) or tokenizer files.

import type { Gpt2Config, LlamaConfig, MetaValue, ModelConfig, RopeScaling } from "../types.js";
import { FormatError } from "./file_source.js";
import type { ModelLimit } from "./limits.js";
import { checkLimit } from "./limits.js";

type Json = Record<string, unknown>;

const LLAMA_ARCHS = ["LlamaForCausalLM"];
const GPT2_ARCHS = ["GPT2LMHeadModel"];

function number(cfg: Json, file: string, key: string, fallback?: number): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new FormatError(file, key, v === undefined ? "missing" : `expected a number, got ${JSON.stringify(v)}`);
  return v;
}

function positive(cfg: Json, file: string, key: string, fallback?: number): number {
  const v = number(cfg, file, key, fallback);
  if (!(v > 0)) throw new FormatError(file, key, `${v} is not positive`);
  return v;
}

/** A size key: an integer within its limit (a corrupt max_position_embeddings of 1e9 must not size anything). */
function size(cfg: Json, file: string, key: string, kind: ModelLimit, fallback?: number): number {
  return checkLimit(file, key, number(cfg, file, key, fallback), kind);
}

function ropeScaling(cfg: Json, file: string): RopeScaling | undefined {
  const rs = cfg.rope_scaling as Json | null | undefined;
  if (rs === null || rs === undefined) return undefined;
  const type = rs.rope_type ?? rs.type;
  const field = "rope_scaling";
  if (type === "default") return undefined;
  const factor = positive(rs, file, "factor");
  if (type === "linear") return { type: "linear", factor };
  if (type === "llama3") {
    return {
      type: "llama3",
      factor,
      lowFreqFactor: positive(rs, file, "low_freq_factor"),
      highFreqFactor: positive(rs, file, "high_freq_factor"),
      originalMaxPositions: positive(rs, file, "original_max_position_embeddings"),
    };
  }
  throw new FormatError(file, `${field}.rope_type`, `${JSON.stringify(type)} is not supported (kiln supports linear, llama3)`);
}

function llamaFromHf(cfg: Json, file: string): LlamaConfig {
  const dim = size(cfg, file, "hidden_size", "width");
  const nHeads = size(cfg, file, "num_attention_heads", "heads");
  const nKvHeads = size(cfg, file, "num_key_value_heads", "heads", nHeads);
  if (nHeads % nKvHeads !== 0) throw new FormatError(file, "num_key_value_heads", `num_attention_heads ${nHeads} is not a multiple of ${nKvHeads}`);
  const headDim = cfg.head_dim === null || cfg.head_dim === undefined ? dim / nHeads : size(cfg, file, "head_dim", "width");
  if (!Number.isInteger(headDim)) throw new FormatError(file, "num_attention_heads", `hidden_size ${dim} is not divisible by ${nHeads}`);
  const act = cfg.hidden_act ?? "silu";
  if (act !== "silu") throw new FormatError(file, "hidden_act", `${JSON.stringify(act)} is not supported (Llama uses silu)`);
  const scaling = ropeScaling(cfg, file);
  return {
    arch: "llama",
    dim,
    hiddenDim: size(cfg, file, "intermediate_size", "width"),
    nLayers: size(cfg, file, "num_hidden_layers", "layers"),
    nHeads,
    nKvHeads,
    headDim,
    vocabSize: size(cfg, file, "vocab_size", "vocab", 32000),
    maxSeqLen: size(cfg, file, "max_position_embeddings", "context", 2048),
    normEps: positive(cfg, file, "rms_norm_eps", 1e-6),
    ropeTheta: positive(cfg, file, "rope_theta", 10000),
    ...(scaling ? { ropeScaling: scaling } : {}),
    // NOTE: LlamaConfig's default is untied (PretrainedConfig's is tied).
    tiedEmbeddings: cfg.tie_word_embeddings === true,
  };
}

function gpt2FromHf(cfg: Json, file: string): Gpt2Config {
  const dim = size(cfg, file, "n_embd", "width", 768);
  const nHeads = size(cfg, file, "n_head", "heads", 12);
  if (dim % nHeads !== 0) throw new FormatError(file, "n_head", `n_embd ${dim} is not divisible by ${nHeads}`);
  if (cfg.n_inner !== null && cfg.n_inner !== undefined && cfg.n_inner !== 4 * dim) {
    throw new FormatError(file, "n_inner", `${JSON.stringify(cfg.n_inner)} is not 4 x n_embd (${4 * dim}), which kiln's GPT-2 assumes`);
  }
  if (cfg.tie_word_embeddings === false) throw new FormatError(file, "tie_word_embeddings", "false is not supported for GPT-2 (kiln's GPT-2 ties the output head)");
  return {
    arch: "gpt2",
    dim,
    nLayers: size(cfg, file, "n_layer", "layers", 12),
    nHeads,
    vocabSize: size(cfg, file, "vocab_size", "vocab", 50257),
    maxSeqLen: size(cfg, file, "n_positions", "context", 1024),
    normEps: positive(cfg, file, "layer_norm_epsilon", 1e-5),
  };
}

/** The ModelConfig a parsed config.json describes (`file` names it in errors). */
export function configFromHf(cfg: Json, file: string): ModelConfig {
  const archs = Array.isArray(cfg.architectures) ? (cfg.architectures as unknown[]) : [];
  const type = cfg.model_type;
  if (archs.some((a) => LLAMA_ARCHS.includes(String(a))) || (archs.length === 0 && type === "llama")) return llamaFromHf(cfg, file);
  if (archs.some((a) => GPT2_ARCHS.includes(String(a))) || (archs.length === 0 && type === "gpt2")) return gpt2FromHf(cfg, file);
  const [field, value] = archs.length ? ["architectures", archs] : ["model_type", type];
  throw new FormatError(file, field, `${JSON.stringify(value)} is not supported (known: ${[...LLAMA_ARCHS, ...GPT2_ARCHS].join(", ")})`);
}

/** config.json for a ModelConfig; token ids come from GGUF-style tokenizer metadata when present. */
export function configToHf(c: ModelConfig, meta: ReadonlyMap<string, MetaValue>, dtype: string): Json {
  const id = (k: string): number | undefined => (typeof meta.get(k) === "number" ? (meta.get(k) as number) : undefined);
  const tokens = { bos_token_id: id("tokenizer.ggml.bos_token_id"), eos_token_id: id("tokenizer.ggml.eos_token_id") };
  const torch_dtype = { F32: "float32", F16: "float16", BF16: "bfloat16" }[dtype] ?? dtype;
  if (c.arch === "gpt2") {
    return {
      architectures: GPT2_ARCHS, model_type: "gpt2", n_embd: c.dim, n_layer: c.nLayers, n_head: c.nHeads, n_inner: null,
      n_positions: c.maxSeqLen, n_ctx: c.maxSeqLen, vocab_size: c.vocabSize, layer_norm_epsilon: c.normEps,
      activation_function: "gelu_new", tie_word_embeddings: true, torch_dtype, ...tokens,
    };
  }
  const rs = c.ropeScaling;
  const rope_scaling =
    rs === undefined ? null
    : rs.type === "linear" ? { rope_type: "linear", factor: rs.factor }
    : { rope_type: "llama3", factor: rs.factor, low_freq_factor: rs.lowFreqFactor, high_freq_factor: rs.highFreqFactor, original_max_position_embeddings: rs.originalMaxPositions };
  return {
    architectures: LLAMA_ARCHS, model_type: "llama", hidden_size: c.dim, intermediate_size: c.hiddenDim,
    num_hidden_layers: c.nLayers, num_attention_heads: c.nHeads, num_key_value_heads: c.nKvHeads, head_dim: c.headDim,
    hidden_act: "silu", max_position_embeddings: c.maxSeqLen, rms_norm_eps: c.normEps, rope_theta: c.ropeTheta, rope_scaling,
    vocab_size: c.vocabSize, tie_word_embeddings: c.tiedEmbeddings, attention_bias: false, mlp_bias: false, torch_dtype, ...tokens,
  };
}
