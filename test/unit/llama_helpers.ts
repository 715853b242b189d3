// llama_helpers.ts: shared pieces of the model tests: comparing logits, counting what a backend is
// asked to compile, and a full (non-cached) forward over token ids.

import type { Backend } from "../../src/index.js";
import { tensor } from "../../src/index.js";
import type { CausalTransformer } from "../../src/models/language_model.js";
import { FullContext } from "../../src/models/kv_cache.js";

/** max |got - want| / max |want|: the error relative to the logits' scale. */
export function relError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) throw new Error(`${got.length} values, reference has ${want.length}`);
  let err = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i]! - want[i]!));
    scale = Math.max(scale, Math.abs(want[i]!));
  }
  return Number.isNaN(err) ? Infinity : err / scale;
}

/** The backend, counting compile() and routine() calls (what a replayed jit step must not make). */
export function countingBackend(b: Backend): { backend: Backend; builds: () => number } {
  let builds = 0;
  const backend = new Proxy(b, {
    get(target, key) {
      const v = Reflect.get(target, key, target) as unknown;
      if (typeof v !== "function") return v;
      if (key === "compile" || key === "routine") return (...args: unknown[]) => (builds++, (v as (...a: unknown[]) => unknown).apply(target, args));
      return (v as (...a: unknown[]) => unknown).bind(target);
    },
  });
  return { backend, builds: () => builds };
}

/** Logits (T, vocab) of a full causal forward over ids, without a cache. */
export async function fullLogits(model: CausalTransformer, ids: readonly number[]): Promise<Float64Array> {
  const input = tensor(Int32Array.from(ids), { backend: model.backend, dtype: "i32" });
  return Float64Array.from(await model.logits(input, new FullContext(ids.length)).data());
}

export function row(all: ArrayLike<number>, i: number, width: number): number[] {
  return Array.from({ length: width }, (_, j) => all[i * width + j]!);
}

export const argmax = (l: ArrayLike<number>): number => {
  let best = 0;
  for (let i = 1; i < l.length; i++) if (l[i]! > l[best]!) best = i;
  return best;
};
