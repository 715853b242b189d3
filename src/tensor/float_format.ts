// float_format.ts: rounding f32 values to a narrower floating-point format's grid, written with
// primitives, for formats no backend stores (fp8: the op table has no fp8 dtype). The values stay
// f32; only which f32 values occur changes, so fp8 training is emulated exactly on every backend.
// It owns the formats' parameters (OCP FP8: E4M3 "fn" without infinities, E5M2) and the rounding;
// the scaling recipe that decides what is rounded lives in train/precision/.

import type { Tensor } from "./tensor.js";

export interface FloatFormat {
  readonly name: string;
  /** Stored mantissa bits (the significand has one more, implicit, for normals). */
  readonly mantissaBits: number;
  /** Exponent of the smallest normal (1.0 x 2^minExp); below it the spacing stays 2^(minExp - mantissaBits). */
  readonly minExp: number;
  /** Largest finite value; larger magnitudes saturate to it (as Transformer Engine's casts do). */
  readonly max: number;
}

/** E4M3 (OCP "fn"): bias 7, max 448 = 1.75 x 2^8, smallest subnormal 2^-9. */
export const FP8_E4M3: FloatFormat = { name: "e4m3", mantissaBits: 3, minExp: -6, max: 448 };
/** E5M2: bias 15, max 57344 = 1.75 x 2^15, smallest subnormal 2^-16. */
export const FP8_E5M2: FloatFormat = { name: "e5m2", mantissaBits: 2, minExp: -14, max: 57344 };

/**
 * x rounded to the nearest value of `format` (ties to even), magnitudes above its max saturated to it,
 * NaN kept. Same shape and dtype as x; no gradient (wrap it in customGrad for a straight-through one).
 */
export function roundToFormat(x: Tensor, format: FloatFormat): Tensor {
  const { mantissaBits: m, minExp, max } = format;
  // Saturate first: a rounded value can then never pass max (max is on the grid).
  // NOTE: `a` and `spacing` are kept in buffers (contiguous): the expression below reads each many times,
  // and fused inline it made kernel expressions (and their cache keys) hundreds of copies of x's own.
  const a = x.abs().minimum(max).contiguous();
  const two = a.full([], 2);
  // The binade: 2^e <= a < 2^(e+1), at least minExp (zero and subnormals share the smallest spacing).
  // NOTE: log's last-bit error can put floor(log2 a) one off at a power of two; the two comparisons fix it.
  let e = a.log().div(Math.LN2).floor().maximum(minExp);
  e = a.ge(two.pow(e.add(1))).where(e.add(1), e);
  e = a.lt(two.pow(e)).and(e.gt(minExp)).where(e.sub(1), e);
  const spacing = two.pow(e.sub(m)).contiguous();
  const y = a.div(spacing); // exact: a power-of-two division
  const f = y.floor();
  const d = y.sub(f);
  const up = d.gt(0.5).or(d.eq(0.5).and(f.mod(2).eq(1)));
  const r = up.where(f.add(1), f).mul(spacing);
  return x.lt(0).where(r.neg(), r);
}
