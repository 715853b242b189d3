// mixed_precision.ts: the trainer's precision policy: which matmul policy the forward is built under,
// what the backward starts from (the fp16 loss scale), what the gradients are divided by, whether a
// step is skipped, and a sentence saying which path a run took on its backend. Master weights,
// gradients handed to the optimizer and the optimizer state stay f32 in every mode.
//   fp32: plain.
//   bf16, fp16: each matmul's operands are cast to the low dtype and its output rounded to it (cast
//     back to f32), as PyTorch's autocast does for matmuls; norms, softmax, attention and the loss stay
//     f32. The matmul's backward then runs in the low dtype too (its incoming gradient is cast down).
//   fp16 adds dynamic loss scaling (loss_scaler.ts); fp8: delayed-scaling quantization (fp8_scaling.ts).
// Every mode's step is one graph with no host decision (the loss scale, the skip of an overflowed step and
// the fp8 scales are device state the step updates), so every mode is captured once with jit and replayed.

import type { Backend, DType, MatmulPolicy, Tensor } from "../../index.js";
import { autocast } from "../../index.js";
import type { Fp8Options } from "./fp8_scaling.js";
import { Fp8DelayedScaling } from "./fp8_scaling.js";
import type { LossScalerOptions } from "./loss_scaler.js";
import { DynamicLossScaler } from "./loss_scaler.js";

export const PRECISIONS = ["fp32", "bf16", "fp16", "fp8"] as const;
export type Precision = (typeof PRECISIONS)[number];

export interface PrecisionOptions {
  readonly precision?: Precision;
  /** fp16 only. */
  readonly lossScale?: LossScalerOptions;
  /** fp8 only. */
  readonly fp8?: Fp8Options;
}

/** One sentence on how `precision` runs on `backend` (printed by `kiln train`, kept in the run record). */
export function describePrecision(precision: Precision, backend: Backend): string {
  if (precision === "fp32") return "fp32";
  if (precision === "fp8") return `fp8 (emulated: e4m3 forward / e5m2 gradient rounding in f32 with per-tensor delayed scaling, on ${backend.name}; no backend has fp8 matmuls yet)`;
  const dtype = LOW_DTYPE[precision];
  const scaling = precision === "fp16" ? ", dynamic loss scaling" : "";
  if (backend.name === "cpu") return `${precision} (emulated: matmul operands and outputs stored as ${dtype} and rounded, f32 accumulation, on cpu${scaling})`;
  // NOTE: the WGSL renderer stores f16 and bf16 but computes in f32 even where the adapter has shader-f16.
  const why = precision === "fp16" ? (backend.caps.f16Math ? "the adapter has shader-f16, kiln's WGSL does not use it yet" : "the adapter has no shader-f16") : "WGSL has no bf16 arithmetic";
  return `${precision} (emulated: ${dtype} storage, f32 math on ${backend.name}: ${why}${scaling})`;
}

const LOW_DTYPE: Readonly<Record<"bf16" | "fp16", DType>> = { bf16: "bf16", fp16: "f16" };

export class MixedPrecision {
  readonly precision: Precision;
  readonly path: string;
  readonly scaler: DynamicLossScaler | undefined;
  readonly fp8: Fp8DelayedScaling | undefined;
  private readonly policy: MatmulPolicy | undefined;

  constructor(backend: Backend, opts: PrecisionOptions = {}) {
    this.precision = opts.precision ?? "fp32";
    if (!PRECISIONS.includes(this.precision)) throw new Error(`precision: '${String(this.precision)}' is not one of ${PRECISIONS.join(", ")}`);
    if (opts.lossScale && this.precision !== "fp16") throw new Error(`precision ${this.precision}: lossScale options apply to fp16 only`);
    if (opts.fp8 && this.precision !== "fp8") throw new Error(`precision ${this.precision}: fp8 options apply to fp8 only`);
    this.path = describePrecision(this.precision, backend);
    if (this.precision === "bf16" || this.precision === "fp16") {
      const low = LOW_DTYPE[this.precision];
      if (!backend.caps.dtypes.includes(low)) throw new Error(`precision ${this.precision}: the ${backend.name} backend does not store ${low}`);
      this.policy = (a, b, matmul) => matmul(a.cast(low), b.cast(low)).cast(a.dtype);
    }
    if (this.precision === "fp16") this.scaler = new DynamicLossScaler(backend, opts.lossScale);
    if (this.precision === "fp8") {
      this.fp8 = new Fp8DelayedScaling(backend, opts.fp8);
      this.policy = this.fp8.policy;
    }
  }

  /** The loss scale the next step's backward starts from (1 unless fp16; as read after the last step). */
  get lossScale(): number { return this.scaler?.scale ?? 1; }

  /** Build a forward under this precision; `training` records fp8 amaxes (eval does not). */
  forward<T>(fn: () => T, training: boolean): T {
    this.fp8?.beginForward(training);
    return autocast(this.policy, fn);
  }

  /** What the backward starts from for a loss weighted `weight` (times the loss scale under fp16). */
  lossSeed(loss: Tensor, weight: number): Tensor {
    return this.scaler ? this.scaler.scaleTensor().mul(weight) : loss.full([], weight);
  }

  /** The gradients of the unscaled loss (divided by the loss scale under fp16). */
  unscale(grads: readonly Tensor[]): Tensor[] {
    if (!this.scaler) return [...grads];
    const inv = this.scaler.scaleTensor().recip();
    return grads.map((g) => g.mul(inv));
  }

  /**
   * Whether the step's update applies, as a bool scalar on the device (fp16: the gradients are finite,
   * from their global norm `gradNorm`, unscaled); undefined: always (the other modes never skip).
   */
  guard(gradNorm: Tensor): Tensor | undefined {
    // NOTE: NaN < inf and inf < inf are both false: one comparison covers both kinds of overflow.
    return this.scaler ? gradNorm.lt(Infinity) : undefined;
  }

  /**
   * The step's assignments of the precision's own state (realize them with the step): the loss scale
   * moved by `guard`'s verdict, fp8's amax histories and scales rolled forward with this step's amaxes.
   */
  updates(guard: Tensor | undefined): Tensor[] {
    const writes = this.fp8?.updates() ?? [];
    if (this.scaler) {
      if (!guard) throw new Error("MixedPrecision.updates: fp16 needs the step's guard (guard(gradNorm))");
      writes.push(this.scaler.update(guard));
    }
    return writes;
  }

  /** The persistent tensors a step reads and writes (a capture binds them; fp8's appear as its first forward builds its sites). */
  stateTensors(): Tensor[] {
    return [...(this.scaler?.stateTensors() ?? []), ...(this.fp8?.stateTensors() ?? [])];
  }

  /** The saved state of stateTensors() (a checkpoint's, in that order) back in place. */
  restore(values: readonly Float32Array[]): void {
    const has = values.length > 0;
    if (!this.scaler && !this.fp8) {
      if (has) throw new Error(`mixed precision: the saved state has ${values.length} precision buffer(s) (loss scale or fp8 scales), but this run is ${this.path}`);
      return;
    }
    if (this.scaler) {
      if (!has) throw new Error("mixed precision: the saved state has no loss scale, but this run is fp16 (dynamic loss scaling)");
      this.scaler.restore(values[0]!);
    }
    this.fp8?.restore(values.slice(this.scaler ? 1 : 0));
  }

  /** After the step is realized: whether it was skipped (fp16: its gradients overflowed), reading the loss scale's state (one small read). */
  async endStep(): Promise<{ skipped: boolean }> {
    if (!this.scaler) return { skipped: false };
    await this.scaler.read();
    return { skipped: this.scaler.skipped };
  }
}
