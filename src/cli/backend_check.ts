// backend_check.ts: the small numeric check `kiln backends` runs on every available backend: a
// matmul, a softmax and an elementwise chain computed on that backend in f32, compared with the
// same computation on the cpu backend in f64. It owns the inputs, the tolerance and the timing;
// it does not decide which backends to check or how results are printed (backends_command.ts).

import type { Backend, Tensor } from "../index.js";
import { getBackend, matmul, softmax, tensor } from "../index.js";

export const CHECK_SIZE = 64;
export const CHECK_DTYPE = "f32";
/** NOTE: f32 rounding here stays near 1e-6; a wrong kernel is off by 1e-2 or more. */
export const CHECK_TOLERANCE = 1e-4;
export const CHECK_DESCRIPTION =
  `${CHECK_SIZE}x${CHECK_SIZE} ${CHECK_DTYPE} matmul -> softmax -> elementwise chain, ` +
  `compared with the cpu backend in f64 (tolerance ${CHECK_TOLERANCE.toExponential()})`;

export interface CheckResult {
  readonly pass: boolean;
  /** NaN when the backend produced a NaN, or the check threw. */
  readonly maxAbsError: number;
  readonly tolerance: number;
  /** First run: uploads, kernel compilation, launches and read-back. */
  readonly firstMs: number;
  /** Second run with new inputs of the same shapes: compiled kernels come from the cache. */
  readonly warmMs: number;
  readonly error?: string;
}

/** Deterministic values in [-1, 1), already rounded to f32 so every backend sees the same inputs. */
function hostValues(seed: number, n: number): Float32Array {
  // NOTE: mulberry32; any fixed stream does, this one needs no kiln RNG on the checked backend.
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * 2 - 1;
  }
  return out;
}

/** The computation checked: every value stays O(1), so an absolute tolerance is meaningful. */
function compute(a: Tensor, b: Tensor): Tensor {
  const p = softmax(matmul(a, b).mul(1 / Math.sqrt(CHECK_SIZE))); // (N, N), rows sum to 1
  return p.mul(CHECK_SIZE).sub(a.abs().sqrt()).tanh().add(a.mul(b).exp().mul(0.5)); // (N, N)
}

async function runOn(backend: Backend, aHost: Float32Array, bHost: Float32Array, asF64: boolean): Promise<Float64Array> {
  const shape = [CHECK_SIZE, CHECK_SIZE];
  const a = tensor(aHost, { backend, dtype: CHECK_DTYPE, shape });
  const b = tensor(bHost, { backend, dtype: CHECK_DTYPE, shape });
  const out = asF64 ? compute(a.cast("f64"), b.cast("f64")) : compute(a, b);
  try {
    return Float64Array.from(await out.data());
  } finally {
    for (const t of [a, b, out]) t.dispose();
  }
}

function maxAbsError(got: Float64Array, want: Float64Array): number {
  let max = 0;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i]! - want[i]!);
    if (!(err <= max)) max = err; // NOTE: NaN is kept once seen (every comparison with NaN is false)
    if (Number.isNaN(max)) return NaN;
  }
  return max;
}

export async function checkBackend(backend: Backend): Promise<CheckResult> {
  const n = CHECK_SIZE * CHECK_SIZE;
  const [a0, b0, a1, b1] = [hostValues(1, n), hostValues(2, n), hostValues(3, n), hostValues(4, n)];
  let firstMs = NaN;
  let warmMs = NaN;
  try {
    const cpu = await getBackend("cpu");
    let t0 = performance.now();
    const got0 = await runOn(backend, a0, b0, false);
    firstMs = performance.now() - t0;
    t0 = performance.now();
    const got1 = await runOn(backend, a1, b1, false);
    warmMs = performance.now() - t0;
    const err = Math.max(
      maxAbsError(got0, await runOn(cpu, a0, b0, true)),
      maxAbsError(got1, await runOn(cpu, a1, b1, true)),
    );
    return { pass: err <= CHECK_TOLERANCE, maxAbsError: err, tolerance: CHECK_TOLERANCE, firstMs, warmMs };
  } catch (err) {
    const msg = `check failed: ${(err as Error).message}`;
    return { pass: false, maxAbsError: NaN, tolerance: CHECK_TOLERANCE, firstMs, warmMs, error: msg };
  }
}
