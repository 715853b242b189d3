// zero3_trainer.ts: data-parallel training with ZeRO stage 3: this process keeps only its chunk of every
// parameter group (zero3_layout.ts), of the gradient and of the optimizer's state (1/size of each, in one
// shard buffer). Each step is one lazy graph (captured once with jit and replayed, as the Trainer's):
//   forward:  every group's whole weights are gathered from the ranks' chunks (ParameterSharding.gather, an
//             all-gather node) and handed to the model as its parameters (slices of the gathered run), so a
//             layer's gather is scheduled just before the layer's first use;
//   backward: the gather's gradient is the reduce-scatter (sum) of the group's whole gradient into this rank's
//             chunk; divided by the world size it is the mean over ranks, as ZeRO-2's;
//   update:   the global norm is the sum over ranks of the chunks' squares (a graph all-reduce), then clipping
//             and the optimizer's in-place update of this rank's shard.
// NOTE: the backward uses the forward's gathered weights (kept, not gathered again: no recompute yet); realize
// frees each gathered buffer after its last reader in the step, so between steps a rank holds its shard only,
// while during a step the gathered groups live from their forward use to their backward use (the peak holds
// every group's gathered weights; docs/distributed.md "## ZeRO" has the numbers).
// Between steps the model's parameters are lazy gathers of the shard (nothing realized): reading them is a
// collective, so every rank must do it together (evalLoss, parameters()).
// The trainer never learns the world size: the sharding is a plain strategy object (src/dist/zero3.ts makes one).

import type { Tensor } from "../index.js";
import { bufferView, concat, gradients, noGrad, realizeAll, tensor } from "../index.js";
import type { BatchSource } from "./batches.js";
import { Replayed } from "./captured_step.js";
import { clipByGlobalNorm } from "./clip.js";
import { deviceLayout, gatherFlat } from "./flat_params.js";
import type { TrainableModel } from "./loss.js";
import { lmLoss, trainingLoss } from "./loss.js";
import { TrainingMemory } from "./memory/training_memory.js";
import type { AdamWOptions } from "./optim/adamw.js";
import type { Optimizer } from "./optim/optimizer.js";
import { createOptimizer } from "./optim/optimizer.js";
import type { SgdOptions } from "./optim/sgd.js";
import type { ParamLayout } from "./param_layout.js";
import { MixedPrecision } from "./precision/mixed_precision.js";
import type { LrSchedule } from "./schedule.js";
import { checkSchedule, learningRate } from "./schedule.js";
import type { StepStats, TrainShard, TrainState } from "./trainer.js";
import type { ShardGroup } from "./zero3_layout.js";
import { Zero3Layout } from "./zero3_layout.js";
import { regatherBlocks } from "./zero3_regather.js";

/** How the parameters are sharded over the data-parallel processes (src/dist/zero3.ts zero3Sharding). Every process calls each method in the same order. */
export interface ParameterSharding {
  readonly rank: number;
  readonly size: number;
  /** Every process's 1-D chunk joined in rank order (size * n), as a graph node; its gradient: the sum over processes of the whole's gradient, this process's chunk. */
  gather(piece: Tensor): Tensor;
  /** The sum over processes of x, as a graph node. */
  sum(x: Tensor): Tensor;
  /** The contiguous part [start, end) of a flat buffer of n elements this process stores in a distributed checkpoint (ZeRO-1/2's part). */
  range(n: number, align: number): readonly [number, number];
  /** Every process's array (same length) joined in rank order, on the host (checkpoints only). */
  gatherHost(x: Float32Array): Promise<Float32Array>;
}

export interface Zero3Options {
  readonly schedule: LrSchedule;
  readonly adamw?: AdamWOptions;
  readonly sgd?: SgdOptions;
  /** Micro-batches per step, their gradients summed (default 1). */
  readonly gradAccumSteps?: number;
  /** Clip the global gradient norm to this (default: no clipping). */
  readonly maxGradNorm?: number;
  /** Capture the step once with jit and replay it (default true); false builds and realizes it every step. */
  readonly jit?: boolean;
  /**
   * Gather each transformer block's weights again in the backward (the block recomputed: zero3_regather.ts)
   * instead of keeping the forward's: a step then holds about one block's gathered weights, not all (default false).
   */
  readonly regather?: boolean;
  readonly sharding: ParameterSharding;
}

export class Zero3Trainer {
  readonly layout: ParamLayout;
  /** The groups and this process's chunks of them. */
  readonly zero: Zero3Layout;
  /** Over this process's shard only (zero.shard). */
  readonly optimizer: Optimizer;
  readonly memory: TrainingMemory;
  /** fp32 only so far: here for its `path` (what `kiln train` reports), as the Trainer's. */
  readonly precision: MixedPrecision;
  private readonly sharding: ParameterSharding;
  private readonly accum: number;
  private readonly schedule: LrSchedule;
  private readonly stepRun: Replayed;
  private readonly evalRuns = new Map<string, Replayed>();
  /** This process's chunk of every group (zero.shardSize,): made at the first step from the model's own tensors. */
  private shard: Tensor | undefined;
  /** One view of `shard` per group (its chunk), the leaves the step's gradients are taken of. */
  private pieces: Tensor[] = [];
  /** The groups each block gathers itself (opts.regather); empty otherwise. */
  private readonly byBlocks: ReadonlySet<ShardGroup>;

  constructor(readonly model: TrainableModel, readonly data: BatchSource, private readonly opts: Zero3Options) {
    this.schedule = checkSchedule(opts.schedule);
    this.accum = opts.gradAccumSteps ?? 1;
    if (!(Number.isInteger(this.accum) && this.accum > 0)) throw new Error(`Zero3Trainer: gradAccumSteps must be a positive integer, got ${this.accum}`);
    if (opts.sgd && opts.adamw) throw new Error("Zero3Trainer: give the options of one optimizer, adamw or sgd, not both");
    const s = opts.sharding;
    if (!s || typeof s.gather !== "function" || typeof s.sum !== "function") throw new Error("Zero3Trainer: the sharding option must be a ParameterSharding (src/dist/zero3.ts zero3Sharding)");
    this.sharding = s;
    const params = model.parameters();
    const backend = [...params.values()][0]!.backend;
    this.layout = deviceLayout(params, backend);
    this.zero = new Zero3Layout(this.layout, s.size, s.rank);
    this.optimizer = createOptimizer(this.zero.shard, backend, opts.sgd ? { kind: "sgd", ...opts.sgd } : { kind: "adamw", ...opts.adamw });
    this.memory = new TrainingMemory(model, backend);
    this.precision = new MixedPrecision(backend);
    this.byBlocks = opts.regather ? regatherBlocks(model, this.zero.groups, (g) => this.gatherGroup(g)) : new Set();
    this.stepRun = new Replayed((xs) => this.stepGraph(xs), () => this.persistent(), opts.jit ?? true, 2);
  }

  /** Steps taken so far (the next step's index). */
  get step(): number { return this.optimizer.step; }

  /** The part [start, end) of the flat layout this process stores in a distributed checkpoint (trainer_sharded_checkpoint.ts). */
  get optimizerRange(): readonly [number, number] {
    const [a, b] = this.sharding.range(this.layout.size, this.layout.align);
    if (!(Number.isInteger(a) && Number.isInteger(b) && 0 <= a && a <= b && b <= this.layout.size)) throw new Error(`Zero3Trainer: the sharding gave the range [${a}, ${b}) of a flat buffer of ${this.layout.size}`);
    return [a, b];
  }

  async trainStep(): Promise<StepStats> {
    const t0 = performance.now();
    const step = this.step;
    const lr = learningRate(this.schedule, step);
    await this.shardModel();
    const backend = this.shard!.backend;
    await realizeAll(this.optimizer.stateTensors());
    this.memory.tagParameters(this.optimizer.stateTensors(), "optimizer");
    const { batchSize: b, blockSize: t } = this.data;
    const inputs: Tensor[] = [];
    for (let micro = 0; micro < this.accum; micro++) {
      const batch = await this.data.batch(step, micro);
      for (const a of [batch.inputs, batch.targets]) inputs.push(tensor(a, { backend, dtype: "i32", shape: [b, t] }));
    }
    inputs.push(tensor(this.optimizer.scalars(lr), { backend }));
    try {
      const [loss, norm] = await this.stepRun.run(inputs);
      const stats = { step, loss: await loss!.item(), lr, gradNorm: await norm!.item(), ms: 0, lossScale: 1, skipped: false };
      this.optimizer.advance();
      return { ...stats, ms: performance.now() - t0 };
    } finally {
      for (const x of inputs) x.dispose();
    }
  }

  /** Mean loss of the model on one batch of `data` (a held-out split), no gradients. Every process calls it (the weights are gathered). */
  async evalLoss(data: BatchSource, step = 0): Promise<number> {
    await this.shardModel();
    const backend = this.shard!.backend;
    const { inputs, targets } = await data.batch(step, 0);
    const shape = [data.batchSize, data.blockSize];
    const key = shape.join("x");
    let run = this.evalRuns.get(key);
    const forward = ([x, y]: Tensor[]) => noGrad(() => {
      this.install();
      return [lmLoss(this.model, x!, y!)];
    });
    if (!run) this.evalRuns.set(key, (run = new Replayed(forward, () => this.persistent(), this.opts.jit ?? true, 1)));
    const xs = [tensor(inputs, { backend, dtype: "i32", shape }), tensor(targets, { backend, dtype: "i32", shape })];
    try {
      return await (await run.run(xs))[0]!.item();
    } finally {
      for (const x of xs) x.dispose();
    }
  }

  /** The whole flat parameters (layout.size) on the host, gathered group by group. Every process calls it. */
  async parameters(): Promise<Float32Array> {
    await this.shardModel();
    return this.whole((await this.shard!.data()) as Float32Array);
  }

  /**
   * The whole run's state as one process's (Trainer.state's shape: a single-process checkpoint, an export),
   * gathered group by group onto every process's host. Every process calls it.
   * NOTE: the whole model and optimizer state on the host of every rank: for the end of a run, not each step.
   */
  async state(): Promise<TrainState> {
    await this.shardModel();
    const o = await this.optimizer.state();
    const params = await this.whole((await this.shard!.data()) as Float32Array);
    const optimizer = o.kind === "adamw" ? { ...o, m: await this.whole(o.m), v: await this.whole(o.v) } : { ...o, momentum: o.momentum.length ? await this.whole(o.momentum) : o.momentum };
    return { step: this.step, layout: this.layout.describe(), params, optimizer, precision: [] };
  }

  /**
   * This process's part of the run's state as a distributed checkpoint stores it: the contiguous part
   * optimizerRange of the flat parameters and optimizer state (ZeRO-1/2's), so any world size and stage loads
   * it. Made group by group (each group's chunks gathered on the host): never the whole model at once.
   * Every process calls it.
   */
  async part(): Promise<TrainShard> {
    await this.shardModel();
    const [a, b] = this.optimizerRange;
    const o = await this.optimizer.state();
    const arrays = [(await this.shard!.data()) as Float32Array, ...(o.kind === "adamw" ? [o.m, o.v] : o.momentum.length ? [o.momentum] : [])];
    const parts = arrays.map(() => new Float32Array(b - a));
    for (const g of this.zero.groups) {
      for (let i = 0; i < arrays.length; i++) this.zero.place(g, await this.sharding.gatherHost(arrays[i]!.slice(g.at, g.at + g.chunk)), a, b, parts[i]!);
    }
    const optimizer = o.kind === "adamw" ? { ...o, m: parts[1]!, v: parts[2]! } : { ...o, momentum: o.momentum.length ? parts[1]! : o.momentum };
    return { step: this.step, layout: this.layout.describe(), range: [a, b], params: parts[0]!, optimizer };
  }

  /**
   * Continue from this process's contiguous part of a distributed checkpoint (trainer_sharded_checkpoint.ts
   * reads it for optimizerRange): every process passes its part and keeps its chunks of the groups. Every process calls it.
   */
  async loadShard(s: TrainShard): Promise<void> {
    const [a, b] = this.optimizerRange;
    if (s.range[0] !== a || s.range[1] !== b) throw new Error(`Zero3Trainer.loadShard: the part is [${s.range.join(", ")}), this process's is [${a}, ${b})`);
    if (JSON.stringify(s.layout) !== JSON.stringify(this.layout.describe())) throw new Error("Zero3Trainer.loadShard: the part is not in this trainer's layout (names, shapes, offsets); read it for this layout");
    if (s.step !== s.optimizer.step) throw new Error(`Zero3Trainer.loadShard: step ${s.step} disagrees with the optimizer's ${s.optimizer.step}`);
    const o = s.optimizer;
    const given = [s.params, ...(o.kind === "adamw" ? [o.m, o.v] : o.momentum.length ? [o.momentum] : [])];
    given.forEach((x, i) => {
      if (x.length !== b - a) throw new Error(`Zero3Trainer.loadShard: ${x.length} values in array ${i} of the part [${a}, ${b})`);
    });
    const mine = given.map(() => new Float32Array(this.zero.shardSize));
    for (const g of this.zero.groups) {
      const len = g.hi - g.lo;
      for (let i = 0; i < given.length; i++) {
        // NOTE: each process puts its part's overlap with the group into a zero run of the group's length;
        // the gathered runs (disjoint parts) summed are the group's values, of which this process keeps its chunk.
        const run = new Float32Array(len);
        const [x, y] = [Math.max(a, g.lo), Math.min(b, g.hi)];
        if (x < y) run.set(given[i]!.subarray(x - a, y - a), x - g.lo);
        const all = await this.sharding.gatherHost(run);
        const [p, q] = this.zero.ownRun(g, this.sharding.rank);
        const out = mine[i]!;
        for (let r = 0; r < this.sharding.size; r++) {
          for (let k = p; k < q; k++) out[g.at + k - p] = out[g.at + k - p]! + all[r * len + k - g.lo]!;
        }
      }
    }
    await this.shardModel();
    this.optimizer.loadState(o.kind === "adamw" ? { ...o, m: mine[1]!, v: mine[2]! } : { ...o, momentum: o.momentum.length ? mine[1]! : o.momentum });
    this.bind(tensor(mine[0]!, { backend: this.shard!.backend, dtype: "f32", shape: [this.zero.shardSize] }));
  }

  /**
   * Continue from a single process's state (Trainer.state's shape: a checkpoint of one process): every
   * process keeps its chunks of it. Names and shapes must be this model's; offsets may differ (relayout).
   */
  loadState(state: TrainState): void {
    const mine = this.layout.describe();
    const same = state.layout.length === mine.length && state.layout.every((s, i) => s.name === mine[i]!.name && s.shape.join() === mine[i]!.shape.join());
    if (!same) throw new Error("Zero3Trainer.loadState: the checkpoint is of another model (names or shapes differ from this model's layout)");
    if (state.optimizerRange) throw new Error("Zero3Trainer.loadState: a sharded optimizer's state loads part by part (loadShard)");
    if (state.precision?.length) throw new Error("Zero3Trainer.loadState: the state has a precision's buffers (fp16, fp8); ZeRO-3 runs fp32");
    if (state.step !== state.optimizer.step) throw new Error(`Zero3Trainer.loadState: step ${state.step} disagrees with the optimizer's ${state.optimizer.step}`);
    const own = (a: Float32Array) => this.zero.own(this.layout.relayout(a, state.layout));
    const o = state.optimizer;
    this.optimizer.loadState(o.kind === "adamw" ? { ...o, m: own(o.m), v: own(o.v) } : { ...o, momentum: o.momentum.length ? own(o.momentum) : o.momentum });
    const backend = this.shard?.backend ?? [...this.model.parameters().values()][0]!.backend;
    // NOTE: before the first step the model still holds its own whole tensors: they go now, the shard replaces them.
    if (!this.shard) for (const t of new Set(this.model.parameters().values())) t.dispose();
    this.bind(tensor(own(state.params), { backend, dtype: "f32", shape: [this.zero.shardSize] }));
  }

  /** Launches per replayed step (0 before the first step, or without jit). */
  get stepLaunches(): number {
    return this.stepRun.launches;
  }

  /**
   * The step's graph from (inputs, targets) per micro-batch and the optimizer's scalars: [mean loss, global
   * norm, ...the optimizer's writes of the shard and its state].
   */
  private stepGraph(inputs: readonly Tensor[]): Tensor[] {
    const micro = (inputs.length - 1) / 2;
    this.install();
    let lossSum: Tensor | undefined;
    for (let k = 0; k < micro; k++) {
      const l = trainingLoss(this.model, inputs[2 * k]!, inputs[2 * k + 1]!);
      lossSum = lossSum ? lossSum.add(l) : l;
    }
    const loss = lossSum!.div(micro);
    const grads = gradients([loss], this.pieces, [loss.full([], 1)]).map((g, i) => g ?? this.pieces[i]!.full(this.pieces[i]!.shape, 0));
    return noGrad(() => {
      // NOTE: the gather's gradient is the ranks' sum: the mean over ranks, as data parallel's, is / size.
      const joined = grads.length === 1 ? grads[0]! : concat(grads, 0);
      const flat = joined.div(this.sharding.size);
      const norm = this.sharding.sum(flat.mul(flat).sum().reshape([1])).reshape([]).sqrt();
      const clipped = this.opts.maxGradNorm ? clipByGlobalNorm([flat], norm, this.opts.maxGradNorm)[0]! : flat;
      this.memory.tagStep({ parameters: [this.shard!], gradients: [flat], optimizer: this.optimizer.stateTensors() });
      const writes = this.optimizer.update(this.shard!, clipped, inputs[inputs.length - 1]!);
      return [loss.detach(), norm, ...writes];
    });
  }

  /** The model's parameters become slices of every group's gathered weights (lazy: a gather runs when a graph reads them). */
  private install(): void {
    const named = new Map<string, Tensor>();
    // NOTE: a block that gathers its own group (regather) still gets one here, for its parameters() between steps; the step never reads it.
    for (const g of this.zero.groups) for (const [k, t] of this.gatherGroup(g, !this.byBlocks.has(g))) named.set(k, t);
    this.model.loadStateDict(named);
  }

  /** Group g's weights, gathered from the ranks' chunks, by parameter name (`tag`: counted as parameters while they live). */
  private gatherGroup(g: ShardGroup, tag = true): Map<string, Tensor> {
    const whole = this.sharding.gather(this.pieces[this.zero.groups.indexOf(g)]!);
    if (whole.numel !== this.sharding.size * g.chunk) throw new Error(`Zero3Trainer: the sharding's gather of '${g.name}' gave ${whole.numel} values, expected ${this.sharding.size} x ${g.chunk}`);
    // NOTE: the gathered weights count as parameters while they live (the accountant's peak shows them).
    if (tag) this.memory.tagStep({ parameters: [whole], gradients: [], optimizer: [] });
    return new Map(g.slots.map((s) => [s.name, whole.slice(0, s.offset - g.lo, s.offset - g.lo + s.numel).reshape(s.shape)]));
  }

  /** A whole flat buffer (layout.size) from every process's shard of it (shardSize), gathered group by group on the host. */
  private async whole(mine: Float32Array): Promise<Float32Array> {
    const out = new Float32Array(this.layout.size);
    for (const g of this.zero.groups) this.zero.place(g, await this.sharding.gatherHost(mine.slice(g.at, g.at + g.chunk)), 0, this.layout.size, out);
    return out;
  }

  /** The tensors a captured step binds besides its inputs (replacing one, loadShard, captures again). */
  private persistent(): Tensor[] {
    return [this.shard!, ...this.pieces, ...this.optimizer.stateTensors()];
  }

  /** Once: the model's own (whole) tensors become this process's shard; they are disposed, so only the shard stays. */
  private async shardModel(): Promise<void> {
    if (this.shard) return;
    const named = this.model.parameters();
    const own = this.layout.slots.map((s) => named.get(s.name)!);
    const values = await gatherFlat(this.layout, own);
    for (const t of new Set(own)) t.dispose();
    this.bind(tensor(this.zero.own(values), { backend: own[0]!.backend, dtype: "f32", shape: [this.zero.shardSize] }));
  }

  private bind(shard: Tensor): void {
    const old = this.shard;
    this.shard = shard;
    this.memory.tagParameters([shard]);
    this.pieces = this.zero.groups.map((g) => {
      const p = bufferView(shard, g.at, [g.chunk]);
      p.requiresGrad = true;
      return p;
    });
    noGrad(() => this.install());
    old?.dispose();
  }
}
