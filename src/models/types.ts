// types.ts: the plain data every model-side module agrees on. Loaders (llama2c, gguf, safetensors)
// produce a LoadedModel; models (llama, gpt2) consume one; tokenizers read their part; the CLI and
// the serving layer see only these shapes. No Tensors here: weights are host arrays until a model
// uploads them to a backend.

import type { MoeConfig } from "../nn/moe.js";

/** A weight on the host, row-major in PyTorch order: (out_features, in_features) for linear layers. */
export interface HostTensor {
  readonly shape: readonly number[];
  readonly dtype: "f32" | "f16" | "bf16";
  /** f32 values, or f16/bf16 raw bits. */
  readonly data: Float32Array | Uint16Array;
}

export interface RopeScaling {
  /** "linear" divides positions by factor; "llama3" is Llama 3.1's frequency-dependent scaling. */
  readonly type: "linear" | "llama3";
  readonly factor: number;
  readonly lowFreqFactor?: number;
  readonly highFreqFactor?: number;
  readonly originalMaxPositions?: number;
}

export interface LlamaConfig {
  readonly arch: "llama";
  readonly dim: number;
  readonly hiddenDim: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  readonly vocabSize: number;
  readonly maxSeqLen: number;
  readonly normEps: number;
  readonly ropeTheta: number;
  readonly ropeScaling?: RopeScaling;
  /** The output head shares the token embedding. */
  readonly tiedEmbeddings: boolean;
  /** Each block's MLP a mixture of experts (Mixtral); absent: dense SwiGLU. */
  readonly moe?: MoeConfig;
}

export interface Gpt2Config {
  readonly arch: "gpt2";
  readonly dim: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly vocabSize: number;
  readonly maxSeqLen: number;
  readonly normEps: number;
}

export type ModelConfig = LlamaConfig | Gpt2Config;

/** Metadata values as GGUF stores them (arrays of strings for vocabularies, etc.). */
export type MetaValue = string | number | bigint | boolean | readonly MetaValue[] | ArrayLike<number>;

/**
 * One tensor of a model file, read on demand (from the file at its offset, dequantized if it was
 * quantized), so that converting or loading never holds more than one raw tensor beyond the result.
 */
export interface TensorEntry {
  readonly shape: readonly number[];
  /** How the file stores it: a DType name or a block format (q8_0, q4_0, q4_k, q6_k). */
  readonly stored: string;
  read(): HostTensor;
  /**
   * The bytes exactly as the file stores them (a quantized tensor's blocks), when its values need no layout
   * fix; absent otherwise. Models that keep weights quantized upload these (models/weights.ts).
   */
  readRaw?(): Uint8Array;
}

/**
 * A model as read from any format. Tensor names are GGUF's (token_embd.weight, blk.0.attn_q.weight,
 * ..., output_norm.weight, output.weight; see docs/models.md), and attn_q/attn_k rows are in the
 * Meta / GGUF layout (rotary pairs interleaved), whatever the file used.
 */
export interface LoadedModel {
  readonly config: ModelConfig;
  readonly tensors: ReadonlyMap<string, TensorEntry>;
  /** Where it came from, for messages. */
  readonly source: string;
  /** GGUF-style metadata (general.*, tokenizer.ggml.*, ...) when the format has it. */
  readonly metadata: ReadonlyMap<string, MetaValue>;
}
