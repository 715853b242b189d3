// sharded_step.ts: the second half of a training step when the optimizer is sharded (ZeRO-1/2:
// src/dist/zero.ts): this process's optimizer owns the part [start, end) of the flat buffers only (its state is
// that long), so from the step's flat gradient it gets that part reduced over the processes, the global norm
// from every part's sum of squares, clips and updates its part of the parameters in place (a view of the flat
// buffer), and writes back the whole flat buffer that every part gathered makes. The trainer hands it plain
// Float32Arrays and tensors; who the other processes are, and how many, is the sharding's business.
// NOTE: host round trips, like the gradient hook's; with collectives as graph nodes this becomes one graph.

import type { Tensor } from "../index.js";
import { bufferView, noGrad, tensor } from "../index.js";
import { Replayed } from "./captured_step.js";
import { clipByGlobalNorm } from "./clip.js";
import type { Optimizer } from "./optim/optimizer.js";
import type { ParamLayout } from "./param_layout.js";

/**
 * How the optimizer is sharded over processes (TrainerOptions.sharding; src/dist/zero.ts builds one). Every
 * process calls each method in the same order (they are collectives).
 */
export interface OptimizerSharding {
  /** The part [start, end) of a flat buffer of n elements this process's optimizer owns (start a multiple of align). */
  range(n: number, align: number): readonly [number, number];
  /** The mean over processes of their flat gradients (n), its elements in range(n, align) only. */
  reduceGradient(flatGrad: Float32Array, align: number): Promise<Float32Array>;
  /** The sum over processes of x. */
  sum(x: number): Promise<number>;
  /** Every process's part joined: the whole flat buffer (n), from this process's part. */
  gatherParameters(part: Float32Array, n: number, align: number): Promise<Float32Array>;
}

/**
 * The norm's share beyond the sharding's processes (the Trainer's hostGradientNorm, restated to keep this file
 * free of trainer.ts): `counted` leaves out slots another process counts (a tensor-parallel rank's replicated
 * parameters, a tied weight's second copy), `sum` adds the other processes' sums (tp slices, pipeline stages).
 */
export interface ShardedNorm {
  readonly counted?: (name: string) => boolean;
  readonly sum: (squares: number) => Promise<number>;
}

export class ShardedUpdate {
  readonly start: number;
  readonly end: number;
  /** The parameters' part this process updates: a view of the flat buffer (made by bind). */
  private part: Tensor | undefined;
  private flat: Tensor | undefined;
  private readonly update: Replayed;
  private readonly write: Replayed;

  constructor(
    readonly sharding: OptimizerSharding,
    readonly layout: ParamLayout,
    private readonly optimizer: () => Optimizer,
    maxGradNorm: number | undefined,
    useJit: boolean,
    private readonly hostNorm?: ShardedNorm,
  ) {
    [this.start, this.end] = ShardedUpdate.rangeOf(sharding, layout);
    const persistent = () => [this.flat!, this.part!, ...this.optimizer().stateTensors()];
    // [gradient part, scalars, norm] -> the optimizer's in-place writes of the part, m and v.
    this.update = new Replayed(
      ([g, scalars, norm]) => noGrad(() => this.optimizer().update(this.part!, maxGradNorm ? clipByGlobalNorm([g!], norm!, maxGradNorm)[0]! : g!, scalars!)),
      persistent,
      useJit,
      0,
    );
    this.write = new Replayed(([whole]) => [this.flat!.assign(whole!)], persistent, useJit, 0);
  }

  /** The part of `layout` a process owns under `sharding` (checked: a sharding that gives a bad range is named). */
  static rangeOf(sharding: OptimizerSharding, layout: ParamLayout): [number, number] {
    const [a, b] = sharding.range(layout.size, layout.align);
    if (!(Number.isInteger(a) && Number.isInteger(b) && 0 <= a && a <= b && b <= layout.size && a % layout.align === 0)) {
      throw new Error(`Trainer: the sharding gave the range [${a}, ${b}) of a flat buffer of ${layout.size} (aligned to ${layout.align})`);
    }
    return [a, b];
  }

  /** The flat parameter buffer (replaced by Trainer.setFlat): the part becomes a view of the new one. */
  bind(flat: Tensor): void {
    this.flat = flat;
    this.part = bufferView(flat, this.start, [this.end - this.start]);
  }

  /**
   * Given this process's flat gradient (layout.size), updates its part and gathers the whole parameters;
   * returns the global gradient norm (before clipping).
   */
  async step(flatGrad: Float32Array, scalars: Tensor): Promise<number> {
    const { size, align } = this.layout;
    const g = await this.sharding.reduceGradient(flatGrad, align);
    const len = this.end - this.start;
    if (!(g instanceof Float32Array) || g.length !== len) throw new Error(`Trainer: the sharding's reduceGradient must return this process's ${len} elements [${this.start}, ${this.end}), got ${g instanceof Float32Array ? g.length : typeof g}`);
    const sq = this.squares(g);
    const summed = await this.sharding.sum(sq);
    // NOTE: the sharding's sum covers the processes sharing this layout (dp); hostNorm adds the ones holding other parts (tp slices, stages).
    const total = this.hostNorm ? await this.hostNorm.sum(summed) : summed;
    if (!(Number.isFinite(total) && total >= 0)) throw new Error(`Trainer: the sharded gradient's sum of squares came back as ${total} (expected a finite number >= 0)`);
    const norm = Math.sqrt(total);
    const backend = scalars.backend;
    const inputs = [tensor(g, { backend, dtype: "f32", shape: [len] }), scalars, tensor(Float32Array.of(norm), { backend, dtype: "f32", shape: [] })];
    try {
      await this.update.run(inputs);
    } finally {
      inputs[0]!.dispose();
      inputs[2]!.dispose();
    }
    await this.setWhole(Float32Array.from((await this.part!.data()) as Float32Array));
    return norm;
  }

  /** This process's part's sum of squares (f64), of the slots hostNorm counts (all without one). */
  private squares(g: Float32Array): number {
    let sq = 0;
    const counted = this.hostNorm?.counted;
    if (!counted) {
      for (let i = 0; i < g.length; i++) sq += g[i]! * g[i]!;
      return sq;
    }
    for (const s of this.layout.slots) {
      const [a, b] = [Math.max(s.offset, this.start), Math.min(s.offset + s.numel, this.end)];
      if (a >= b || !counted(s.name)) continue;
      for (let i = a - this.start; i < b - this.start; i++) sq += g[i]! * g[i]!;
    }
    return sq;
  }

  /** Every process passes its part of the parameters: the flat buffer becomes their gathered whole. */
  async setWhole(part: Float32Array): Promise<void> {
    const whole = await this.sharding.gatherParameters(part, this.layout.size, this.layout.align);
    if (!(whole instanceof Float32Array) || whole.length !== this.layout.size) throw new Error(`Trainer: the sharding's gatherParameters must return the ${this.layout.size} parameters, got ${whole instanceof Float32Array ? whole.length : typeof whole}`);
    const x = tensor(whole, { backend: this.flat!.backend, dtype: "f32", shape: [this.layout.size] });
    try {
      await this.write.run([x]);
    } finally {
      x.dispose();
    }
  }

  /** Launches per replayed update (0 before the first captured call, or without jit). */
  get launches(): number {
    return this.update.launches + this.write.launches;
  }
}
