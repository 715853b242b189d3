// dist_expert_parallel_setup.ts: the tiny MoE training run dist_expert_parallel.test.ts compares, built the
// same way in the test process (the single-process reference) and in each rank (dist_expert_parallel_child.ts):
// a 2-layer Mixtral-style Llama of width 16 (4 SwiGLU experts, top 2, no capacity limit, aux loss weight
// 0.1) on dist_data_parallel_setup.ts's toy corpus, AdamW with weight decay, clipping and warmup + cosine;
// the global batch is 4 rows of 8 tokens.

import type { Backend } from "../../src/index.js";
import { Llama } from "../../src/models/llama.js";
import type { LlamaOptions } from "../../src/models/llama.js";
import type { LlamaConfig } from "../../src/models/types.js";
import { RandomWindows } from "../../src/train/batches.js";
import { initParameters } from "../../src/train/init.js";
import type { TrainerOptions } from "../../src/train/trainer.js";
import { GLOBAL_BATCH, TOKENS } from "./dist_data_parallel_setup.js";

export { GLOBAL_BATCH };
export const EXPERTS = 4;

export const MOE_CONFIG: LlamaConfig = {
  arch: "llama", dim: 16, hiddenDim: 12, nLayers: 2, nHeads: 2, nKvHeads: 2, headDim: 8, vocabSize: 19,
  maxSeqLen: 8, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: true,
  moe: { numExperts: EXPERTS, topK: 2, routerAuxLossCoef: 0.1 },
};

export const MOE_TRAINER: TrainerOptions = {
  schedule: { kind: "cosine", lr: 1e-2, minLr: 1e-3, warmupSteps: 3, decaySteps: 50 },
  adamw: { beta2: 0.99, weightDecay: 0.1 },
  maxGradNorm: 0.5,
};

/** The whole model (every expert, initialized from `seed`) and the global batch source. */
export async function moeRun(backend: Backend, seed: number, opts: Pick<LlamaOptions, "experts"> = {}) {
  const model = new Llama(MOE_CONFIG, backend, { foldNorms: false, fuseQkv: false, ...opts });
  if (!opts.experts) await initParameters(model, { seed });
  return { model, global: new RandomWindows(TOKENS, GLOBAL_BATCH, 8, 7) };
}
