// mesh.ts: the device mesh: world ranks laid out over (pp, dp, tp) with tp varying fastest, so a
// tensor-parallel group is tp consecutive ranks, which launchers place inside one node (kiln launch gives
// a node's ranks consecutive numbers), where the bandwidth is; pipeline stages vary slowest, so a stage's
// ranks sit together and only activations cross stages. Expert parallel groups are ep consecutive members
// of a data-parallel group (experts are sharded over ranks that would otherwise hold replicas), as in
// Megatron-LM and DeepSpeed-MoE. A rank's coordinates and its process groups (one Communicator per
// dimension, made with Communicator.group) are all it needs to know of the layout.

import type { Communicator } from "./comm.js";

/** Sizes of the mesh's dimensions; ep divides dp. Plain data: `kiln plan train`'s layout gives one. */
export interface MeshShape {
  readonly dp: number;
  readonly tp: number;
  readonly pp: number;
  readonly ep: number;
}

/** Where a rank sits: its index along each dimension. */
export interface MeshCoords {
  readonly dp: number;
  readonly tp: number;
  readonly pp: number;
  /** Index within the rank's expert-parallel group (dp % ep). */
  readonly ep: number;
}

export interface DeviceMesh {
  readonly shape: MeshShape;
  readonly coords: MeshCoords;
  /** The world communicator the groups came from. */
  readonly world: Communicator;
  /** Ranks holding the same layers and tensor slice: gradients are averaged over it. */
  readonly dp: Communicator;
  /** Ranks splitting one layer's tensors. */
  readonly tp: Communicator;
  /** Ranks holding consecutive stages of one replica. */
  readonly pp: Communicator;
  /** Ranks of one dp group sharing out the experts. */
  readonly ep: Communicator;
}

/** Checks a mesh shape against the world size; every fault is named. */
export function checkMeshShape(shape: MeshShape, worldSize: number): void {
  for (const k of ["dp", "tp", "pp", "ep"] as const) {
    const v = shape[k];
    if (!Number.isInteger(v) || v < 1) throw new Error(`mesh: ${k} must be an integer >= 1, got ${JSON.stringify(v)}`);
  }
  if (shape.dp * shape.tp * shape.pp !== worldSize) {
    throw new Error(`mesh: dp ${shape.dp} x tp ${shape.tp} x pp ${shape.pp} = ${shape.dp * shape.tp * shape.pp} ranks, but the world has ${worldSize}`);
  }
  if (shape.dp % shape.ep !== 0) throw new Error(`mesh: ep ${shape.ep} must divide dp ${shape.dp} (experts are sharded over data-parallel ranks)`);
}

/** The world rank at coordinates (pp, dp, tp): tp fastest, then dp, then pp. */
export function meshRank(shape: MeshShape, c: Pick<MeshCoords, "dp" | "tp" | "pp">): number {
  return (c.pp * shape.dp + c.dp) * shape.tp + c.tp;
}

export function meshCoords(shape: MeshShape, rank: number): MeshCoords {
  const tp = rank % shape.tp;
  const dp = Math.floor(rank / shape.tp) % shape.dp;
  const pp = Math.floor(rank / (shape.tp * shape.dp));
  return { dp, tp, pp, ep: dp % shape.ep };
}

/** The world ranks of `rank`'s group along each dimension, ascending. Plain data (the tests and the planner read it). */
export function meshGroups(shape: MeshShape, rank: number): Record<"dp" | "tp" | "pp" | "ep", number[]> {
  const c = meshCoords(shape, rank);
  const range = (n: number) => [...Array(n).keys()];
  const epStart = c.dp - c.ep;
  return {
    tp: range(shape.tp).map((tp) => meshRank(shape, { ...c, tp })),
    dp: range(shape.dp).map((dp) => meshRank(shape, { ...c, dp })),
    pp: range(shape.pp).map((pp) => meshRank(shape, { ...c, pp })),
    ep: range(shape.ep).map((i) => meshRank(shape, { ...c, dp: epStart + i })),
  };
}

/**
 * This rank's mesh over `world`: its coordinates and one communicator per dimension. Every rank calls it
 * with the same shape (the groups are made in one fixed order: tp, dp, pp, ep).
 */
export function deviceMesh(world: Communicator, shape: MeshShape): DeviceMesh {
  checkMeshShape(shape, world.size);
  const g = meshGroups(shape, world.rank);
  const group = (ranks: number[]) => (ranks.length === world.size ? world : world.group(ranks));
  const tp = group(g.tp);
  const dp = group(g.dp);
  const pp = group(g.pp);
  // NOTE: with ep = dp the expert group is the data-parallel group itself; one communicator serves both.
  const ep = g.ep.join() === g.dp.join() ? dp : group(g.ep);
  return { shape, coords: meshCoords(shape, world.rank), world, dp, tp, pp, ep };
}
