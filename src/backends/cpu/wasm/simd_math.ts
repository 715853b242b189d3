// simd_math.ts emits f32x4 exp and tanh into a wasm function body, for generated kernels (render_wasm.ts).
// Both read a v128 local and leave the result in a new one; they use only plain WebAssembly SIMD.
//   exp: Cephes' expf (range reduction x = n ln2 + r, a degree-6 polynomial in r), scaled by 2^n as two
//        halves so that results in the subnormal range come out right; within 2 ulp of the exact value over
//        the whole f32 range (test/unit/wasm_kernels.test.ts sweeps it against Math.exp). NaN stays NaN,
//        -Inf and x < -104 give 0, x > 88.73 gives +Inf.
//   tanh: the [13/6] rational kernel_helpers.ts's tanhF uses (Eigen's float tanh), evaluated in f32, on x
//        clamped to +-7.9053, and x itself for |x| < 0.0004: within 3 ulp of tanh below |x| = 7.9; beyond,
//        +-1, which is within 3e-7 (5 ulp) of the exact value up to |x| = 8.7 and exact after.
// It owns the formulas, not where they are used.

import type { FuncBody } from "./encoder.js";
import { V128 } from "./encoder.js";

/** Pushes splat(v) (f32). */
const splat = (f: FuncBody, v: number) => f.f32Const(v).vec("f32x4.splat");

/** result = ((c[0] * x + c[1]) * x + c[2]) ... (Horner), x a v128 local; leaves it on the stack. */
function horner(f: FuncBody, x: number, coeffs: readonly number[]): void {
  splat(f, coeffs[0]!);
  for (const k of coeffs.slice(1)) f.get(x).vec("f32x4.mul").f32Const(k).vec("f32x4.splat").vec("f32x4.add");
}

/** exp(x) of a v128 local; returns the local holding the result. */
export function emitExp(f: FuncBody, xIn: number): number {
  const x = f.local(V128);
  const fx = f.local(V128);
  const r = f.local(V128);
  const n = f.local(V128);
  const half = f.local(V128);
  const out = f.local(V128);
  // x clamped to [-104, 88.8] (min/max keep NaN): below, the result rounds to 0; above, overflows to Inf.
  f.get(xIn).f32Const(-104).vec("f32x4.splat").vec("f32x4.max").f32Const(88.8).vec("f32x4.splat").vec("f32x4.min").set(x);
  f.get(x).f32Const(Math.LOG2E).vec("f32x4.splat").vec("f32x4.mul").vec("f32x4.nearest").set(fx);
  // r = x - n*ln2, with ln2 split in two (Cephes' C1 + C2) so the product is exact enough.
  f.get(x).get(fx).f32Const(0.693359375).vec("f32x4.splat").vec("f32x4.mul").vec("f32x4.sub");
  f.get(fx).f32Const(-2.12194440e-4).vec("f32x4.splat").vec("f32x4.mul").vec("f32x4.sub").set(r);
  // p(r) = 1 + r + r^2 * poly(r)
  horner(f, r, [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1]);
  f.get(r).get(r).vec("f32x4.mul").vec("f32x4.mul").get(r).vec("f32x4.add").f32Const(1).vec("f32x4.splat").vec("f32x4.add").set(out);
  // 2^n as 2^a * 2^b with a = n >> 1, b = n - a: each factor stays a normal float for n in [-150, 128].
  f.get(fx).vec("i32x4.trunc_sat_f32x4_s").set(n);
  f.get(n).i32(1).vec("i32x4.shr_s").set(half);
  const scaleBy = () => f.i32(127).vec("i32x4.splat").vec("i32x4.add").i32(23).vec("i32x4.shl").get(out).vec("f32x4.mul").set(out);
  f.get(half);
  scaleBy();
  f.get(n).get(half).vec("i32x4.sub");
  scaleBy();
  // NOTE: -Inf clamps to -104, whose exp rounds to 0 through the two scalings; NaN passes through min/max.
  return out;
}

/** tanh(x) of a v128 local; returns the local holding the result. */
export function emitTanh(f: FuncBody, xIn: number): number {
  const x = f.local(V128);
  const x2 = f.local(V128);
  const p = f.local(V128);
  const out = f.local(V128);
  const clamp = 7.90531110763549805;
  f.get(xIn).f32Const(-clamp).vec("f32x4.splat").vec("f32x4.max").f32Const(clamp).vec("f32x4.splat").vec("f32x4.min").set(x);
  f.get(x).get(x).vec("f32x4.mul").set(x2);
  horner(f, x2, [-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-8, 1.48572235717979e-5, 6.37261928875436e-4, 4.89352455891786e-3]);
  f.get(x).vec("f32x4.mul").set(p);
  horner(f, x2, [1.19825839466702e-6, 1.18534705686654e-4, 2.268434632439e-3, 4.89352518554385e-3]);
  f.set(out);
  f.get(p).get(out).vec("f32x4.div").set(out);
  // |x| < 0.0004: tanh(x) = x to f32 precision (and keeps -0 and tiny values exact).
  f.get(xIn).get(out).get(xIn).vec("f32x4.abs").f32Const(0.0004).vec("f32x4.splat").vec("f32x4.lt").vec("v128.bitselect").set(out);
  return out;
}
