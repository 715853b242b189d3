// tensor_parallel_layers.ts: Megatron-LM's tensor-parallel layers, each holding this rank's slice of one
// layer's weights and placing the collectives (parallel_regions.ts) its slice needs:
//   ColumnParallelLinear   W (out, in) split by rows (output units): y_r = x W_r^T; x enters through
//                          copyToParallel (or gatherFromSequence), y stays split unless gathered
//   RowParallelLinear      W (out, in) split by columns (input units): partial x_r W_r^T summed over the
//                          ranks by reduceFromParallel (or scatterToSequence); the bias is added once, after
//   VocabParallelEmbedding the table's rows split: this rank looks up the ids in its range (others read 0,
//                          the gather's out-of-range rule) and the ranks' rows are summed
// Parameter names are nn's (weight, bias), so a model built from these keeps the single-process model's
// names and tensor_parallel_shard.ts maps one onto the other by name. Which axis each weight is split on is
// recorded as plain data (TpSplit). Sequence parallel (Megatron-LM's): outside the parallel regions each
// rank holds 1/tp of the rows (tokens) instead of all of them; entering gathers them, leaving
// reduce-scatters, and replicated parameters read there get their gradient summed over the ranks.
// It knows no model; tensor_parallel_gpt2.ts and tensor_parallel_llama.ts build models from these.

import type { Tensor } from "../index.js";
import { matmul } from "../index.js";
import { Module, placeholder } from "../nn/module.js";
import type { ParamOptions } from "../nn/module.js";
import type { Communicator } from "./comm.js";
import { copyToParallel, gatherFromParallel, gatherFromSequence, reduceFromParallel, scatterToSequence } from "./parallel_regions.js";

/**
 * How a parameter is cut over the tp ranks: replicated (every rank holds it whole), or split along `axis`
 * where the axis is `parts` consecutive blocks of the given lengths and each block is split evenly (a fused
 * q/k/v weight: rank r holds its slice of q, then of k, then of v). One part: an ordinary even split.
 */
export type TpSplit = { readonly kind: "replicated" } | { readonly kind: "split"; readonly axis: number; readonly parts: readonly number[] };

export const REPLICATED: TpSplit = { kind: "replicated" };

/** Where a tensor-parallel layer's activations live outside its parallel region. */
export interface TpContext {
  readonly tp: Communicator;
  /** Sequence parallel: outside the regions each rank holds 1/tp of the rows (dim 0), not all of them. */
  readonly sequenceParallel: boolean;
}

/** Enter a parallel region: every rank needs all rows (copy, or gather the sequence slices). */
export function enterRegion(x: Tensor, c: TpContext): Tensor {
  return c.sequenceParallel ? gatherFromSequence(x, c.tp, 0) : copyToParallel(x, c.tp);
}

/** Leave a parallel region with the ranks' partial sums: summed (all rows), or summed into this rank's rows. */
export function leaveRegion(x: Tensor, c: TpContext): Tensor {
  return c.sequenceParallel ? scatterToSequence(x, c.tp, 0) : reduceFromParallel(x, c.tp);
}

/**
 * A replicated parameter as read outside the regions. NOTE: with sequence parallel each rank sees only its
 * rows, so its gradient is partial: copyToParallel (identity forward, all-reduce backward) sums it. Without,
 * every rank computes the same full gradient and nothing is needed.
 */
export function replicatedParam(p: Tensor, c: TpContext): Tensor {
  return c.sequenceParallel ? copyToParallel(p, c.tp) : p;
}

/** `n` split evenly over the tp ranks (an error naming `what` otherwise). */
export function perRank(n: number, tp: number, what: string): number {
  if (n % tp !== 0) throw new Error(`tensor parallel: ${what} (${n}) must divide by tp (${tp})`);
  return n / tp;
}

/** A linear whose output units are split: (..., in) -> (..., outLocal), this rank's units of every part. */
export class ColumnParallelLinear extends Module {
  readonly split: TpSplit;
  readonly outLocal: number;

  /** `parts`: the output's blocks (q, k, v of a fused projection), each split evenly; default one block. */
  constructor(readonly inFeatures: number, readonly parts: readonly number[], readonly tp: number, opts: ParamOptions & { bias?: boolean } = {}) {
    super();
    this.outLocal = parts.reduce((a, p, i) => a + perRank(p, tp, `output block ${i} of a column-parallel linear`), 0);
    this.split = { kind: "split", axis: 0, parts };
    this.setParameter("weight", placeholder([this.outLocal, inFeatures], opts));
    if (opts.bias) this.setParameter("bias", placeholder([this.outLocal], opts));
  }

  get weight(): Tensor { return this.parameter("weight"); }
  get bias(): Tensor | undefined { return this.optionalParameter("bias"); }

  /** x already inside the region (enterRegion): this rank's output units. */
  forward(x: Tensor): Tensor {
    const y = matmul(x, this.weight.transpose());
    const b = this.bias;
    return b ? y.add(b) : y;
  }
}

/** A linear whose input units are split: (..., inLocal) -> (..., out), summed over the ranks, bias after. */
export class RowParallelLinear extends Module {
  readonly split: TpSplit;
  readonly inLocal: number;

  constructor(readonly inFeatures: number, readonly outFeatures: number, readonly tp: number, opts: ParamOptions & { bias?: boolean } = {}) {
    super();
    this.inLocal = perRank(inFeatures, tp, "the input units of a row-parallel linear");
    this.split = { kind: "split", axis: 1, parts: [inFeatures] };
    this.setParameter("weight", placeholder([outFeatures, this.inLocal], opts));
    if (opts.bias) this.setParameter("bias", placeholder([outFeatures], opts));
  }

  get weight(): Tensor { return this.parameter("weight"); }
  get bias(): Tensor | undefined { return this.optionalParameter("bias"); }

  /** x: this rank's input units (a column-parallel output); the result has left the region. */
  forward(x: Tensor, c: TpContext): Tensor {
    const y = leaveRegion(matmul(x, this.weight.transpose()), c);
    // NOTE: after the sum, so the bias counts once (added on every rank before it, it would count tp times).
    const b = this.bias;
    return b ? y.add(replicatedParam(b, c)) : y;
  }
}

/** An embedding whose table rows (the vocabulary) are split: rank r holds ids [r V/tp, (r+1) V/tp). */
export class VocabParallelEmbedding extends Module {
  readonly split: TpSplit;
  readonly vocabLocal: number;
  readonly vocabStart: number;

  constructor(readonly numEmbeddings: number, readonly dim: number, readonly tp: Communicator, opts: ParamOptions = {}) {
    super();
    this.vocabLocal = perRank(numEmbeddings, tp.size, "the vocabulary of a vocab-parallel embedding");
    this.vocabStart = tp.rank * this.vocabLocal;
    this.split = { kind: "split", axis: 0, parts: [numEmbeddings] };
    this.setParameter("weight", placeholder([this.vocabLocal, dim], opts));
  }

  get weight(): Tensor { return this.parameter("weight"); }

  /** ids (T,) i32 -> (T, dim) summed over the ranks (or this rank's rows of it, sequence parallel). */
  forward(ids: Tensor, c: TpContext): Tensor {
    // NOTE: an id outside this rank's range becomes an index outside [0, vocabLocal), which gather reads as
    // a row of zeros (and its backward drops), so exactly one rank contributes each token's row.
    const local = this.weight.gather(0, ids.sub(this.vocabStart));
    return leaveRegion(local, c);
  }

  /** Tied output head: x (R, dim), already inside the region -> this rank's logits (R, vocabLocal). */
  logits(x: Tensor): Tensor {
    return matmul(x, this.weight.transpose());
  }
}

/** The whole (R, V) logits from this rank's vocabulary slice (R, V/tp): for inference, where one row is sampled. */
export function gatherLogits(local: Tensor, tp: Communicator): Tensor {
  return gatherFromParallel(local, tp, -1);
}
