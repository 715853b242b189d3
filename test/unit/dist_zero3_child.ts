// dist_zero3_child.ts: one ZeRO-3 rank for dist_zero3.test.ts, a real OS process with torchrun's variables
// (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT). It builds dist_zero_setup.ts's run with its own seed
// (ZR_SEED + rank: replicaStart makes the ranks equal), trains it with the ZeRO-3 trainer on its rows of the
// global batch until step ZR_STEPS (ZR_JIT=0: built every step; ZR_REGATHER=1: the blocks gather again in the backward) and prints one JSON line: every step's loss
// and norm, the final whole parameters (gathered) and their sha-256, its shard's and optimizer state's
// lengths, the largest group, and the memory accountant's live and peak bytes per category after the
// steps. With ZR_CKPT (a folder): ZR_RESUME=1 first resumes from the newest good distributed checkpoint
// there, and ZR_SAVE_AT=k saves one when the trainer reaches step k.

import { createHash } from "node:crypto";
import { num, rankCommunicator, replicaRun } from "./dist_zero_rank.js";
import { resumeSharded } from "../../src/train/checkpoint/index.js";
import { loadShardedCheckpoint, saveShardedCheckpoint } from "../../src/train/trainer_sharded_checkpoint.js";
import { dataParallel } from "../../src/dist/data_parallel.js";
import { zero3Sharding } from "../../src/dist/zero3.js";
import { Zero3Trainer } from "../../src/train/zero3_trainer.js";

const comm = await rankCommunicator();
try {
  const { model, global, opts } = await replicaRun(comm);
  const trainer = new Zero3Trainer(model, dataParallel(comm).rows(global), { ...opts, jit: process.env.ZR_JIT !== "0", regather: process.env.ZR_REGATHER === "1", sharding: zero3Sharding(comm) });
  const root = process.env.ZR_CKPT;
  const extra: Record<string, unknown> = {};
  if (root && process.env.ZR_RESUME === "1") {
    const dir = await resumeSharded(root, comm);
    if (dir) {
      const r = await loadShardedCheckpoint(dir, trainer, "gpt2");
      Object.assign(extra, { resumedFrom: r.step, writtenBy: r.writtenBy });
    }
  }
  const saveAt = Number(process.env.ZR_SAVE_AT ?? -1);
  const losses: number[] = [];
  const norms: number[] = [];
  while (trainer.step < num("ZR_STEPS", 10)) {
    const s = await trainer.trainStep();
    losses.push(s.loss);
    norms.push(s.gradNorm);
    if (root && trainer.step === saveAt) await saveShardedCheckpoint(root, comm, trainer, { architecture: "gpt2", config: { zero: 3 }, rng: null, loader: global.state() });
  }
  const memory = trainer.memory.snapshot()!;
  const params = await trainer.parameters();
  const sha = createHash("sha256").update(new Uint8Array(params.buffer, params.byteOffset, params.byteLength)).digest("hex");
  const optimizerElements = trainer.optimizer.stateTensors().reduce((n, t) => n + t.numel, 0);
  const largestGroup = Math.max(...trainer.zero.groups.map((g) => g.hi - g.lo));
  // The groups outside the transformer blocks (embeddings, output norm): gathered for the whole step even with ZR_REGATHER.
  const outsideBlocks = trainer.zero.groups.filter((g) => !/\.\d+$/.test(g.name)).reduce((n, g) => n + g.hi - g.lo, 0);
  console.log(JSON.stringify({ rank: comm.rank, losses, norms, params: Array.from(params), sha, optimizerElements, shardSize: trainer.zero.shardSize, layoutSize: trainer.layout.size, largestGroup, outsideBlocks, live: memory.live, peak: memory.peak, ...extra }));
} finally {
  await comm.close();
}
