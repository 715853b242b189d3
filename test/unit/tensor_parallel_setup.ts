// tensor_parallel_setup.ts: the tiny training runs tensor_parallel.test.ts compares, built the same way in
// the test process (the single-process reference) and in each rank (tensor_parallel_child.ts): a 2-layer
// GPT-2 (tied head) and a 2-layer Llama with grouped-query attention (4 query heads, 2 key/value heads) and
// a separate head, on a toy corpus over a vocabulary of 20 (divisible by tp 2 and 4); AdamW with weight
// decay, clipping and a warmup + cosine schedule; a global batch of 4 rows of 8 tokens.

import type { Backend } from "../../src/index.js";
import { mulberry32 } from "../../src/core/mulberry32.js";
import { Gpt2 } from "../../src/models/gpt2.js";
import { Llama } from "../../src/models/llama.js";
import type { Gpt2Config, LlamaConfig } from "../../src/models/types.js";
import { RandomWindows } from "../../src/train/batches.js";
import { initParameters } from "../../src/train/init.js";
import type { TrainerOptions } from "../../src/train/trainer.js";

const r0 = mulberry32(5);
export const TOKENS = Int32Array.from({ length: 500 }, (_, i) => (i * 7 + Math.floor(r0() * 3)) % 19);
export const GLOBAL_BATCH = 4;
export const SEED = 11;

export const GPT2: Gpt2Config = { arch: "gpt2", dim: 16, nLayers: 2, nHeads: 4, vocabSize: 20, maxSeqLen: 8, normEps: 1e-5 };
export const LLAMA: LlamaConfig = {
  arch: "llama", dim: 16, hiddenDim: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 4, vocabSize: 20, maxSeqLen: 8,
  normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: false,
};

export function trainerOptions(): TrainerOptions {
  return {
    schedule: { kind: "cosine", lr: 1e-2, minLr: 1e-3, warmupSteps: 3, decaySteps: 50 },
    adamw: { beta2: 0.99, weightDecay: 0.1 },
    maxGradNorm: 0.5,
  };
}

/** The whole (single-process) model of `arch`, initialized from SEED, and the global batch source. */
export async function wholeRun(backend: Backend, arch: "gpt2" | "llama") {
  const model = arch === "gpt2" ? new Gpt2(GPT2, backend) : new Llama(LLAMA, backend, { foldNorms: false });
  await initParameters(model, { seed: SEED });
  return { model, global: new RandomWindows(TOKENS, GLOBAL_BATCH, 8, 7) };
}
