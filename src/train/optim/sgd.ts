// sgd.ts: SGD with momentum as PyTorch's torch.optim.SGD computes it: g <- g + wd p (coupled L2 weight
// decay, on the layout's decaying slots only, as AdamW's), then with momentum mu the buffer b <- g on
// the first step and b <- mu b + (1 - dampening) g after, g <- g + mu b (nesterov) or g <- b, and
// p <- p - lr g. Its state (the momentum buffer) follows the parameters' flat layout (param_layout.ts).
// The update is a lazy graph per parameter that the trainer realizes together with the step's forward
// and backward (one schedule), like AdamW's (adamw.ts): the two keep the same shape.
// NOTE: lr enters as a small tensor, not a constant: a constant is spelled into the kernel source, so a
// new lr each step would compile new kernels each step.

import type { Backend, Tensor } from "../../index.js";
import { tensor, zeros } from "../../index.js";
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
  private buf: Tensor[];
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
    this.buf = this.momentum ? layout.slots.map((s) => zeros(s.shape, { backend })) : [];
  }

  get step(): number { return this.steps; }

  /**
   * The next step's parameters (lazy) from the current ones and their gradients, in slot order; the
   * momentum buffer advances with them (realize the returned tensors and `pending()` together).
   */
  update(params: readonly Tensor[], grads: readonly Tensor[], lr: number): Tensor[] {
    if (params.length !== this.layout.slots.length || grads.length !== params.length) {
      throw new Error(`SGD.update: ${params.length} parameters and ${grads.length} gradients for ${this.layout.slots.length} slots`);
    }
    const first = ++this.steps === 1;
    const mu = this.momentum;
    const stepSize = tensor(Float32Array.of(lr), { backend: this.backend }).reshape([]);
    return this.layout.slots.map((slot, i) => {
      const p = params[i]!;
      let g = slot.decay && this.weightDecay ? grads[i]!.add(p.mul(this.weightDecay)) : grads[i]!;
      if (mu) {
        // NOTE: PyTorch's first step takes the gradient itself (undampened) as the buffer.
        const b = first ? g : this.buf[i]!.mul(mu).add(this.dampening ? g.mul(1 - this.dampening) : g);
        this.buf[i] = b;
        g = this.nesterov ? g.add(b.mul(mu)) : b;
      }
      return p.sub(g.mul(stepSize));
    });
  }

  /** The momentum buffer's tensors as of the last update (to realize with the step). */
  pending(): Tensor[] {
    return [...this.buf];
  }

  async state(): Promise<SgdState> {
    return { step: this.steps, momentum: this.momentum ? await this.layout.gather(this.buf) : new Float32Array(0) };
  }

  loadState(state: SgdState): void {
    if (!(Number.isInteger(state.step) && state.step >= 0)) throw new Error(`SGD.loadState: step must be a non-negative integer, got ${state.step}`);
    const want = this.momentum ? this.layout.size : 0;
    if (state.momentum.length !== want) throw new Error(`SGD.loadState: a momentum buffer of ${state.momentum.length} values, this optimizer keeps ${want} (momentum ${this.momentum})`);
    if (this.momentum) this.buf = this.layout.scatter(state.momentum, this.backend);
    this.steps = state.step;
  }
}
