// dist_rank.ts: one rank of `npm run bench:dist` (bench/dist.ts starts it with torchrun's variables). It
// trains a small GPT-2 data parallel over the `local` communicator, its own BENCH_ROWS rows per step (weak
// scaling: the global batch grows with the world), and prints one JSON line: each step's time and the part
// of it in the gradient all-reduce (data_parallel.ts timings), then the time of bare all-reduces of the
// gradient's size after a barrier (the transfer alone, no rank waiting for a slower one).
// NOTE: the tokens are synthetic (a fixed pseudo-random stream): the step's cost does not depend on them.

import { getBackend } from "../src/index.js";
import { createCommunicatorFromEnv, dataParallel, replicaStart } from "../src/dist/index.js";
import { Gpt2 } from "../src/models/gpt2.js";
import { mulberry32 } from "../src/core/mulberry32.js";
import { RandomWindows } from "../src/train/batches.js";
import { initParameters } from "../src/train/init.js";
import { Trainer } from "../src/train/trainer.js";

setTimeout(() => {
  console.error(`bench:dist rank ${process.env.RANK}: still running after 300 s; exiting`);
  process.exit(124);
}, 300_000).unref();
const num = (name: string) => Number(process.env[name]);
const comm = await createCommunicatorFromEnv({ timeoutMs: 120_000 });
try {
  const [rows, block, steps, warmup] = [num("BENCH_ROWS"), num("BENCH_BLOCK"), num("BENCH_STEPS"), num("BENCH_WARMUP")];
  const vocab = 65;
  const model = new Gpt2({ arch: "gpt2", dim: num("BENCH_DIM"), nLayers: num("BENCH_LAYERS"), nHeads: 4, vocabSize: vocab, maxSeqLen: block, normEps: 1e-5 }, await getBackend("cpu"));
  await initParameters(model, { seed: 1 });
  const rand = mulberry32(7);
  const tokens = Int32Array.from({ length: 20_000 }, () => Math.floor(rand() * vocab));
  // Every rank draws the same global batches and takes its rows (RankRows), as a real run does.
  const global = new RandomWindows(tokens, rows * comm.size, block, 11);
  const opts = { schedule: { kind: "cosine" as const, lr: 1e-3, minLr: 1e-4, warmupSteps: 2, decaySteps: 100 }, maxGradNorm: 1 };
  await replicaStart(comm, model, { rows, block, opts });
  const dp = dataParallel(comm);
  const trainer = new Trainer(model, dp.rows(global), { ...opts, gradientHook: dp.gradientHook });
  const stepMs: number[] = [];
  for (let i = 0; i < warmup + steps; i++) stepMs.push((await trainer.trainStep()).ms);
  const { commMs, computeMs } = dp.timings();
  const grad = new Float32Array(trainer.layout.size);
  const bareMs: number[] = [];
  for (let i = 0; i < 5; i++) {
    await comm.barrier();
    const t0 = performance.now();
    await comm.allReduce(grad, "sum");
    bareMs.push(performance.now() - t0);
  }
  const skip = (xs: readonly number[]) => xs.slice(warmup);
  console.log(JSON.stringify({ rank: comm.rank, size: comm.size, params: trainer.layout.size, stepMs: skip(stepMs), commMs: skip(commMs), computeMs: skip(computeMs), bareMs }));
} finally {
  await comm.close();
}
