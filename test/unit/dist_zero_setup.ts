// dist_zero_setup.ts: the tiny run the ZeRO and distributed-checkpoint tests compare (dist_zero.test.ts,
// dist_checkpoint.test.ts), built the same way in the test process (the single-process reference) and in each
// rank (dist_zero_child.ts): dist_data_parallel_setup.ts's 2-layer GPT-2 of width 16, its corpus and AdamW
// options (weight decay, clipping, warmup + cosine), with a global batch of 8 rows of 8 tokens, so that it
// divides over 1, 2, 4 and 8 ranks.

import type { Backend } from "../../src/index.js";
import { Gpt2 } from "../../src/models/gpt2.js";
import { RandomWindows } from "../../src/train/batches.js";
import { initParameters } from "../../src/train/init.js";
import { TOKENS } from "./dist_data_parallel_setup.js";

export { trainerOptions } from "./dist_data_parallel_setup.js";
export const ZERO_GLOBAL_BATCH = 8;

/** The model (initialized from `seed`, width `dim`) and the global batch source every run draws from. */
export async function zeroRun(backend: Backend, seed: number, dim = 16) {
  const model = new Gpt2({ arch: "gpt2", dim, nLayers: 2, nHeads: 2, vocabSize: 19, maxSeqLen: 8, normEps: 1e-5 }, backend);
  await initParameters(model, { seed });
  return { model, global: new RandomWindows(TOKENS, ZERO_GLOBAL_BATCH, 8, 7) };
}
