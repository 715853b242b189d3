// jit replays a captured step with new inputs (no compiling, no graph work); realize reuses
// intermediate buffers by liveness.

import { describe, expect, it } from "vitest";
import { CountingBackend } from "../helpers/counting_backend.js";
import { jit, matmul, softmax, tensor } from "../../src/index.js";


describe("jit", () => {
  it("replays with new inputs, equal to eager, without compiling", async () => {
    const backend = new CountingBackend();
    const w = tensor([[1, -1, 0.5], [2, 0, 1]], { backend });
    const step = (x: (typeof w)) => softmax(matmul(x, w).mul(2)).sum(-1, true).add(x.sum());
    const f = jit(step);
    const inputs = [[[1, 2]], [[0.5, -3]], [[4, 1]]].map((d) => tensor(d, { backend }));
    const first = await (await f(inputs[0]!))[0]!.data();
    expect(Array.from(first)).toEqual(Array.from(await step(inputs[0]!).data()));
    for (const x of inputs.slice(1)) {
      const [launchesBefore, compilesBefore] = [backend.launches, backend.compiles];
      const [out] = await f(x);
      expect(backend.launches - launchesBefore).toBe(f.launches);
      expect(backend.compiles).toBe(compilesBefore);
      expect(Array.from(await out!.data())).toEqual(Array.from(await step(x).data()));
    }
    await expect(f(tensor([[1, 2, 3]], { backend }))).rejects.toThrow(/captured for f32\(1,2\)/);
    f.dispose();
  });
});

describe("buffer reuse by liveness", () => {
  it("a chain of same-sized intermediates reuses buffers", async () => {
    const backend = new CountingBackend();
    let x = tensor(Array.from({ length: 64 }, (_, i) => i / 64), { backend, shape: [8, 8] });
    // Each step ends in a reduction, so each is its own kernel with an (8, 1) intermediate... made (8, 8) by a matmul.
    for (let i = 0; i < 6; i++) x = matmul(x, x).mul(0.1).sub(x.max(1, true));
    const before = backend.allocs;
    await x.realize();
    const kernels = 12;
    expect(backend.launches).toBeGreaterThanOrEqual(kernels);
    expect(backend.allocs - before).toBeLessThan(kernels / 2);
  });
});
