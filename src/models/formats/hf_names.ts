// hf_names.ts: Hugging Face tensor names <-> GGUF names for Llama and GPT-2 checkpoints, and the two
// layout changes between them: Llama q/k rows permuted for rotate_half, GPT-2 Conv1D weights stored
// transposed. It owns the name tables and the permutations; it does not read files.

import type { ModelConfig } from "../types.js";

/** How a tensor's values differ between the HF file and kiln's (GGUF) layout. */
export type HfLayout = { kind: "same" } | { kind: "rope"; heads: number } | { kind: "transpose" };

export interface HfName {
  readonly gguf: string;
  readonly layout: HfLayout;
}

const LLAMA_LAYER: Record<string, string> = {
  "input_layernorm.weight": "attn_norm.weight",
  "self_attn.q_proj.weight": "attn_q.weight",
  "self_attn.k_proj.weight": "attn_k.weight",
  "self_attn.v_proj.weight": "attn_v.weight",
  "self_attn.o_proj.weight": "attn_output.weight",
  "post_attention_layernorm.weight": "ffn_norm.weight",
  "mlp.gate_proj.weight": "ffn_gate.weight",
  "mlp.up_proj.weight": "ffn_up.weight",
  "mlp.down_proj.weight": "ffn_down.weight",
};
const LLAMA_TOP: Record<string, string> = { "model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight" };

const GPT2_LAYER: Record<string, string> = {
  "ln_1.weight": "attn_norm.weight", "ln_1.bias": "attn_norm.bias",
  "attn.c_attn.weight": "attn_qkv.weight", "attn.c_attn.bias": "attn_qkv.bias",
  "attn.c_proj.weight": "attn_output.weight", "attn.c_proj.bias": "attn_output.bias",
  "ln_2.weight": "ffn_norm.weight", "ln_2.bias": "ffn_norm.bias",
  "mlp.c_fc.weight": "ffn_up.weight", "mlp.c_fc.bias": "ffn_up.bias",
  "mlp.c_proj.weight": "ffn_down.weight", "mlp.c_proj.bias": "ffn_down.bias",
};
const GPT2_TOP: Record<string, string> = { "wte.weight": "token_embd.weight", "wpe.weight": "position_embd.weight", "ln_f.weight": "output_norm.weight", "ln_f.bias": "output_norm.bias" };

/** Buffers some checkpoints carry that are not weights (causal masks, cached RoPE frequencies). */
const IGNORED = [/^(transformer\.)?h\.\d+\.attn\.(bias|masked_bias)$/, /\.rotary_emb\.inv_freq$/];

const invert = (m: Record<string, string>): Record<string, string> => Object.fromEntries(Object.entries(m).map(([k, v]) => [v, k]));
const LLAMA_LAYER_INV = invert(LLAMA_LAYER), LLAMA_TOP_INV = invert(LLAMA_TOP);
const GPT2_LAYER_INV = invert(GPT2_LAYER), GPT2_TOP_INV = invert(GPT2_TOP);

/** The GGUF name and layout of an HF tensor; null for buffers to skip; undefined when unknown. */
export function fromHfName(hf: string, config: ModelConfig): HfName | null | undefined {
  if (IGNORED.some((r) => r.test(hf))) return null;
  if (config.arch === "llama") {
    const top = LLAMA_TOP[hf];
    if (top) return { gguf: top, layout: { kind: "same" } };
    const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hf);
    const rest = m && LLAMA_LAYER[m[2]!];
    if (!m || !rest) return undefined;
    const heads = rest === "attn_q.weight" ? config.nHeads : rest === "attn_k.weight" ? config.nKvHeads : 0;
    return { gguf: `blk.${m[1]}.${rest}`, layout: heads ? { kind: "rope", heads } : { kind: "same" } };
  }
  if (hf === "lm_head.weight") return { gguf: "output.weight", layout: { kind: "same" } };
  const name = hf.startsWith("transformer.") ? hf.slice("transformer.".length) : hf;
  const top = GPT2_TOP[name];
  if (top) return { gguf: top, layout: { kind: "same" } };
  const m = /^h\.(\d+)\.(.+)$/.exec(name);
  const rest = m && GPT2_LAYER[m[2]!];
  if (!m || !rest) return undefined;
  const conv1d = rest.endsWith(".weight") && !rest.includes("norm");
  return { gguf: `blk.${m[1]}.${rest}`, layout: conv1d ? { kind: "transpose" } : { kind: "same" } };
}

/** The HF name and layout for a GGUF tensor (the inverse of fromHfName); undefined when HF has no such tensor. */
export function toHfName(gguf: string, config: ModelConfig): { hf: string; layout: HfLayout } | undefined {
  const m = /^blk\.(\d+)\.(.+)$/.exec(gguf);
  if (config.arch === "llama") {
    if (!m) return LLAMA_TOP_INV[gguf] ? { hf: LLAMA_TOP_INV[gguf]!, layout: { kind: "same" } } : undefined;
    const rest = LLAMA_LAYER_INV[m[2]!];
    if (!rest) return undefined;
    const heads = m[2] === "attn_q.weight" ? config.nHeads : m[2] === "attn_k.weight" ? config.nKvHeads : 0;
    return { hf: `model.layers.${m[1]}.${rest}`, layout: heads ? { kind: "rope", heads } : { kind: "same" } };
  }
  if (gguf === "output.weight") return { hf: "lm_head.weight", layout: { kind: "same" } };
  if (!m) return GPT2_TOP_INV[gguf] ? { hf: `transformer.${GPT2_TOP_INV[gguf]}`, layout: { kind: "same" } } : undefined;
  const rest = GPT2_LAYER_INV[m[2]!];
  if (!rest) return undefined;
  const conv1d = m[2]!.endsWith(".weight") && !m[2]!.includes("norm");
  return { hf: `transformer.h.${m[1]}.${rest}`, layout: conv1d ? { kind: "transpose" } : { kind: "same" } };
}

/**
 * HF (rotate_half) -> GGUF (interleaved pairs) row order, as llama.cpp's convert_hf_to_gguf.py
 * `permute` does: rows viewed as (heads, 2, headDim/2) are swapped to (heads, headDim/2, 2).
 * GGUF row h*hd + 2i + j comes from HF row h*hd + j*hd/2 + i.
 */
export function unpermuteRope(w: Float32Array, rows: number, cols: number, heads: number): Float32Array {
  return permuteRows(w, rows, cols, heads, false);
}

/** GGUF -> HF row order: the inverse of unpermuteRope (what the HF writer stores). */
export function permuteRope(w: Float32Array, rows: number, cols: number, heads: number): Float32Array {
  return permuteRows(w, rows, cols, heads, true);
}

function permuteRows(w: Float32Array, rows: number, cols: number, heads: number, toHf: boolean): Float32Array {
  const hd = rows / heads;
  if (!Number.isInteger(hd) || hd % 2 !== 0) throw new Error(`rope permutation: ${rows} rows do not split into ${heads} heads of even size`);
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < hd / 2; i++) {
      for (let j = 0; j < 2; j++) {
        const gguf = h * hd + 2 * i + j;
        const hf = h * hd + j * (hd / 2) + i;
        const [dst, src] = toHf ? [hf, gguf] : [gguf, hf];
        out.set(w.subarray(src * cols, (src + 1) * cols), dst * cols);
      }
    }
  }
  return out;
}

/** (rows, cols) -> (cols, rows). */
export function transpose2d(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c]!;
  return out;
}
