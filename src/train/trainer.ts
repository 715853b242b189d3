// trainer.ts: the training loop of one process: for each step, the micro-batches' forward and
// backward (gradients accumulated, each loss weighted 1/microBatches), global-norm clipping, and the
// optimizer's update written into the parameters' and its state's own buffers, all one lazy graph
// (captured_step.ts) that is captured once with jit and replayed for later steps (`jit: false` builds and
// realizes it each step instead); then the loss and the gradient norm are read back. It never knows the
// world size or the backend: a data-parallel wrapper (src/dist/data_parallel.ts) gives it a gradientHook,
// a generic function of the flat gradient run between backward and clipping; ZeRO (src/dist/zero.ts) gives it
// an optimizer sharding (sharded_step.ts): its optimizer then owns one part of the flat buffers; pipeline
// parallel (src/dist/pipeline.ts) a gradientSource that computes the step's gradients in its place, and a
// hostGradientNorm that sums the norm over the ranks holding other parts of the model.

import type { Tensor } from "../index.js";
import { noGrad, realizeAll, tensor } from "../index.js";
import type { BatchSource } from "./batches.js";
import type { GradNormFn, StepGraphOptions } from "./captured_step.js";
import { gradientGraph, gradientUpdateGraph, microGradients, Replayed, stepGraph, stepUpdate } from "./captured_step.js";
import type { TrainableModel } from "./loss.js";
import { lmLoss, trainingLoss } from "./loss.js";
import type { AdamWOptions } from "./optim/adamw.js";
import type { Optimizer, OptimizerState } from "./optim/optimizer.js";
import { createOptimizer } from "./optim/optimizer.js";
import type { SgdOptions } from "./optim/sgd.js";
import { deviceLayout, flatBuffer, gatherFlat, slotViews } from "./flat_params.js";
import type { LayoutDescription, ParamLayout } from "./param_layout.js";
import type { PrecisionOptions } from "./precision/mixed_precision.js";
import { MixedPrecision } from "./precision/mixed_precision.js";
import type { OptimizerSharding } from "./sharded_step.js";
import { ShardedUpdate } from "./sharded_step.js";
import type { LrSchedule } from "./schedule.js";
import type { TrainingMemoryOptions } from "./memory/training_memory.js";
import { TrainingMemory } from "./memory/training_memory.js";
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
  /** Capture the step (and eval's forward) once with jit and replay it (default true); false builds and realizes it every step. */
  readonly jit?: boolean;
  /** fp32 (default), bf16, fp16 (with loss scaling) or fp8 compute; master weights stay f32 (precision/). */
  readonly precision?: PrecisionOptions;
  /** Activation checkpointing and offload (memory/); default none. */
  readonly memory?: TrainingMemoryOptions;
  /**
   * Called every step with the flat gradient (layout.size, summed over the micro-batches, padding zeros)
   * between backward and clipping; what it returns (same length) is clipped and applied instead. The step
   * then runs as two captured graphs. Data parallel's all-reduce (src/dist/data_parallel.ts); fp32 and bf16
   * only (fp16's and fp8's state updates span the whole step), not with offload.
   */
  readonly gradientHook?: GradientHook;
  /**
   * A graph function of the flat gradient inside the step's one captured graph (StepGraphOptions.reduceGradient):
   * data parallel's all-reduce as a collective node (src/dist/data_parallel.ts reduceGradient). Unlike a
   * gradientHook it keeps the step one graph, so it works with every precision; not with offload.
   */
  readonly reduceGradient?: (flatGrad: Tensor) => Tensor;
  /**
   * The global gradient norm (clipping's, and StepStats.gradNorm) of the flat gradient laid out as its slots,
   * part of the step's graph (captured_step.ts GradNormFn); default its 2-norm. Expert parallel's adds every
   * rank's experts (src/dist/expert_parallel.ts); tensor parallel's sums split parameters over the ranks and
   * counts replicated ones once (src/dist/tensor_parallel_norm.ts).
   */
  readonly gradientNorm?: GradNormFn;
  /**
   * Shard the optimizer (ZeRO-1/2: src/dist/zero.ts): its state and update cover the part of the flat
   * buffers the sharding gives this process; the gradient is reduced and the parameters gathered through it
   * (sharded_step.ts). Not with a gradientHook; fp32 and bf16 only, not with offload (as the hook).
   */
  readonly sharding?: OptimizerSharding;
  /**
   * Computes the step's loss and gradients instead of the trainer's own forward and backward (pipeline
   * parallel's schedule); the trainer then runs the hook (if any), clipping and the update as with a
   * gradientHook. The model's parameters are views of the flat buffer by then: the source reads them.
   */
  readonly gradientSource?: GradientSource;
  /**
   * The gradient's global norm from more than this rank's share, on the host (see HostGradientNorm; a split
   * step's counterpart of gradientNorm); default: this rank's flat gradient.
   */
  readonly hostGradientNorm?: HostGradientNorm;
}

/**
 * A step's gradients computed outside the trainer: the mean loss over `microBatches` micro-batches of
 * `data` for `step`, and each trained parameter's gradient (by name, its numel), summed over them (each
 * micro-batch's loss weighted 1 / microBatches, as the trainer's own step does).
 */
export type GradientSource = (request: { step: number; microBatches: number; data: BatchSource }) => Promise<{ loss: number; grads: ReadonlyMap<string, Float32Array> }>;

/**
 * The global gradient norm when the model's parameters are spread over ranks (pipeline stages): `sum` turns
 * this rank's sum of squares into the sum over every rank (an all-reduce); `counted` leaves out parameters
 * another rank counts (a copy of a tied weight). Used for clipping and the reported norm.
 */
export interface HostGradientNorm {
  readonly counted?: (name: string) => boolean;
  readonly sum: (squares: number) => Promise<number>;
}

/** See TrainerOptions.gradientHook: plain data in and out, so the trainer knows nothing of who changes it. */
export type GradientHook = (flatGrad: Float32Array) => Promise<Float32Array>;

export interface StepStats {
  /** The step just taken (0-based). */
  readonly step: number;
  /** Mean loss over the step's micro-batches. */
  readonly loss: number;
  readonly lr: number;
  /** Global gradient norm before clipping. */
  readonly gradNorm: number;
  readonly ms: number;
  /** The loss scale this step's backward used (1 unless fp16). */
  readonly lossScale: number;
  /** fp16: the gradients overflowed, nothing was updated (the step's guard kept every buffer); the step is retried (same index, same batch). */
  readonly skipped: boolean;
}

/** Everything a resumed run needs besides the config: the weights (flat, by the layout), the optimizer, the step. */
export interface TrainState {
  readonly step: number;
  readonly layout: LayoutDescription;
  readonly params: Float32Array;
  readonly optimizer: OptimizerState;
  /**
   * The precision's own state (fp16: the loss scale, good steps, skipped; fp8: each site's scale and amax
   * history), in MixedPrecision.stateTensors() order; empty for fp32/bf16. Absent in states from before it was kept.
   */
  readonly precision?: readonly Float32Array[];
  /** A sharded optimizer's (TrainerOptions.sharding): the part [start, end) of the flat layout its state covers; absent: all of it. */
  readonly optimizerRange?: readonly [number, number];
}

/** One process's part of a sharded run's state (a distributed checkpoint's reader makes it): Trainer.loadShard. */
export interface TrainShard {
  readonly step: number;
  /** The layout the parts are in: the loading trainer's own (names, shapes and offsets). */
  readonly layout: LayoutDescription;
  readonly range: readonly [number, number];
  /** The parameters in range (end - start): every process's part gathered makes the whole. */
  readonly params: Float32Array;
  /** The optimizer's state in range. */
  readonly optimizer: OptimizerState;
  readonly precision?: readonly Float32Array[];
}

export class Trainer {
  readonly layout: ParamLayout;
  readonly optimizer: Optimizer;
  readonly precision: MixedPrecision;
  readonly memory: TrainingMemory;
  private readonly accum: number;
  private readonly schedule: LrSchedule;
  private readonly stepRun: Replayed;
  /** With a gradient hook: the step's two parts, forward + backward to the flat gradient, and clip + update. */
  private readonly gradRun: Replayed | undefined;
  private readonly updateRun: Replayed | undefined;
  /** With a sharding: the update of this process's part (sharded_step.ts). */
  private readonly sharded: ShardedUpdate | undefined;
  private readonly evalRuns = new Map<string, Replayed>();
  /**
   * Every parameter in one buffer (layout.size,): made at the first step (or state/loadState) from the
   * model's own tensors, which it then replaces with views of it (flat_params.ts). Undefined before.
   */
  private flat: Tensor | undefined;

  constructor(readonly model: TrainableModel, readonly data: BatchSource, private readonly opts: TrainerOptions) {
    this.schedule = checkSchedule(opts.schedule);
    this.accum = opts.gradAccumSteps ?? 1;
    if (!(Number.isInteger(this.accum) && this.accum > 0)) throw new Error(`Trainer: gradAccumSteps must be a positive integer, got ${this.accum}`);
    const params = model.parameters();
    const backend = [...params.values()][0]!.backend;
    this.layout = deviceLayout(params, backend);
    if (opts.sgd && opts.adamw) throw new Error("Trainer: give the options of one optimizer, adamw or sgd, not both");
    // NOTE: with a sharding the optimizer is made over this process's part of the layout only (ZeRO's saving).
    const [lo, hi] = opts.sharding ? ShardedUpdate.rangeOf(opts.sharding, this.layout) : [0, this.layout.size];
    const optimizerLayout = opts.sharding ? this.layout.range(lo, hi) : this.layout;
    this.optimizer = createOptimizer(optimizerLayout, backend, opts.sgd ? { kind: "sgd", ...opts.sgd } : { kind: "adamw", ...opts.adamw });
    this.precision = new MixedPrecision(backend, opts.precision);
    for (const p of params.values()) p.requiresGrad = true;
    this.memory = new TrainingMemory(model, backend, opts.memory);
    this.memory.tagParameters([...params.values()]);
    const step = (inputs: Tensor[]) => stepGraph(this.graphOptions(), inputs);
    this.stepRun = new Replayed(step, () => this.persistent(), opts.jit ?? true, 2);
    if (opts.reduceGradient && (opts.gradientHook || opts.sharding || this.memory.needsBuiltSteps)) {
      const other = opts.gradientHook ? "a gradientHook (give one or the other)" : opts.sharding ? "a sharding (it reduces the gradient itself)" : "offload (memory.offload) yet";
      throw new Error(`Trainer: reduceGradient does not work with ${other}`);
    }
    // NOTE: a sharding sums its parts' squares itself; the norm's other shares come as a hostGradientNorm (sharded_step.ts).
    if (opts.sharding && opts.gradientNorm) throw new Error("Trainer: a sharding computes the gradient norm from its parts: give a hostGradientNorm (its other shares), not a gradientNorm");
    if (opts.gradientHook || opts.sharding || opts.gradientSource || opts.hostGradientNorm) {
      const what = opts.sharding ? "a sharding" : opts.gradientHook ? "a gradientHook" : opts.gradientSource ? "a gradientSource" : "a hostGradientNorm";
      if (opts.gradientHook && opts.sharding) throw new Error("Trainer: give a gradientHook or a sharding, not both (the sharding reduces the gradient itself)");
      const p = this.precision.precision;
      if (p === "fp16" || p === "fp8") throw new Error(`Trainer: ${what} works with fp32 or bf16 precision so far, not ${p} (its state updates span the whole step)`);
      if (this.memory.needsBuiltSteps) throw new Error(`Trainer: ${what} does not work with offload (memory.offload) yet`);
      this.gradRun = new Replayed((xs) => gradientGraph(this.graphOptions(), xs), () => this.persistent(), opts.jit ?? true, 2);
      // NOTE: a sharding's update is its own (sharded_step.ts): only the gradient part is shared.
      if (!opts.sharding) this.updateRun = new Replayed((xs) => gradientUpdateGraph(this.graphOptions(), xs), () => this.persistent(), opts.jit ?? true, 1);
    }
    if (opts.sharding) this.sharded = new ShardedUpdate(opts.sharding, this.layout, () => this.optimizer, opts.maxGradNorm, opts.jit ?? true, opts.hostGradientNorm);
  }

  /** Steps taken so far (the next step's index). */
  get step(): number { return this.optimizer.step; }

  /** The part [start, end) of the flat layout this process's optimizer owns: all of it without a sharding. */
  get optimizerRange(): readonly [number, number] {
    return this.sharded ? [this.sharded.start, this.sharded.end] : [0, this.layout.size];
  }

  async trainStep(): Promise<StepStats> {
    const t0 = performance.now();
    const step = this.step;
    const lr = learningRate(this.schedule, step);
    // NOTE: the update writes into the flat buffer the parameters are views of (made from them at the first step).
    await this.flatten();
    const params = this.params();
    const backend = params[0]!.backend;
    await realizeAll(this.optimizer.stateTensors());
    this.memory.tagParameters(this.optimizer.stateTensors(), "optimizer");
    const { batchSize: b, blockSize: t } = this.data;
    if (this.memory.needsBuiltSteps) return this.stepBuilt(step, lr, params);
    if (this.opts.gradientSource) return this.stepSourced(step, lr, backend, t0);
    const ids = (a: Int32Array) => tensor(a, { backend, dtype: "i32", shape: [b, t] });
    const inputs: Tensor[] = [];
    for (let micro = 0; micro < this.accum; micro++) {
      const batch = await this.data.batch(step, micro);
      inputs.push(ids(batch.inputs), ids(batch.targets));
    }
    const scalars = tensor(this.optimizer.scalars(lr), { backend });
    const lossScale = this.precision.lossScale;
    if (this.updateRun || this.sharded) {
      try {
        return await this.stepHooked(step, lr, inputs, scalars, lossScale, t0);
      } finally {
        for (const x of [...inputs, scalars]) x.dispose();
      }
    }
    inputs.push(scalars);
    const [loss, norm] = await this.stepRun.run(inputs);
    const stats = await this.finishStep(step, lr, loss!, norm!, lossScale, t0);
    for (const x of inputs) x.dispose();
    return stats;
  }

  /**
   * A step split around the gradient hook: the first graph's flat gradient goes to the host, through the
   * hook, and back in as the second graph's input.
   * NOTE: a host round trip for now (the hook is a host all-reduce); collectives become graph nodes later
   * (DESIGN.md), and then this is one captured graph again.
   */
  private async stepHooked(step: number, lr: number, batches: Tensor[], scalars: Tensor, lossScale: number, t0: number): Promise<StepStats> {
    const [loss, grad] = await this.gradRun!.run(batches);
    const local = Float32Array.from((await grad!.data()) as Float32Array);
    if (this.sharded) return this.finishSharded(step, lr, loss!, await this.sharded.step(local, scalars), t0);
    // NOTE: read now: the replayed graph's loss buffer is its own, and a source's next step could overwrite it.
    return this.applyGradient(step, lr, await loss!.item(), local, scalars, lossScale, t0);
  }

  /** finishStep after a sharded update, whose norm is a host number. */
  private async finishSharded(step: number, lr: number, loss: Tensor | number, gradNorm: number, t0: number): Promise<StepStats> {
    const norm = tensor(Float32Array.of(gradNorm), { backend: this.flat!.backend, dtype: "f32", shape: [] });
    try {
      return await this.finishStep(step, lr, loss, norm, this.precision.lossScale, t0);
    } finally {
      norm.dispose();
    }
  }

    /** A step whose gradients come from the gradientSource (host arrays by name), laid out flat, then as a hooked step. */
  private async stepSourced(step: number, lr: number, backend: Tensor["backend"], t0: number): Promise<StepStats> {
    const { loss, grads } = await this.opts.gradientSource!({ step, microBatches: this.accum, data: this.data });
    const flat = new Float32Array(this.layout.size);
    for (const s of this.layout.slots) {
      const g = grads.get(s.name);
      if (!(g instanceof Float32Array) || g.length !== s.numel) {
        throw new Error(`Trainer: the gradientSource gave ${g instanceof Float32Array ? `${g.length} values` : "no Float32Array"} for '${s.name}' (${s.numel} elements)`);
      }
      flat.set(g, s.offset);
    }
    const scalars = tensor(this.optimizer.scalars(lr), { backend });
    try {
      if (this.sharded) return await this.finishSharded(step, lr, loss, await this.sharded.step(flat, scalars), t0);
      return await this.applyGradient(step, lr, loss, flat, scalars, this.precision.lossScale, t0);
    } finally {
      scalars.dispose();
    }
  }

  /** The flat gradient (host) through the hook, its global norm (hostGradientNorm) and the clip + update graph. */
  private async applyGradient(step: number, lr: number, loss: number, local: Float32Array, scalars: Tensor, lossScale: number, t0: number): Promise<StepStats> {
    const reduced = this.opts.gradientHook ? await this.opts.gradientHook(local) : local;
    if (!(reduced instanceof Float32Array) || reduced.length !== this.layout.size) {
      throw new Error(`Trainer: the gradientHook must return a Float32Array of ${this.layout.size} (the flat gradient's length), got ${reduced instanceof Float32Array ? reduced.length : typeof reduced}`);
    }
    const backend = scalars.backend;
    const g = tensor(reduced, { backend, dtype: "f32", shape: [this.layout.size] });
    const inputs = [g, scalars];
    if (this.opts.hostGradientNorm) inputs.push(tensor(new Float32Array([await this.globalNorm(reduced, this.opts.hostGradientNorm)]), { backend, dtype: "f32", shape: [] }));
    try {
      const [norm] = await this.updateRun!.run(inputs);
      return await this.finishStep(step, lr, loss, norm!, lossScale, t0);
    } finally {
      g.dispose();
      inputs[2]?.dispose();
    }
  }

  /** sqrt of the sum over ranks (hostGradientNorm.sum) of this rank's counted slots' squares (f64 on the host). */
  private async globalNorm(flat: Float32Array, hook: HostGradientNorm): Promise<number> {
    let squares = 0;
    for (const s of this.layout.slots) {
      if (hook.counted && !hook.counted(s.name)) continue;
      for (let i = s.offset; i < s.offset + s.numel; i++) squares += flat[i]! * flat[i]!;
    }
    const total = await hook.sum(squares);
    if (!(Number.isFinite(total) && total >= 0)) throw new Error(`Trainer: hostGradientNorm.sum gave ${total} for a sum of squares (expected a finite number >= 0)`);
    return Math.sqrt(total);
  }

  /**
   * A step built and realized each time (not captured), for offload (memory/training_memory.ts
   * needsBuiltSteps): it writes each micro-batch's saved inputs out on the host between its forward and
   * the backward. The same graph as the captured step otherwise.
   */
  private async stepBuilt(step: number, lr: number, params: Tensor[]): Promise<StepStats> {
    const t0 = performance.now();
    const backend = params[0]!.backend;
    const { batchSize: b, blockSize: t } = this.data;
    const o = this.graphOptions();
    let grads: Tensor[] | undefined;
    let lossSum: Tensor | undefined;
    const lossScale = this.precision.lossScale;
    for (let micro = 0; micro < this.accum; micro++) {
      const { inputs, targets } = await this.data.batch(step, micro);
      const ids = (a: Int32Array) => tensor(a, { backend, dtype: "i32", shape: [b, t] });
      const loss = this.precision.forward(() => trainingLoss(this.model, ids(inputs), ids(targets)), true);
      await this.memory.afterForward(loss);
      const g = microGradients(o, loss, this.accum);
      grads = grads ? grads.map((x, i) => x.add(g[i]!)) : g;
      lossSum = lossSum ? lossSum.add(loss.detach()) : loss.detach();
    }
    const scalars = tensor(this.optimizer.scalars(lr), { backend });
    const [loss, norm, ...writes] = stepUpdate(o, grads!, lossSum!, this.accum, scalars);
    await realizeAll([loss!, norm!, ...writes]);
    this.memory.afterStep([], []);
    scalars.dispose();
    return this.finishStep(step, lr, loss!, norm!, lossScale, t0);
  }

  /** After a step's graph is realized: read its loss and norm, and count it unless fp16 skipped it (then it is retried). */
  private async finishStep(step: number, lr: number, loss: Tensor | number, norm: Tensor, lossScale: number, t0: number): Promise<StepStats> {
    const [lossValue, gradNorm] = [typeof loss === "number" ? loss : await loss.item(), await norm.item()];
    const { skipped } = await this.precision.endStep();
    if (!skipped) this.optimizer.advance();
    return { step, loss: lossValue, lr, gradNorm, ms: performance.now() - t0, lossScale, skipped };
  }

  /** What the step's graph is built from (captured_step.ts). */
  private graphOptions(): StepGraphOptions {
    const tag = (parts: { parameters: readonly Tensor[]; gradients: readonly Tensor[] }) =>
      this.memory.tagStep({ ...parts, optimizer: this.optimizer.stateTensors() });
    const { maxGradNorm, reduceGradient, gradientNorm } = this.opts;
    return {
      model: this.model, params: this.params(), flat: this.flat!, layout: this.layout, optimizer: this.optimizer, maxGradNorm, precision: this.precision, tag, reduceGradient,
      ...(gradientNorm ? { gradientNorm } : {}),
    };
  }

  /** Mean loss of the model on one batch of `data` (a held-out split), no gradients. */
  async evalLoss(data: BatchSource, step = 0): Promise<number> {
    const backend = this.params()[0]!.backend;
    const { inputs, targets } = await data.batch(step, 0);
    const shape = [data.batchSize, data.blockSize];
    const key = shape.join("x");
    let run = this.evalRuns.get(key);
    const forward = ([x, y]: Tensor[]) => [noGrad(() => this.precision.forward(() => lmLoss(this.model, x!, y!), false))];
    if (!run) this.evalRuns.set(key, (run = new Replayed(forward, () => this.params(), this.opts.jit ?? true, 1)));
    const xs = [tensor(inputs, { backend, dtype: "i32", shape }), tensor(targets, { backend, dtype: "i32", shape })];
    const [loss] = await run.run(xs);
    const value = await loss!.item();
    for (const x of xs) x.dispose();
    return value;
  }

  /** The weights, optimizer and step as host copies (fresh arrays: a checkpoint may keep them). */
  async state(): Promise<TrainState> {
    await this.flatten();
    const params = await this.flat!.data() as Float32Array;
    const precision = await Promise.all(this.precision.stateTensors().map(async (t) => Float32Array.from((await t.data()) as Float32Array)));
    const range = this.sharded && { optimizerRange: [this.sharded.start, this.sharded.end] as const };
    return { step: this.step, layout: this.layout.describe(), params, optimizer: await this.optimizer.state(), precision, ...range };
  }

  /**
   * Continue from this process's part of a sharded state (every process calls it: the parts are gathered).
   * Without a sharding the part must be the whole (a run of one process).
   */
  async loadShard(s: TrainShard): Promise<void> {
    const [lo, hi] = this.sharded ? [this.sharded.start, this.sharded.end] : [0, this.layout.size];
    const mine = this.layout.describe();
    if (s.range[0] !== lo || s.range[1] !== hi) throw new Error(`Trainer.loadShard: the part is [${s.range.join(", ")}), this process's is [${lo}, ${hi})`);
    if (JSON.stringify(s.layout) !== JSON.stringify(mine)) throw new Error("Trainer.loadShard: the part is not in this trainer's layout (names, shapes, offsets); read it for this layout");
    if (s.params.length !== hi - lo) throw new Error(`Trainer.loadShard: ${s.params.length} parameters for the part [${lo}, ${hi})`);
    if (!this.sharded) return this.loadState({ step: s.step, layout: s.layout, params: s.params, optimizer: s.optimizer, precision: s.precision });
    if (s.step !== s.optimizer.step) throw new Error(`Trainer.loadShard: step ${s.step} disagrees with the optimizer's ${s.optimizer.step}`);
    this.optimizer.loadState(s.optimizer);
    await this.flatten();
    await this.sharded.setWhole(s.params);
    if (s.precision) this.precision.restore(s.precision);
  }

  /**
   * Continue from a saved state: the model must have this trainer's layout (same names, shapes, order);
   * offsets may differ (a checkpoint of a backend with other padding: the values move by slot).
   */
  loadState(state: TrainState): void {
    // NOTE: a whole state (every part of the optimizer, as a single process's checkpoint) loads on a sharded trainer too: it keeps its part.
    if (state.optimizerRange) throw new Error("Trainer.loadState: a sharded optimizer's state loads part by part (loadShard)");
    const mine = this.layout.describe();
    const same = state.layout.length === mine.length && state.layout.every((s, i) => s.name === mine[i]!.name && s.shape.join() === mine[i]!.shape.join());
    if (!same) {
      const diff = state.layout.find((s, i) => s.name !== mine[i]?.name || s.shape.join() !== mine[i]?.shape.join());
      throw new Error(`Trainer.loadState: the checkpoint is of another model (first difference: ${diff ? `'${diff.name}' (${diff.shape.join(", ")})` : `${state.layout.length} parameters, the model has ${mine.length}`})`);
    }
    if (state.step !== state.optimizer.step) throw new Error(`Trainer.loadState: step ${state.step} disagrees with the optimizer's ${state.optimizer.step}`);
    const backend = [...this.model.parameters().values()][0]!.backend;
    const move = (a: Float32Array) => this.layout.relayout(a, state.layout);
    const o = state.optimizer;
    const [lo, hi] = this.optimizerRange;
    const ownPart = (a: Float32Array) => (this.sharded ? move(a).slice(lo, hi) : move(a));
    this.optimizer.loadState(o.kind === "adamw" ? { ...o, m: ownPart(o.m), v: ownPart(o.v) } : { ...o, momentum: o.momentum.length ? ownPart(o.momentum) : o.momentum });
    this.setFlat(flatBuffer(this.layout, backend, move(state.params)));
    // NOTE: a state from before the precision's was kept resumes with a fresh loss scale / fp8 scales.
    if (state.precision) this.precision.restore(state.precision);
  }

  /** Launches per replayed step (0 before the first step, or without jit). */
  get stepLaunches(): number {
    return this.stepRun.launches + (this.gradRun?.launches ?? 0) + (this.updateRun?.launches ?? 0) + (this.sharded?.launches ?? 0);
  }

  /** The trained parameters in slot order. */
  private params(): Tensor[] {
    const named = this.model.parameters();
    return this.layout.slots.map((s) => named.get(s.name)!);
  }

  /** The tensors a captured step binds besides its inputs: replacing one (loadState) means capturing again. */
  private persistent(): Tensor[] {
    return [this.flat!, ...this.params(), ...this.optimizer.stateTensors(), ...this.precision.stateTensors()];
  }

  /**
   * Move the model's parameters into one flat buffer (once): the model then holds views of it, and its
   * own tensors are disposed (their values live on in the flat buffer).
   * NOTE: read to the host and disposed before the flat buffer is made, so the device never holds both.
   */
  private async flatten(): Promise<void> {
    if (this.flat) return;
    const own = this.params();
    const values = await gatherFlat(this.layout, own);
    for (const t of new Set(own)) t.dispose();
    this.setFlat(flatBuffer(this.layout, own[0]!.backend, values));
  }

  /** `flat` becomes the parameters' buffer: the model's tensors are replaced with views of it. */
  private setFlat(flat: Tensor): void {
    const old = this.flat;
    this.flat = flat;
    this.memory.tagParameters([flat]);
    this.sharded?.bind(flat);
    const views = slotViews(this.layout, flat);
    views.forEach((p) => (p.requiresGrad = true));
    this.model.loadStateDict(new Map(this.layout.slots.map((s, i) => [s.name, views[i]!])));
    // NOTE: disposed now rather than when collected, so memory accounting sees the replaced copy go.
    old?.dispose();
  }
}
