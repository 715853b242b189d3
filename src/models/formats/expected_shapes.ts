// expected_shapes.ts: which tensors a config implies (GGUF names, PyTorch-order shapes) and the check
// every reader runs after mapping a file: required tensors present, no shape contradicting the config.
// It owns the naming scheme's shapes; it does not read files.

import type { Gpt2Config, LlamaConfig, LoadedModel, ModelConfig } from "../types.js";
import { FormatError } from "./file_source.js";

function llamaShapes(c: LlamaConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const qDim = c.nHeads * c.headDim;
  const kvDim = c.nKvHeads * c.headDim;
  m.set("token_embd.weight", [c.vocabSize, c.dim]);
  for (let l = 0; l < c.nLayers; l++) {
    const b = `blk.${l}.`;
    m.set(`${b}attn_norm.weight`, [c.dim]);
    m.set(`${b}attn_q.weight`, [qDim, c.dim]);
    m.set(`${b}attn_k.weight`, [kvDim, c.dim]);
    m.set(`${b}attn_v.weight`, [kvDim, c.dim]);
    m.set(`${b}attn_output.weight`, [c.dim, qDim]);
    m.set(`${b}ffn_norm.weight`, [c.dim]);
    m.set(`${b}ffn_gate.weight`, [c.hiddenDim, c.dim]);
    m.set(`${b}ffn_up.weight`, [c.hiddenDim, c.dim]);
    m.set(`${b}ffn_down.weight`, [c.dim, c.hiddenDim]);
  }
  m.set("output_norm.weight", [c.dim]);
  if (!c.tiedEmbeddings) m.set("output.weight", [c.vocabSize, c.dim]);
  return m;
}

function gpt2Shapes(c: Gpt2Config): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const d = c.dim;
  m.set("token_embd.weight", [c.vocabSize, d]);
  m.set("position_embd.weight", [c.maxSeqLen, d]);
  for (let l = 0; l < c.nLayers; l++) {
    const b = `blk.${l}.`;
    for (const norm of ["attn_norm", "ffn_norm"]) {
      m.set(`${b}${norm}.weight`, [d]);
      m.set(`${b}${norm}.bias`, [d]);
    }
    m.set(`${b}attn_qkv.weight`, [3 * d, d]);
    m.set(`${b}attn_qkv.bias`, [3 * d]);
    m.set(`${b}attn_output.weight`, [d, d]);
    m.set(`${b}attn_output.bias`, [d]);
    m.set(`${b}ffn_up.weight`, [4 * d, d]);
    m.set(`${b}ffn_up.bias`, [4 * d]);
    m.set(`${b}ffn_down.weight`, [d, 4 * d]);
    m.set(`${b}ffn_down.bias`, [d]);
  }
  m.set("output_norm.weight", [d]);
  m.set("output_norm.bias", [d]);
  return m;
}

/** Every tensor the config requires, with its shape. GPT-2's output head is tied (an `output.weight` is allowed too). */
export function expectedShapes(config: ModelConfig): Map<string, number[]> {
  return config.arch === "llama" ? llamaShapes(config) : gpt2Shapes(config);
}

/** Throws a FormatError naming the file and the tensor when a required tensor is missing or has the wrong shape. */
export function checkAgainstConfig(model: LoadedModel): void {
  const { config, source } = model;
  const expected = expectedShapes(config);
  if (config.arch === "gpt2") expected.set("output.weight", [config.vocabSize, config.dim]);
  for (const [name, shape] of expected) {
    const t = model.tensors.get(name);
    if (!t) {
      if (name === "output.weight") continue;
      throw new FormatError(source, `tensor '${name}'`, `missing (required by the ${config.arch} config: ${config.nLayers} layers)`);
    }
    if (t.shape.length !== shape.length || t.shape.some((n, i) => n !== shape[i])) {
      throw new FormatError(source, `tensor '${name}' shape`, `[${t.shape.join(", ")}] contradicts the config, which implies [${shape.join(", ")}]`);
    }
  }
}
