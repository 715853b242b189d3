// loss.ts: the language-modelling loss of a trainable model: mean cross-entropy of next-token
// targets over every position of a (B, T) batch. The model's forward is its own (one definition for
// training and inference, models/gpt2.ts and llama.ts); this file only flattens and scores.

import type { Tensor } from "../index.js";
import { crossEntropy } from "../index.js";
import type { Module } from "../nn/index.js";
import type { ModelConfig } from "../models/types.js";

/** A model the trainer can train: Gpt2 or Llama (built with foldNorms: false). */
export interface TrainableModel extends Module {
  readonly config: ModelConfig;
  /** ids (B, T) i32 -> logits (B, T, vocab), gradients recorded. */
  forward(ids: Tensor): Tensor;
  /**
   * The mean loss of targets (B, T) under inputs (B, T), when the model computes it itself (a tensor-parallel
   * model's vocab-parallel cross-entropy never gathers the logits); else lmLoss scores forward's logits.
   */
  loss?(inputs: Tensor, targets: Tensor): Tensor;
}

/** Mean cross-entropy of targets (B, T) i32 under the model's logits for inputs (B, T) i32: a scalar. */
export function lmLoss(model: TrainableModel, inputs: Tensor, targets: Tensor): Tensor {
  if (targets.ndim !== 2 || targets.shape[0] !== inputs.shape[0] || targets.shape[1] !== inputs.shape[1]) {
    throw new Error(`lmLoss: targets ${targets} must have the inputs' shape (${inputs.shape.join(", ")})`);
  }
  if (model.loss) return model.loss(inputs, targets);
  const logits = model.forward(inputs); // (B, T, V)
  const [b, t, v] = logits.shape as [number, number, number];
  return crossEntropy(logits.reshape([b * t, v]), targets.flatten());
}
