// The model runner on other transformers of src/models than stories260K (random weights, cpu): GPT-2
// (its own forward, position embeddings through the paged context) and a Llama with a separate output
// head and grouped-query attention. The runner's log-probabilities match those of the contiguous-cache
// decoder (language_model.ts) token for token, which checks the paged forward against the reference one.

import { describe, expect, it } from "vitest";
import { getBackend } from "../../src/index.js";
import { fromLoaded } from "../../src/models/language_model.js";
import { randomLoadedModel } from "../../src/models/random_weights.js";
import { createSampler } from "../../src/models/sampling/index.js";
import type { ModelConfig } from "../../src/models/types.js";
import { ModelRunner } from "../../src/serve/model_runner.js";
import { Scheduler } from "../../src/serve/scheduler.js";

const cpu = await getBackend("cpu");
const CONFIGS: ModelConfig[] = [
  { arch: "gpt2", dim: 32, nLayers: 2, nHeads: 4, vocabSize: 64, maxSeqLen: 64, normEps: 1e-5 },
  { arch: "llama", dim: 32, hiddenDim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 8, vocabSize: 64, maxSeqLen: 64, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: false },
];

describe.each(CONFIGS)("model runner on a random $arch", (config) => {
  it("gives the contiguous-cache decoder's log-probabilities, step by step", async () => {
    const lm = fromLoaded(randomLoadedModel(config, 3), cpu);
    const prompt = [1, 5, 9, 3, 7, 2];
    const steps = 10;
    // Reference: prefill, then decode the runner's own tokens, keeping the top-5 log-probabilities.
    const runner = await ModelRunner.create(lm.model, { numBlocks: 16, blockSize: 4 });
    const sched = new Scheduler({ maxNumBatchedTokens: 4, maxNumSeqs: 4, maxModelLen: 64, cache: { numBlocks: 16, blockSize: 4 } });
    sched.addRequest({ reqId: "a", promptTokenIds: prompt, maxTokens: steps, samplingParams: { temperature: 0, topLogprobs: 5 } });
    const got: { id: number; top: { id: number; logprob: number }[] }[] = [];
    while (sched.hasWork) {
      const so = sched.schedule();
      const ro = await runner.execute(so);
      for (const s of ro.samples["a"] ?? []) got.push({ id: s.id, top: [...s.top!] });
      sched.updateFromOutput(so, ro);
    }
    expect(got.length).toBe(steps);
    const ref = createSampler({ temperature: 0, topLogprobs: 5 });
    let logits = await lm.forwardPrefill(prompt);
    for (const [i, g] of got.entries()) {
      const want = ref.sample(logits);
      expect(g.id).toBe(want.id);
      expect(g.top.map((t) => t.id)).toEqual(want.top!.map((t) => t.id));
      for (const [j, t] of g.top.entries()) expect(t.logprob).toBeCloseTo(want.top![j]!.logprob, 4);
      if (i < steps - 1) logits = await lm.decodeStep(g.id);
    }
  });
});
