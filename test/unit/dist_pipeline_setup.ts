// dist_pipeline_setup.ts: the tiny training run dist_pipeline.test.ts compares, built the same way in the
// test process (the single-process reference) and in each pipeline stage (dist_pipeline_child.ts): a
// 4-layer GPT-2 of width 16 (tied head) or a 4-layer Llama (separate head), on dist_data_parallel_setup's
// toy corpus, AdamW with weight decay, clipping and warmup + cosine, micro-batches of 2 rows of 8 tokens.

import type { Backend } from "../../src/index.js";
import { Gpt2 } from "../../src/models/gpt2.js";
import { Llama } from "../../src/models/llama.js";
import { RandomWindows } from "../../src/train/batches.js";
import { initParameters } from "../../src/train/init.js";
import type { TrainerOptions } from "../../src/train/trainer.js";
import { TOKENS } from "./dist_data_parallel_setup.js";

export const MICRO_ROWS = 2;
export const BLOCK = 8;

export function trainerOptions(gradAccumSteps: number): TrainerOptions {
  return {
    schedule: { kind: "cosine", lr: 1e-2, minLr: 1e-3, warmupSteps: 3, decaySteps: 50 },
    adamw: { beta2: 0.99, weightDecay: 0.1 },
    gradAccumSteps,
    maxGradNorm: 0.5,
  };
}

/** The model (initialized from `seed`) and the batch source every run draws from. */
export async function tinyRun(backend: Backend, arch: "gpt2" | "llama", seed: number, dim = 16) {
  const model =
    arch === "gpt2"
      ? new Gpt2({ arch: "gpt2", dim, nLayers: 4, nHeads: 2, vocabSize: 19, maxSeqLen: BLOCK, normEps: 1e-5 }, backend)
      : new Llama({ arch: "llama", dim, hiddenDim: 32, nLayers: 4, nHeads: 2, nKvHeads: 1, headDim: dim / 2, vocabSize: 19, maxSeqLen: BLOCK, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: false }, backend, { foldNorms: false, fuseQkv: false });
  await initParameters(model, { seed });
  return { model, data: new RandomWindows(TOKENS, MICRO_ROWS, BLOCK, 7) };
}
