// collectives.ts: collectives as graph nodes. A node with op "collective" reads one materialized operand and
// makes one buffer, like a routine, but no backend builds it: realize.ts hands the operand's bytes to the
// group's executor (a Communicator from src/dist, registered here by id) and writes the result back. So
// the parallel layers (tensor, sequence, expert parallel; ZeRO-3's gathers) build ordinary graphs, autograd
// and jit capture see ordinary nodes, and every rank's collectives run in its schedule's order, which is the
// same on every rank because every rank builds the same graph.
// NOTE: the data travels through the host (Backend.read, then write): right for the cpu backend, where both
// are copies, and the only way on WebGPU. A backend with device collectives (cuda with nccl) will run them
// on its stream instead; the node and the schedule stay the same.
// It owns no sockets: src/dist/graph_collectives.ts registers groups and gives the tensor-level functions.

import type { Backend, DeviceBuffer } from "./backend.js";
import type { DType } from "./dtype.js";

/** The collectives a graph can hold. Sizes follow dim 0: see collectiveShape. */
export const COLLECTIVE_OPS = ["all_reduce", "all_gather", "reduce_scatter", "all_to_all", "broadcast"] as const;
export type CollectiveOp = (typeof COLLECTIVE_OPS)[number];

export interface CollectiveSpec {
  readonly op: CollectiveOp;
  /** all_reduce's reduction. */
  readonly reduce: "sum" | "max";
  /** broadcast's root (a rank of the group). */
  readonly root: number;
  /** The executor's id (registerCollectiveGroup): plain data in the graph, the group itself stays here. */
  readonly group: number;
}

/**
 * What runs a graph's collectives: one process group (rank `rank` of `size`). Each call gets the operand as
 * f32 and returns the output as f32, of collectiveShape's size. Every rank of the group must run the same
 * calls in the same order (as NCCL requires); an executor reports a rank that never comes as an error.
 */
export interface CollectiveExecutor {
  readonly rank: number;
  readonly size: number;
  /** For errors: "tp group [0, 1] of 4". */
  readonly name: string;
  run(spec: CollectiveSpec, input: Float32Array): Promise<Float32Array>;
}

const groups = new Map<number, CollectiveExecutor>();
let nextGroup = 1;

/** Register a group so graph nodes can name it; returns its id. unregisterCollectiveGroup releases it. */
export function registerCollectiveGroup(exec: CollectiveExecutor): number {
  const id = nextGroup++;
  groups.set(id, exec);
  return id;
}

export function unregisterCollectiveGroup(id: number): void {
  groups.delete(id);
}

export function collectiveGroup(id: number): CollectiveExecutor {
  const g = groups.get(id);
  if (!g) throw new Error(`collective: process group #${id} is not registered (was its communicator closed?)`);
  return g;
}

/** The collectives' element type: the communicators carry f32. */
export const COLLECTIVE_DTYPE: DType = "f32";

/**
 * The output shape of `op` over `size` ranks for an operand of `shape`: all_gather stacks the ranks' operands
 * along dim 0 (size * d0), reduce_scatter keeps this rank's 1/size of dim 0 (d0 must divide), all_to_all
 * sends chunk r of dim 0 (d0 / size rows each) to rank r and keeps the shape; the rest keep the shape.
 */
export function collectiveShape(op: CollectiveOp, shape: readonly number[], size: number): number[] {
  const [d0, ...rest] = shape;
  if ((op === "all_gather" || op === "reduce_scatter" || op === "all_to_all") && d0 === undefined) {
    throw new Error(`collective ${op}: needs at least one dimension (it splits or stacks along dim 0), got a scalar`);
  }
  if ((op === "reduce_scatter" || op === "all_to_all") && d0! % size !== 0) {
    throw new Error(`collective ${op}: dim 0 of (${shape.join(", ")}) must divide by the group size ${size}`);
  }
  if (op === "all_gather") return [d0! * size, ...rest];
  if (op === "reduce_scatter") return [d0! / size, ...rest];
  return [...shape];
}

/**
 * Runs one collective of a realization or a replay: waits for the launches before it (Backend.read does),
 * hands the operand to the group, writes the result into `out`. `inBytes`/`outBytes` are the nodes' sizes
 * (a pooled buffer may be larger).
 */
export async function runCollective(
  backend: Backend,
  spec: CollectiveSpec,
  out: DeviceBuffer,
  input: DeviceBuffer,
  inBytes: number,
  outBytes: number,
): Promise<void> {
  const exec = collectiveGroup(spec.group);
  const bytes = await backend.read(input, inBytes);
  // NOTE: a copy when the bytes are not 4-aligned in their ArrayBuffer (a view into a larger one may not be).
  const data = bytes.byteOffset % 4 === 0 ? new Float32Array(bytes.buffer, bytes.byteOffset, inBytes / 4) : new Float32Array(bytes.slice().buffer);
  const result = await exec.run(spec, data);
  if (result.length * 4 !== outBytes) {
    throw new Error(`collective ${spec.op} on ${exec.name}: the group returned ${result.length} elements where ${outBytes / 4} were expected`);
  }
  backend.write(out, new Uint8Array(result.buffer, result.byteOffset, outBytes));
}
