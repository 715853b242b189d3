// env.ts: a rank's place in the job (rank, local rank, world size, master address), read from the
// environment a launcher left: torchrun's names (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT) or Slurm's (SLURM_PROCID, SLURM_LOCALID, SLURM_NTASKS, ...). It owns the
// validation and its error messages; it does not start processes (launcher.ts) or talk to the master.

import { LaunchEnvError } from "./errors.js";
import { firstHost, tasksOnFirstNode } from "./slurm_lists.js";

/** Where one process sits in the job: plain data, the same whichever launcher started it. */
export interface RankEnv {
  /** Global rank, 0 .. worldSize-1. */
  readonly rank: number;
  /** Rank within this node, 0 .. localWorldSize-1. */
  readonly localRank: number;
  readonly worldSize: number;
  /** Processes on this node. */
  readonly localWorldSize: number;
  /** This node's index (torchrun's GROUP_RANK, Slurm's SLURM_NODEID). */
  readonly nodeRank: number;
  /** Host of the rendezvous store that rank 0 serves. */
  readonly masterAddr: string;
  readonly masterPort: number;
  /** Which set of variables it came from. */
  readonly source: "torchrun" | "slurm";
}

/** torchrun's default rendezvous port; Slurm names none, so a Slurm job without MASTER_PORT uses it. */
export const DEFAULT_MASTER_PORT = 29500;

type Env = Readonly<Record<string, string | undefined>>;

function need(env: Env, name: string, expected: string): string {
  const v = env[name];
  if (v === undefined || v === "") throw new LaunchEnvError(`${name} is not set (expected ${expected})`);
  return v;
}

/** A decimal integer >= min, or an error naming the variable, its value and what was expected. */
export function parseIntVar(name: string, text: string, min: number, expected = `an integer >= ${min}`): number {
  // NOTE: Number("") is 0 and Number("1e3") is 1000; only plain decimal digits are a rank.
  if (!/^\d+$/.test(text.trim()) || Number(text) < min || !Number.isSafeInteger(Number(text))) {
    throw new LaunchEnvError(`${name}=${JSON.stringify(text)} is not ${expected}`);
  }
  return Number(text);
}

export function parsePortVar(name: string, text: string): number {
  const port = parseIntVar(name, text, 1, "a TCP port (1-65535)");
  if (port > 65535) throw new LaunchEnvError(`${name}=${JSON.stringify(text)} is not a TCP port (1-65535)`);
  return port;
}

/** The checks every source shares: each index inside its range, the node's ranks inside the world. */
function validated(r: RankEnv, names: Readonly<Record<"rank" | "localRank" | "worldSize" | "localWorldSize", string>>): RankEnv {
  if (r.rank >= r.worldSize) {
    throw new LaunchEnvError(`${names.rank}=${r.rank} is not below ${names.worldSize}=${r.worldSize} (ranks are 0 .. ${r.worldSize - 1})`);
  }
  if (r.localRank >= r.localWorldSize) {
    throw new LaunchEnvError(`${names.localRank}=${r.localRank} is not below ${names.localWorldSize}=${r.localWorldSize} (local ranks are 0 .. ${r.localWorldSize - 1})`);
  }
  if (r.localWorldSize > r.worldSize) {
    throw new LaunchEnvError(`${names.localWorldSize}=${r.localWorldSize} is more than ${names.worldSize}=${r.worldSize} (one node cannot hold more ranks than the job)`);
  }
  if (r.masterAddr.trim() === "" || /\s/.test(r.masterAddr)) throw new LaunchEnvError(`the master address ${JSON.stringify(r.masterAddr)} is not a host name or address`);
  return r;
}

/** torchrun's variables. LOCAL_WORLD_SIZE and GROUP_RANK default to one node holding every rank. */
export function rankEnvFromTorchrun(env: Env): RankEnv {
  const worldSize = parseIntVar("WORLD_SIZE", need(env, "WORLD_SIZE", "the number of ranks, >= 1"), 1);
  const rank = parseIntVar("RANK", need(env, "RANK", "this process's rank, 0 .. WORLD_SIZE-1"), 0);
  const localRank = env.LOCAL_RANK === undefined ? rank : parseIntVar("LOCAL_RANK", env.LOCAL_RANK, 0);
  const localWorldSize = env.LOCAL_WORLD_SIZE === undefined ? worldSize : parseIntVar("LOCAL_WORLD_SIZE", env.LOCAL_WORLD_SIZE, 1);
  const nodeRank = env.GROUP_RANK === undefined ? Math.floor(rank / localWorldSize) : parseIntVar("GROUP_RANK", env.GROUP_RANK, 0);
  const masterAddr = need(env, "MASTER_ADDR", "the host of rank 0's rendezvous store");
  const masterPort = parsePortVar("MASTER_PORT", need(env, "MASTER_PORT", "the port of rank 0's rendezvous store"));
  return validated(
    { rank, localRank, worldSize, localWorldSize, nodeRank, masterAddr, masterPort, source: "torchrun" },
    { rank: "RANK", localRank: "LOCAL_RANK", worldSize: "WORLD_SIZE", localWorldSize: "LOCAL_WORLD_SIZE" },
  );
}

/**
 * Slurm's variables (one task per rank, as `srun --ntasks-per-node=K` starts them). The master is the
 * first host of SLURM_JOB_NODELIST unless MASTER_ADDR names one; the port is MASTER_PORT or 29500.
 */
export function rankEnvFromSlurm(env: Env): RankEnv {
  const worldSize = parseIntVar("SLURM_NTASKS", need(env, "SLURM_NTASKS", "the number of tasks, >= 1"), 1);
  const rank = parseIntVar("SLURM_PROCID", need(env, "SLURM_PROCID", "this task's rank, 0 .. SLURM_NTASKS-1"), 0);
  const localRank = parseIntVar("SLURM_LOCALID", need(env, "SLURM_LOCALID", "this task's index on its node"), 0);
  const nodeRank = parseIntVar("SLURM_NODEID", need(env, "SLURM_NODEID", "this node's index in the job"), 0);
  let localWorldSize: number;
  let localName = "SLURM_NTASKS_PER_NODE";
  if (env.SLURM_NTASKS_PER_NODE !== undefined && env.SLURM_NTASKS_PER_NODE !== "") {
    localWorldSize = parseIntVar("SLURM_NTASKS_PER_NODE", env.SLURM_NTASKS_PER_NODE, 1);
  } else {
    localName = "SLURM_TASKS_PER_NODE";
    const text = need(env, "SLURM_TASKS_PER_NODE", "tasks per node, as in 8 or 8(x2)");
    localWorldSize = tasksOnFirstNode(text);
  }
  const masterAddr = env.MASTER_ADDR || firstHost(need(env, "SLURM_JOB_NODELIST", "the job's hosts, as in gpu[01-04]"));
  const masterPort = env.MASTER_PORT ? parsePortVar("MASTER_PORT", env.MASTER_PORT) : DEFAULT_MASTER_PORT;
  return validated(
    { rank, localRank, worldSize, localWorldSize, nodeRank, masterAddr, masterPort, source: "slurm" },
    { rank: "SLURM_PROCID", localRank: "SLURM_LOCALID", worldSize: "SLURM_NTASKS", localWorldSize: localName },
  );
}

/**
 * The rank environment of this process: torchrun's names when RANK is set (so a `kiln launch` started
 * by srun gives its children torchrun's names, which win), else Slurm's when SLURM_PROCID is set,
 * else undefined (a single process nobody launched).
 */
export function readRankEnv(env: Env = process.env): RankEnv | undefined {
  if (env.RANK !== undefined) return rankEnvFromTorchrun(env);
  if (env.SLURM_PROCID !== undefined) return rankEnvFromSlurm(env);
  return undefined;
}

/** torchrun's variables for a rank, as `kiln launch` sets them in each child. */
export function torchrunVars(r: RankEnv): Record<string, string> {
  return {
    RANK: String(r.rank), LOCAL_RANK: String(r.localRank), WORLD_SIZE: String(r.worldSize), LOCAL_WORLD_SIZE: String(r.localWorldSize),
    GROUP_RANK: String(r.nodeRank), MASTER_ADDR: r.masterAddr, MASTER_PORT: String(r.masterPort),
  };
}
