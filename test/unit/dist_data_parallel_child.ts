// dist_data_parallel_child.ts: one data-parallel rank for dist_data_parallel.test.ts, a real OS process
// with torchrun's variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT). It builds the tiny run of
// dist_data_parallel_setup.ts with its own seed (DP_SEED + rank: replicaStart must make the ranks equal),
// trains DP_STEPS steps (DP_ACCUM micro-batches each) on its rows of the global batch, and prints one JSON
// line: every step's loss, norm and time, the final parameters and their sha-256. DP_DIM changes the model's width
// (a rank with another layout, which replicaStart must refuse); then it prints the error it got. DP_FORM=graph
// reduces the gradient inside the step's graph (Trainer's reduceGradient) instead of the host hook; DP_PRECISION
// sets the precision (fp16 works only in graph form).

import { createHash } from "node:crypto";
import { getBackend } from "../../src/index.js";
import { createCommunicatorFromEnv } from "../../src/dist/create_communicator.js";
import { dataParallel } from "../../src/dist/data_parallel.js";
import { replicaStart } from "../../src/dist/replica_start.js";
import { Trainer } from "../../src/train/trainer.js";
import { tinyRun, trainerOptions } from "./dist_data_parallel_setup.js";

// NOTE: a bound of its own, so a rank outlives neither a hang nor a test runner that died before its afterEach.
setTimeout(() => {
  console.error(`rank ${process.env.RANK}: still running after 90 s; exiting`);
  process.exit(124);
}, 90_000).unref();
const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const comm = await createCommunicatorFromEnv({ timeoutMs: num("DP_TIMEOUT_MS", 20_000) });
try {
  const backend = await getBackend("cpu");
  const { model, global } = await tinyRun(backend, num("DP_SEED", 4) + comm.rank, num("DP_DIM", 16));
  const accum = num("DP_ACCUM", 1);
  const precision = process.env.DP_PRECISION as "fp32" | "fp16" | "bf16" | undefined;
  const opts = { ...trainerOptions(accum), ...(precision ? { precision: { precision } } : {}) };
  const dp = dataParallel(comm);
  const started = Date.now();
  const error = await replicaStart(comm, model, { globalBatch: global.batchSize, blockSize: global.blockSize, opts }).then(
    () => undefined,
    (e: Error) => e.message,
  );
  if (error !== undefined) {
    console.log(JSON.stringify({ rank: comm.rank, error, waitedMs: Date.now() - started }));
  } else {
    // DP_FORM=graph: the all-reduce as a node of the step's one graph (reduceGradient), else the host hook.
    const reduce = process.env.DP_FORM === "graph" ? { reduceGradient: dp.reduceGradient } : { gradientHook: dp.gradientHook };
    const trainer = new Trainer(model, dp.rows(global), { ...opts, ...reduce });
    const losses: number[] = [];
    const norms: number[] = [];
    const stepMs: number[] = [];
    for (let i = 0; i < num("DP_STEPS", 20); i++) {
      const s = await trainer.trainStep();
      losses.push(s.loss);
      norms.push(s.gradNorm);
      stepMs.push(s.ms);
    }
    const { params } = await trainer.state();
    const sha = createHash("sha256").update(new Uint8Array(params.buffer, params.byteOffset, params.byteLength)).digest("hex");
    console.log(JSON.stringify({ rank: comm.rank, losses, norms, params: Array.from(params), sha, stepMs }));
  }
} finally {
  await comm.close();
}
