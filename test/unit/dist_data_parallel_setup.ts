// dist_data_parallel_setup.ts: the one tiny training run dist_data_parallel.test.ts compares, built the same
// way in the test process (the single-process reference) and in each rank (dist_data_parallel_child.ts):
// a 2-layer GPT-2 of width 16 on a 19-token toy corpus, AdamW with weight decay, clipping and a warmup +
// cosine schedule; the global batch is 4 rows of 8 tokens per micro-batch.

import type { Backend } from "../../src/index.js";
import { mulberry32 } from "../../src/core/mulberry32.js";
import { Gpt2 } from "../../src/models/gpt2.js";
import { RandomWindows } from "../../src/train/batches.js";
import { initParameters } from "../../src/train/init.js";
import type { TrainerOptions } from "../../src/train/trainer.js";

const r0 = mulberry32(3);
export const TOKENS = Int32Array.from({ length: 500 }, (_, i) => (i * 5 + Math.floor(r0() * 4)) % 19);
export const GLOBAL_BATCH = 4;

export function trainerOptions(gradAccumSteps: number): TrainerOptions {
  return {
    schedule: { kind: "cosine", lr: 1e-2, minLr: 1e-3, warmupSteps: 3, decaySteps: 30 },
    adamw: { beta2: 0.99, weightDecay: 0.1 },
    gradAccumSteps,
    maxGradNorm: 0.5,
  };
}

/** The model (initialized from `seed`) and the global batch source every run draws from. */
export async function tinyRun(backend: Backend, seed: number, dim = 16) {
  const model = new Gpt2({ arch: "gpt2", dim, nLayers: 2, nHeads: 2, vocabSize: 19, maxSeqLen: 8, normEps: 1e-5 }, backend);
  await initParameters(model, { seed });
  return { model, global: new RandomWindows(TOKENS, GLOBAL_BATCH, 8, 7) };
}
