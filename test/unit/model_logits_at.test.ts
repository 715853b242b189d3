// CausalTransformer.logitsAt, the serving runner's forward: for Llama (tied and separate heads) and
// GPT-2, the logits of chosen rows equal those rows of the full logits, and the output head is
// asked for those rows only (its matmul has as many rows as were chosen, not one per token).

import { describe, expect, it } from "vitest";
import type { Backend } from "../../src/index.js";
import { getBackend, tensor } from "../../src/index.js";
import type { MatmulSpec } from "../../src/core/routines.js";
import { FullContext } from "../../src/models/kv_cache.js";
import { fromLoaded } from "../../src/models/language_model.js";
import { randomLoadedModel } from "../../src/models/random_weights.js";
import type { ModelConfig } from "../../src/models/types.js";
import { fullLogits, relError, row } from "./llama_helpers.js";

const cpu = await getBackend("cpu");

const LLAMA = {
  arch: "llama", dim: 32, hiddenDim: 48, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 8, vocabSize: 40,
  maxSeqLen: 16, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: false,
} as const;
const CONFIGS: { name: string; config: ModelConfig }[] = [
  { name: "llama, separate head", config: LLAMA },
  { name: "llama, tied head", config: { ...LLAMA, tiedEmbeddings: true } },
  { name: "gpt2", config: { arch: "gpt2", dim: 32, nLayers: 2, nHeads: 4, vocabSize: 50, maxSeqLen: 12, normEps: 1e-5 } },
];
const IDS = [1, 5, 7, 9, 3, 11, 2, 30];
// Out of order and repeated, as a runner's sample rows can be in any order.
const ROWS = [5, 0, 7, 3, 3];

/** The backend, recording the matmul specs it is asked to build. */
function recordingMatmuls(b: Backend): { backend: Backend; specs: MatmulSpec[] } {
  const specs: MatmulSpec[] = [];
  const backend = new Proxy(b, {
    get(target, key) {
      const v = Reflect.get(target, key, target) as unknown;
      if (typeof v !== "function") return v;
      if (key !== "routine") return (v as (...a: unknown[]) => unknown).bind(target);
      return (name: string, spec: unknown) => {
        if (name === "matmul") specs.push(spec as MatmulSpec);
        return (v as (...a: unknown[]) => unknown).call(target, name, spec);
      };
    },
  });
  return { backend, specs };
}

describe.each(CONFIGS)("logitsAt ($name, cpu)", ({ config }) => {
  it("equals the full forward's logits at the chosen rows; the head sees only those rows", async () => {
    const { backend, specs } = recordingMatmuls(cpu);
    const model = fromLoaded(randomLoadedModel(config, 7), backend).model;
    const V = config.vocabSize;
    const full = await fullLogits(model, IDS);
    const headRows = (from: number) => specs.slice(from).filter((s) => s.n === V).map((s) => s.m);
    expect(headRows(0)).toEqual([IDS.length]);

    const before = specs.length;
    const i32 = (xs: number[]) => tensor(Int32Array.from(xs), { backend, dtype: "i32" });
    const got = await model.logitsAt(i32(IDS), new FullContext(IDS.length), i32(ROWS)).data();
    expect(got.length).toBe(ROWS.length * V);
    ROWS.forEach((r, i) => expect(relError(row(got, i, V), row(full, r, V))).toBeLessThan(1e-5));
    expect(headRows(before)).toEqual([ROWS.length]);
  });
});
