// kernel_helpers.ts: the host functions that JS the cpu backend generates may call (render_js.ts spells
// calls to them; backend.ts and matmul_epilogue.ts bind them when they compile a source): f16/bf16 bits
// to and from numbers, rounding to f16/bf16, and tanh at float precision.

import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../core/dtype.js";
import { f16Values } from "./convert.js";

const f16Table = f16Values();

/**
 * tanh to float precision (at most 3 ulp of f32 from the exact value; NaN and ±Inf as Math.tanh), for
 * f32, f16 and bf16 math; f64 math keeps Math.tanh.
 * NOTE: Math.tanh is exact to double precision and costs ~20 ns: in a small GPT-2's training step the
 * GELUs (forward and the backward's recompute) spent 60-100 ms of ~450 in it. This is a [13/6] rational
 * approximation on |x| < 7.9 (odd numerator, even denominator, as Eigen's float tanh uses), 5x faster.
 * NaN falls through the comparisons into it and comes out NaN.
 */
export function tanhF(x: number): number {
  const a = Math.abs(x);
  if (a < 0.0004) return x;
  if (a >= 7.9) {
    // Out here the approximation loses its last bits; the exp form is exact enough (and rare in practice).
    const t = 1 - 2 / (Math.exp(2 * a) + 1);
    return x > 0 ? t : -t;
  }
  const x2 = x * x;
  let p = -2.76076847742355e-16;
  p = p * x2 + 2.00018790482477e-13;
  p = p * x2 - 8.60467152213735e-11;
  p = p * x2 + 5.12229709037114e-8;
  p = p * x2 + 1.48572235717979e-5;
  p = p * x2 + 6.37261928875436e-4;
  p = p * x2 + 4.89352455891786e-3;
  let q = 1.19825839466702e-6;
  q = q * x2 + 1.18534705686654e-4;
  q = q * x2 + 2.268434632439e-3;
  q = q * x2 + 4.89352518554385e-3;
  return (x * p) / q;
}

/** Names and functions a generated source is compiled against (`new Function(...names, source)`). */
export const KERNEL_HELPERS = {
  h2f: (h: number) => f16Table[h]!,
  f2h: f32ToF16Bits,
  bh2f: bf16BitsToF32,
  f2bh: f32ToBf16Bits,
  f16round: (x: number) => f16BitsToF32(f32ToF16Bits(x)),
  bf16round: (x: number) => bf16BitsToF32(f32ToBf16Bits(x)),
  tanhF,
};

/** Compiles a generated source whose body returns a function, with the helpers bound. */
export function compileWithHelpers<F>(source: string): F {
  const make = new Function(...Object.keys(KERNEL_HELPERS), source) as (...h: unknown[]) => F;
  return make(...Object.values(KERNEL_HELPERS));
}
