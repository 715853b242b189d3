// weights.ts: moving a LoadedModel's host weights onto a backend as a module's state dict. Each
// TensorEntry is read (dequantized by its loader) only when the module has a parameter of that name,
// and uploaded in the model's dtype; names and shapes are checked by Module.loadStateDict. With
// keepQuantized, a 2-D Q8_0/Q4_0 tensor whose module can compute on it (Linear, Embedding) is uploaded as
// its file bytes instead (no f32 copy ever exists), so resident weights stay near the file's size.

import type { Backend, DType, Tensor } from "../index.js";
import { quantizedTensor, tensor } from "../index.js";
import { bf16BitsToF32, f16BitsToF32, isQuantFormat } from "../core/dtype.js";
import type { Module } from "../nn/index.js";
import { isQuantizable } from "../nn/index.js";
import type { HostTensor, LoadedModel } from "./types.js";

/** The values of a host tensor as numbers (f16/bf16 bits decoded). */
export function hostValues(h: HostTensor): ArrayLike<number> {
  if (h.dtype === "f32") return h.data;
  const decode = h.dtype === "f16" ? f16BitsToF32 : bf16BitsToF32;
  return Float32Array.from(h.data, decode);
}

/**
 * Load `loaded`'s tensors into `model` (whose parameters say which names and shapes it needs).
 * A file tensor the model has no parameter for is an error unless `ignorable` says it is one the
 * model derives from its config.
 */
export interface LoadOptions {
  /** File tensors the model derives from its config instead (e.g. GGUF's rope_freqs). */
  readonly ignorable?: (name: string) => boolean;
  /** Keep Q8_0/Q4_0 weights of Linear and Embedding modules in their blocks (default false: dequantize to `dtype`). */
  readonly keepQuantized?: boolean;
}

export function loadWeights(model: Module, loaded: LoadedModel, backend: Backend, dtype: DType, opts: LoadOptions = {}): void {
  const want = model.parameters();
  const state = new Map<string, Tensor>();
  const unexpected: string[] = [];
  for (const [name, entry] of loaded.tensors) {
    if (!want.has(name)) {
      if (!opts.ignorable?.(name)) unexpected.push(name);
      continue;
    }
    const expected = want.get(name)!.shape;
    if (entry.shape.length !== expected.length || entry.shape.some((d, i) => d !== expected[i])) {
      throw new Error(`${loaded.source}: tensor '${name}' has shape (${entry.shape.join(", ")}), the config says (${expected.join(", ")})`);
    }
    const owner = name.endsWith(".weight") ? model.submodule(name.slice(0, -".weight".length)) : undefined;
    if (opts.keepQuantized && entry.readRaw && isQuantFormat(entry.stored) && entry.shape.length === 2 && isQuantizable(owner)) {
      const q = quantizedTensor(entry.readRaw(), [entry.shape[0]!, entry.shape[1]!], entry.stored, backend, `${loaded.source}: tensor '${name}'`);
      owner.loadQuantized(q);
      state.set(name, q.bytes);
      continue;
    }
    const host = entry.read();
    state.set(name, tensor(hostValues(host), { backend, dtype, shape: host.shape }));
  }
  if (unexpected.length) throw new Error(`${loaded.source}: tensors the ${loaded.config.arch} model does not use: ${unexpected.join(", ")}`);
  try {
    model.loadStateDict(state);
  } catch (err) {
    throw new Error(`${loaded.source}: ${(err as Error).message}`, { cause: err });
  }
}
