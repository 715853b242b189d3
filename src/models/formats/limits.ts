// limits.ts: the largest hyperparameters kiln believes a model file, and the check each reader runs on
// a size it read from a header before anything is allocated from it. A value over its limit is a corrupt
// (or hostile) file, refused with a FormatError naming the file and the field as the file spells it
// ("llama.context_length", "max_position_embeddings", "header seq_len").
// NOTE: sizes of tensors are checked against the file's length where they are read (gguf.ts,
// safetensors.ts, llama2c.ts); these limits bound what no length check can: counts that only say how
// many tensors or positions there should be (a block_count of 2^24 made a 16M-entry Map before failing).

import { FormatError } from "./file_source.js";

export const MODEL_LIMITS = {
  /** Transformer blocks (the largest published Llama has 126). */
  layers: 1 << 12,
  /** Embedding and feed-forward widths (Llama 3.1 405B: 16384 and 53248). */
  width: 1 << 20,
  /** Attention heads per layer. */
  heads: 1 << 12,
  /** Vocabulary entries (the largest in use are about 2^18). */
  vocab: 1 << 24,
  /** Positions (the longest Llama-architecture models claim 2^22; kiln caps what it allocates, kv_cache.ts). */
  context: 1 << 24,
} as const;

export type ModelLimit = keyof typeof MODEL_LIMITS;

/** `value` if it is an integer in 1..MODEL_LIMITS[kind], else a FormatError naming `file` and `field`. */
export function checkLimit(file: string, field: string, value: number, kind: ModelLimit): number {
  const max = MODEL_LIMITS[kind];
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new FormatError(file, field, `${value} is not an integer in 1..${max} (the most kiln accepts for a ${kind} size; corrupt file?)`);
  }
  return value;
}
