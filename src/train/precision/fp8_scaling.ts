// fp8_scaling.ts: fp8 matmuls with per-tensor delayed scaling (Transformer Engine's DelayedScaling
// recipe, "HYBRID" format): in the forward both matmul operands are quantized to E4M3, in the backward
// the gradient arriving at the matmul's output is quantized to E5M2 before it meets the operands. Each
// quantized tensor (a "site": operand x, operand w or the output gradient of one matmul call) has a
// scale s = max / amax / 2^margin, where amax is the largest |value| the site saw over the last
// `amaxHistory` steps (not this step's: the scale is known before the tensor is computed, so nothing
// waits on a reduction, as on the hardware). q(x) = round_fp8(x s) / s, emulated in f32
// (tensor/float_format.ts); gradients pass straight through the rounding.
// Sites are numbered in the order a forward builds its matmuls, which is the same every step (the same
// model code runs); micro-batches of one step share their sites and their amax is the max over them.
// Each site's scale and amax history are one small device tensor that the step itself rolls forward
// (`updates`: assign), so a training step has no host decision and is captured once with jit; the host
// reads the scales only when asked (`currentScales`).
// NOTE: the scales are device tensors, not constants: a constant is spelled into the kernel source, and
// new scales every step would compile new kernels every step (and a jit replay would repeat them).

import type { Backend, MatmulPolicy, Tensor } from "../../index.js";
import { concat, customGrad, FP8_E4M3, FP8_E5M2, roundToFormat, tensor } from "../../index.js";
import type { FloatFormat } from "../../index.js";

export interface Fp8Options {
  /** Steps of amax history the scale is taken from (default 16). */
  readonly amaxHistory?: number;
  /** The scale leaves 2^margin of headroom below the format's max (default 0). */
  readonly margin?: number;
}

interface Site {
  readonly format: FloatFormat;
  /** (1 + amaxHistory,) f32 on the device: the scale, then the amax history (oldest first; zeros before the site was seen). */
  readonly state: Tensor;
}

export class Fp8DelayedScaling {
  readonly amaxHistory: number;
  readonly margin: number;
  private readonly sites: Site[] = [];
  private next = 0;
  private recording = false;
  /** This step's amax per site (max over micro-batches), as lazy scalars. */
  private amax = new Map<number, Tensor>();
  /** Saved site states (restore) for sites not built yet. */
  private pending: Float32Array[] = [];

  constructor(private readonly backend: Backend, opts: Fp8Options = {}) {
    this.amaxHistory = opts.amaxHistory ?? 16;
    this.margin = opts.margin ?? 0;
    if (!(Number.isInteger(this.amaxHistory) && this.amaxHistory > 0)) throw new Error(`fp8: amaxHistory must be a positive integer, got ${this.amaxHistory}`);
    if (!(Number.isInteger(this.margin) && this.margin >= 0)) throw new Error(`fp8: margin must be a non-negative integer, got ${this.margin}`);
  }

  /** Number the sites from 0 again: call before each forward; `record` collects amaxes (training, not eval). */
  beginForward(record: boolean): void {
    this.next = 0;
    this.recording = record;
  }

  /** The matmul policy (for `autocast`): E4M3 operands, an E5M2 gradient on the way back. */
  readonly policy: MatmulPolicy = (a, b, matmul) => {
    const y = matmul(this.quantize(a, FP8_E4M3, true), this.quantize(b, FP8_E4M3, true));
    const g = this.site(FP8_E5M2);
    return customGrad([y], () => y, (grad) => [this.quantize(grad, FP8_E5M2, false, g)]);
  };

  /**
   * The step's assignments of the sites it recorded: each history drops its oldest amax and takes this
   * step's, and the scale becomes max / amax / 2^margin from the history's max. NOTE: as TE, a site
   * that has seen only zeros (or a non-finite amax) keeps its scale. Call once per step, after its forwards.
   */
  updates(): Tensor[] {
    const writes = [...this.amax].map(([id, amax]) => {
      const { format, state } = this.sites[id]!;
      const older = this.amaxHistory > 1 ? [state.slice(0, 2, 1 + this.amaxHistory)] : [];
      const history = concat([...older, amax.reshape([1])]);
      const m = history.max();
      const scale = m.gt(0).and(m.lt(Infinity)).where(m.rdiv(format.max).div(2 ** this.margin), state.slice(0, 0, 1).reshape([]));
      return state.assign(concat([scale.reshape([1]), history]));
    });
    this.amax = new Map();
    return writes;
  }

  /** The persistent tensors the step reads and writes (a capture binds them), in site order. */
  stateTensors(): readonly Tensor[] {
    return this.sites.map((s) => s.state);
  }

  /**
   * Continue from saved states (a checkpoint's, in site order): sites that exist take theirs now (new
   * tensors: a captured step captures again), later ones when the forward first builds them.
   */
  restore(values: readonly Float32Array[]): void {
    for (const v of values) {
      if (v.length !== 1 + this.amaxHistory) throw new Error(`fp8: a saved site state has ${v.length} values; this run keeps 1 scale + ${this.amaxHistory} amaxes (fp8.amaxHistory)`);
    }
    this.pending = values.map((v) => Float32Array.from(v));
    this.sites.forEach((site, id) => {
      const v = this.pending[id];
      if (v) this.sites[id] = { format: site.format, state: tensor(v, { backend: this.backend }) };
    });
  }

  /** The current scale of every site, in site order (for reports and tests; reads the device). */
  async currentScales(): Promise<number[]> {
    return Promise.all(this.sites.map(async (s) => (await s.state.slice(0, 0, 1).data())[0]!));
  }

  private site(format: FloatFormat): number {
    const id = this.next++;
    // NOTE: scale 1 before any amax, as TE starts; realized (uploaded): the step assigns into it.
    if (id === this.sites.length) {
      const init = this.pending[id] ?? Float32Array.from({ length: 1 + this.amaxHistory }, (_, i) => (i === 0 ? 1 : 0));
      this.sites.push({ format, state: tensor(init, { backend: this.backend }) });
    }
    const s = this.sites[id]!;
    if (s.format !== format) throw new Error(`fp8: site ${id} was ${s.format.name} and is now ${format.name}: the forward built its matmuls in another order`);
    return id;
  }

  /** round(x s) / s with a straight-through gradient (forward operands) or none needed (a gradient). */
  private quantize(x: Tensor, format: FloatFormat, straightThrough: boolean, id = this.site(format)): Tensor {
    if (this.recording) {
      const amax = x.detach().abs().max();
      const prev = this.amax.get(id);
      this.amax.set(id, prev ? prev.maximum(amax) : amax);
    }
    const s = this.sites[id]!.state.slice(0, 0, 1).reshape([]);
    const q = (t: Tensor) => roundToFormat(t.mul(s), format).div(s).cast(t.dtype);
    return straightThrough ? customGrad([x], () => q(x), (g) => [g]) : q(x);
  }
}
