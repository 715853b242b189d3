// spec.ts: what a launch asks for (processes per node, nodes, this node's rank, the master) as plain
// data, its validation, and the rank environments it gives this node's processes. The same spec is
// run here (launcher.ts) or written out for a cluster (emit_k8s.ts, emit_slurm.ts).

import type { RankEnv } from "./env.js";
import { LaunchSpecError } from "./errors.js";

export interface LaunchSpec {
  /** Processes on each node. */
  readonly nproc: number;
  readonly nnodes: number;
  /** This node's index, 0 .. nnodes-1. */
  readonly nodeRank: number;
  readonly masterAddr: string;
  /** Undefined: one node, and the launcher picks a free port. */
  readonly masterPort?: number;
}

export interface Master {
  readonly addr: string;
  readonly port: number;
}

/** "host:port", "10.0.0.1:29500" or "[fd00::1]:29500" (a bare IPv6 address needs the brackets). */
export function parseMaster(text: string): Master {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+)):(\d+)$/.exec(text.trim());
  if (!m) throw new LaunchSpecError(`--master ${JSON.stringify(text)} is not ADDR:PORT (e.g. 10.0.0.1:29500, node01:29500 or [fd00::1]:29500)`);
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw new LaunchSpecError(`--master ${JSON.stringify(text)}: port ${port} is not a TCP port (1-65535)`);
  return { addr: m[1] ?? m[2]!, port };
}

/** A positive count from a flag, or an error naming the flag and the value. */
export function parseCount(flag: string, text: string, min = 1): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < min || !Number.isSafeInteger(Number(text))) {
    throw new LaunchSpecError(`${flag} ${JSON.stringify(text)} is not an integer >= ${min}`);
  }
  return Number(text);
}

/** The checks a spec must pass before anything starts; returns it. */
export function checkSpec(s: LaunchSpec): LaunchSpec {
  if (!Number.isInteger(s.nproc) || s.nproc < 1) throw new LaunchSpecError(`--nproc ${s.nproc} is not an integer >= 1`);
  if (!Number.isInteger(s.nnodes) || s.nnodes < 1) throw new LaunchSpecError(`--nnodes ${s.nnodes} is not an integer >= 1`);
  if (!Number.isInteger(s.nodeRank) || s.nodeRank < 0 || s.nodeRank >= s.nnodes) {
    throw new LaunchSpecError(`--node-rank ${s.nodeRank} is not in 0 .. ${s.nnodes - 1} (--nnodes ${s.nnodes})`);
  }
  // NOTE: with several nodes every node must reach the same rendezvous; a port one node picked
  // for itself would be unknown to the others.
  if (s.nnodes > 1 && s.masterPort === undefined) {
    throw new LaunchSpecError(`--nnodes ${s.nnodes} needs --master ADDR:PORT (the address of node 0, where rank 0 serves the rendezvous)`);
  }
  return s;
}

/** The rank environments of this node's processes: global ranks nodeRank*nproc + i. */
export function localRanks(s: LaunchSpec, masterPort: number): RankEnv[] {
  const worldSize = s.nproc * s.nnodes;
  return Array.from({ length: s.nproc }, (_, i) => ({
    rank: s.nodeRank * s.nproc + i, localRank: i, worldSize, localWorldSize: s.nproc, nodeRank: s.nodeRank,
    masterAddr: s.masterAddr, masterPort, source: "torchrun" as const,
  }));
}
