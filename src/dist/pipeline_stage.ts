// pipeline_stage.ts: one pipeline stage as a Module the Trainer can train: the pieces [start, end) of a
// whole model (0 = embedding, 1..L = blocks, L + 1 = head with the loss; models/training_pieces.ts),
// whose parameters() are only the ones those pieces read, under the whole model's names (so a stage's
// checkpoint names match the single-process run's). A tied head's stage holds its own copy of the token
// embedding's weight; pipeline.ts keeps the copies equal by summing their gradients.
// NOTE: the stage wraps a whole model object, whose other parameters stay lazy placeholders (no memory)
// unless the caller initialized them; building only the stage's modules is for later.

import type { Tensor } from "../index.js";
import { crossEntropy } from "../index.js";
import { Module } from "../nn/index.js";
import type { PieceParameters, TrainingPieces } from "../models/training_pieces.js";
import { blockParameterNames } from "../models/training_pieces.js";
import type { ModelConfig } from "../models/types.js";
import type { StageRange } from "./pipeline_partition.js";

/** What pipeline parallel needs of a model (Gpt2, Llama with foldNorms: false). */
export interface PipelineModel extends Module {
  readonly config: ModelConfig;
  trainingPieces(batch: number, length: number): TrainingPieces;
  pieceParameters(): PieceParameters;
}

/** Pieces of a model: the embedding, its blocks, the head. */
export const pieceCount = (model: PipelineModel): number => model.config.nLayers + 2;

/** The parameter names each piece reads, in piece order. */
export function pieceParameterNames(model: PipelineModel): string[][] {
  const all = [...model.parameters().keys()];
  const { embed, head } = model.pieceParameters();
  const blocks = Array.from({ length: model.config.nLayers }, (_, i) => blockParameterNames(all, i));
  return [[...embed], ...blocks, [...head]];
}

export class PipelineStage extends Module {
  readonly config: ModelConfig;
  readonly isFirst: boolean;
  readonly isLast: boolean;
  /** The parameters this stage trains, in the whole model's order. */
  readonly names: readonly string[];

  constructor(readonly model: PipelineModel, readonly range: StageRange) {
    super();
    const n = pieceCount(model);
    const [start, end] = range;
    if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start < end && end <= n)) {
      throw new Error(`PipelineStage: pieces [${start}, ${end}) are not a non-empty range of the model's ${n} pieces (embedding, ${n - 2} blocks, head)`);
    }
    this.config = model.config;
    [this.isFirst, this.isLast] = [start === 0, end === n];
    const mine = new Set(pieceParameterNames(model).slice(start, end).flat());
    this.names = [...model.parameters().keys()].filter((k) => mine.has(k));
  }

  override parameters(): Map<string, Tensor> {
    const all = this.model.parameters();
    return new Map(this.names.map((k) => [k, all.get(k)!]));
  }

  /** Replaces this stage's parameters (exactly its names, checked as Module does) in the whole model. */
  override loadStateDict(state: ReadonlyMap<string, Tensor>): void {
    const missing = this.names.filter((k) => !state.has(k));
    const unexpected = [...state.keys()].filter((k) => !this.names.includes(k));
    if (missing.length || unexpected.length) {
      throw new Error(`loadStateDict (pipeline stage of pieces [${this.range.join(", ")})): ${[missing.length ? `missing '${missing.join("', '")}'` : "", unexpected.length ? `unexpected '${unexpected.join("', '")}'` : ""].filter(Boolean).join("; ")}`);
    }
    this.model.loadStateDict(new Map([...this.model.parameters(), ...state]));
  }

  /** A stage is not a whole model: its micro-batches run through pipeline.ts. */
  forward(_ids: Tensor): Tensor {
    throw new Error(`PipelineStage.forward: a stage of pieces [${this.range.join(", ")}) has no single-process forward; it trains through pipelineParallel's gradientSource`);
  }

  /**
   * This stage's pieces on one micro-batch: `x` is the token ids (B*T,) i32 on the first stage, else the
   * previous stage's output (B*T, dim); returns the next stage's input, or on the last stage the mean
   * cross-entropy against `targets` (B*T,) i32.
   */
  run(pieces: TrainingPieces, x: Tensor, targets?: Tensor): Tensor {
    const [start, end] = this.range;
    for (let p = start; p < end; p++) {
      if (p === 0) x = pieces.embed(x);
      else if (p <= pieces.nBlocks) x = pieces.block(p - 1, x);
      else {
        if (!targets) throw new Error("PipelineStage.run: the last stage needs the micro-batch's targets");
        x = pieces.loss ? pieces.loss(x, targets) : crossEntropy(pieces.head(x), targets);
      }
    }
    return x;
  }
}
