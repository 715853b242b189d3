// serve_tp.ts: `kiln serve --tp N`: one engine over N ranks on this host. The process the user starts is
// rank 0: it starts ranks 1..N-1 as copies of its own command line (marked by KILN_TP_RANK and
// KILN_TP_PORT in their environment), hosts the rendezvous, and runs the scheduler, sampling and the HTTP
// server; before each model step it broadcasts the step's batch (serve/step_messages.ts), and every rank
// runs that step on its shard of the model (dist/tensor_parallel_*.ts), its collectives joining the others'.
// The workers only run steps until rank 0 says stop (or goes away).
// NOTE: local processes over the `local` communicator; across GPUs this is the same with nccl.

import { type ChildProcess, spawn } from "node:child_process";
import type { Backend } from "../index.js";
import type { Communicator } from "../dist/index.js";
import { createCommunicator, freePort, tensorParallelFromLoaded } from "../dist/index.js";
import type { LoadedModel } from "../models/index.js";
import { CachedDecoder } from "../models/index.js";
import type { ModelRunnerOptions } from "../serve/index.js";
import { ModelRunner, runWorker, sendBatch, sendStop } from "../serve/index.js";

/**
 * How long rank 0 waits for a worker in a collective: a hung worker fails the step after it (a dead one at
 * once: its connection closes). NOTE: generous, as the first step waits for the workers to load their shards.
 */
const STEP_TIMEOUT_MS = 300_000;
/** NOTE: a worker waits for the next step as long as the server is idle: the longest timer node allows. */
const IDLE_TIMEOUT_MS = 2 ** 31 - 1;

/** This process's place: a worker (rank >= 1) when started by rank 0, else rank 0. */
export function tpWorkerRank(): number | undefined {
  const r = process.env.KILN_TP_RANK;
  return r === undefined ? undefined : Number(r);
}

export interface TpRank0 {
  readonly comm: Communicator;
  /** The served model (CachedDecoder over this rank's shard). */
  model(loaded: LoadedModel, backend: Backend): Promise<CachedDecoder>;
  /** The engine's onBatch: each step's batch to the workers. */
  readonly onBatch: NonNullable<ModelRunnerOptions["onBatch"]>;
  /** Stop the workers and close the communicator (after the engine is closed). */
  close(): Promise<void>;
}

/** Rank 0: start the N - 1 workers with `argv` (this serve command's arguments) and meet them. */
export async function startTpRank0(tp: number, argv: readonly string[]): Promise<TpRank0> {
  const port = await freePort("127.0.0.1");
  const workers: ChildProcess[] = [];
  let stopping = false;
  const killAll = () => { for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill("SIGKILL"); };
  process.once("exit", killAll);
  for (let rank = 1; rank < tp; rank++) {
    const w = spawn(process.execPath, [...process.execArgv, process.argv[1]!, "serve", ...argv], {
      env: { ...process.env, KILN_TP_RANK: String(rank), KILN_TP_PORT: String(port) },
      stdio: ["ignore", "ignore", "inherit"],
    });
    w.once("exit", (code, signal) => {
      if (code !== 0 && !stopping) console.error(`kiln serve --tp ${tp}: rank ${rank} exited (${code ?? signal}); steps will fail`);
    });
    workers.push(w);
  }
  let comm: Communicator;
  try {
    comm = await createCommunicator({ backend: "local", rank: 0, size: tp, masterAddr: "127.0.0.1", masterPort: port, timeoutMs: STEP_TIMEOUT_MS });
  } catch (err) {
    killAll();
    throw err;
  }
  return {
    comm,
    model: async (loaded, backend) => new CachedDecoder(await tensorParallelFromLoaded(loaded, backend, comm)),
    onBatch: (b, runner) => sendBatch(comm, b, runner),
    async close() {
      stopping = true;
      await sendStop(comm).catch(() => {});
      await comm.close();
      const exited = Promise.all(workers.map((w) => (w.exitCode !== null || w.signalCode !== null ? undefined : new Promise((r) => w.once("exit", r)))));
      const timer = setTimeout(killAll, 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A worker: its shard, a runner sized as rank 0's, then every step rank 0 sends. Returns the exit code. */
export async function runTpWorker(rank: number, tp: number, loaded: LoadedModel, backend: Backend, opts: ModelRunnerOptions): Promise<number> {
  const port = Number(process.env.KILN_TP_PORT);
  const comm = await createCommunicator({ backend: "local", rank, size: tp, masterAddr: "127.0.0.1", masterPort: port, timeoutMs: IDLE_TIMEOUT_MS });
  try {
    const model = await tensorParallelFromLoaded(loaded, backend, comm);
    const runner = await ModelRunner.create(model, { ...opts, maxModelLen: model.cacheShape.maxSeq });
    await runWorker(comm, runner);
    runner.dispose();
    return 0;
  } finally {
    await comm.close().catch(() => {});
  }
}
