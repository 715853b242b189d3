// data_parallel.ts: the thinnest data parallel: every rank holds the whole model and runs the same step on
// its own rows of the global batch; between backward and clipping the ranks' flat gradients are summed
// (allReduce) and divided by the world size, so every rank applies the gradient of the global batch's mean
// loss and their parameters stay identical. It hands the trainer a generic gradient hook (the trainer never
// learns the world size) and a batch source that cuts each global batch into the ranks' rows.
// Two forms of the same reduction: gradientHook (a host all-reduce of plain Float32Arrays between two graphs)
// and reduceGradient (an all-reduce node inside the step's one graph: graph_collectives.ts); the second keeps
// the step whole and works with every precision.
// Ranks must also start identical and agree on the model: replica_start.ts.

import type { Tensor } from "../tensor/tensor.js";
import type { Communicator } from "./comm.js";
import { allReduce } from "./graph_collectives.js";

/** What the trainer's gradientHook is (train/trainer.ts GradientHook), restated: dist does not import train. */
export type FlatGradientHook = (flatGrad: Float32Array) => Promise<Float32Array>;

/** One micro-batch: (B * T) token ids row-major, and the next-token targets (train/batches.ts Batch). */
export interface TokenBatch {
  readonly inputs: Int32Array;
  readonly targets: Int32Array;
}

/** The shape of train/batches.ts BatchSource, generic in its state's type so the wrapper passes it through unchanged. */
export interface BatchesOf<S> {
  readonly batchSize: number;
  readonly blockSize: number;
  batch(step: number, micro: number): TokenBatch | Promise<TokenBatch>;
  state(): S;
  restore(state: S): void;
}

export interface DataParallel {
  /** Give it to the Trainer (gradientHook): the mean over ranks of their flat gradients, the same on every rank. */
  readonly gradientHook: FlatGradientHook;
  /**
   * The same mean as a graph (Trainer's reduceGradient): an all-reduce node inside the step's one captured
   * graph, so no host round trip between two graphs, and fp16/fp8 steps (whose skip decision and scale
   * updates span the whole step) work too: every rank sees the same reduced gradient, so the same decision.
   */
  readonly reduceGradient: (flatGrad: Tensor) => Tensor;
  /** This rank's rows of each of `global`'s batches (see RankRows). */
  rows<S>(global: BatchesOf<S>): RankRows<S>;
}

export function dataParallel(comm: Communicator): DataParallel {
  const gradientHook: FlatGradientHook = async (flatGrad) => {
    const sum = await comm.allReduce(flatGrad, "sum");
    // NOTE: the mean of the ranks' means: the global batch's mean loss when every rank has as many rows.
    for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! / comm.size;
    return sum;
  };
  const reduceGradient = (flatGrad: Tensor) => (comm.size === 1 ? flatGrad : allReduce(flatGrad, comm).div(comm.size));
  return { gradientHook, reduceGradient, rows: (global) => new RankRows(global, comm.rank, comm.size) };
}

/**
 * Rank r's rows [r * B / size, (r + 1) * B / size) of every batch the single-process run draws from
 * `global` (B rows): the ranks together see exactly that run's tokens, so data parallel equals it up to
 * the order of the gradient's f32 sums. B must divide by the world size (equal rows keep the mean exact).
 */
export class RankRows<S> implements BatchesOf<S> {
  readonly batchSize: number;
  readonly blockSize: number;

  constructor(private readonly global: BatchesOf<S>, readonly rank: number, readonly size: number) {
    if (!(Number.isInteger(size) && size >= 1 && Number.isInteger(rank) && rank >= 0 && rank < size)) {
      throw new Error(`RankRows: rank must be an integer from 0 to size - 1 and size >= 1, got rank ${rank} of ${size}`);
    }
    if (global.batchSize % size !== 0) {
      throw new Error(`RankRows: the global batch of ${global.batchSize} rows does not divide over ${size} ranks (data parallel needs as many rows on every rank)`);
    }
    this.batchSize = global.batchSize / size;
    this.blockSize = global.blockSize;
  }

  async batch(step: number, micro: number): Promise<TokenBatch> {
    const { inputs, targets } = await this.global.batch(step, micro);
    const n = this.batchSize * this.blockSize;
    const at = this.rank * n;
    if (inputs.length !== this.global.batchSize * this.blockSize) {
      throw new Error(`RankRows: the global source gave ${inputs.length} token ids for a (${this.global.batchSize}, ${this.blockSize}) batch`);
    }
    return { inputs: inputs.slice(at, at + n), targets: targets.slice(at, at + n) };
  }

  /** The global source's position: every rank's is the same, as every rank draws every global batch. */
  state(): S {
    return this.global.state();
  }

  restore(state: S): void {
    this.global.restore(state);
  }
}
