// The jit-captured prefill (language_model.ts + prefill_steps.ts) on cpu: a prompt of a captured length,
// at another position of the cache (a chat turn) or after a reset, replays without compiling anything and
// gives the full forward's logits; the eager path (routines off) gives the same; only the last
// PREFILL_STEPS_KEPT lengths stay captured.

import { describe, expect, it } from "vitest";
import { getBackend } from "../../src/index.js";
import { fromLoaded } from "../../src/models/language_model.js";
import { PREFILL_STEPS_KEPT } from "../../src/models/prefill_steps.js";
import { randomLoadedModel } from "../../src/models/random_weights.js";
import type { LlamaConfig } from "../../src/models/types.js";
import { countingBackend, fullLogits, relError, row } from "./llama_helpers.js";

const CONFIG: LlamaConfig = {
  arch: "llama", dim: 32, hiddenDim: 48, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 8, vocabSize: 40,
  maxSeqLen: 32, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: false,
};
const IDS = [1, 5, 7, 9, 3, 11, 2, 30, 8, 4, 17, 22];
const TOL = 1e-4;

describe("jit-captured prefill (cpu)", () => {
  it("replays a captured length at any position without compiling, with the full forward's logits", async () => {
    const { backend, builds } = countingBackend(await getBackend("cpu"));
    const lm = fromLoaded(randomLoadedModel(CONFIG, 3), backend);
    const full = await fullLogits(lm.model, IDS);
    const V = CONFIG.vocabSize;
    expect(relError(await lm.forwardPrefill(IDS.slice(0, 4)), row(full, 3, V))).toBeLessThan(TOL);
    const captured = builds();
    // The same length at positions 4..7 (a second turn), then 8..11: replays, nothing compiled.
    expect(relError(await lm.forwardPrefill(IDS.slice(4, 8)), row(full, 7, V))).toBeLessThan(TOL);
    expect(relError(await lm.forwardPrefill(IDS.slice(8, 12)), row(full, 11, V))).toBeLessThan(TOL);
    lm.reset();
    expect(relError(await lm.forwardPrefill(IDS.slice(0, 4)), row(full, 3, V))).toBeLessThan(TOL);
    expect(builds()).toBe(captured);
    expect(relError(await lm.decodeStep(IDS[4]!), row(full, 4, V))).toBeLessThan(TOL);
    lm.dispose();
  });

  it("keeps the last few lengths captured", async () => {
    const lm = fromLoaded(randomLoadedModel(CONFIG, 3), await getBackend("cpu"));
    const full = await fullLogits(lm.model, IDS);
    const lengths = Array.from({ length: PREFILL_STEPS_KEPT + 2 }, (_, i) => i + 1);
    for (const n of lengths) {
      lm.reset();
      expect(relError(await lm.forwardPrefill(IDS.slice(0, n)), row(full, n - 1, CONFIG.vocabSize))).toBeLessThan(TOL);
    }
    const steps = (lm as unknown as { prefills: { lengths: number[] } }).prefills;
    expect(steps.lengths).toEqual(lengths.slice(-PREFILL_STEPS_KEPT));
    lm.dispose();
    expect(steps.lengths).toEqual([]);
  });
});
