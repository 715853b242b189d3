// adamw.ts: AdamW (Loshchilov & Hutter) as PyTorch computes it: decoupled weight decay
// p <- p (1 - lr wd), then p <- p - lr m_hat / (sqrt(v_hat) + eps) with bias-corrected moments, weight
// decay only on the layout's decaying slots (matrices and embeddings). Its state (m and v) follows the
// parameters' flat layout (param_layout.ts). The update is a lazy graph per parameter that the
// trainer realizes together with the step's forward and backward (one schedule).
// NOTE: the per-step scalars (lr, bias corrections) enter as a small tensor, not as constants: a
// constant is spelled into the kernel source, so a new lr each step would compile new kernels each step.

import type { Backend, Tensor } from "../../index.js";
import { tensor, zeros } from "../../index.js";
import type { ParamLayout } from "../param_layout.js";

export interface AdamWOptions {
  readonly beta1?: number;
  readonly beta2?: number;
  readonly eps?: number;
  readonly weightDecay?: number;
}

export interface AdamWState {
  /** Steps taken (bias correction uses step + 1 for the next). */
  readonly step: number;
  readonly m: Float32Array;
  readonly v: Float32Array;
}

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  private m: Tensor[];
  private v: Tensor[];
  private steps = 0;

  constructor(readonly layout: ParamLayout, private readonly backend: Backend, opts: AdamWOptions = {}) {
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    for (const [k, v, lo, hi] of [["beta1", this.beta1, 0, 1], ["beta2", this.beta2, 0, 1], ["eps", this.eps, 0, Infinity], ["weightDecay", this.weightDecay, 0, Infinity]] as const) {
      if (!(v >= lo && v < hi) || (k === "eps" && v === 0)) throw new Error(`AdamW: ${k} must be in [${lo}, ${hi}), got ${v}`);
    }
    const zero = () => layout.slots.map((s) => zeros(s.shape, { backend }));
    [this.m, this.v] = [zero(), zero()];
  }

  get step(): number { return this.steps; }

  /**
   * The next step's parameters (lazy) from the current ones and their gradients, in slot order; the
   * moments advance with them (realize the returned tensors and `pending()` together).
   */
  update(params: readonly Tensor[], grads: readonly Tensor[], lr: number): Tensor[] {
    if (params.length !== this.layout.slots.length || grads.length !== params.length) {
      throw new Error(`AdamW.update: ${params.length} parameters and ${grads.length} gradients for ${this.layout.slots.length} slots`);
    }
    const t = ++this.steps;
    const [b1, b2] = [this.beta1, this.beta2];
    // (4,): lr, lr / (1 - b1^t), 1 / sqrt(1 - b2^t), 1 - lr wd
    const s = tensor(Float32Array.of(lr, lr / (1 - b1 ** t), 1 / Math.sqrt(1 - b2 ** t), 1 - lr * this.weightDecay), { backend: this.backend });
    const [stepSize, vScale, decay] = [s.slice(0, 1, 2).reshape([]), s.slice(0, 2, 3).reshape([]), s.slice(0, 3, 4).reshape([])];
    const out: Tensor[] = [];
    this.layout.slots.forEach((slot, i) => {
      const g = grads[i]!;
      const m = this.m[i]!.mul(b1).add(g.mul(1 - b1));
      const v = this.v[i]!.mul(b2).add(g.mul(g).mul(1 - b2));
      const p = slot.decay ? params[i]!.mul(decay) : params[i]!;
      out.push(p.sub(m.mul(stepSize).div(v.sqrt().mul(vScale).add(this.eps))));
      this.m[i] = m;
      this.v[i] = v;
    });
    return out;
  }

  /** The moments' tensors as of the last update (to realize with the step). */
  pending(): Tensor[] {
    return [...this.m, ...this.v];
  }

  async state(): Promise<AdamWState> {
    return { step: this.steps, m: await this.layout.gather(this.m), v: await this.layout.gather(this.v) };
  }

  loadState(state: AdamWState): void {
    if (!(Number.isInteger(state.step) && state.step >= 0)) throw new Error(`AdamW.loadState: step must be a non-negative integer, got ${state.step}`);
    this.m = this.layout.scatter(state.m, this.backend);
    this.v = this.layout.scatter(state.v, this.backend);
    this.steps = state.step;
  }
}
