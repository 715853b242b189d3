// create_communicator.ts: the one way to get a Communicator: validate the options, start the TCP store
// (hosted by rank 0) and hand it to the chosen backend: `local` (processes on one host) or `nccl` (one
// process per GPU, through the CUDA addon; where NCCL cannot run it says which piece is missing). Also the tiny reader of torchrun's environment
// (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) a rank process needs; the launcher (launch/) sets those and
// owns the full environment story (LOCAL_RANK, Slurm's names).

import { readRankEnv } from "./launch/env.js";
import type { Communicator } from "./comm.js";
import { LocalCommunicator } from "./local/local_comm.js";
import { createNcclCommunicator } from "./nccl/create_nccl.js";
import { TCPStore } from "./store.js";

export interface CommunicatorOptions {
  /** "local": ranks are OS processes on this host; "nccl": one process per GPU, NCCL through the CUDA addon. */
  readonly backend: CommBackend;
  readonly rank: number;
  readonly size: number;
  /** Where rank 0 hosts the TCP store (MASTER_ADDR). */
  readonly masterAddr: string;
  /** MASTER_PORT. */
  readonly masterPort: number;
  /** How long rendezvous and each collective may wait for another rank (ms); default 60 s. */
  readonly timeoutMs?: number;
  /** nccl: which GPU of this node the rank uses (LOCAL_RANK); default 0. */
  readonly localRank?: number;
}

export type CommBackend = "local" | "nccl";
export const COMM_BACKENDS: readonly CommBackend[] = ["local", "nccl"];

const DEFAULT_TIMEOUT_MS = 60_000;

export async function createCommunicator(options: CommunicatorOptions): Promise<Communicator> {
  const { backend, rank, size, masterAddr, masterPort, timeoutMs = DEFAULT_TIMEOUT_MS } = options;
  if (!COMM_BACKENDS.includes(backend)) throw new Error(`createCommunicator: unknown backend ${JSON.stringify(backend)} (known: ${COMM_BACKENDS.join(", ")})`);
  if (!Number.isInteger(size) || size < 1) throw new Error(`createCommunicator: size (world size) must be an integer >= 1, got ${size}`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= size) throw new Error(`createCommunicator: rank must be an integer from 0 to ${size - 1} (size ${size}), got ${rank}`);
  if (typeof masterAddr !== "string" || masterAddr === "") throw new Error(`createCommunicator: masterAddr must be a host name or address, got ${JSON.stringify(masterAddr)}`);
  if (!Number.isInteger(masterPort) || masterPort < 1 || masterPort > 65535) throw new Error(`createCommunicator: masterPort must be an integer from 1 to 65535, got ${masterPort}`);
  if (!(timeoutMs > 0)) throw new Error(`createCommunicator: timeoutMs must be > 0, got ${timeoutMs}`);
  const store = await TCPStore.create({ rank, size, host: masterAddr, port: masterPort, timeoutMs });
  try {
    // NOTE: the package entry (which reaches the cuda backend's NCCL opener) loads only for nccl: a `local`
    // rank process starts without the tensor library.
    if (backend === "nccl") return await createNcclCommunicator(store, rank, size, timeoutMs, async () => (await import("../index.js")).openNccl(options.localRank ?? 0));
    return await LocalCommunicator.create(store, rank, size, timeoutMs);
  } catch (err) {
    await store.close();
    throw err;
  }
}

/**
 * rank, size, masterAddr and masterPort from the rank environment (torchrun's variables, or Slurm's:
 * launch/env.ts reads and checks them); a missing or malformed one is named.
 */
export function torchrunEnv(env: Readonly<Record<string, string | undefined>> = process.env): Omit<CommunicatorOptions, "backend" | "timeoutMs"> & { localRank: number } {
  const r = readRankEnv(env);
  if (!r) throw new Error("no rank environment: set torchrun's RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT (kiln launch does), or run under Slurm (SLURM_PROCID, ...)");
  return { rank: r.rank, size: r.worldSize, masterAddr: r.masterAddr, masterPort: r.masterPort, localRank: r.localRank };
}

/** createCommunicator with rank, size and master from the rank environment (torchrun's or Slurm's). */
export function createCommunicatorFromEnv(options: { backend?: CommBackend; timeoutMs?: number; env?: Readonly<Record<string, string | undefined>> } = {}): Promise<Communicator> {
  const { backend = "local", timeoutMs, env } = options;
  return createCommunicator({ backend, ...torchrunEnv(env), ...(timeoutMs === undefined ? {} : { timeoutMs }) });
}
