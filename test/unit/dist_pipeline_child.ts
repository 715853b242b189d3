// dist_pipeline_child.ts: one pipeline stage for dist_pipeline.test.ts, a real OS process with torchrun's
// variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT): the world is the pipeline group. It builds the
// tiny run of dist_pipeline_setup.ts (PP_ARCH, seed 4 on every rank, width PP_DIM), sets up its stage
// (PP_PARTITION: "measure" or a JSON list of ranges), trains PP_STEPS steps of PP_MICRO micro-batches and
// prints one JSON line: the losses, norms, its stage's final parameters by name, the ranges, the piece
// costs and each step's timing. A setup error (another config) is printed as { error } instead.

import { getBackend } from "../../src/index.js";
import { createCommunicatorFromEnv } from "../../src/dist/create_communicator.js";
import { pipelineParallel } from "../../src/dist/pipeline.js";
import { Trainer } from "../../src/train/trainer.js";
import { tinyRun, trainerOptions, MICRO_ROWS, BLOCK } from "./dist_pipeline_setup.js";

// NOTE: a bound of its own, so a rank outlives neither a hang nor a test runner that died before its afterEach.
setTimeout(() => {
  console.error(`rank ${process.env.RANK}: still running after 100 s; exiting`);
  process.exit(124);
}, 100_000).unref();
const env = (name: string, fallback: string) => process.env[name] ?? fallback;
const comm = await createCommunicatorFromEnv({ timeoutMs: Number(env("PP_TIMEOUT_MS", "30000")) });
try {
  const backend = await getBackend("cpu");
  const arch = env("PP_ARCH", "gpt2") as "gpt2" | "llama";
  const { model, data } = await tinyRun(backend, arch, 4, Number(env("PP_DIM", "16")));
  const micro = Number(env("PP_MICRO", "4"));
  const opts = trainerOptions(micro);
  const partition = env("PP_PARTITION", "measure");
  const pp = await pipelineParallel(comm, model, { batchSize: MICRO_ROWS, blockSize: BLOCK, partition: partition === "measure" ? "measure" : JSON.parse(partition), config: opts }).catch((e: Error) => e);
  if (pp instanceof Error) {
    console.log(JSON.stringify({ rank: comm.rank, error: pp.message }));
  } else {
    const trainer = new Trainer(pp.stage, data, { ...opts, gradientSource: pp.gradientSource, hostGradientNorm: pp.hostGradientNorm });
    const losses: number[] = [];
    const norms: number[] = [];
    for (let i = 0; i < Number(env("PP_STEPS", "50")); i++) {
      const s = await trainer.trainStep();
      losses.push(s.loss);
      norms.push(s.gradNorm);
    }
    const params: Record<string, number[]> = {};
    for (const [name, t] of pp.stage.parameters()) params[name] = Array.from((await t.data()) as Float32Array);
    console.log(JSON.stringify({ rank: comm.rank, losses, norms, params, ranges: pp.ranges, costs: pp.costs, timings: pp.timings }));
  }
} finally {
  await comm.close();
}
