// dist_zero_child.ts: one ZeRO rank for dist_zero.test.ts and dist_checkpoint.test.ts, a real OS process with
// torchrun's variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT). It builds dist_zero_setup.ts's run with its
// own seed (ZR_SEED + rank: replicaStart makes the ranks equal), shards the optimizer with ZeRO stage ZR_STAGE
// (0: one process, no sharding), trains ZR_STEPS steps on its rows of the global batch and prints one JSON
// line: every step's loss and norm, the final parameters and their sha-256, and its optimizer state's length.
// With ZR_CKPT (a folder): ZR_RESUME=1 first resumes from the newest good distributed checkpoint there, and
// ZR_SAVE_AT=k saves one after step k; ZR_FAIL_RANK=r with ZR_FAIL=throw|exit makes rank r's shard write fail
// (the file system throws) or the process die mid-write. ZR_DIM changes the model's width (another layout).

import { createHash } from "node:crypto";
import { getBackend } from "../../src/index.js";
import { createCommunicatorFromEnv } from "../../src/dist/create_communicator.js";
import { dataParallel } from "../../src/dist/data_parallel.js";
import { replicaStart } from "../../src/dist/replica_start.js";
import { zeroSharding } from "../../src/dist/zero.js";
import { Trainer } from "../../src/train/trainer.js";
import { trainerOptions, zeroRun } from "./dist_zero_setup.js";

// NOTE: a bound of its own, so a rank outlives neither a hang nor a test runner that died before its afterEach.
setTimeout(() => {
  console.error(`rank ${process.env.RANK}: still running after 90 s; exiting`);
  process.exit(124);
}, 90_000).unref();
const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const comm = await createCommunicatorFromEnv({ timeoutMs: num("ZR_TIMEOUT_MS", 20_000) });
try {
  const backend = await getBackend("cpu");
  const { model, global } = await zeroRun(backend, num("ZR_SEED", 4) + comm.rank, num("ZR_DIM", 16));
  const stage = num("ZR_STAGE", 1);
  const opts = trainerOptions(num("ZR_ACCUM", 1));
  await replicaStart(comm, model, { globalBatch: global.batchSize, blockSize: global.blockSize, opts });
  const sharding = stage === 0 ? undefined : zeroSharding(comm, stage as 1 | 2);
  const hook = stage === 0 && comm.size > 1 ? dataParallel(comm).gradientHook : undefined;
  const trainer = new Trainer(model, dataParallel(comm).rows(global), { ...opts, sharding, gradientHook: hook });
  const losses: number[] = [];
  const norms: number[] = [];
  for (let i = 0; i < num("ZR_STEPS", 10); i++) {
    const s = await trainer.trainStep();
    losses.push(s.loss);
    norms.push(s.gradNorm);
  }
  const state = await trainer.state();
  const { params } = state;
  const sha = createHash("sha256").update(new Uint8Array(params.buffer, params.byteOffset, params.byteLength)).digest("hex");
  const optimizerElements = trainer.optimizer.stateTensors().reduce((n, t) => n + t.numel, 0);
  console.log(JSON.stringify({ rank: comm.rank, losses, norms, params: Array.from(params), sha, optimizerElements, layoutSize: trainer.layout.size, range: state.optimizerRange }));
} finally {
  await comm.close();
}
