// tensor_parallel_train.ts: a tensor-parallel model from the whole model a single-process run trains (kiln
// train builds and initialises that one alike on every rank): this rank's slices are cut from it and the whole
// is freed, so the tensor-parallel run starts from the single run's exact weights. The one difference of
// layout: a training Llama keeps attn_q, attn_k and attn_v apart (the file's layout), the tensor-parallel Llama
// has one column-parallel attn_qkv, so q, k and v are joined on the host first (rows stacked: the fused
// layer's output is [q; k; v], as models/llama_layout.ts fuseQkv lays it out).

import type { Backend, Tensor } from "../index.js";
import type { Gpt2Config, LlamaConfig } from "../models/types.js";
import type { Communicator } from "./comm.js";
import { TpGpt2 } from "./tensor_parallel_gpt2.js";
import { TpLlama } from "./tensor_parallel_llama.js";
import type { TpLanguageModel } from "./tensor_parallel_model.js";
import type { HostArray } from "./tensor_parallel_shard.js";
import { loadShards } from "./tensor_parallel_shard.js";

/** What tensorParallelFromWhole needs of the whole model (models' Gpt2 and Llama have it). */
export interface WholeModel {
  readonly config: Gpt2Config | LlamaConfig | { readonly arch: string };
  parameters(): Map<string, Tensor>;
}

/** This rank's tensor-parallel model over `tp`, sliced from `whole` (whose tensors are then disposed). Every rank of tp calls it. */
export async function tensorParallelFromWhole(whole: WholeModel, backend: Backend, tp: Communicator): Promise<TpLanguageModel> {
  const params = whole.parameters();
  const host = new Map<string, HostArray>();
  for (const [name, t] of params) host.set(name, { shape: [...t.shape], data: Float32Array.from((await t.data()) as Float32Array) });
  const config = whole.config;
  let model: TpLanguageModel;
  if (config.arch === "gpt2") {
    model = new TpGpt2(config as Gpt2Config, backend, { tp, separateHead: params.has("output.weight") });
  } else if (config.arch === "llama") {
    const c = config as LlamaConfig & { moe?: unknown };
    if (c.moe) throw new Error("tensor parallel: not yet: a mixture-of-experts Llama (model.moe) has no tensor-parallel layers; use parallel.ep");
    model = new TpLlama(c, backend, { tp });
    joinQkv(host, c.nLayers);
  } else {
    throw new Error(`tensor parallel: no tensor-parallel model of architecture '${config.arch}' (gpt2 and llama have one)`);
  }
  try {
    await loadShards(model, host);
  } finally {
    for (const t of new Set(params.values())) t.dispose();
  }
  return model;
}

/** blk.N.attn_{q,k,v}.weight (rows, dim) joined into blk.N.attn_qkv.weight (q rows, then k, then v), in place. */
export function joinQkv(host: Map<string, HostArray>, layers: number): void {
  for (let i = 0; i < layers; i++) {
    const parts = ["q", "k", "v"].map((p) => `blk.${i}.attn_${p}.weight`);
    if (host.has(`blk.${i}.attn_qkv.weight`)) continue;
    const arrays = parts.map((p) => host.get(p) ?? missing(p));
    const dim = arrays[0]!.shape[1]!;
    const rows = arrays.reduce((n, a) => n + a.shape[0]!, 0);
    const data = new Float32Array(rows * dim);
    let at = 0;
    for (const a of arrays) {
      data.set(a.data, at);
      at += a.data.length;
    }
    parts.forEach((p) => host.delete(p));
    host.set(`blk.${i}.attn_qkv.weight`, { shape: [rows, dim], data });
  }
}

function missing(name: string): never {
  throw new Error(`tensor parallel: the whole Llama has no '${name}'`);
}
