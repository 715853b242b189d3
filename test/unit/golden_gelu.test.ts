// golden_gelu.test.ts: kiln's gelu (tanh approximation and the erf form) against PyTorch's
// torch.nn.functional.gelu (approximate="tanh" / "none") in float64, at inputs from 0 and 1e-30 up to
// ±1e30 (test/fixtures/golden/gelu.json, made by make_golden.py), on every backend present.
// The large inputs matter: x^3 overflows float32 past |x| ~ 7e12, and tanh(±inf) must
// still give x and 0, not NaN.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Backend, DType } from "../../src/index.js";
import { gelu, getBackend, tensor } from "../../src/index.js";
import { backendsUnderTest } from "../conformance/harness.js";
import { fixture } from "../helpers/fixtures.js";
import { noBackend, skipLabel } from "../helpers/skip_reasons.js";

interface GeluGolden {
  readonly x: number[];
  readonly tanh: number[];
  readonly erf: number[];
}
const G = JSON.parse(readFileSync(fixture("golden/gelu.json"), "utf8")) as GeluGolden;

// Error bounds as multiples of |x| (gelu(x) = x Φ(x) with Φ in [0, 1], and an absolute bound
// would say nothing at x = 1e-8 while a relative one is unreachable where gelu(x) underflows to ~0).
// NOTE: f32: a few float32 ulps of x (6e-8 |x| each) from the cubic, tanh/exp and the final product.
// f64 tanh: the same in float64. f64 erf: kiln's erf is Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7,
// so |gelu error| <= 0.5 |x| 1.5e-7: the bound states that approximation's accuracy, not rounding.
const BOUND: Record<"f32" | "f64", Record<"tanh" | "erf", number>> = {
  f32: { tanh: 4e-7, erf: 4e-7 },
  f64: { tanh: 1e-14, erf: 7.6e-8 },
};

/** The worst |kiln - torch| / |x| over the golden inputs (x = 0 must give exactly 0). */
async function worst(backend: Backend, dtype: DType, approximate: "tanh" | "erf"): Promise<{ ratio: number; at: number }> {
  const got = await gelu(tensor(G.x, { backend, dtype }), approximate).data();
  let ratio = 0;
  let at = 0;
  G.x.forEach((x, i) => {
    const err = Math.abs(got[i]! - G[approximate][i]!);
    const r = x === 0 ? (err === 0 ? 0 : Infinity) : err / Math.abs(x);
    if (!(r <= ratio)) [ratio, at] = [Number.isNaN(r) ? Infinity : r, x];
  });
  return { ratio, at };
}

for (const { name, backend, missing } of await backendsUnderTest()) describe.skipIf(!backend)(`gelu against PyTorch on ${name}${skipLabel(noBackend(name, missing))}`, () => {
  it.each(["tanh", "erf"] as const)("%s, float32", async (approximate) => {
    const { ratio, at } = await worst(backend!, "f32", approximate);
    expect(ratio, `worst at x = ${at}`).toBeLessThan(BOUND.f32[approximate]);
  });
});

describe("gelu against PyTorch, float64 on cpu", () => {
  it.each(["tanh", "erf"] as const)("%s", async (approximate) => {
    const { ratio, at } = await worst(await getBackend("cpu"), "f64", approximate);
    expect(ratio, `worst at x = ${at}`).toBeLessThan(BOUND.f64[approximate]);
  });
});
