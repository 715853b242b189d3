// dist_zero_setup.ts: the tiny run the ZeRO and distributed-checkpoint tests compare (dist_zero.test.ts,
// dist_zero3.test.ts, dist_checkpoint.test.ts), built the same way in the test process (the single-process reference) and in each
// rank (dist_zero_child.ts): dist_data_parallel_setup.ts's 2-layer GPT-2 of width 16, its corpus and AdamW
// options (weight decay, clipping, warmup + cosine), with a global batch of 8 rows of 8 tokens, so that it
// divides over 1, 2, 4 and 8 ranks.

import type { Backend } from "../../src/index.js";
import { getBackend, trackMemory } from "../../src/index.js";
import { Trainer } from "../../src/train/trainer.js";
import { Gpt2 } from "../../src/models/gpt2.js";
import { RandomWindows } from "../../src/train/batches.js";
import { initParameters } from "../../src/train/init.js";
import { TOKENS } from "./dist_data_parallel_setup.js";

import { trainerOptions } from "./dist_data_parallel_setup.js";

export { trainerOptions };
export const ZERO_GLOBAL_BATCH = 8;

/** The model (initialized from `seed`, width `dim`) and the global batch source every run draws from. */
export async function zeroRun(backend: Backend, seed: number, dim = 16) {
  const model = new Gpt2({ arch: "gpt2", dim, nLayers: 2, nHeads: 2, vocabSize: 19, maxSeqLen: 8, normEps: 1e-5 }, backend);
  await initParameters(model, { seed });
  return { model, global: new RandomWindows(TOKENS, ZERO_GLOBAL_BATCH, 8, 7) };
}

/**
 * The single-process run the sharded ones are held to: `steps` AdamW steps over the whole global batch (in
 * `accum` micro-batches) from seed 4, its losses, gradient norms, final parameters, optimizer state size and
 * resident bytes by category (the memory accountant's live figures).
 */
export async function singleProcessReference(steps: number, accum: number) {
  const { model, global } = await zeroRun(trackMemory(await getBackend("cpu")), 4);
  const t = new Trainer(model, global, trainerOptions(accum));
  const losses: number[] = [];
  const norms: number[] = [];
  for (let i = 0; i < steps; i++) {
    const s = await t.trainStep();
    losses.push(s.loss);
    norms.push(s.gradNorm);
  }
  const optimizerElements = t.optimizer.stateTensors().reduce((n, x) => n + x.numel, 0);
  return { losses, norms, params: Array.from((await t.state()).params), optimizerElements, live: t.memory.snapshot()!.live };
}
