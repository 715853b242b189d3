// pipeline_bubble_rank.ts: one stage of bench/pipeline_bubble.ts, started with torchrun's variables (the
// world is the pipeline group). It trains a GPT-2 (BUBBLE_LAYERS blocks of width BUBBLE_DIM) with
// BUBBLE_MICRO micro-batches per step for BUBBLE_STEPS steps, and prints one JSON line: the partition,
// the measured piece costs and every step's timing on this stage (src/dist/pipeline.ts StageTiming).

import { getBackend } from "../src/index.js";
import { createCommunicatorFromEnv } from "../src/dist/create_communicator.js";
import { pipelineParallel } from "../src/dist/pipeline.js";
import { Gpt2 } from "../src/models/gpt2.js";
import { RandomWindows } from "../src/train/batches.js";
import { initParameters } from "../src/train/init.js";
import { Trainer } from "../src/train/trainer.js";

setTimeout(() => {
  console.error(`rank ${process.env.RANK}: still running after 300 s; exiting`);
  process.exit(124);
}, 300_000).unref();
const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const comm = await createCommunicatorFromEnv({ timeoutMs: 120_000 });
try {
  const [dim, layers, rows, block, micro] = [num("BUBBLE_DIM", 64), num("BUBBLE_LAYERS", 8), num("BUBBLE_ROWS", 4), num("BUBBLE_BLOCK", 32), num("BUBBLE_MICRO", 4)];
  const model = new Gpt2({ arch: "gpt2", dim, nLayers: layers, nHeads: 4, vocabSize: 64, maxSeqLen: block, normEps: 1e-5 }, await getBackend("cpu"));
  await initParameters(model, { seed: 1 });
  const tokens = Int32Array.from({ length: 4096 }, (_, i) => (i * 13 + (i >> 3)) % 64);
  const data = new RandomWindows(tokens, rows, block, 3);
  const pp = await pipelineParallel(comm, model, { batchSize: rows, blockSize: block });
  const trainer = new Trainer(pp.stage, data, { schedule: { kind: "constant", lr: 1e-3 }, gradAccumSteps: micro, gradientSource: pp.gradientSource, hostGradientNorm: pp.hostGradientNorm });
  for (let i = 0; i < num("BUBBLE_STEPS", 8); i++) await trainer.trainStep();
  console.log(JSON.stringify({ rank: comm.rank, ranges: pp.ranges, costs: pp.costs, timings: pp.timings }));
} finally {
  await comm.close();
}
