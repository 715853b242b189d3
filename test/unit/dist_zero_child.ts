// dist_zero_child.ts: one ZeRO rank for dist_zero.test.ts and dist_checkpoint.test.ts, a real OS process with
// torchrun's variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT). It builds dist_zero_setup.ts's run with its
// own seed (ZR_SEED + rank: replicaStart makes the ranks equal), shards the optimizer with ZeRO stage ZR_STAGE
// (0: no sharding; plain data parallel when several ranks), trains on its rows of the global batch until step
// ZR_STEPS and prints one JSON line: every step's loss and norm, the final parameters and their sha-256, and
// its optimizer state's length and part, and the live bytes per category of the memory accountant. With ZR_CKPT (a folder): ZR_RESUME=1 first resumes from the newest
// good distributed checkpoint there (and reports the step, the bytes it read and its warnings), and ZR_SAVE_AT=k,l,... saves
// one when the trainer reaches step k; ZR_FAIL_RANK=r with ZR_FAIL=throw|kill makes rank r's shard write at
// step ZR_FAIL_AT fail (the file system throws ENOSPC) or the process SIGKILL itself mid-write.

import { createHash } from "node:crypto";
import { num, rankCommunicator, replicaRun } from "./dist_zero_rank.js";
import type { CheckpointFs } from "../../src/train/checkpoint/index.js";
import { nodeCheckpointFs, resumeSharded } from "../../src/train/checkpoint/index.js";
import { loadShardedCheckpoint, saveShardedCheckpoint } from "../../src/train/trainer_sharded_checkpoint.js";
import { dataParallel } from "../../src/dist/data_parallel.js";
import { zeroSharding } from "../../src/dist/zero.js";
import { Trainer } from "../../src/train/trainer.js";

const comm = await rankCommunicator();
try {
  const { model, global, opts } = await replicaRun(comm);
  const stage = num("ZR_STAGE", 1);
  const sharding = stage === 0 ? undefined : zeroSharding(comm, stage as 1 | 2);
  const hook = stage === 0 && comm.size > 1 ? dataParallel(comm).gradientHook : undefined;
  const trainer = new Trainer(model, dataParallel(comm).rows(global), { ...opts, sharding, gradientHook: hook });
  const root = process.env.ZR_CKPT;
  const extra: Record<string, unknown> = {};
  if (root && process.env.ZR_RESUME === "1") {
    const warnings: string[] = [];
    const dir = await resumeSharded(root, comm, (w) => warnings.push(w));
    extra.warnings = warnings;
    if (dir) {
      const r = await loadShardedCheckpoint(dir, trainer, "gpt2");
      Object.assign(extra, { resumedFrom: r.step, bytesRead: r.bytesRead, writtenBy: r.writtenBy });
    }
  }
  const saveAt = (process.env.ZR_SAVE_AT ?? "").split(",").filter(Boolean).map(Number);
  const failing = process.env.ZR_FAIL_RANK === String(comm.rank) ? process.env.ZR_FAIL : undefined;
  const saveErrors: string[] = [];
  const losses: number[] = [];
  const norms: number[] = [];
  while (trainer.step < num("ZR_STEPS", 10)) {
    const s = await trainer.trainStep();
    losses.push(s.loss);
    norms.push(s.gradNorm);
    if (root && saveAt.includes(trainer.step)) {
      const fs = failing && trainer.step === num("ZR_FAIL_AT", -1) ? faultyFs(failing) : undefined;
      await saveShardedCheckpoint(root, comm, trainer, { architecture: "gpt2", config: { stage }, rng: null, loader: global.state() }, { fs }).catch((e: Error) => saveErrors.push(e.message));
    }
  }
  Object.assign(extra, { saveErrors });
  const state = await trainer.state();
  const { params } = state;
  const sha = createHash("sha256").update(new Uint8Array(params.buffer, params.byteOffset, params.byteLength)).digest("hex");
  const optimizerElements = trainer.optimizer.stateTensors().reduce((n, t) => n + t.numel, 0);
  console.log(JSON.stringify({ rank: comm.rank, losses, norms, params: Array.from(params), sha, optimizerElements, layoutSize: trainer.layout.size, range: state.optimizerRange, memory: trainer.memory.snapshot()?.live, ...extra }));
} finally {
  await comm.close();
}

/** Node's file system, but a shard file's write fails (ENOSPC) or kills this process once half written. */
function faultyFs(how: string): CheckpointFs {
  const real = nodeCheckpointFs();
  return {
    ...real,
    async create(path) {
      const file = await real.create(path);
      if (!path.includes("shard-")) return file;
      return {
        ...file,
        async write(bytes) {
          if (how === "kill") {
            await file.write(bytes.subarray(0, bytes.length >> 1));
            process.kill(process.pid, "SIGKILL");
          }
          throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
        },
      };
    },
  };
}
