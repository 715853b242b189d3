// pipeline_costs.ts: each piece's cost (embedding, every block, head with the loss), measured once at
// the start by running its forward and backward on a micro-batch of the training shape, for
// pipeline_partition.ts to balance the stages by. Every rank of the pipeline measures, and the group
// averages (an all-reduce, bit-identical on every rank), so every stage derives the same partition
// from the same numbers, and one busy rank's noise counts 1/p.

import type { Tensor } from "../index.js";
import { gradients, realizeAll, tensor } from "../index.js";
import type { Communicator } from "./comm.js";
import { PipelineStage, pieceCount, type PipelineModel } from "./pipeline_stage.js";

/** Milliseconds of forward + backward of each piece on one (batch, length) micro-batch, on this rank (the faster of two runs: the first compiles). */
export async function timePieces(model: PipelineModel, batch: number, length: number): Promise<number[]> {
  const n = pieceCount(model);
  const { dim, vocabSize } = model.config;
  const backend = [...model.parameters().values()][0]!.backend;
  const rows = batch * length;
  const ids = () => tensor(Int32Array.from({ length: rows }, (_, i) => (i * 7 + 3) % vocabSize), { backend, dtype: "i32", shape: [rows] });
  const acts = () => {
    const x = tensor(Float32Array.from({ length: rows * dim }, (_, i) => Math.sin(i * 0.37) * 0.5), { backend, dtype: "f32", shape: [rows, dim] });
    x.requiresGrad = true;
    return x;
  };
  const costs: number[] = [];
  for (let p = 0; p < n; p++) {
    const stage = new PipelineStage(model, [p, p + 1]);
    const params = [...stage.parameters().values()];
    for (const t of params) t.requiresGrad = true;
    let best = Infinity;
    for (let run = 0; run < 2; run++) {
      const x = p === 0 ? ids() : acts();
      const t0 = performance.now();
      const pieces = model.trainingPieces(batch, length);
      const out = stage.run(pieces, x, stage.isLast ? ids() : undefined);
      const wrt: Tensor[] = p === 0 ? params : [...params, x];
      const seed = stage.isLast ? out.full([], 1) : out.full(out.shape, 1e-3);
      const gs = gradients([out], wrt, [seed]).filter((g): g is Tensor => g !== undefined);
      await realizeAll([out, ...gs]);
      best = Math.min(best, performance.now() - t0);
    }
    costs.push(best);
  }
  return costs;
}

/** The group's mean of every rank's piece costs: the same numbers on every rank. */
export async function agreedCosts(group: Pick<Communicator, "size" | "allReduce">, mine: readonly number[]): Promise<number[]> {
  const sum = await group.allReduce(Float32Array.from(mine), "sum");
  return Array.from(sum, (c) => c / group.size);
}
