// random_weights.ts: a LoadedModel with seeded random weights for any config, for tests and
// benchmarks that need a model of a given size and no file. Names and shapes come from the model's
// own parameters, so they are exactly what fromLoaded expects. Values: norm weights near 1, biases
// small, matrices uniform in +-1/sqrt(fan_in) (activations stay O(1) through the layers).

import { defaultBackend } from "../index.js";
import type { Module } from "../nn/index.js";
import { Gpt2 } from "./gpt2.js";
import { Llama } from "./llama.js";
import { mulberry32 } from "../core/mulberry32.js";
import type { HostTensor, LoadedModel, ModelConfig, TensorEntry } from "./types.js";

function randomValues(name: string, shape: readonly number[], seed: number): Float32Array {
  const r = mulberry32(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  if (name.endsWith("norm.weight")) for (let i = 0; i < n; i++) out[i] = 1 + 0.2 * (r() - 0.5);
  else if (name.endsWith(".bias")) for (let i = 0; i < n; i++) out[i] = 0.1 * (r() - 0.5);
  else {
    const a = 1 / Math.sqrt(shape[shape.length - 1]!);
    for (let i = 0; i < n; i++) out[i] = a * (2 * r() - 1);
  }
  return out;
}

/** A model of this config with random f32 weights; each tensor has its own seed, so reads are deterministic in any order. */
export function randomLoadedModel(config: ModelConfig, seed = 1): LoadedModel {
  const backend = defaultBackend();
  const model: Module = config.arch === "llama" ? new Llama(config, backend, { foldNorms: false, fuseQkv: false }) : new Gpt2(config, backend);
  const tensors = new Map<string, TensorEntry>();
  let i = 0;
  for (const [name, t] of model.parameters()) {
    const shape = [...t.shape];
    const s = seed * 1000 + i++;
    tensors.set(name, { shape, stored: "f32", read: (): HostTensor => ({ shape, dtype: "f32", data: randomValues(name, shape, s) }) });
  }
  return { config, tensors, source: `random ${config.arch} (seed ${seed})`, metadata: new Map() };
}
