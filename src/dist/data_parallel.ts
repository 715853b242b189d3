// data_parallel.ts: the thinnest data parallel: every rank holds the whole model and runs the same step on
// its own rows of the global batch; between backward and clipping the ranks' flat gradients are summed
// (allReduce) and divided by the world size, so every rank applies the gradient of the global batch's mean
// loss and their parameters stay identical. It hands the trainer a generic gradient hook (the trainer never
// learns the world size) and a batch source that cuts each global batch into the ranks' rows.
// Two forms of the same reduction: gradientHook (a host all-reduce of plain Float32Arrays between two graphs)
// and reduceGradient (an all-reduce node inside the step's one graph: graph_collectives.ts); the second keeps
// the step whole and works with every precision.
// Ranks must also start identical and agree on the model: replica_start.ts. Ranks of unequal speed take
// unequal rows (rowShares, from hetero_shares.ts); the gradient is then each rank's mean weighted by its rows.

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

export interface DataParallelOptions {
  /**
   * Rows of every global micro-batch per rank, in rank order (hetero_shares.ts balances them by measured
   * speed); they must add up to the global batch. Default: equal rows, global batch / world size each.
   */
  readonly rowShares?: readonly number[];
}

/** Where this rank's steps spent their time, one entry per step (plain data; the first step includes the capture). */
export interface StepTimings {
  /** From the end of the previous all-reduce to the start of this one: this rank's own work (update, forward, backward). */
  readonly computeMs: readonly number[];
  /** In the gradient all-reduce, waiting for slower ranks included. */
  readonly commMs: readonly number[];
}

export interface DataParallel {
  /** Give it to the Trainer (gradientHook): the global batch's mean gradient, the same on every rank. */
  readonly gradientHook: FlatGradientHook;
  /**
   * The same mean as a graph (Trainer's reduceGradient): an all-reduce node inside the step's one captured
   * graph, so no host round trip between two graphs, and fp16/fp8 steps (whose skip decision and scale
   * updates span the whole step) work too: every rank sees the same reduced gradient, so the same decision.
   */
  readonly reduceGradient: (flatGrad: Tensor) => Tensor;
  /** This rank's rows of each of `global`'s batches (see RankRows). */
  rows<S>(global: BatchesOf<S>): RankRows<S>;
  /** Each step's compute and communication time on this rank so far. */
  timings(): StepTimings;
}

export function dataParallel(comm: Communicator, opts: DataParallelOptions = {}): DataParallel {
  const shares = opts.rowShares === undefined ? undefined : checkShares(opts.rowShares, comm.size);
  const total = shares?.reduce((a, b) => a + b, 0);
  const computeMs: number[] = [];
  const commMs: number[] = [];
  let lastEnd = performance.now();
  const gradientHook: FlatGradientHook = async (flatGrad) => {
    const t0 = performance.now();
    computeMs.push(t0 - lastEnd);
    let sum: Float32Array;
    if (shares === undefined) {
      sum = await comm.allReduce(flatGrad, "sum");
      // NOTE: the mean of the ranks' means: the global batch's mean loss when every rank has as many rows.
      for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! / comm.size;
    } else {
      // NOTE: rank r's gradient is the mean over its n_r rows; the global batch's mean is sum_r (n_r / B) * mean_r.
      const w = shares[comm.rank]! / total!;
      const mine = new Float32Array(flatGrad.length);
      for (let i = 0; i < mine.length; i++) mine[i] = flatGrad[i]! * w;
      sum = await comm.allReduce(mine, "sum");
    }
    lastEnd = performance.now();
    commMs.push(lastEnd - t0);
    return sum;
  };
  // NOTE: the same arithmetic as the hook: the sum divided by the world size, or each rank's gradient
  // weighted by its rows over the global batch before the sum.
  const reduceGradient = (flatGrad: Tensor): Tensor => {
    if (comm.size === 1) return flatGrad;
    if (shares === undefined) return allReduce(flatGrad, comm).div(comm.size);
    return allReduce(flatGrad.mul(shares[comm.rank]! / total!), comm);
  };
  return {
    gradientHook,
    reduceGradient,
    rows: (global) => new RankRows(global, comm.rank, comm.size, shares),
    // NOTE: the hook's times only; with reduceGradient the all-reduce runs inside the step's graph.
    timings: () => ({ computeMs: [...computeMs], commMs: [...commMs] }),
  };
}

function checkShares(shares: readonly number[], size: number): readonly number[] {
  if (shares.length !== size) throw new Error(`data parallel: rowShares has ${shares.length} entries for ${size} ranks (one per rank)`);
  const bad = shares.findIndex((n) => !(Number.isInteger(n) && n >= 1));
  if (bad >= 0) throw new Error(`data parallel: rowShares[${bad}] (rank ${bad}'s rows) is ${shares[bad]}, not an integer >= 1`);
  return [...shares];
}

/**
 * Rank r's rows [r * B / size, (r + 1) * B / size) of every batch the single-process run draws from
 * `global` (B rows): the ranks together see exactly that run's tokens, so data parallel equals it up to
 * the order of the gradient's f32 sums. B must divide by the world size (equal rows keep the mean exact).
 * With `shares` (rows per rank, adding up to B), rank r's rows are [n_0 + ... + n_(r-1), ... + n_r).
 */
export class RankRows<S> implements BatchesOf<S> {
  readonly batchSize: number;
  readonly blockSize: number;

  /** The first of this rank's rows in each global batch. */
  readonly firstRow: number;

  constructor(private readonly global: BatchesOf<S>, readonly rank: number, readonly size: number, shares?: readonly number[]) {
    if (!(Number.isInteger(size) && size >= 1 && Number.isInteger(rank) && rank >= 0 && rank < size)) {
      throw new Error(`RankRows: rank must be an integer from 0 to size - 1 and size >= 1, got rank ${rank} of ${size}`);
    }
    if (shares !== undefined) {
      const sum = shares.reduce((a, b) => a + b, 0);
      if (shares.length !== size || sum !== global.batchSize) {
        throw new Error(`RankRows: row shares [${shares.join(", ")}] add up to ${sum} rows over ${shares.length} ranks, but the global batch has ${global.batchSize} rows over ${size} ranks`);
      }
      this.batchSize = shares[rank]!;
      this.firstRow = shares.slice(0, rank).reduce((a, b) => a + b, 0);
    } else {
      if (global.batchSize % size !== 0) {
        throw new Error(`RankRows: the global batch of ${global.batchSize} rows does not divide over ${size} ranks (data parallel needs as many rows on every rank, or row shares)`);
      }
      this.batchSize = global.batchSize / size;
      this.firstRow = rank * this.batchSize;
    }
    this.blockSize = global.blockSize;
  }

  async batch(step: number, micro: number): Promise<TokenBatch> {
    const { inputs, targets } = await this.global.batch(step, micro);
    const n = this.batchSize * this.blockSize;
    const at = this.firstRow * this.blockSize;
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
