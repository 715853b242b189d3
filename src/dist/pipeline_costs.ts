// pipeline_costs.ts: each piece's cost (embedding, every block, head with the loss), measured once at
// the start by running its forward and backward on a micro-batch of the training shape (captured with
// jit and replayed, as the stages run them: timing a graph build would measure scheduling, not compute), for
// pipeline_partition.ts to balance the stages by. Every rank of the pipeline measures, and the group
// takes each piece's fastest time over the ranks (an all-reduce, bit-identical on every rank), so every
// stage derives the same partition from the same numbers. NOTE: the minimum, not the mean: a shared or
// busy host only ever makes a run slower, so the fastest run is the best estimate of the piece's cost.

import type { Tensor } from "../index.js";
import { gradients, jit, tensor } from "../index.js";
import type { Communicator } from "./comm.js";
import { PipelineStage, pieceCount, type PipelineModel } from "./pipeline_stage.js";

/** Milliseconds of forward + backward of each piece on one (batch, length) micro-batch, on this rank (the fastest of seven replays). */
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
  const runs = [...Array(n).keys()].map((p) => {
    const stage = new PipelineStage(model, [p, p + 1]);
    const params = [...stage.parameters().values()];
    for (const t of params) t.requiresGrad = true;
    const step = jit((input: Tensor, y: Tensor) => {
      const out = stage.run(model.trainingPieces(batch, length), input, stage.isLast ? y : undefined);
      const wrt: Tensor[] = p === 0 ? params : [...params, input];
      const seed = stage.isLast ? out.full([], 1) : out.full(out.shape, 1e-3);
      return [out, ...gradients([out], wrt, [seed]).filter((g): g is Tensor => g !== undefined)];
    });
    return { step, inputs: [p === 0 ? ids() : acts(), ids()] };
  });
  const costs = new Array<number>(n).fill(Infinity);
  // NOTE: rounds over every piece, after two untimed ones: the blocks share kernels, so a piece timed
  // first would also pay the warm-up (V8's tiering of the cpu kernels) of those that follow.
  for (let round = 0; round < 9; round++) {
    for (const [p, { step, inputs }] of runs.entries()) {
      const t0 = performance.now();
      const outs = await step(inputs[0]!, inputs[1]!);
      await outs[0]!.data(); // NOTE: waits for the replay's launches (a device backend queues them)
      if (round >= 2) costs[p] = Math.min(costs[p]!, performance.now() - t0);
    }
  }
  for (const { step } of runs) step.dispose();
  return costs;
}

/** Each piece's fastest time over the group's ranks: the same numbers on every rank. */
export async function agreedCosts(group: Pick<Communicator, "allReduce">, mine: readonly number[]): Promise<number[]> {
  const negated = await group.allReduce(Float32Array.from(mine, (c) => -c), "max");
  return Array.from(negated, (c) => -c);
}
