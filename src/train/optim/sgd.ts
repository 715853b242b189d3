// sgd.ts: SGD with momentum as PyTorch's torch.optim.SGD computes it: g <- g + wd p (coupled L2 weight
// decay, on the layout's decaying slots only, as AdamW's), then with momentum mu the buffer b <- g on
// the first step and b <- mu b + (1 - dampening) g after, g <- g + mu b (nesterov) or g <- b, and
// p <- p - lr g. Its state (the momentum buffer) is one flat buffer in the parameters' layout
// (param_layout.ts), updated with the parameters in one fused elementwise pass over each flat buffer.
// It keeps AdamW's contract (adamw.ts): scalars(lr), in-place assignments from a scalars tensor, advance(),
// stateTensors(), so one jit capture of the step serves every step.
// NOTE: the first step's special case is in the scalars, not in the graph: b <- keep b + gw g with
// (keep, gw) = (0, 1) on the first step and (mu, 1 - dampening) after; b starts as zeros, so 0 b + g is g
// exactly, and the captured graph stays the same every step.

import type { Backend, Tensor } from "../../index.js";
import { checkFlat, decayMask, flatBuffer } from "../flat_params.js";
import type { ParamLayout } from "../param_layout.js";

export interface SgdOptions {
  /** Momentum factor mu (default 0: plain SGD, no buffer). */
  readonly momentum?: number;
  /** Dampening of the gradient in the momentum buffer (default 0, PyTorch's). */
  readonly dampening?: number;
  /** Nesterov momentum (needs momentum > 0 and dampening 0, as PyTorch). */
  readonly nesterov?: boolean;
  readonly weightDecay?: number;
}

export interface SgdState {
  /** Steps taken (the first step initialises the momentum buffer to the gradient). */
  readonly step: number;
  /** The momentum buffer in the flat layout (zeros before the first step; empty when momentum is 0). */
  readonly momentum: Float32Array;
}

export class Sgd {
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  private buf: Tensor | undefined;
  /** Where weight decay applies (the layout's decaying slots); undefined when none does. */
  private readonly mask: Tensor | undefined;
  private steps = 0;

  constructor(readonly layout: ParamLayout, private readonly backend: Backend, opts: SgdOptions = {}) {
    this.momentum = opts.momentum ?? 0;
    this.dampening = opts.dampening ?? 0;
    this.nesterov = opts.nesterov ?? false;
    this.weightDecay = opts.weightDecay ?? 0;
    for (const [k, v, lo, hi] of [["momentum", this.momentum, 0, 1], ["dampening", this.dampening, 0, 1], ["weightDecay", this.weightDecay, 0, Infinity]] as const) {
      if (!(v >= lo && v < hi)) throw new Error(`SGD: ${k} must be in [${lo}, ${hi}), got ${v}`);
    }
    if (this.nesterov && (this.momentum === 0 || this.dampening !== 0)) {
      throw new Error(`SGD: nesterov needs momentum > 0 and dampening 0, got momentum ${this.momentum}, dampening ${this.dampening}`);
    }
    // NOTE: realized (uploaded) zeros: the update assigns into their buffers.
    this.buf = this.momentum ? flatBuffer(layout, backend) : undefined;
    this.mask = this.weightDecay ? decayMask(layout, backend) : undefined;
  }

  get step(): number { return this.steps; }

  /** The next step's scalars (3,): lr, and the momentum buffer's (keep, gw): (0, 1) on the first step, (mu, 1 - dampening) after. */
  scalars(lr: number): Float32Array {
    const first = this.steps === 0;
    return Float32Array.of(lr, first ? 0 : this.momentum, first ? 1 : 1 - this.dampening);
  }

  /**
   * The step's assignments (lazy; realize them with the step): the flat parameters and the momentum
   * buffer written in place from the flat gradient and `scalars`, the tensor of scalars(lr); both keep
   * their values where `guard` (a bool scalar) is false.
   */
  update(params: Tensor, grads: Tensor, scalars: Tensor, guard?: Tensor): Tensor[] {
    checkFlat("SGD.update: the parameters", this.layout, params);
    checkFlat("SGD.update: the gradient", this.layout, grads);
    if (scalars.numel !== 3) throw new Error(`SGD.update: scalars must be the 3 values of scalars(lr), got ${scalars}`);
    const mu = this.momentum;
    const s = scalars.reshape([3]);
    const [stepSize, keep, gw] = [0, 1, 2].map((i) => s.slice(0, i, i + 1).reshape([])) as [Tensor, Tensor, Tensor];
    const put = (t: Tensor, value: Tensor) => t.assign(guard ? guard.where(value, t) : value);
    const writes: Tensor[] = [];
    const p = params;
    let g = this.mask ? this.mask.ne(0).where(grads.add(p.mul(this.weightDecay)), grads) : grads;
    if (this.buf) {
      const b = put(this.buf, this.buf.mul(keep).add(g.mul(gw)));
      writes.push(b);
      g = this.nesterov ? g.add(b.mul(mu)) : b;
    }
    writes.push(put(p, p.sub(g.mul(stepSize))));
    return writes;
  }

  /** Count one step as taken (its assignments realized). */
  advance(): void {
    this.steps++;
  }

  /** The persistent tensors the update writes (the momentum buffers): replaced only by loadState. */
  stateTensors(): readonly Tensor[] {
    return this.buf ? [this.buf] : [];
  }

  async state(): Promise<SgdState> {
    return { step: this.steps, momentum: this.buf ? await this.buf.data() as Float32Array : new Float32Array(0) };
  }

  loadState(state: SgdState): void {
    if (!(Number.isInteger(state.step) && state.step >= 0)) throw new Error(`SGD.loadState: step must be a non-negative integer, got ${state.step}`);
    const want = this.momentum ? this.layout.size : 0;
    if (state.momentum.length !== want) throw new Error(`SGD.loadState: a momentum buffer of ${state.momentum.length} values, this optimizer keeps ${want} (momentum ${this.momentum})`);
    if (this.momentum) this.buf = flatBuffer(this.layout, this.backend, state.momentum);
    this.steps = state.step;
  }
}
