// checkpointing.ts: applies an activation-checkpointing policy to a model from the outside. The
// models stay as they are (one forward for training and inference): their `blocks` list is found
// and each chosen block's forward is wrapped in autograd's checkpoint(), or, for the selective
// policy, the block's attention context is wrapped so that only attend() is recomputed.
// NOTE: wrapping the instance's own forward, not the class's, so two models never share a policy.

import type { ActivationSaver, Tensor } from "../../index.js";
import { checkpoint } from "../../index.js";
import type { Module } from "../../nn/index.js";
import type { ActivationCheckpointing } from "./config.js";
import { checkpointsLayer } from "./config.js";

type BlockForward = (x: Tensor, ...rest: unknown[]) => Tensor;
interface Block extends Module { forward: BlockForward }
interface Attending { attend(layer: number, q: Tensor, k: Tensor, v: Tensor): Tensor }

/** The model's transformer blocks (Gpt2 and Llama both keep them in `blocks`). */
function blocksOf(model: Module): Block[] {
  const blocks = (model as { blocks?: unknown }).blocks;
  if (!blocks || typeof (blocks as Iterable<unknown>)[Symbol.iterator] !== "function") {
    throw new Error(`activation checkpointing: the model (${model.constructor.name}) has no 'blocks' list to checkpoint`);
  }
  const list = [...(blocks as Iterable<Block>)];
  for (const b of list) if (typeof b.forward !== "function") throw new Error(`activation checkpointing: block ${b.constructor.name} has no forward`);
  return list;
}

const isAttending = (a: unknown): a is Attending => typeof a === "object" && a !== null && typeof (a as Attending).attend === "function";

/** The same attention context, its attend() recomputed in the backward (q, k, v kept). */
function checkpointedAttention(ctx: Attending, saver?: ActivationSaver): Attending {
  const wrapped = Object.create(ctx) as Attending;
  wrapped.attend = (layer, q, k, v) => checkpoint((q2, k2, v2) => ctx.attend(layer, q2!, k2!, v2!), [q, k, v], saver ? { saver } : {});
  return wrapped;
}

/**
 * Checkpoint the model's blocks as the policy says; returns how many blocks (or attentions) are
 * recomputed. A saver moves the checkpointed inputs off the device between forward and backward.
 */
export function applyActivationCheckpointing(model: Module, policy: ActivationCheckpointing, saver?: ActivationSaver): number {
  if (policy === "none") return 0;
  // NOTE: a recomputed block's MoE statistics (the load-balancing loss) would leave the tape: not yet.
  if ((model as { config?: { moe?: unknown } }).config?.moe && policy !== "attention") {
    throw new Error(`activation checkpointing: a mixture-of-experts model checkpoints 'attention' only so far, not ${JSON.stringify(policy)} (the router's load-balancing loss would lose its gradient)`);
  }
  const blocks = blocksOf(model);
  let n = 0;
  blocks.forEach((block, layer) => {
    const own: BlockForward = block.forward.bind(block);
    if (policy === "attention") {
      block.forward = (x, ...rest) => own(x, ...rest.map((a) => (isAttending(a) ? checkpointedAttention(a, saver) : a)));
      n++;
    } else if (checkpointsLayer(policy, layer)) {
      block.forward = (x, ...rest) => checkpoint((x2) => own(x2!, ...rest), [x], saver ? { saver } : {});
      n++;
    }
  });
  return n;
}
