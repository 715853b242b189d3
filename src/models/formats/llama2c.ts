// llama2c.ts: reads llama2.c checkpoints (the "legacy v0" export run.c reads: a header of 7 x i32, then
// f32 weights in a fixed order) into a LoadedModel with GGUF tensor names. It validates the header and
// the file length before mapping anything; it does not read the llama2.c tokenizer (tokenizers/ does).
// NOTE: llama2.c's RoPE rotates adjacent pairs (2i, 2i+1), the Meta/GGUF layout: wq/wk map as they are.

import type { LlamaConfig, LoadedModel, TensorEntry } from "../types.js";
import { checkAgainstConfig } from "./expected_shapes.js";
import type { ByteSource, SourceRef } from "./file_source.js";
import { Cursor, FormatError, sourceName, withSource } from "./file_source.js";
import { fileTensor, numel } from "./file_tensor.js";
import type { ModelLimit } from "./limits.js";
import { MODEL_LIMITS } from "./limits.js";

const HEADER_BYTES = 28;
const FIELDS = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"] as const;
const LIMIT_OF: Record<(typeof FIELDS)[number], ModelLimit> = {
  dim: "width", hidden_dim: "width", n_layers: "layers", n_heads: "heads", n_kv_heads: "heads", vocab_size: "vocab", seq_len: "context",
};
/** "ak42": the magic of llama2.c's later export versions (1 and 2), which run.c does not read. */
const AK42_MAGIC = 0x616b3432;

export interface Llama2cHeader {
  readonly dim: number;
  readonly hidden_dim: number;
  readonly n_layers: number;
  readonly n_heads: number;
  readonly n_kv_heads: number;
  /** Negative in the file when the classifier is separate; stored here as its absolute value. */
  readonly vocab_size: number;
  readonly seq_len: number;
  readonly sharedClassifier: boolean;
}

function readHeader(src: ByteSource): Llama2cHeader {
  const path = src.path;
  if (src.size < HEADER_BYTES) throw new FormatError(path, "header", `file is ${src.size} bytes, shorter than the 28-byte llama2.c header`);
  const c = new Cursor(src);
  const v: Record<string, number> = {};
  for (const f of FIELDS) v[f] = c.i32(`header ${f}`);
  if (v.dim === AK42_MAGIC) {
    throw new FormatError(path, "magic", "llama2.c export version 1/2 ('ak42' magic) is not supported; export with llama2.c's legacy (version 0) format");
  }
  const shared = v.vocab_size! > 0;
  const h = { ...v, vocab_size: Math.abs(v.vocab_size!), sharedClassifier: shared } as unknown as Llama2cHeader;
  for (const f of FIELDS) {
    const x = h[f];
    if (!(x > 0 && x <= MODEL_LIMITS[LIMIT_OF[f]])) {
      throw new FormatError(path, `header ${f}`, `${v[f]} is not a plausible size (1..${MODEL_LIMITS[LIMIT_OF[f]]}; not a llama2.c checkpoint?)`);
    }
  }
  if (h.dim % h.n_heads !== 0) throw new FormatError(path, "header n_heads", `dim ${h.dim} is not divisible by n_heads ${h.n_heads}`);
  if (h.n_heads % h.n_kv_heads !== 0) throw new FormatError(path, "header n_kv_heads", `n_heads ${h.n_heads} is not divisible by n_kv_heads ${h.n_kv_heads}`);
  if ((h.dim / h.n_heads) % 2 !== 0) throw new FormatError(path, "header n_heads", `head size ${h.dim / h.n_heads} is odd (RoPE needs pairs)`);
  return h;
}

/** How many f32 values the header implies, by arithmetic (nothing is allocated from an unchecked header). */
function floatCount(h: Llama2cHeader): number {
  const { dim, hidden_dim: hidden, n_layers: L, vocab_size: vocab, seq_len: seq } = h;
  const headSize = dim / h.n_heads;
  const kvDim = h.n_kv_heads * headSize;
  const perLayer = 2 * dim + 2 * dim * dim + 2 * kvDim * dim + 3 * hidden * dim;
  return vocab * dim + L * perLayer + dim + seq * headSize + (h.sharedClassifier ? 0 : vocab * dim);
}

/** The weights in file order, with GGUF names and PyTorch-order shapes. `null` names are skipped (freq_cis). */
function layout(h: Llama2cHeader): { name: string | null; shape: number[] }[] {
  const { dim, hidden_dim: hidden, n_layers: L, vocab_size: vocab, seq_len: seq } = h;
  const headSize = dim / h.n_heads;
  const kvDim = h.n_kv_heads * headSize;
  const perLayer = (what: string, shape: number[]) => Array.from({ length: L }, (_, l) => ({ name: `blk.${l}.${what}.weight`, shape }));
  const out = [
    { name: "token_embd.weight", shape: [vocab, dim] },
    ...perLayer("attn_norm", [dim]),
    ...perLayer("attn_q", [dim, dim]),
    ...perLayer("attn_k", [kvDim, dim]),
    ...perLayer("attn_v", [kvDim, dim]),
    ...perLayer("attn_output", [dim, dim]),
    ...perLayer("ffn_norm", [dim]),
    ...perLayer("ffn_gate", [hidden, dim]), // w1
    ...perLayer("ffn_down", [dim, hidden]), // w2
    ...perLayer("ffn_up", [hidden, dim]), // w3
    { name: "output_norm.weight", shape: [dim] },
    // NOTE: legacy RoPE tables (freq_cis_real, freq_cis_imag): run.c skips them, so do we.
    { name: null, shape: [seq, headSize / 2] },
    { name: null, shape: [seq, headSize / 2] },
  ];
  if (!h.sharedClassifier) out.push({ name: "output.weight", shape: [vocab, dim] });
  return out;
}

/** Reads the header of a llama2.c checkpoint, validating it and the file length. */
export function readLlama2cHeader(ref: SourceRef): Llama2cHeader {
  return withSource(ref, (src) => {
    const h = readHeader(src);
    // NOTE: by arithmetic, not from layout(): an n_layers of 2^22 made 37M layout entries (3 GiB) before this check failed.
    const floats = floatCount(h);
    const expected = HEADER_BYTES + 4 * floats;
    if (src.size !== expected) {
      const cls = h.sharedClassifier ? "shared classifier (vocab_size > 0)" : "separate classifier (vocab_size < 0)";
      throw new FormatError(
        src.path,
        "file length",
        `${src.size} bytes, but the header (dim ${h.dim}, hidden_dim ${h.hidden_dim}, n_layers ${h.n_layers}, n_heads ${h.n_heads}, ` +
          `n_kv_heads ${h.n_kv_heads}, vocab_size ${h.vocab_size}, seq_len ${h.seq_len}, ${cls}) implies ${expected}` +
          (src.size < expected ? " (truncated?)" : ""),
      );
    }
    return h;
  });
}

export function llama2cConfig(h: Llama2cHeader): LlamaConfig {
  return {
    arch: "llama",
    dim: h.dim,
    hiddenDim: h.hidden_dim,
    nLayers: h.n_layers,
    nHeads: h.n_heads,
    nKvHeads: h.n_kv_heads,
    headDim: h.dim / h.n_heads,
    vocabSize: h.vocab_size,
    maxSeqLen: h.seq_len,
    normEps: 1e-5,
    ropeTheta: 10000,
    tiedEmbeddings: h.sharedClassifier,
  };
}

/** A llama2.c checkpoint as a LoadedModel; tensors are read from the file when asked. */
export function readLlama2c(ref: SourceRef): LoadedModel {
  const h = readLlama2cHeader(ref);
  const tensors = new Map<string, TensorEntry>();
  let offset = HEADER_BYTES;
  for (const t of layout(h)) {
    if (t.name !== null) tensors.set(t.name, fileTensor(ref, t.name, t.shape, "f32", offset));
    offset += 4 * numel(t.shape);
  }
  const model: LoadedModel = { config: llama2cConfig(h), tensors, source: sourceName(ref), metadata: new Map() };
  checkAgainstConfig(model);
  return model;
}
