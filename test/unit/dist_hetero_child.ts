// dist_hetero_child.ts: one rank of dist_hetero.test.ts, a real OS process with torchrun's variables. It
// trains the tiny run of dist_data_parallel_setup.ts on a global batch of HET_GLOBAL rows, first
// HET_CAL_STEPS steps with equal rows per rank, then measures its own work per row (data_parallel.ts
// timings), agrees on rows by speed with the other ranks (hetero_shares.ts), and trains HET_STEPS more
// steps with those rows (a new Trainer carrying on from the first's state). Rank HET_SLOW_RANK is made
// slower on purpose: HET_SLOW_MS_PER_ROW ms of sleep per row it trains, each step (a slower device).
// Prints one JSON line: the shares, each step's loss and time per phase, the final parameters.

import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { getBackend } from "../../src/index.js";
import { createCommunicatorFromEnv } from "../../src/dist/create_communicator.js";
import type { DataParallel } from "../../src/dist/data_parallel.js";
import { dataParallel } from "../../src/dist/data_parallel.js";
import { balancedShares, medianMs } from "../../src/dist/hetero_shares.js";
import { replicaStart } from "../../src/dist/replica_start.js";
import { RandomWindows } from "../../src/train/batches.js";
import { Trainer } from "../../src/train/trainer.js";
import { TOKENS, tinyRun, trainerOptions } from "./dist_data_parallel_setup.js";

// NOTE: a bound of its own, so a rank outlives neither a hang nor a test runner that died before its afterEach.
setTimeout(() => {
  console.error(`rank ${process.env.RANK}: still running after 90 s; exiting`);
  process.exit(124);
}, 90_000).unref();
const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const comm = await createCommunicatorFromEnv({ timeoutMs: 30_000 });
try {
  const globalRows = num("HET_GLOBAL", 8);
  const { model } = await tinyRun(await getBackend("cpu"), 4 + comm.rank);
  const global = new RandomWindows(TOKENS, globalRows, 8, 7);
  const opts = trainerOptions(1);
  await replicaStart(comm, model, { globalRows, opts });
  const slowMsPerRow = comm.rank === num("HET_SLOW_RANK", -1) ? num("HET_SLOW_MS_PER_ROW", 0) : 0;
  /** A trainer over `dp`'s rows whose step takes slowMsPerRow longer per row on the slowed rank. */
  const trainerOf = (dp: DataParallel) => {
    const rows = dp.rows(global);
    const hook = async (g: Float32Array) => {
      if (slowMsPerRow > 0) await sleep(slowMsPerRow * rows.batchSize);
      return dp.gradientHook(g);
    };
    return { trainer: new Trainer(model, rows, { ...opts, gradientHook: hook }), rows: rows.batchSize };
  };
  const phase = async (trainer: Trainer, steps: number) => {
    const losses: number[] = [];
    const stepMs: number[] = [];
    for (let i = 0; i < steps; i++) {
      const s = await trainer.trainStep();
      losses.push(s.loss);
      stepMs.push(s.ms);
    }
    return { losses, stepMs };
  };
  const equal = dataParallel(comm);
  const first = trainerOf(equal);
  const p1 = await phase(first.trainer, num("HET_CAL_STEPS", 6));
  // This rank's own work per row (its update, forward and backward, the slowdown included; not the wait).
  const msPerRow = medianMs(equal.timings().computeMs) / first.rows;
  const shares = await balancedShares(comm, msPerRow, globalRows);
  const balanced = dataParallel(comm, { rowShares: shares });
  const second = trainerOf(balanced);
  second.trainer.loadState(await first.trainer.state());
  const p2 = await phase(second.trainer, num("HET_STEPS", 6));
  const { params } = await second.trainer.state();
  const sha = createHash("sha256").update(new Uint8Array(params.buffer, params.byteOffset, params.byteLength)).digest("hex");
  console.log(JSON.stringify({ rank: comm.rank, msPerRow, shares, equal: p1, balanced: p2, params: Array.from(params), sha }));
} finally {
  await comm.close();
}
