// dist_zero_rank.ts: what every ZeRO rank process (dist_zero_child.ts, dist_zero3_child.ts) starts with: a
// bound of its own, the communicator from torchrun's variables, and dist_zero_setup.ts's run built with the
// rank's own seed (ZR_SEED + rank) and made equal across the ranks by replicaStart.

import type { Communicator } from "../../src/dist/comm.js";
import { createCommunicatorFromEnv } from "../../src/dist/create_communicator.js";
import { replicaStart } from "../../src/dist/replica_start.js";
import { getBackend, trackMemory } from "../../src/index.js";
import { trainerOptions, zeroRun } from "./dist_zero_setup.js";

/** An environment variable as a number, or `fallback` where it is unset. */
export const num = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);

/** The rank's communicator, after arming a 180 s exit (a rank outlives neither a hang nor a dead test runner). */
export function rankCommunicator(): Promise<Communicator> {
  setTimeout(() => {
    console.error(`rank ${process.env.RANK}: still running after 180 s; exiting`);
    process.exit(124);
  }, 180_000).unref();
  return createCommunicatorFromEnv({ timeoutMs: num("ZR_TIMEOUT_MS", 20_000) });
}

/**
 * The run on a tracked cpu backend (so the memory accountant reports bytes per category), with the trainer
 * options for ZR_ACCUM micro-batches, its parameters rank 0's.
 */
export async function replicaRun(comm: Communicator) {
  const backend = trackMemory(await getBackend("cpu"));
  const { model, global } = await zeroRun(backend, num("ZR_SEED", 4) + comm.rank, num("ZR_DIM", 16));
  const opts = trainerOptions(num("ZR_ACCUM", 1));
  await replicaStart(comm, model, { globalBatch: global.batchSize, blockSize: global.blockSize, opts });
  return { model, global, opts };
}
