// distributed_train.ts: what makes `kiln train` one rank of a parallel job when it finds a rank
// environment (kiln launch, torchrun or Slurm's variables): the communicator, the heartbeat thread whose
// finding of a silent rank aborts the collectives (naming that rank and how long it was silent), and
// the run's parallel seams for its layout (src/train's RunParallel, made by train_parallel_modes.ts). It owns
// this wiring and the markers the launcher reads; the loop is src/train's, the collectives src/dist's,
// printing train_command.ts's.

import type { CommBackend, HealthFault, RankEnv } from "../dist/index.js";
import { createCommunicator, heartbeatTiming, markerLine, startHeartbeat } from "../dist/index.js";
import type { RunParallel } from "../train/index.js";
import type { LayoutPlan } from "./train_parallel_modes.js";
import { layoutParallel } from "./train_parallel_modes.js";

export interface DistributedRank {
  readonly rank: number;
  readonly size: number;
  readonly parallel: RunParallel;
  /** Stops the heartbeats (saying this rank leaves on purpose) and closes the communicator. */
  close(): Promise<void>;
}

/** How long a collective may wait for another rank (ms): KILN_DIST_TIMEOUT_MS, default 60 s. */
function collectiveTimeout(env: Readonly<Record<string, string | undefined>>): number | undefined {
  const text = env.KILN_DIST_TIMEOUT_MS;
  if (text === undefined || text === "") return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new Error(`KILN_DIST_TIMEOUT_MS=${JSON.stringify(text)} is not a whole number of milliseconds >= 1`);
  return Number(text);
}

/**
 * Joins the job as `r` says: rendezvous, heartbeats started on every rank (a store barrier: nobody is judged
 * before everybody beats), then the RunParallel of `plan`'s layout (checked by then) for runTraining. `markers`: write
 * the launcher's marker lines.
 */
export async function joinParallel(r: RankEnv, plan: LayoutPlan, markers: boolean, env: Readonly<Record<string, string | undefined>> = process.env, backend: CommBackend = "local"): Promise<DistributedRank> {
  const timing = heartbeatTiming(env);
  const timeoutMs = collectiveTimeout(env);
  const comm = await createCommunicator({ backend, rank: r.rank, size: r.worldSize, localRank: r.localRank, masterAddr: r.masterAddr, masterPort: r.masterPort, ...(timeoutMs ? { timeoutMs } : {}) });
  const onFault = (f: HealthFault) => {
    // NOTE: the health store closing is rank 0 ending (or dying: its peer connections say so, naming it).
    if (f.kind === "store") return;
    if (markers) process.stderr.write(markerLine({ kind: "silent", rank: f.rank, silentMs: f.silentMs, by: r.rank }));
    const host = f.rank === 0 ? " (its health store answered no heartbeat)" : "";
    comm.abort(`rank ${f.rank}${host} sent no heartbeat for ${(f.silentMs / 1000).toFixed(1)} s (limit ${f.limitMs / 1000} s): it is hung or dead`);
  };
  // Rank 0's heartbeat thread hosts the health store; its port goes round by broadcast (exact in f32).
  const start = async () => {
    const cfg = { host: r.masterAddr, rank: r.rank, size: r.worldSize, ...timing };
    if (r.rank === 0) {
      const hb = await startHeartbeat({ ...cfg, port: 0 }, onFault);
      await comm.broadcast(Float32Array.of(hb.port), 0);
      return hb;
    }
    const port = (await comm.broadcast(new Float32Array(1), 0))[0]!;
    return startHeartbeat({ ...cfg, port }, onFault);
  };
  const heartbeat = await start().catch(async (err: Error) => {
    await comm.close();
    throw err;
  });
  try {
    // NOTE: nobody trains (and nobody is judged) before every rank's first beat.
    await comm.barrier();
  } catch (err) {
    await heartbeat.stop();
    await comm.close();
    throw err;
  }
  let parallel: RunParallel;
  try {
    parallel = layoutParallel(comm, plan);
  } catch (err) {
    await heartbeat.stop();
    await comm.close();
    throw err;
  }
  return {
    rank: r.rank,
    size: r.worldSize,
    parallel,
    async close() {
      await heartbeat.stop();
      await comm.close();
    },
  };
}
