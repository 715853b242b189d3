// llama_layout.ts: rewrites of a Llama LoadedModel that keep the function it computes but suit
// inference better, applied to the plain data before upload (each tensor is still read on demand):
//   - foldNorms: each block's RMSNorm weight g moves into the columns of the linears that read the
//     norm (W[o, j] *= g[j]; g = 1), so the forward can feed the residual stream to the matmuls and
//     apply the norm's scale in their epilogue (one kernel less per norm);
//   - fuseQkv: attn_q, attn_k and attn_v become one attn_qkv (rows q, then k, then v): one matmul.
// Folded products are rounded to f32 once. llama.ts decides when to use them (LlamaOptions).

import type { HostTensor, LlamaConfig, LoadedModel, TensorEntry } from "./types.js";
import { hostValues } from "./weights.js";

function entry(shape: readonly number[], read: () => Float32Array): TensorEntry {
  return { shape, stored: "f32", read: (): HostTensor => ({ shape, dtype: "f32", data: read() }) };
}

function layerCount(loaded: LoadedModel): number {
  return (loaded.config as LlamaConfig).nLayers;
}

export function foldNorms(loaded: LoadedModel): LoadedModel {
  const tensors = new Map(loaded.tensors);
  for (let l = 0; l < layerCount(loaded); l++) {
    for (const [norm, linears] of [["attn_norm", ["attn_q", "attn_k", "attn_v"]], ["ffn_norm", ["ffn_gate", "ffn_up"]]] as const) {
      const g = loaded.tensors.get(`blk.${l}.${norm}.weight`);
      if (!g) continue; // NOTE: reported as missing when the model loads
      let gain: ArrayLike<number> | undefined;
      for (const lin of linears) {
        const name = `blk.${l}.${lin}.weight`;
        const w = loaded.tensors.get(name);
        if (!w || w.shape[w.shape.length - 1] !== g.shape[0]) continue; // NOTE: the shape check names it
        tensors.set(name, entry(w.shape, () => {
          gain ??= hostValues(g.read());
          const values = hostValues(w.read());
          const out = new Float32Array(values.length);
          for (let i = 0; i < values.length; i++) out[i] = values[i]! * gain[i % gain.length]!;
          return out;
        }));
      }
      tensors.set(`blk.${l}.${norm}.weight`, entry(g.shape, () => new Float32Array(g.shape[0]!).fill(1)));
    }
  }
  return { ...loaded, tensors };
}

export function fuseQkv(loaded: LoadedModel): LoadedModel {
  const cfg = loaded.config as LlamaConfig;
  const rows = { attn_q: cfg.nHeads * cfg.headDim, attn_k: cfg.nKvHeads * cfg.headDim, attn_v: cfg.nKvHeads * cfg.headDim };
  const tensors = new Map<string, TensorEntry>();
  for (const [name, e] of loaded.tensors) {
    const m = /^blk\.(\d+)\.attn_([qkv])\.weight$/.exec(name);
    if (!m) {
      tensors.set(name, e);
      continue;
    }
    if (m[2] !== "q") {
      // k and v join q's entry
      if (!loaded.tensors.has(`blk.${m[1]}.attn_q.weight`)) throw new Error(`${loaded.source}: tensor 'blk.${m[1]}.attn_q.weight' is missing`);
      continue;
    }
    const parts = (["attn_q", "attn_k", "attn_v"] as const).map((p) => {
      const part = `blk.${m[1]}.${p}.weight`;
      const pe = loaded.tensors.get(part);
      if (!pe) throw new Error(`${loaded.source}: tensor '${part}' is missing`);
      if (pe.shape.length !== 2 || pe.shape[0] !== rows[p] || pe.shape[1] !== cfg.dim) {
        throw new Error(`${loaded.source}: tensor '${part}' has shape (${pe.shape.join(", ")}), the config says (${rows[p]}, ${cfg.dim})`);
      }
      return pe;
    });
    const shape = [rows.attn_q + rows.attn_k + rows.attn_v, cfg.dim];
    tensors.set(`blk.${m[1]}.attn_qkv.weight`, entry(shape, () => {
      const out = new Float32Array(shape[0]! * shape[1]!);
      let at = 0;
      for (const p of parts) {
        const v = hostValues(p.read());
        out.set(v, at);
        at += v.length;
      }
      return out;
    }));
  }
  return { ...loaded, tensors };
}
