// loss_scaler.ts: dynamic loss scaling for fp16 training (PyTorch's GradScaler, Micikevicius et al.
// 2018): the backward starts from loss x scale so that small gradients survive f16's narrow range; the
// gradients are divided by the scale before clipping and the update. A step whose gradients hold an
// inf or NaN (the scale made something overflow) is skipped and the scale halved; after
// `growthInterval` good steps in a row the scale doubles.
// The scale, the run of good steps and the last step's verdict are one small device tensor that the step
// itself updates (`update`: where + assign), so the step has no host branch and is captured once with jit
// like an fp32 step. The host reads that tensor back after each step (`read`), for the report and for the
// trainer's step counter (a skipped step is retried); it never decides anything from it.

import type { Backend, Tensor } from "../../index.js";
import { concat, tensor } from "../../index.js";

export interface LossScalerOptions {
  /** Starting scale (default 2^16, as GradScaler). */
  readonly initScale?: number;
  /** Good steps in a row before the scale grows (default 2000). */
  readonly growthInterval?: number;
  /** Factor on growth (default 2). */
  readonly growthFactor?: number;
  /** Factor on an overflow (default 0.5). */
  readonly backoffFactor?: number;
}

/** The largest finite f32: the scale never grows past it (a scale of inf would make every later step overflow). */
const F32_MAX = 3.4028234663852886e38;

export class DynamicLossScaler {
  readonly growthInterval: number;
  readonly growthFactor: number;
  readonly backoffFactor: number;
  /** (3,) f32 on the device: the scale the next backward starts from, good steps since the last overflow or growth, 1 if the last step was skipped. */
  private state: Tensor;
  /** The state as last read (`read`). */
  private host: Float32Array;

  constructor(private readonly backend: Backend, opts: LossScalerOptions = {}) {
    const initScale = opts.initScale ?? 2 ** 16;
    this.growthInterval = opts.growthInterval ?? 2000;
    this.growthFactor = opts.growthFactor ?? 2;
    this.backoffFactor = opts.backoffFactor ?? 0.5;
    const bad = (what: string, v: number, rule: string) => new Error(`loss scaling: ${what} must be ${rule}, got ${v}`);
    if (!(initScale > 0 && initScale <= F32_MAX)) throw bad("initScale", initScale, "a positive finite number (f32)");
    // NOTE: the good-step counter is an f32 on the device: exact up to 2^24.
    if (!(Number.isInteger(this.growthInterval) && this.growthInterval > 0 && this.growthInterval <= 2 ** 24)) throw bad("growthInterval", this.growthInterval, "a positive integer up to 2^24");
    if (!(this.growthFactor > 1 && Number.isFinite(this.growthFactor))) throw bad("growthFactor", this.growthFactor, "above 1");
    if (!(this.backoffFactor > 0 && this.backoffFactor < 1)) throw bad("backoffFactor", this.backoffFactor, "in (0, 1)");
    this.host = Float32Array.of(initScale, 0, 0);
    // NOTE: realized (uploaded): the step assigns into its buffer.
    this.state = tensor(this.host.slice(), { backend });
  }

  /** The scale the next backward starts from (as last read). */
  get scale(): number { return this.host[0]!; }
  /** Good steps since the last overflow or growth (as last read). */
  get goodSteps(): number { return this.host[1]!; }
  /** Whether the last step was skipped (its gradients overflowed), as last read. */
  get skipped(): boolean { return this.host[2] !== 0; }

  /** The scale on the device, a scalar for the step's graph (read before `update` writes the next one). */
  scaleTensor(): Tensor {
    return this.state.slice(0, 0, 1).reshape([]);
  }

  /** The persistent tensor the step writes (a capture binds it). */
  stateTensors(): readonly Tensor[] {
    return [this.state];
  }

  /**
   * The state's assignment after a step whose gradients were `finite` (a bool scalar): an overflow
   * multiplies the scale by backoffFactor and resets the good steps; the growthInterval-th good step in a
   * row multiplies it by growthFactor (unless that would pass f32's max) and starts counting again.
   */
  update(finite: Tensor): Tensor {
    const s = this.state;
    const [scale, good] = [s.slice(0, 0, 1), s.slice(0, 1, 2)];
    const good1 = good.add(1);
    const grow = good1.ge(this.growthInterval);
    const grown = scale.mul(this.growthFactor);
    const next = finite.where(grow.and(grown.le(F32_MAX)).where(grown, scale), scale.mul(this.backoffFactor));
    const count = finite.where(grow.where(0, good1), 0);
    return s.assign(concat([next, count, finite.where(0, 1).reshape([1])]));
  }

  /**
   * Continue from a saved state (a checkpoint's: scale, good steps, skipped). A new tensor, so a captured
   * step that bound the old one captures again (as after any Trainer.loadState).
   */
  restore(values: Float32Array): void {
    if (values.length !== 3 || !(values[0]! > 0 && values[0]! <= F32_MAX) || !(values[1]! >= 0)) {
      throw new Error(`loss scaling: a saved state is (scale > 0, good steps >= 0, skipped), got [${Array.from(values).join(", ")}]`);
    }
    this.host = Float32Array.from(values);
    this.state = tensor(this.host.slice(), { backend: this.backend });
  }

  /** Read the state the last step wrote (one small read). */
  async read(): Promise<void> {
    this.host = Float32Array.from(await this.state.data());
  }
}
