// pipeline_train.ts: what a pipeline-parallel `kiln train` needs beside pipeline.ts's schedule: its micro-batches
// cut from the run's batches (MicroRows: each of the single run's batches split into m row-chunks, so the m
// micro-batches' mean loss is that batch's mean loss), and the held-out loss computed through the stages
// (pipelineEvalLoss: each stage runs its pieces forward on the whole batch and hands the activation on; the last
// stage's cross-entropy goes to every stage), since no stage alone holds the model.

import type { Tensor } from "../index.js";
import { noGrad, tensor } from "../index.js";
import type { BatchesOf, TokenBatch } from "./data_parallel.js";
import { RankRows } from "./data_parallel.js";
import type { PipelineGroup } from "./pipeline.js";
import type { PipelineModel, PipelineStage } from "./pipeline_stage.js";

/**
 * Batch (step, k) is row-chunk k % m of `source`'s batch (step, floor(k / m)): a trainer with gradAccumSteps
 * a * m over it takes the same rows, each weighted alike, as one with gradAccumSteps a over `source`.
 * NOTE: the last batch of `source` is kept, so a sequential source is asked for each batch once.
 */
export class MicroRows<S> implements BatchesOf<S> {
  readonly batchSize: number;
  readonly blockSize: number;
  private last: { step: number; micro: number; batch: Promise<TokenBatch> } | undefined;
  private readonly chunks: RankRows<S>[];

  constructor(private readonly source: BatchesOf<S>, readonly m: number) {
    if (!(Number.isInteger(m) && m >= 1 && source.batchSize % m === 0)) {
      throw new Error(`pipeline micro-batches: ${m} micro-batches do not divide a batch of ${source.batchSize} rows (each must have as many)`);
    }
    this.batchSize = source.batchSize / m;
    this.blockSize = source.blockSize;
    const once: BatchesOf<S> = {
      batchSize: source.batchSize,
      blockSize: source.blockSize,
      batch: (step, micro) => {
        if (this.last?.step !== step || this.last.micro !== micro) this.last = { step, micro, batch: Promise.resolve(source.batch(step, micro)) };
        return this.last.batch;
      },
      state: () => source.state(),
      restore: (s) => source.restore(s),
    };
    this.chunks = Array.from({ length: m }, (_, k) => new RankRows(once, k, m));
  }

  batch(step: number, k: number): Promise<TokenBatch> {
    return this.chunks[k % this.m]!.batch(step, Math.floor(k / this.m));
  }

  state(): S {
    return this.source.state();
  }

  restore(state: S): void {
    this.last = undefined;
    this.source.restore(state);
  }
}

/**
 * The mean cross-entropy of `batch` (batchSize x blockSize tokens) under the whole pipeline, on every stage
 * (every stage calls it with the same batch). No gradients, no capture: an evaluation is rare.
 */
export async function pipelineEvalLoss(group: PipelineGroup, model: PipelineModel, stage: PipelineStage, batch: TokenBatch, batchSize: number, blockSize: number): Promise<number> {
  const rows = batchSize * blockSize;
  const dim = model.config.dim;
  const backend = [...stage.parameters().values()][0]!.backend;
  const made: Tensor[] = [];
  const keep = (t: Tensor) => (made.push(t), t);
  try {
    const input = stage.isFirst
      ? keep(tensor(batch.inputs, { backend, dtype: "i32", shape: [rows] }))
      : keep(tensor(await receive(group, group.rank - 1, rows * dim), { backend, dtype: "f32", shape: [rows, dim] }));
    const targets = stage.isLast ? keep(tensor(batch.targets, { backend, dtype: "i32", shape: [rows] })) : undefined;
    const out = keep(noGrad(() => stage.run(model.trainingPieces(batchSize, blockSize), input, targets)));
    const values = Float32Array.from((await out.data()) as Float32Array);
    if (!stage.isLast) await group.send(values, group.rank + 1);
    // NOTE: the last stage's loss to every stage (the others add 0), as the training step reports its loss.
    return (await group.allReduce(Float32Array.of(stage.isLast ? values[0]! : 0), "sum"))[0]!;
  } finally {
    for (const t of made) t.dispose();
  }
}

async function receive(group: PipelineGroup, from: number, want: number): Promise<Float32Array> {
  const got = await group.recv(from);
  if (got.length !== want) throw new Error(`pipeline evaluation on rank ${group.rank}: stage ${from} sent ${got.length} values, expected ${want}`);
  return got;
}
