// The cpu backend's float-precision tanh (kernel_helpers.ts tanhF) against Math.tanh (exact to double
// precision): within 3 ulp of f32 everywhere, and the special values as Math.tanh gives them.

import { describe, expect, it } from "vitest";
import { tanhF } from "../../src/backends/cpu/kernel_helpers.js";

/** Distance in f32 ulps (of the reference's magnitude) between two values. */
function ulps(got: number, want: number): number {
  const w = Math.fround(want);
  const exp = Math.max(Math.floor(Math.log2(Math.abs(w))), -126);
  return Math.abs(Math.fround(got) - w) / 2 ** (exp - 23);
}

describe("tanhF", () => {
  it("is within 3 f32 ulps of Math.tanh over [-12, 12] (dense sweep) and at tiny inputs", () => {
    let worst = 0;
    let at = 0;
    for (let i = -1_200_000; i <= 1_200_000; i++) {
      const x = Math.fround(i * 1e-5);
      if (x === 0) continue;
      const u = ulps(tanhF(x), Math.tanh(x));
      if (u > worst) [worst, at] = [u, x];
    }
    for (const x of [1e-30, -1e-20, 3e-4, 4e-4, 4.1e-4, 7.9053, 7.9054, 9, -9]) {
      const u = ulps(tanhF(x), Math.tanh(x));
      if (u > worst) [worst, at] = [u, x];
    }
    expect(worst, `worst ${worst} ulps at x = ${at}`).toBeLessThanOrEqual(3);
  });

  it("gives NaN, ±1 and signed zeros as Math.tanh does", () => {
    expect(tanhF(NaN)).toBeNaN();
    expect(tanhF(Infinity)).toBe(1);
    expect(tanhF(-Infinity)).toBe(-1);
    expect(tanhF(50)).toBe(1);
    expect(tanhF(-50)).toBe(-1);
    expect(Object.is(tanhF(0), 0)).toBe(true);
    expect(Object.is(tanhF(-0), -0)).toBe(true);
  });

  it("is odd", () => {
    for (const x of [0.1, 0.5, 1, 2.5, 5, 7.5]) expect(tanhF(-x)).toBe(-tanhF(x));
  });
});
