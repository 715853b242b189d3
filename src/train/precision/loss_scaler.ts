// loss_scaler.ts: dynamic loss scaling for fp16 training (PyTorch's GradScaler, Micikevicius et al.
// 2018): the backward starts from loss x scale so that small gradients survive f16's narrow range; the
// gradients are divided by the scale before clipping and the update. A step whose gradients hold an
// inf or NaN (the scale made something overflow) is skipped and the scale halved; after
// `growthInterval` good steps in a row the scale doubles. Host-side state only: the trainer asks
// `update(finite)` once per attempted step.

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

export class DynamicLossScaler {
  readonly growthInterval: number;
  readonly growthFactor: number;
  readonly backoffFactor: number;
  private current: number;
  private good = 0;

  constructor(opts: LossScalerOptions = {}) {
    this.current = opts.initScale ?? 2 ** 16;
    this.growthInterval = opts.growthInterval ?? 2000;
    this.growthFactor = opts.growthFactor ?? 2;
    this.backoffFactor = opts.backoffFactor ?? 0.5;
    const bad = (what: string, v: number, rule: string) => new Error(`loss scaling: ${what} must be ${rule}, got ${v}`);
    if (!(this.current > 0 && Number.isFinite(this.current))) throw bad("initScale", this.current, "a positive finite number");
    if (!(Number.isInteger(this.growthInterval) && this.growthInterval > 0)) throw bad("growthInterval", this.growthInterval, "a positive integer");
    if (!(this.growthFactor > 1 && Number.isFinite(this.growthFactor))) throw bad("growthFactor", this.growthFactor, "above 1");
    if (!(this.backoffFactor > 0 && this.backoffFactor < 1)) throw bad("backoffFactor", this.backoffFactor, "in (0, 1)");
  }

  /** The scale the next backward starts from. */
  get scale(): number { return this.current; }
  /** Good steps since the last overflow or growth. */
  get goodSteps(): number { return this.good; }

  /** After a step's gradients were checked: false (inf/NaN) lowers the scale and means "skip this step". */
  update(finite: boolean): { skipped: boolean } {
    if (!finite) {
      this.current *= this.backoffFactor;
      this.good = 0;
      return { skipped: true };
    }
    if (++this.good >= this.growthInterval) {
      const grown = this.current * this.growthFactor;
      // NOTE: never to infinity: a scale of inf would make every later step overflow.
      if (Number.isFinite(grown)) this.current = grown;
      this.good = 0;
    }
    return { skipped: false };
  }
}
