// Spec cases for casts. Float to integer truncates toward zero and then wraps modulo 2^32 (2^8), as
// JS's ToInt32/ToUint32 do: NaN and ±Inf give 0 and nothing saturates. Integer to float and float to
// a narrower float round to nearest even (f16: overflow at 65520, subnormals down to 2^-24; bf16:
// 8 significant bits, keeps f32's range and subnormals). Anything to bool is x != 0, NaN included.

import type { SpecCase } from "./spec_case.js";
import { cast } from "./spec_case.js";

const NaN_ = NaN, Inf = Infinity, MIN = -2147483648;
const H = 2 ** -24; // the smallest f16 subnormal
const F32_MAX = 3.4028234663852886e38, BF_MAX = 3.3895313892515355e38;

export const CAST_CASES: readonly SpecCase[] = [
  cast("f32", "i32", "truncates toward zero, NaN and ±Inf give 0, out of range wraps",
    [2.9, -2.9, 0.5, -0.5, NaN_, Inf, -Inf, 3e9, 2147483648, -2147483904, 1e10, -1e10],
    [2, -2, 0, 0, 0, 0, 0, -1294967296, MIN, 2147483392, 1410065408, -1410065408]),
  cast("f32", "u32", "truncates, negatives and out of range wrap", [3.7, -1.5, 5e9, NaN_, 4294967296, 4294967040],
    [3, 4294967295, 705032704, 0, 0, 4294967040]),
  cast("f32", "u8", "truncates, then keeps the low 8 bits", [300.7, -1, 255.9, 256, NaN_, -0.5], [44, 255, 255, 0, 0, 0]),
  cast("f32", "bool", "x != 0: NaN and subnormals are true", [0, -0, NaN_, 0.5, 1e-45, -Inf], [0, 0, 1, 1, 1, 1]),
  cast("i32", "f32", "rounds large values to nearest even", [16777217, 16777219, 2147483647, -2147483647, 33554435, -16777217],
    [16777216, 16777220, 2147483648, -2147483648, 33554436, -16777216]),
  cast("u32", "f32", "rounds large values to nearest even", [4294967295, 16777217, 4294967040], [4294967296, 16777216, 4294967040]),
  cast("i32", "u32", "reinterprets the bits", [-1, MIN, 5], [4294967295, 2147483648, 5]),
  cast("u32", "i32", "reinterprets the bits", [4294967295, 2147483648, 5], [-1, MIN, 5]),
  cast("i32", "u8", "keeps the low 8 bits", [257, -1, 255, -256], [1, 255, 255, 0]),
  cast("u8", "i32", "zero-extends", [200, 0, 255], [200, 0, 255]),
  cast("i32", "bool", "x != 0", [0, -1, 2147483647, MIN], [0, 1, 1, 1]),
  cast("bool", "f32", "0 or 1", [1, 0], [1, 0]),
  cast("bool", "i32", "0 or 1", [1, 0], [1, 0]),
  cast("f32", "f16", "ties to even, overflow at 65520, subnormals",
    [1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, 65519, 65520, 1e5, -1e5, H, H / 2, 0.75 * H, 1e-8, NaN_, 0.1, -0],
    [1, 1.001953125, 65504, 65504, Inf, Inf, -Inf, H, 0, H, 0, NaN_, 0.0999755859375, -0]),
  cast("f32", "bf16", "ties to even, overflow past the largest bf16, subnormals",
    [1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 1.5 * 2 ** -8, F32_MAX, BF_MAX, -F32_MAX, NaN_, 1e-40, 0.1],
    [1, 1.015625, 1.0078125, Inf, BF_MAX, -Inf, NaN_, 2 ** -133, 0.10009765625]),
  cast("f16", "f32", "is exact", [65504, H, -Inf, NaN_], [65504, H, -Inf, NaN_]),
  cast("f16", "bf16", "rounds to 8 significant bits", [1 + 2 ** -10, 1 + 5 * 2 ** -10, 65504], [1, 1.0078125, 65536]),
  cast("u32", "f16", "rounds, overflows to Inf", [65504, 65520, 4294967295, 2049], [65504, Inf, Inf, 2048]),
];
