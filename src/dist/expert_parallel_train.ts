// expert_parallel_train.ts: an expert-parallel MoE Llama from the whole one a single-process run trains (kiln
// train builds and initialises that one alike on every rank): the same model, built with its MoE layers'
// experts exchanged over the ep group (expertExchange), holding this rank's share of every layer's experts cut
// from the whole model and its dense parameters whole; the rest of the whole model's expert rows are freed.
// The training seams (reduceGradient, gradientNorm) are expertParallelTraining's, made from the trainer's layout.

import type { Backend, Tensor } from "../index.js";
import { realizeAll } from "../index.js";
import { Llama } from "../models/llama.js";
import type { LlamaConfig } from "../models/types.js";
import type { Communicator } from "./comm.js";
import { expertExchange, expertShare, shardExperts } from "./expert_parallel.js";

/** What expertParallelFromWhole needs of the whole model (models' Llama has it). */
export interface WholeMoeModel {
  readonly config: { readonly arch: string };
  parameters(): Map<string, Tensor>;
}

/**
 * This rank's expert-parallel Llama: `ep` the group sharing out the experts, `tokens` the group whose tokens the
 * router's balance statistics average over (the data-parallel group). Every rank calls it alike.
 * NOTE: built in the training layout (norms not folded, q/k/v apart), as kiln train's single process builds it.
 */
export async function expertParallelFromWhole(whole: WholeMoeModel, backend: Backend, ep: Communicator, tokens: Communicator): Promise<Llama> {
  const config = whole.config as LlamaConfig;
  if (config.arch !== "llama" || !config.moe) throw new Error(`expert parallel: the model has no mixture of experts (model.moe, arch llama); it is ${config.arch}${config.arch === "llama" ? " without moe" : ""}`);
  const share = expertShare(config.moe.numExperts, ep.rank, ep.size);
  const exchange = expertExchange(ep, config.moe.numExperts, tokens);
  const model = new Llama(config, backend, { foldNorms: false, fuseQkv: false, experts: () => exchange });
  const full = whole.parameters();
  const mine = shardExperts(full, share);
  // NOTE: the slices are lazy copies: made real before the whole stacks they read go.
  await realizeAll([...mine.values()]);
  model.loadStateDict(mine);
  // NOTE: the dense tensors move over as they are; the whole expert stacks were sliced (copied) and go.
  for (const [name, t] of full) if (mine.get(name) !== t) t.dispose();
  return model;
}
