// optimizer.ts: what the trainer needs of an optimizer (AdamW, SGD): the step's per-step scalars, in-place
// assignments of the parameters and its state (the contract in adamw.ts), and a host copy of its state
// (tagged by kind) for checkpoints. It owns the choice between them; each update rule is its own file.

import type { Backend, Tensor } from "../../index.js";
import type { ParamLayout } from "../param_layout.js";
import type { AdamWOptions, AdamWState } from "./adamw.js";
import { AdamW } from "./adamw.js";
import type { SgdOptions, SgdState } from "./sgd.js";
import { Sgd } from "./sgd.js";

export type OptimizerOptions = ({ readonly kind: "adamw" } & AdamWOptions) | ({ readonly kind: "sgd" } & SgdOptions);
export type OptimizerState = ({ readonly kind: "adamw" } & AdamWState) | ({ readonly kind: "sgd" } & SgdState);

/** The step's contract (captured_step.ts StepOptimizer; see adamw.ts), plus the state for checkpoints. */
export interface Optimizer {
  readonly kind: OptimizerState["kind"];
  /** Steps taken so far. */
  readonly step: number;
  scalars(lr: number): Float32Array;
  update(params: Tensor, grads: Tensor, scalars: Tensor, guard?: Tensor): Tensor[];
  advance(): void;
  stateTensors(): readonly Tensor[];
  state(): Promise<OptimizerState>;
  loadState(state: OptimizerState): void;
}

export function createOptimizer(layout: ParamLayout, backend: Backend, opts: OptimizerOptions): Optimizer {
  if (opts.kind === "sgd") {
    const o = new Sgd(layout, backend, opts);
    return wrap("sgd", o, async () => ({ kind: "sgd", ...(await o.state()) }), (s) => o.loadState(s as SgdState));
  }
  const o = new AdamW(layout, backend, opts);
  return wrap("adamw", o, async () => ({ kind: "adamw", ...(await o.state()) }), (s) => o.loadState(s as AdamWState));
}

function wrap(kind: OptimizerState["kind"], o: AdamW | Sgd, state: () => Promise<OptimizerState>, load: (s: OptimizerState) => void): Optimizer {
  return {
    kind,
    get step() { return o.step; },
    scalars: (lr) => o.scalars(lr),
    update: (p, g, s, k) => o.update(p, g, s, k),
    advance: () => o.advance(),
    stateTensors: () => o.stateTensors(),
    state,
    loadState(s) {
      if (s.kind !== kind) throw new Error(`loadState: the saved optimizer state is ${s.kind}'s, this run uses ${kind}`);
      load(s);
    },
  };
}
