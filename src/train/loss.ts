// loss.ts: the language-modelling loss of a trainable model: mean cross-entropy of next-token
// targets over every position of a (B, T) batch. The model's forward is its own (one definition for
// training and inference, models/gpt2.ts and llama.ts); this file only flattens and scores.
// trainingLoss is what a step minimises: lmLoss, plus for a mixture-of-experts model its router's
// load-balancing loss times routerAuxLossCoef (evaluation reports lmLoss alone).

import type { Tensor } from "../index.js";
import { crossEntropy } from "../index.js";
import type { Module } from "../nn/index.js";
import type { ModelConfig } from "../models/types.js";

/** A model the trainer can train: Gpt2 or Llama (built with foldNorms: false). */
export interface TrainableModel extends Module {
  readonly config: ModelConfig;
  /** ids (B, T) i32 -> logits (B, T, vocab), gradients recorded. */
  forward(ids: Tensor): Tensor;
  /** forward, with a MoE model's load-balancing loss (a scalar; absent without MoE layers). */
  forwardWithAux?(ids: Tensor): { logits: Tensor; auxLoss?: Tensor; dropped?: Tensor };
  /**
   * The mean loss of targets (B, T) under inputs (B, T), when the model computes it itself (a tensor-parallel
   * model's vocab-parallel cross-entropy never gathers the logits); else lmLoss scores forward's logits.
   */
  loss?(inputs: Tensor, targets: Tensor): Tensor;
}

/** MoE's weight of the load-balancing loss when the config leaves it out (Switch Transformer's). */
export const DEFAULT_ROUTER_AUX_LOSS_COEF = 0.01;

/** Mean cross-entropy of targets (B, T) i32 under the model's logits for inputs (B, T) i32: a scalar. */
export function lmLoss(model: TrainableModel, inputs: Tensor, targets: Tensor): Tensor {
  checkTargets(inputs, targets);
  if (model.loss) return model.loss(inputs, targets);
  return tokenLoss(model.forward(inputs), targets);
}

/** The objective a training step minimises: lmLoss plus, for a MoE model, coef * its load-balancing loss. */
export function trainingLoss(model: TrainableModel, inputs: Tensor, targets: Tensor): Tensor {
  const moe = model.config.arch === "llama" ? model.config.moe : undefined;
  if (!moe || !model.forwardWithAux) return lmLoss(model, inputs, targets);
  checkTargets(inputs, targets);
  const { logits, auxLoss } = model.forwardWithAux(inputs);
  const ce = tokenLoss(logits, targets);
  const coef = moe.routerAuxLossCoef ?? DEFAULT_ROUTER_AUX_LOSS_COEF;
  return auxLoss && coef > 0 ? ce.add(auxLoss.mul(coef)) : ce;
}

function checkTargets(inputs: Tensor, targets: Tensor): void {
  if (targets.ndim !== 2 || targets.shape[0] !== inputs.shape[0] || targets.shape[1] !== inputs.shape[1]) {
    throw new Error(`lmLoss: targets ${targets} must have the inputs' shape (${inputs.shape.join(", ")})`);
  }
}

/** Mean cross-entropy of logits (B, T, V) against targets (B, T). */
function tokenLoss(logits: Tensor, targets: Tensor): Tensor {
  const [b, t, v] = logits.shape as [number, number, number];
  return crossEntropy(logits.reshape([b * t, v]), targets.flatten());
}
