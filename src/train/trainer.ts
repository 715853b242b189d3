// trainer.ts: the training loop of one process: for each step, the micro-batches' forward and
// backward (gradients accumulated, each loss weighted 1/microBatches), global-norm clipping, and the
// optimizer's update, all built as one lazy graph and realized in one schedule; then the loss and the
// gradient norm are read back. It never knows the world size or the backend: a data-parallel wrapper
// (src/dist) would reduce the gradients between backward and clipping.
// NOTE: the step is not jit-captured yet: the optimizer returns new parameter tensors each step, and a
// jit's outputs are its own buffers, overwritten by the next replay that would read them as inputs.
// Capture needs either in-place parameter updates (an assign routine, like kv_write) or two captures
// whose outputs alternate as each other's inputs.

import type { Tensor } from "../index.js";
import { gradients, noGrad, realizeAll, tensor } from "../index.js";
import type { BatchSource } from "./batches.js";
import { clipByGlobalNorm, globalNorm } from "./clip.js";
import type { TrainableModel } from "./loss.js";
import { lmLoss } from "./loss.js";
import type { AdamWOptions } from "./optim/adamw.js";
import type { Optimizer, OptimizerState } from "./optim/optimizer.js";
import { createOptimizer } from "./optim/optimizer.js";
import type { SgdOptions } from "./optim/sgd.js";
import { ParamLayout } from "./param_layout.js";
import type { LrSchedule } from "./schedule.js";
import { checkSchedule, learningRate } from "./schedule.js";

export interface TrainerOptions {
  readonly schedule: LrSchedule;
  /** AdamW's hyperparameters (the optimizer unless `sgd` is given). */
  readonly adamw?: AdamWOptions;
  /** Train with SGD (momentum, nesterov, weight decay) instead of AdamW. */
  readonly sgd?: SgdOptions;
  /** Micro-batches per step, their gradients summed (default 1). */
  readonly gradAccumSteps?: number;
  /** Clip the global gradient norm to this (default: no clipping). */
  readonly maxGradNorm?: number;
}

export interface StepStats {
  /** The step just taken (0-based). */
  readonly step: number;
  /** Mean loss over the step's micro-batches. */
  readonly loss: number;
  readonly lr: number;
  /** Global gradient norm before clipping. */
  readonly gradNorm: number;
  readonly ms: number;
}

/** Everything a resumed run needs besides the config: the weights (flat, by the layout), the optimizer, the step. */
export interface TrainState {
  readonly step: number;
  readonly layout: ReturnType<ParamLayout["describe"]>;
  readonly params: Float32Array;
  readonly optimizer: OptimizerState;
}

export class Trainer {
  readonly layout: ParamLayout;
  readonly optimizer: Optimizer;
  private readonly accum: number;
  private readonly schedule: LrSchedule;

  constructor(readonly model: TrainableModel, readonly data: BatchSource, private readonly opts: TrainerOptions) {
    this.schedule = checkSchedule(opts.schedule);
    this.accum = opts.gradAccumSteps ?? 1;
    if (!(Number.isInteger(this.accum) && this.accum > 0)) throw new Error(`Trainer: gradAccumSteps must be a positive integer, got ${this.accum}`);
    const params = model.parameters();
    this.layout = new ParamLayout(params);
    const backend = [...params.values()][0]!.backend;
    if (opts.sgd && opts.adamw) throw new Error("Trainer: give the options of one optimizer, adamw or sgd, not both");
    this.optimizer = createOptimizer(this.layout, backend, opts.sgd ? { kind: "sgd", ...opts.sgd } : { kind: "adamw", ...opts.adamw });
    for (const p of params.values()) p.requiresGrad = true;
  }

  /** Steps taken so far (the next step's index). */
  get step(): number { return this.optimizer.step; }

  async trainStep(): Promise<StepStats> {
    const t0 = performance.now();
    const step = this.step;
    const lr = learningRate(this.schedule, step);
    const named = this.model.parameters();
    const params = this.layout.slots.map((s) => named.get(s.name)!);
    const backend = params[0]!.backend;
    const { batchSize: b, blockSize: t } = this.data;
    let grads: Tensor[] | undefined;
    let lossSum: Tensor | undefined;
    for (let micro = 0; micro < this.accum; micro++) {
      const { inputs, targets } = await this.data.batch(step, micro);
      const ids = (a: Int32Array) => tensor(a, { backend, dtype: "i32", shape: [b, t] });
      const loss = lmLoss(this.model, ids(inputs), ids(targets));
      const g = gradients([loss], params, [loss.full([], 1 / this.accum)]).map((x, i) => x ?? params[i]!.full(params[i]!.shape, 0));
      grads = grads ? grads.map((x, i) => x.add(g[i]!)) : g;
      lossSum = lossSum ? lossSum.add(loss.detach()) : loss.detach();
    }
    const { norm, next, loss } = noGrad(() => {
      const norm = globalNorm(grads!);
      const clipped = this.opts.maxGradNorm ? clipByGlobalNorm(grads!, norm, this.opts.maxGradNorm) : grads!;
      return { norm, next: this.optimizer.update(params, clipped, lr), loss: lossSum!.div(this.accum) };
    });
    await realizeAll([loss, norm, ...next, ...this.optimizer.pending()]);
    this.setParams(next);
    for (const p of params) p.dispose();
    const [lossValue, gradNorm] = [await loss.item(), await norm.item()];
    return { step, loss: lossValue, lr, gradNorm, ms: performance.now() - t0 };
  }

  /** Mean loss of the model on one batch of `data` (a held-out split), no gradients. */
  async evalLoss(data: BatchSource, step = 0): Promise<number> {
    const backend = [...this.model.parameters().values()][0]!.backend;
    const { inputs, targets } = await data.batch(step, 0);
    const shape = [data.batchSize, data.blockSize];
    return noGrad(() => lmLoss(this.model, tensor(inputs, { backend, dtype: "i32", shape }), tensor(targets, { backend, dtype: "i32", shape }))).item();
  }

  /** The weights, optimizer and step as host copies (fresh arrays: a checkpoint may keep them). */
  async state(): Promise<TrainState> {
    const named = this.model.parameters();
    const params = await this.layout.gather(this.layout.slots.map((s) => named.get(s.name)!));
    return { step: this.step, layout: this.layout.describe(), params, optimizer: await this.optimizer.state() };
  }

  /** Continue from a saved state: the model must have this trainer's layout (same names, shapes, order). */
  loadState(state: TrainState): void {
    const mine = this.layout.describe();
    const same = state.layout.length === mine.length && state.layout.every((s, i) => s.name === mine[i]!.name && s.offset === mine[i]!.offset && s.shape.join() === mine[i]!.shape.join());
    if (!same) {
      const diff = state.layout.find((s, i) => s.name !== mine[i]?.name || s.shape.join() !== mine[i]?.shape.join());
      throw new Error(`Trainer.loadState: the checkpoint is of another model (first difference: ${diff ? `'${diff.name}' (${diff.shape.join(", ")})` : `${state.layout.length} parameters, the model has ${mine.length}`})`);
    }
    if (state.step !== state.optimizer.step) throw new Error(`Trainer.loadState: step ${state.step} disagrees with the optimizer's ${state.optimizer.step}`);
    const backend = [...this.model.parameters().values()][0]!.backend;
    this.setParams(this.layout.scatter(state.params, backend));
    this.optimizer.loadState(state.optimizer);
  }

  private setParams(values: readonly Tensor[]): void {
    values.forEach((p) => (p.requiresGrad = true));
    this.model.loadStateDict(new Map(this.layout.slots.map((s, i) => [s.name, values[i]!])));
  }
}
