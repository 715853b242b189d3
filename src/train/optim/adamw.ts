// adamw.ts: AdamW (Loshchilov & Hutter) as PyTorch computes it: decoupled weight decay
// p <- p (1 - lr wd), then p <- p - lr m_hat / (sqrt(v_hat) + eps) with bias-corrected moments, weight
// decay only on the layout's decaying slots (matrices and embeddings). Its state (m and v) follows the
// parameters' flat layout (param_layout.ts). The update is a lazy graph per parameter that the
// trainer realizes together with the step's forward and backward (one schedule).
// The optimizer contract the trainer's step relies on (captured_step.ts, StepOptimizer; SGD follows it):
//   scalars(lr)              the next step's per-step numbers, as host values (one small tensor in the step);
//   update(params, grads, s, guard?)
//                            lazy assignments (Tensor.assign) writing the new parameters and the new state
//                            into their own buffers, from the flat parameters, the flat gradient (both
//                            (layout.size,)) and the scalars tensor s: no new tensors per step, so one jit
//                            capture of the step serves every later step; where the bool scalar
//                            `guard` is false (fp16's overflowed step) every buffer keeps its value;
//   advance()                count a step as taken, once its assignments are realized.
// NOTE: the per-step scalars (lr, bias corrections) enter as a small tensor, not as constants: a
// constant is spelled into the kernel source, so a new lr each step would compile new kernels each step,
// and a jit replay would repeat the captured step's values.

import type { Backend, Tensor } from "../../index.js";
import { checkFlat, decayMask, flatBuffer } from "../flat_params.js";
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
  private m: Tensor;
  private v: Tensor;
  /** Where weight decay applies (the layout's decaying slots); undefined when none does. */
  private readonly mask: Tensor | undefined;
  private steps = 0;

  constructor(readonly layout: ParamLayout, private readonly backend: Backend, opts: AdamWOptions = {}) {
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    for (const [k, v, lo, hi] of [["beta1", this.beta1, 0, 1], ["beta2", this.beta2, 0, 1], ["eps", this.eps, 0, Infinity], ["weightDecay", this.weightDecay, 0, Infinity]] as const) {
      if (!(v >= lo && v < hi) || (k === "eps" && v === 0)) throw new Error(`AdamW: ${k} must be in [${lo}, ${hi}), got ${v}`);
    }
    // NOTE: realized (uploaded) zeros: the update assigns into their buffers.
    [this.m, this.v] = [flatBuffer(layout, backend), flatBuffer(layout, backend)];
    this.mask = this.weightDecay ? decayMask(layout, backend) : undefined;
  }

  get step(): number { return this.steps; }

  /** The next step's scalars (4,): lr, lr / (1 - b1^t), 1 / sqrt(1 - b2^t), 1 - lr wd, for t = step + 1. */
  scalars(lr: number): Float32Array {
    const t = this.steps + 1;
    return Float32Array.of(lr, lr / (1 - this.beta1 ** t), 1 / Math.sqrt(1 - this.beta2 ** t), 1 - lr * this.weightDecay);
  }

  /**
   * The step's assignments (lazy; realize them with the step): the flat parameters, m and v written in
   * place from the flat gradient and `scalars`, the tensor of scalars(lr); all keep their values where
   * `guard` (a bool scalar) is false.
   */
  update(params: Tensor, grads: Tensor, scalars: Tensor, guard?: Tensor): Tensor[] {
    checkFlat("AdamW.update: the parameters", this.layout, params);
    checkFlat("AdamW.update: the gradient", this.layout, grads);
    if (scalars.numel !== 4) throw new Error(`AdamW.update: scalars must be the 4 values of scalars(lr), got ${scalars}`);
    const [b1, b2] = [this.beta1, this.beta2];
    const s = scalars.reshape([4]);
    const [stepSize, vScale, decay] = [s.slice(0, 1, 2).reshape([]), s.slice(0, 2, 3).reshape([]), s.slice(0, 3, 4).reshape([])];
    const put = (t: Tensor, value: Tensor) => t.assign(guard ? guard.where(value, t) : value);
    const g = grads;
    const m = put(this.m, this.m.mul(b1).add(g.mul(1 - b1)));
    const v = put(this.v, this.v.mul(b2).add(g.mul(g).mul(1 - b2)));
    // NOTE: where, not a multiply by a 0/1 factor: p (1 - lr wd) where the layout decays, p itself (exactly) elsewhere.
    const p = this.mask ? this.mask.ne(0).where(params.mul(decay), params) : params;
    return [put(params, p.sub(m.mul(stepSize).div(v.sqrt().mul(vScale).add(this.eps)))), m, v];
  }

  /** Count one step as taken (its assignments realized): the next scalars use the next bias correction. */
  advance(): void {
    this.steps++;
  }

  /** The persistent tensors the update writes (m, then v): replaced only by loadState. */
  stateTensors(): readonly Tensor[] {
    return [this.m, this.v];
  }

  async state(): Promise<AdamWState> {
    return { step: this.steps, m: await this.m.data() as Float32Array, v: await this.v.data() as Float32Array };
  }

  loadState(state: AdamWState): void {
    if (!(Number.isInteger(state.step) && state.step >= 0)) throw new Error(`AdamW.loadState: step must be a non-negative integer, got ${state.step}`);
    this.m = flatBuffer(this.layout, this.backend, state.m);
    this.v = flatBuffer(this.layout, this.backend, state.v);
    this.steps = state.step;
  }
}
