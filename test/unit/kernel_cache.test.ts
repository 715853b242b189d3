// kernel_cache.test.ts: a backend's compiled-kernel cache answers only for the same source. Two
// kernels whose cache keys collide in a 32-bit hash (found here by brute force over kernel names)
// must each run their own body, on every backend present.

import { afterAll, describe, expect, it } from "vitest";
import type { KernelSpec } from "../../src/core/ir.js";
import { add, c, hashString, load, v } from "../../src/core/ir.js";
import { renderJs } from "../../src/backends/cpu/render_js.js";
import { CpuBackend } from "../../src/backends/cpu/backend.js";
import { skipLabel } from "../helpers/skip_reasons.js";
import { runSpec, tryWebgpu } from "./webgpu_compare.js";

/** out = x + k, under a given kernel name (the name is part of the rendered source). */
const addK = (name: string, k: number): KernelSpec => ({
  name, n: 4, out: "f32", inputs: ["f32"], body: add(load(1, v("gid"), "f32"), c(k, "f32")),
});

/** The key the cpu backend once hashed: dtypes, then the JS source. */
const cpuKeyHash = (s: KernelSpec) => hashString(`${[s.out, ...s.inputs].join(",")}\n${renderJs(s)}`);

/**
 * Names for an `x + 1` and an `x + 2` kernel whose cpu keys share an FNV-1a hash. A birthday search:
 * 2^17 names on one side make a hit expected within ~2^15 names on the other. Each body is rendered
 * once and the name substituted (the first test checks the pair against a real render).
 */
function collidingPair(): [KernelSpec, KernelSpec] {
  const keyOf = (k: number) => {
    const [head, tail] = `f32,f32\n${renderJs(addK("NAME", k))}`.split("NAME") as [string, string];
    return (name: string) => hashString(head + name + tail);
  };
  const [one, two] = [keyOf(1), keyOf(2)];
  const seen = new Map<string, string>();
  for (let i = 0; i < 1 << 17; i++) seen.set(one(`one_${i.toString(36)}`), `one_${i.toString(36)}`);
  for (let j = 0; j < 1 << 20; j++) {
    const a = seen.get(two(`two_${j.toString(36)}`));
    if (a !== undefined) return [addK(a, 1), addK(`two_${j.toString(36)}`, 2)];
  }
  throw new Error("no FNV-1a collision found among 2^17 x 2^20 kernel names");
}

const { gpu, missing } = await tryWebgpu();
afterAll(() => gpu?.dispose());
const [one, two] = collidingPair();
const x = [0, 1.5, -3, 100];

describe("kernel cache", () => {
  it("the two kernels really collide in the 32-bit hash, and their sources differ", () => {
    expect(cpuKeyHash(one)).toBe(cpuKeyHash(two));
    expect(renderJs(one)).not.toBe(renderJs(two));
  });

  // NOTE: the pair collides in the cpu key; on webgpu the WGSL texts differ, so there this only pins that
  // the pipeline cache (keyed by the full source and layout) hands each kernel its own pipeline.
  for (const [name, make] of [["cpu", async () => new CpuBackend()], ["webgpu", async () => gpu]] as const) {
    it.skipIf(name === "webgpu" && !gpu)(`${name}: each colliding kernel runs its own body${name === "webgpu" ? skipLabel(missing) : ""}`, async () => {
      const backend = (await make())!;
      // Compile both before running either, so the second compile meets the first in the cache.
      const exeOne = await backend.compile(one);
      const exeTwo = await backend.compile(two);
      expect(exeTwo).not.toBe(exeOne);
      expect(await runSpec(backend, two, [x])).toEqual(x.map((e) => e + 2));
      expect(await runSpec(backend, one, [x])).toEqual(x.map((e) => e + 1));
    });
  }
});
