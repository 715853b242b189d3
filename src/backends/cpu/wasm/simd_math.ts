// simd_math.ts emits an f32x4 tanh into a wasm function body, for generated kernels (render_wasm.ts); exp is
// exp_f32.ts's (shared with the attention kernel). It reads a v128 local and leaves the result in a new one,
// with plain WebAssembly SIMD only.
//   tanh: the [13/6] rational kernel_helpers.ts's tanhF uses (Eigen's float tanh), evaluated in f32, on x
//        clamped to +-7.9053, and x itself for |x| < 0.0004: within 3 ulp of tanh below |x| = 7.9; beyond,
//        +-1, which is within 3e-7 (5 ulp) of the exact value up to |x| = 8.7 and exact after.
// It owns the formula, not where it is used.

import type { FuncBody } from "./encoder.js";
import { V128 } from "./encoder.js";

/** Pushes splat(v) (f32). */
const splat = (f: FuncBody, v: number) => f.f32Const(v).vec("f32x4.splat");

/** result = ((c[0] * x + c[1]) * x + c[2]) ... (Horner), x a v128 local; leaves it on the stack. */
function horner(f: FuncBody, x: number, coeffs: readonly number[]): void {
  splat(f, coeffs[0]!);
  for (const k of coeffs.slice(1)) f.get(x).vec("f32x4.mul").f32Const(k).vec("f32x4.splat").vec("f32x4.add");
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
