// The pieces mixed-precision training is built from, on cpu: rounding to the fp8 grids against values
// worked out by hand from the formats' definitions (E4M3: 3 mantissa bits, smallest normal 2^-6, max 448;
// E5M2: 2 bits, 2^-14, 57344), customGrad (a gradient given by the caller) and autocast (a matmul policy
// scoped to the graphs built inside it).

import { describe, expect, it } from "vitest";
import { autocast, customGrad, FP8_E4M3, FP8_E5M2, getBackend, gradients, matmul, roundToFormat, tensor } from "../../src/index.js";
import type { Tensor } from "../../src/index.js";
import { bf16BitsToF32, f32ToBf16Bits } from "../../src/core/dtype.js";

const cpu = await getBackend("cpu");
const vec = (xs: readonly number[]) => tensor(Float32Array.from(xs), { backend: cpu });
const rounded = async (xs: readonly number[], f = FP8_E4M3) => Array.from(await roundToFormat(vec(xs), f).data());

describe("roundToFormat (fp8 emulation)", () => {
  it("E4M3: values on the grid stay, the max is 448, larger magnitudes and infinities saturate, NaN stays NaN", async () => {
    expect(await rounded([0, 1, -1, 1.125, 448, 240, 0.015625, 2 ** -9])).toEqual([0, 1, -1, 1.125, 448, 240, 0.015625, 2 ** -9]);
    // 464 lies halfway between 448 and 480, but 480 is not finite in E4M3 (it is NaN's pattern): saturated.
    expect(await rounded([449, 464, 479, 1e9, -500, Infinity, -Infinity])).toEqual([448, 448, 448, 448, -448, 448, -448]);
    expect((await rounded([NaN]))[0]).toBeNaN();
  });

  it("E4M3: round to nearest, ties to even (in the normals and in the subnormals)", async () => {
    // Spacing in [1, 2) is 2^-3: 1.0625 is halfway between 1 (even mantissa 000) and 1.125 (001).
    expect(await rounded([1.0625, 1.1875, 1.07, 17, 19, 0.1, -0.1])).toEqual([1, 1.25, 1.125, 16, 20, 0.1015625, -0.1015625]);
    // Subnormal spacing 2^-9: 0.5 and 1.5 and 2.5 spacings round to 0, 2 and 2 spacings.
    expect(await rounded([2 ** -10, 1.5 * 2 ** -9, 2.5 * 2 ** -9, 2 ** -11])).toEqual([0, 2 ** -8, 2 ** -8, 0]);
    // Just below the smallest normal: 2^-6 - 2^-10 sits halfway between 7 and 8 subnormal steps: to 8 (even).
    expect(await rounded([2 ** -6 - 2 ** -10])).toEqual([2 ** -6]);
  });

  it("E5M2: max 57344, subnormals down to 2^-16, ties to even", async () => {
    const f = FP8_E5M2;
    expect(await rounded([57344, 60000, 61440, 1e6], f)).toEqual([57344, 57344, 57344, 57344]);
    expect(await rounded([2 ** -16, 2 ** -17, 3 * 2 ** -17, 2 ** -14], f)).toEqual([2 ** -16, 0, 2 ** -15, 2 ** -14]);
    // Spacing in [1, 2) is 2^-2: 1.125 ties to 1 (even), 1.375 to 1.5 (even), 0.1 goes to 6 * 2^-6.
    expect(await rounded([1.125, 1.375, 1.3, 0.1, -3.5], f)).toEqual([1, 1.5, 1.25, 0.09375, -3.5]);
  });

  it("every E4M3 value is a fixed point and the midpoints between neighbours round to the even one", async () => {
    // The 126 positive finite E4M3 values from their bit patterns (exponent field 0: subnormals; 0x7f is NaN).
    const grid: number[] = [];
    for (let bits = 1; bits < 0x7f; bits++) {
      const e = bits >> 3, m = bits & 7;
      grid.push(e === 0 ? m * 2 ** -9 : (1 + m / 8) * 2 ** (e - 7));
    }
    expect(Math.max(...grid)).toBe(448);
    expect(await rounded(grid)).toEqual(grid);
    const mids = grid.slice(0, -1).map((g, i) => (g + grid[i + 1]!) / 2);
    const even = grid.slice(0, -1).map((g, i) => ((i + 1) % 2 === 0 ? g : grid[i + 1]!)); // pattern i+1 is g's
    expect(await rounded(mids)).toEqual(even);
  });
});

describe("customGrad", () => {
  it("keeps the forward value and replaces the gradient", async () => {
    const x = vec([1, -2, 3]);
    x.requiresGrad = true;
    const y = customGrad([x], () => x.mul(2), (g) => [g.mul(10)]);
    expect(Array.from(await y.data())).toEqual([2, -4, 6]);
    const [gx] = gradients([y.sum()], [x], [y.sum().full([], 1)]);
    expect(Array.from(await gx!.data())).toEqual([10, 10, 10]); // the rule's 2 would give 2s
  });

  it("names a gradient of the wrong shape or count", () => {
    const x = vec([1, 2]);
    x.requiresGrad = true;
    const bad = customGrad([x], () => x, (g) => [g.sum()]);
    expect(() => gradients([bad.sum()], [x], [bad.sum().full([], 1)])).toThrow(/customGrad: gradient 0 has shape \(\), its input \(2\)/);
    const two = customGrad([x], () => x, (g) => [g, g]);
    expect(() => gradients([two.sum()], [x], [two.sum().full([], 1)])).toThrow(/2 gradients for 1 inputs/);
  });
});

describe("autocast", () => {
  const bf16 = (v: number) => bf16BitsToF32(f32ToBf16Bits(v));
  const a = [1.001, 2.0039, -0.3333, 0.7], b = [0.1, 3.14159, 1.0001, -2.71828];
  const mm = (x: readonly number[], y: readonly number[]) => [0, 1, 2, 3].map((i) => x[(i >> 1) * 2]! * y[i & 1]! + x[(i >> 1) * 2 + 1]! * y[2 + (i & 1)]!);
  const policy = (p: Tensor, q: Tensor, m: (a: Tensor, b: Tensor) => Tensor) => m(p.cast("bf16"), q.cast("bf16")).cast("f32");

  it("runs every float matmul built inside through the policy, and only those", async () => {
    const [A, B] = [tensor(a, { backend: cpu, shape: [2, 2] }), tensor(b, { backend: cpu, shape: [2, 2] })];
    const low = Array.from(await autocast(policy, () => matmul(A, B)).data());
    expect(low).toEqual(mm(a.map(bf16), b.map(bf16)).map(bf16));
    const plain = Array.from(await matmul(A, B).data());
    expect(plain).not.toEqual(low);
    plain.forEach((v, i) => expect(v).toBeCloseTo(mm(a, b)[i]!, 5));
    // A scope inside a scope turns it off (a reduction spelled as a matmul stays f32).
    expect(Array.from(await autocast(policy, () => autocast(undefined, () => matmul(A, B))).data())).toEqual(plain);
  });

  it("the matmul's backward then runs on the rounded operands", async () => {
    const [A, B] = [tensor(a, { backend: cpu, shape: [2, 2] }), tensor(b, { backend: cpu, shape: [2, 2] })];
    A.requiresGrad = true;
    const y = autocast(policy, () => matmul(A, B)).sum();
    const [gA] = gradients([y], [A], [y.full([], 1)]);
    // dL/dA = 1 @ B^T: row sums of bf16(B), rounded to bf16 as the backward matmul's output.
    const rows = [bf16(b[0]!) + bf16(b[1]!), bf16(b[2]!) + bf16(b[3]!)].map(bf16);
    expect(Array.from(await gA!.data())).toEqual([rows[0], rows[1], rows[0], rows[1]]);
  });
});
