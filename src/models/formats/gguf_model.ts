// gguf_model.ts: a parsed GGUF file as a LoadedModel: maps general.architecture ("llama", "gpt2") and
// its hyperparameter keys to a ModelConfig, and each tensor info to a TensorEntry that reads and
// dequantizes on demand. GGUF tensor names and layouts are kiln's own, so nothing is renamed or permuted
// (rope_freqs.weight, Llama 3.1's RoPE scaling, becomes config.ropeScaling).
// It does not parse the file (gguf.ts) or interpret the tokenizer keys (tokenizers/ does).

import type { Gpt2Config, LlamaConfig, LoadedModel, MetaValue, ModelConfig, RopeScaling, TensorEntry } from "../types.js";
import { checkAgainstConfig } from "./expected_shapes.js";
import type { SourceRef } from "./file_source.js";
import { FormatError } from "./file_source.js";
import { fileTensor } from "./file_tensor.js";
import type { ModelLimit } from "./limits.js";
import { checkLimit } from "./limits.js";
import type { GgufFile } from "./gguf.js";
import { readGguf, readGgufTensor } from "./gguf.js";
import { llama3FromRopeFactors, ROPE_FREQS } from "./rope_freqs.js";

export const GGUF_ARCHITECTURES = ["llama", "gpt2"] as const;

type Meta = ReadonlyMap<string, MetaValue>;

function num(meta: Meta, key: string, file: string): number | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  throw new FormatError(file, `metadata '${key}'`, `expected a number, got ${typeof v}`);
}

function need(meta: Meta, key: string, file: string, limit?: ModelLimit): number {
  const v = num(meta, key, file);
  if (v === undefined) throw new FormatError(file, `metadata '${key}'`, "missing (required for this architecture)");
  if (!(v > 0)) throw new FormatError(file, `metadata '${key}'`, `${v} is not positive`);
  return limit === undefined ? v : checkLimit(file, `metadata '${key}'`, v, limit);
}

/** An optional size key: absent, or an integer within `limit`. */
function size(meta: Meta, key: string, file: string, limit: ModelLimit): number | undefined {
  const v = num(meta, key, file);
  return v === undefined ? undefined : checkLimit(file, `metadata '${key}'`, v, limit);
}

function str(meta: Meta, key: string, file: string): string | undefined {
  const v = meta.get(key);
  if (v === undefined || typeof v === "string") return v;
  throw new FormatError(file, `metadata '${key}'`, `expected a string, got ${typeof v}`);
}

/** Vocabulary size: the embedding's rows when the file has weights, else the metadata's. */
function vocabSize(g: GgufFile, arch: string): number {
  const embd = g.tensors.find((t) => t.name === "token_embd.weight");
  if (embd) return checkLimit(g.path, "tensor 'token_embd.weight' shape", embd.shape[0]!, "vocab");
  const tokens = g.metadata.get("tokenizer.ggml.tokens");
  const fromMeta = size(g.metadata, `${arch}.vocab_size`, g.path, "vocab");
  if (fromMeta !== undefined) return fromMeta;
  if (Array.isArray(tokens)) return tokens.length;
  throw new FormatError(g.path, "vocab size", "no token_embd.weight tensor, no vocab_size key and no tokenizer.ggml.tokens");
}

function ropeScaling(g: GgufFile, ref: SourceRef, headDim: number, theta: number): RopeScaling | undefined {
  const m = g.metadata;
  const type = str(m, "llama.rope.scaling.type", g.path);
  const freqs = g.tensors.find((t) => t.name === ROPE_FREQS);
  if (freqs) {
    if (type !== undefined && type !== "none") throw new FormatError(g.path, "metadata 'llama.rope.scaling.type'", `'${type}' together with a ${ROPE_FREQS} tensor is not supported`);
    const original = num(m, "llama.rope.scaling.original_context_length", g.path);
    return llama3FromRopeFactors(readGgufTensor(ref, freqs), headDim, theta, g.path, original);
  }
  if (type === undefined || type === "none") {
    const legacy = num(m, "llama.rope.scale_linear", g.path);
    return legacy !== undefined && legacy !== 1 ? { type: "linear", factor: legacy } : undefined;
  }
  if (type !== "linear") throw new FormatError(g.path, "metadata 'llama.rope.scaling.type'", `'${type}' is not supported (kiln supports none, linear, and Llama 3's ${ROPE_FREQS})`);
  return { type: "linear", factor: need(m, "llama.rope.scaling.factor", g.path) };
}

function llamaConfig(g: GgufFile, ref: SourceRef): LlamaConfig {
  const m = g.metadata, f = g.path;
  const dim = need(m, "llama.embedding_length", f, "width");
  const nHeads = need(m, "llama.attention.head_count", f, "heads");
  const headDim = size(m, "llama.attention.key_length", f, "width") ?? dim / nHeads;
  if (!Number.isInteger(headDim)) throw new FormatError(f, "metadata 'llama.attention.head_count'", `embedding_length ${dim} is not divisible by head_count ${nHeads}`);
  const ropeDims = num(m, "llama.rope.dimension_count", f);
  if (ropeDims !== undefined && ropeDims !== headDim) {
    throw new FormatError(f, "metadata 'llama.rope.dimension_count'", `${ropeDims} differs from the head size ${headDim} (partial rotary embeddings are not supported)`);
  }
  const nKvHeads = size(m, "llama.attention.head_count_kv", f, "heads") ?? nHeads;
  if (nHeads % nKvHeads !== 0) throw new FormatError(f, "metadata 'llama.attention.head_count_kv'", `head_count ${nHeads} is not a multiple of head_count_kv ${nKvHeads}`);
  const ropeTheta = num(m, "llama.rope.freq_base", f) ?? 10000;
  const scaling = ropeScaling(g, ref, headDim, ropeTheta);
  return {
    arch: "llama",
    dim,
    hiddenDim: need(m, "llama.feed_forward_length", f, "width"),
    nLayers: need(m, "llama.block_count", f, "layers"),
    nHeads,
    nKvHeads,
    headDim,
    vocabSize: vocabSize(g, "llama"),
    maxSeqLen: need(m, "llama.context_length", f, "context"),
    normEps: num(m, "llama.attention.layer_norm_rms_epsilon", f) ?? 1e-5,
    ropeTheta,
    ...(scaling ? { ropeScaling: scaling } : {}),
    tiedEmbeddings: !g.tensors.some((t) => t.name === "output.weight"),
  };
}

function gpt2Config(g: GgufFile): Gpt2Config {
  const m = g.metadata, f = g.path;
  const dim = need(m, "gpt2.embedding_length", f, "width");
  const ff = num(m, "gpt2.feed_forward_length", f);
  if (ff !== undefined && ff !== 4 * dim) throw new FormatError(f, "metadata 'gpt2.feed_forward_length'", `${ff} is not 4 x embedding_length (${4 * dim}), which kiln's GPT-2 assumes`);
  const nHeads = need(m, "gpt2.attention.head_count", f, "heads");
  if (dim % nHeads !== 0) throw new FormatError(f, "metadata 'gpt2.attention.head_count'", `embedding_length ${dim} is not divisible by head_count ${nHeads}`);
  return {
    arch: "gpt2",
    dim,
    nLayers: need(m, "gpt2.block_count", f, "layers"),
    nHeads,
    vocabSize: vocabSize(g, "gpt2"),
    maxSeqLen: need(m, "gpt2.context_length", f, "context"),
    normEps: num(m, "gpt2.attention.layer_norm_epsilon", f) ?? 1e-5,
  };
}

/** The model config a GGUF file's metadata describes; `ref` is where its tensors are read (Llama 3's rope_freqs.weight). */
export function ggufConfig(g: GgufFile, ref: SourceRef = g.path): ModelConfig {
  const arch = g.metadata.get("general.architecture");
  if (arch === undefined) throw new FormatError(g.path, "metadata 'general.architecture'", "missing");
  switch (arch) {
    case "llama":
      return llamaConfig(g, ref);
    case "gpt2":
      return gpt2Config(g);
    default:
      throw new FormatError(g.path, "metadata 'general.architecture'", `unknown architecture '${String(arch)}' (known: ${GGUF_ARCHITECTURES.join(", ")})`);
  }
}

/** A GGUF file as a LoadedModel: config from metadata, tensors read and dequantized on demand. */
export function loadGguf(ref: SourceRef): LoadedModel {
  const g = readGguf(ref);
  const path = g.path;
  const config = ggufConfig(g, ref);
  const tensors = new Map<string, TensorEntry>();
  for (const t of g.tensors) if (t.name !== ROPE_FREQS) tensors.set(t.name, fileTensor(ref, t.name, t.shape, t.type, t.offset));
  const model: LoadedModel = { config, tensors, source: path, metadata: g.metadata };
  checkAgainstConfig(model);
  return model;
}
