// training_pieces.ts: a model's training forward cut into its pieces, in order: the embedding, each
// block, and the head (final norm and output projection). forward(ids) is exactly their composition, so
// running the pieces on different ranks (pipeline parallel, src/dist/pipeline_*.ts) computes the same
// numbers as one process. Each piece also names the parameters it reads; a tied head reads the token
// embedding's weight, so that name appears under both embed and head.

import type { Tensor } from "../index.js";

export interface TrainingPieces {
  readonly nBlocks: number;
  /** Token ids (B*T,) i32 -> the first block's input (B*T, dim). */
  embed(ids: Tensor): Tensor;
  /** Block i: (B*T, dim) -> (B*T, dim). */
  block(i: number, x: Tensor): Tensor;
  /** The last block's output (B*T, dim) -> logits (B*T, vocab). */
  head(x: Tensor): Tensor;
  /**
   * The last block's output and targets (B*T,) i32 -> the mean cross-entropy, where the head's logits are
   * not whole on one rank (a tensor-parallel head: the vocab-parallel loss); absent: crossEntropy of head(x).
   */
  loss?(x: Tensor, targets: Tensor): Tensor;
}

/** The parameter names each piece reads (block i reads every parameter under `blk.i.`). */
export interface PieceParameters {
  readonly embed: readonly string[];
  readonly head: readonly string[];
}

/** Block i's parameter names: those under its GGUF prefix. */
export function blockParameterNames(all: Iterable<string>, i: number): string[] {
  return [...all].filter((n) => n.startsWith(`blk.${i}.`));
}
