// tensor_parallel_model.ts: what the tensor-parallel GPT-2 and Llama (tensor_parallel_gpt2.ts,
// tensor_parallel_llama.ts) share: the training forward and loss (vocab-parallel cross-entropy: the logits
// stay split), inference's logits (gathered whole, so the sampler sees what the single-process model gives),
// the cut of each parameter (TpSplit, from the layers that hold them), and sequence parallel's row slices.
// A tensor-parallel model is a TrainableModel (src/train/loss.ts) and a CausalTransformer
// (src/models/language_model.ts) with the same parameter names as the single-process model, each rank
// holding its slices; the trainer and the serving model runner run it unchanged.

import type { Backend, DType, Tensor } from "../index.js";
import { noGrad } from "../index.js";
import { Module } from "../nn/module.js";
import { BatchContext, batchShape } from "../models/batch_context.js";
import type { AttentionContext, CacheShape } from "../models/kv_cache.js";
import type { PieceParameters, TrainingPieces } from "../models/training_pieces.js";
import type { ModelConfig } from "../models/types.js";
import type { Communicator } from "./comm.js";
import { localSlice } from "./graph_collectives.js";
import type { TpContext, TpSplit } from "./tensor_parallel_layers.js";
import { ColumnParallelLinear, gatherLogits, REPLICATED, RowParallelLinear, VocabParallelEmbedding } from "./tensor_parallel_layers.js";
import type { TpShardable } from "./tensor_parallel_shard.js";
import { vocabParallelCrossEntropy } from "./vocab_parallel_loss.js";

export interface TpModelOptions {
  /** The tensor-parallel group (mesh.tp); a group of one gives the single-process model's graph. */
  readonly tp: Communicator;
  /** Sequence parallel in training (default false): norms and residuals on 1/tp of the rows. */
  readonly sequenceParallel?: boolean;
  readonly dtype?: DType;
  readonly contextLength?: number;
}

/** The cut of each of a tensor-parallel layer's parameters, by dotted name under `prefix`. */
export function layerSplits(prefix: string, layer: Module): [string, TpSplit][] {
  if (layer instanceof ColumnParallelLinear) {
    return [[`${prefix}.weight`, layer.split], ...(layer.bias ? [[`${prefix}.bias`, layer.split] as [string, TpSplit]] : [])];
  }
  if (layer instanceof RowParallelLinear) return [[`${prefix}.weight`, layer.split], ...(layer.bias ? [[`${prefix}.bias`, REPLICATED] as [string, TpSplit]] : [])];
  if (layer instanceof VocabParallelEmbedding) return [[`${prefix}.weight`, layer.split]];
  return [];
}

export abstract class TpLanguageModel extends Module implements TpShardable {
  abstract readonly config: ModelConfig;
  abstract readonly backend: Backend;
  abstract readonly dtype: DType;
  abstract readonly contextLength: number;
  abstract readonly cacheShape: CacheShape;
  readonly tp: Communicator;
  readonly sequenceParallel: boolean;
  private readonly splits = new Map<string, TpSplit>();

  constructor(opts: TpModelOptions) {
    super();
    this.tp = opts.tp;
    this.sequenceParallel = opts.sequenceParallel ?? false;
  }

  /** Registers a parallel layer's cuts (call once per layer, with its dotted name). */
  protected parallel<M extends Module>(name: string, layer: M): M {
    for (const [k, s] of layerSplits(name, layer)) this.splits.set(k, s);
    return layer;
  }

  tpSplits(): ReadonlyMap<string, TpSplit> {
    return this.splits;
  }

  /**
   * The embedding and the blocks for one pass (ctx): ids -> the first block's input, and block i's
   * (R, dim) -> (R, dim) outside the regions: all T rows, or this rank's 1/tp of them (sequence parallel).
   */
  protected abstract passPieces(ctx: AttentionContext, c: TpContext): { embed(ids: Tensor): Tensor; block(i: number, x: Tensor): Tensor };
  /** Which parameters the embedding and the head read (models/training_pieces.ts), under the whole model's names. */
  abstract pieceParameters(): PieceParameters;

  /** The last block's output for ids (T,): the pieces composed, so the pipeline's stages compute exactly this. */
  protected hidden(ids: Tensor, ctx: AttentionContext, c: TpContext): Tensor {
    const p = this.passPieces(ctx, c);
    let x = p.embed(ids);
    for (let i = 0; i < this.config.nLayers; i++) x = p.block(i, x);
    return x;
  }

  /**
   * The training forward cut into pieces for pipeline stages (models/training_pieces.ts), each rank its slices:
   * the head's logits stay split, so the last piece's loss is the vocab-parallel cross-entropy (as loss()).
   * NOTE: no sequence parallel across stages yet (a stage's activation would be its rows only).
   */
  trainingPieces(b: number, t: number): TrainingPieces {
    if (this.sequenceParallel && this.tp.size > 1) throw new Error("tensor parallel: not yet: pipeline stages of a sequence-parallel model");
    const c: TpContext = { tp: this.tp, sequenceParallel: false };
    const p = this.passPieces(new BatchContext(b, t), c);
    return {
      nBlocks: this.config.nLayers,
      embed: (ids) => p.embed(ids),
      block: (i, x) => p.block(i, x),
      head: (x) => gatherLogits(this.headLocal(x, c), this.tp),
      loss: (x, targets) => vocabParallelCrossEntropy(this.headLocal(x, c), targets.flatten().cast("i32"), this.tp),
    };
  }
  /** Output norm and this rank's vocabulary slice of the head: (R, dim) rows outside the region -> (R', V/tp). */
  protected abstract headLocal(x: Tensor, c: TpContext): Tensor;

  private context(training: boolean): TpContext {
    return { tp: this.tp, sequenceParallel: training && this.sequenceParallel && this.tp.size > 1 };
  }

  /** This rank's rows (dim 0) outside the regions: all of them, or its 1/tp with sequence parallel. */
  protected outsideRows(x: Tensor, c: TpContext): Tensor {
    return c.sequenceParallel ? localSlice(x, this.tp, 0) : x;
  }

  /** Training loss (TrainableModel.loss): mean cross-entropy over (B, T), the logits never gathered. */
  loss(inputs: Tensor, targets: Tensor): Tensor {
    const [b, t] = batchShape(this.config.arch, inputs, this.contextLength);
    const c = this.context(true);
    if (c.sequenceParallel && (b * t) % this.tp.size !== 0) {
      throw new Error(`tensor parallel: sequence parallel splits the ${b} x ${t} = ${b * t} tokens of a batch over tp ${this.tp.size}; they must divide`);
    }
    const local = this.headLocal(this.hidden(inputs.flatten(), new BatchContext(b, t), c), c); // (B*T, V/tp)
    return vocabParallelCrossEntropy(local, targets.flatten().cast("i32"), this.tp);
  }

  /** Training forward: ids (B, T) -> the whole logits (B, T, vocab) (gathered; the loss does not need them). */
  forward(ids: Tensor): Tensor {
    const [b, t] = batchShape(this.config.arch, ids, this.contextLength);
    const c = this.context(false);
    return gatherLogits(this.headLocal(this.hidden(ids.flatten(), new BatchContext(b, t), c), c), this.tp).reshape([b, t, this.config.vocabSize]);
  }

  /** Logits (T, vocab) for ids (T,), or (1, vocab) of the last position when lastOnly; whole on every rank. */
  logits(ids: Tensor, ctx: AttentionContext, lastOnly = false): Tensor {
    return noGrad(() => {
      const c = this.context(false);
      const x = this.hidden(ids, ctx, c);
      const t = x.shape[0]!;
      return gatherLogits(this.headLocal(lastOnly && t > 1 ? x.slice(0, t - 1, t) : x, c), this.tp);
    });
  }

  /** Logits (R, vocab) of the positions `rows` (R,) i32, whole on every rank. */
  logitsAt(ids: Tensor, ctx: AttentionContext, rows: Tensor): Tensor {
    return noGrad(() => {
      const c = this.context(false);
      return gatherLogits(this.headLocal(this.hidden(ids, ctx, c).gather(0, rows), c), this.tp);
    });
  }
}
