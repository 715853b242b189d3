// init.ts: each family's reference initialisation of a model about to be trained (GPT-2's, which
// nanoGPT and Llama's reference code share): linear and embedding weights normal(0, std), the
// residual projections (attn_output, ffn_down, MoE experts' ffn_down_exps) normal(0, std / sqrt(2 * layers)), biases zero, norm
// weights one. Draws use kiln's counter-based RNG (tensor/random.ts) with a seed per parameter derived
// from the run's seed and the parameter's name, so the bits drawn are the same on every backend and
// do not depend on the order parameters are visited.
// It does not load or save weights (checkpoint.ts) and knows no optimizer.

import type { Tensor } from "../index.js";
import { full, randn, realizeAll } from "../index.js";
import { mix32 } from "../tensor/random.js";
import type { Module } from "../nn/index.js";
import type { ModelConfig } from "../models/types.js";

export interface InitOptions {
  readonly seed?: number;
  /** Standard deviation of the weights (default 0.02, GPT-2's). */
  readonly std?: number;
  /** Scale the residual projections by 1/sqrt(2 * layers) (default true, GPT-2's; a Llama config may turn it off). */
  readonly scaleResidual?: boolean;
}

/** What init needs of a model: its parameters, its config, and a way to replace them. */
export interface InitTarget extends Module {
  readonly config: ModelConfig;
  readonly normsFolded?: boolean;
}

const RESIDUAL = /\.(attn_output|ffn_down|ffn_down_exps)\.weight$/;

/** FNV-1a of a name, so a parameter's stream depends on what it is, not where it is in the list. */
function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Replace every parameter of `model` by its initial value (realized on the model's backend). */
export async function initParameters(model: InitTarget, opts: InitOptions = {}): Promise<void> {
  if (model.normsFolded) throw new Error("initParameters: this Llama has its norms folded into the linears (an inference layout); build it with foldNorms: false to train");
  const { seed = 0, std = 0.02, scaleResidual = true } = opts;
  if (!(std > 0)) throw new Error(`initParameters: std must be > 0, got ${std}`);
  const residualStd = scaleResidual ? std / Math.sqrt(2 * model.config.nLayers) : std;
  const state = new Map<string, Tensor>();
  for (const [name, p] of model.parameters()) {
    const at = { backend: p.backend, dtype: p.dtype };
    let value: Tensor;
    if (name.endsWith("norm.weight")) value = full(p.shape, 1, at);
    else if (name.endsWith(".bias")) value = full(p.shape, 0, at);
    else {
      const s = RESIDUAL.test(name) ? residualStd : std;
      value = randn(p.shape, { ...at, seed: mix32((seed >>> 0) ^ nameHash(name)) }).mul(s);
    }
    // NOTE: add(0) gives constants a buffer of their own: an optimizer reads and replaces every parameter.
    state.set(name, value.add(0));
  }
  await realizeAll([...state.values()]);
  model.loadStateDict(state);
}
