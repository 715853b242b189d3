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
// NOTE: the scales enter the graph as one small tensor, not as constants: a constant is spelled into
// the kernel source, and new scales every step would compile new kernels every step.

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
  /** Newest last, at most amaxHistory long. */
  readonly history: number[];
  scale: number;
}

export class Fp8DelayedScaling {
  readonly amaxHistory: number;
  readonly margin: number;
  private readonly sites: Site[] = [];
  private next = 0;
  private recording = false;
  /** This step's amax per site (max over micro-batches), as lazy scalars. */
  private amax = new Map<number, Tensor>();
  private scales: Tensor | undefined;

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

  /** Lazy tensors to realize with the step: this step's amaxes, one vector (read by `commit`). */
  pending(): Tensor[] {
    return this.amax.size ? [this.amaxVector()] : [];
  }

  /** After the step is realized: read its amaxes into the histories and set the next step's scales. */
  async commit(): Promise<void> {
    if (this.amax.size === 0) return;
    const ids = [...this.amax.keys()];
    const values = await this.amaxVector().data();
    ids.forEach((id, i) => {
      const s = this.sites[id]!;
      s.history.push(values[i]!);
      if (s.history.length > this.amaxHistory) s.history.shift();
      const amax = Math.max(...s.history);
      // NOTE: as TE: a site that has seen only zeros (or a non-finite amax) keeps its scale.
      if (amax > 0 && Number.isFinite(amax)) s.scale = s.format.max / amax / 2 ** this.margin;
    });
    this.amax = new Map();
    this.scales = tensor(Float32Array.from(this.sites, (s) => s.scale), { backend: this.backend });
  }

  /** The current scale of every site, in site order (for reports and tests). */
  currentScales(): number[] {
    return this.sites.map((s) => s.scale);
  }

  private amaxVector(): Tensor {
    return concat([...this.amax.values()].map((t) => t.reshape([1])));
  }

  private site(format: FloatFormat): number {
    const id = this.next++;
    if (id === this.sites.length) this.sites.push({ format, history: [], scale: 1 });
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
    // Sites first seen this step have no entry in the scales tensor yet: scale 1, as TE starts.
    const s = this.scales && id < this.scales.numel ? this.scales.slice(0, id, id + 1).reshape([]) : x.full([], 1, "f32");
    const q = (t: Tensor) => roundToFormat(t.mul(s), format).div(s).cast(t.dtype);
    return straightThrough ? customGrad([x], () => q(x), (g) => [g]) : q(x);
  }
}
