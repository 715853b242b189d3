// Spec cases for floats: IEEE 754 special values (NaN is sticky through arithmetic, max and min;
// compares false except !=; ±Inf by the usual rules), results rounded to the stored dtype with
// round-to-nearest-even (f32 overflow to Inf; f16 ties, overflow at 65520 and subnormals; bf16
// ties and overflow), float remainder with the dividend's sign, and pow as JS's Math.pow.

import type { SpecCase } from "./spec_case.js";
import { bin, un } from "./spec_case.js";

const NaN_ = NaN, Inf = Infinity;
/** f16 subnormals are multiples of 2^-24; bf16's largest finite value is (2 - 2^-7) * 2^127. */
const H = 2 ** -24, BF_MAX = 3.3895313892515355e38;
// NOTE: WGSL's pow is exp2(b * log2(a)), a few ulp off on exact powers; the special cases stay exact.
const POW_TOL = { rtol: 1e-6, atol: 0 };

export const FLOAT_CASES: readonly SpecCase[] = [
  // f32 arithmetic: special values and rounding of the stored result
  bin("add", "f32", "Inf - Inf is NaN, overflow is Inf, ties to even",
    [Inf, Inf, 3e38, 16777216, 16777216, 0.1, NaN_], [-Inf, 1, 3e38, 1, 3, 0.2, 1],
    [NaN_, Inf, Inf, 16777216, 16777220, 0.30000001192092896, NaN_]),
  bin("sub", "f32", "Inf - Inf is NaN", [Inf, 1, -Inf], [Inf, 1, Inf], [NaN_, 0, -Inf]),
  bin("mul", "f32", "0 * Inf is NaN, overflow is Inf", [0, Inf, 1e20, 3, -2], [Inf, -2, 1e20, 0.5, -0], [NaN_, -Inf, Inf, 1.5, 0]),
  bin("div", "f32", "x / 0 is ±Inf, 0 / 0 and Inf / Inf are NaN", [1, -1, 0, Inf, 7, -6], [0, 0, 0, Inf, 2, Inf], [Inf, -Inf, NaN_, NaN_, 3.5, -0]),
  bin("mod", "f32", "the dividend's sign; x % Inf = x; Inf % x and x % 0 are NaN",
    [5.5, -5.5, 5, Inf, 5, -0.75], [2, 2, Inf, 2, 0, 0.5], [1.5, -1.5, 5, NaN_, NaN_, -0.25]),
  bin("max", "f32", "NaN wins from either side", [NaN_, 1, -Inf, 3], [1, NaN_, 3, Inf], [NaN_, NaN_, 3, Inf]),
  bin("min", "f32", "NaN wins from either side", [NaN_, 1, -Inf, 3], [1, NaN_, 3, Inf], [NaN_, NaN_, -Inf, 3]),
  bin("pow", "f32", "as Math.pow: x^0 = 1 even for NaN, 1^NaN = NaN, negative bases",
    [2, -2, -2, 0, 0, NaN_, 1, 4, -3], [10, 3, 0.5, -1, 0, 0, NaN_, 0.5, 2], [1024, -8, NaN_, Inf, 1, 1, NaN_, 2, 9], POW_TOL),
  bin("cmplt", "f32", "NaN compares false", [NaN_, 1, -Inf, -0, 1, NaN_], [1, NaN_, Inf, 0, 1, NaN_], [0, 0, 1, 0, 0, 0]),
  bin("cmpeq", "f32", "NaN is not equal to itself, -0 equals 0", [NaN_, 1, -Inf, -0, 1, NaN_], [1, NaN_, Inf, 0, 1, NaN_], [0, 0, 0, 1, 1, 0]),
  bin("cmpne", "f32", "NaN differs from everything", [NaN_, 1, -Inf, -0, 1, NaN_], [1, NaN_, Inf, 0, 1, NaN_], [1, 1, 1, 0, 0, 1]),

  // f32 unary ops at their special points
  un("exp", "f32", "NaN, ±Inf, overflow and underflow", [NaN_, Inf, -Inf, 0, 89, -110], [NaN_, Inf, 0, 1, Inf, 0]),
  un("log", "f32", "log 0 = -Inf, log of a negative is NaN", [NaN_, Inf, -Inf, 0, -0, -1, 1], [NaN_, Inf, NaN_, -Inf, -Inf, NaN_, 0]),
  un("sqrt", "f32", "sqrt of a negative is NaN", [NaN_, Inf, -Inf, -1, 4, 0, 2.25], [NaN_, Inf, NaN_, NaN_, 2, 0, 1.5]),
  un("recip", "f32", "1 / 0 = Inf, 1 / Inf = 0", [0, Inf, 4, NaN_, 0.5], [Inf, 0, 0.25, NaN_, 2]),
  un("tanh", "f32", "saturates to ±1", [NaN_, Inf, -Inf, 0, 20, -20], [NaN_, 1, -1, 0, 1, -1]),
  un("sin", "f32", "NaN at ±Inf", [NaN_, Inf, -Inf, 0], [NaN_, NaN_, NaN_, 0]),
  un("cos", "f32", "NaN at ±Inf", [NaN_, Inf, -Inf, 0], [NaN_, NaN_, NaN_, 1]),
  un("abs", "f32", "of ±Inf and NaN", [-Inf, NaN_, -0, -3.5], [Inf, NaN_, 0, 3.5]),
  un("neg", "f32", "of ±Inf and NaN", [Inf, NaN_, 0, 2], [-Inf, NaN_, -0, -2]),
  un("floor", "f32", "toward -Inf; ±Inf and NaN unchanged", [-0.5, 2.5, -2.5, Inf, -Inf, NaN_, 1e10], [-1, 2, -3, Inf, -Inf, NaN_, 1e10]),
  {
    name: "where f32: picks NaN and ±Inf through unchanged",
    inputs: [{ dtype: "bool", data: [1, 0, 1, 0] }, { dtype: "f32", data: [NaN_, NaN_, Inf, 1] }, { dtype: "f32", data: [1, -Inf, 0, NaN_] }],
    fn: (c, a, b) => c!.where(a!, b!),
    want: [NaN_, -Inf, Inf, NaN_],
  },

  // f16: results round to nearest even in f16
  bin("add", "f16", "ties to even, overflow at 65520, subnormal results",
    [1, 1, 65504, 60000, 2048, 2 ** -14], [2 ** -11, 3 * 2 ** -11, 16, 10000, 1, -(2 ** -15)],
    [1, 1.001953125, Inf, Inf, 2048, 2 ** -15]),
  bin("mul", "f16", "subnormal ties to even", [3 * H, H, 2 ** -14], [0.5, 0.5, 2 ** -10], [2 * H, 0, H]),
  bin("div", "f16", "x / 0 is ±Inf, 0 / 0 is NaN", [1, -1, 0], [0, 0, 0], [Inf, -Inf, NaN_]),
  bin("max", "f16", "NaN wins", [NaN_, 1], [1, NaN_], [NaN_, NaN_]),

  // bf16: 8 significant bits
  bin("add", "bf16", "ties to even, overflow to Inf", [256, 256, 1, 1, BF_MAX], [1, 3, 2 ** -8, 1.5 * 2 ** -8, BF_MAX],
    [256, 260, 1, 1.0078125, Inf]),
  bin("mul", "bf16", "0 * Inf is NaN", [0, -2], [Inf, Inf], [NaN_, -Inf]),
];
