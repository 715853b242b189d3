// Tensor.assign: a realized tensor's own buffer as the destination of a kernel (persistent state updated
// in place), on every backend present; a jit-captured step that assigns keeps updating the same buffer on
// each replay; and the assignments realize must refuse, because a kernel would read over the write.

import { describe, expect, it } from "vitest";
import { jit, realizeAll, tensor } from "../../src/index.js";
import { backendsUnderTest } from "../conformance/harness.js";
import { noBackend, skipLabel } from "../helpers/skip_reasons.js";

const backends = await backendsUnderTest();

describe("Tensor.assign", () => {
  for (const b of backends) {
    it.skipIf(!b.backend)(`${b.name}: writes the value into the destination's own buffer${skipLabel(noBackend(b.name, b.missing))}`, async () => {
      const backend = b.backend!;
      const s = await tensor([1, 2, 3, 4], { backend }).realize();
      const x = tensor([10, 20, 30, 40], { backend });
      const buffer = s.node.buffer;
      const total = s.sum(); // read before the write: the old values
      const a = s.assign(s.mul(2).add(x));
      await realizeAll([total, a]);
      expect(s.node.buffer).toBe(buffer);
      expect(Array.from(await s.data())).toEqual([12, 24, 36, 48]);
      expect(Array.from(await a.data())).toEqual([12, 24, 36, 48]);
      expect(await total.item()).toBe(10);
    });

    it.skipIf(!b.backend)(`${b.name}: a jit replay updates the state again each call${skipLabel(noBackend(b.name, b.missing))}`, async () => {
      const backend = b.backend!;
      const s = await tensor([0, 1, 2], { backend }).realize();
      // Each call: returns sum(s * x) of the state before it, then s <- s + x.
      const step = jit((x) => [s.mul(x).sum(), s.assign(s.add(x))]);
      const host = [0, 1, 2];
      for (const xs of [[1, 1, 1], [2, 0, -1], [0.5, 3, 4], [1, 2, 3]]) {
        const expected = host.reduce((a, v, i) => a + v * xs[i]!, 0);
        const [dot] = await step(tensor(xs, { backend }));
        expect(await dot!.item()).toBe(expected);
        xs.forEach((v, i) => (host[i] = host[i]! + v));
        expect(Array.from(await s.data())).toEqual(host);
      }
      step.dispose();
      expect(Array.from(await s.data())).toEqual(host); // the state is the caller's, not the jit's
    });
  }

  it("rejects a destination that is not realized, and a value of another shape or dtype", async () => {
    const lazy = tensor([1, 2]).add(1);
    expect(() => lazy.assign(tensor([0, 0]))).toThrow(/destination .* must be realized/);
    const s = await tensor([1, 2]).realize();
    expect(() => s.assign(tensor([1, 2, 3]))).toThrow(/does not match the destination/);
    expect(() => s.assign(tensor([1, 2], { dtype: "i32" }))).toThrow(/does not match the destination/);
  });

  it("runs the write after the kernels that read the old values, whatever order the targets came in", async () => {
    const s = await tensor([1, 2, 3, 4]).realize();
    const a = s.assign(s.add(1));
    const total = s.sum();
    await realizeAll([a, total]);
    expect(await total.item()).toBe(10);
    expect(Array.from(await s.data())).toEqual([2, 3, 4, 5]);
  });

  it("realize refuses an assignment whose reads cannot come before its write, and two into one buffer", async () => {
    const s = await tensor([1, 2, 3, 4], { shape: [2, 2] }).realize();
    // The writer reads the destination at another element (a transpose): it would read half-written values.
    await expect(s.assign(s.transpose()).realize()).rejects.toThrow(/reads it other than elementwise/);
    // One kernel reads the old values (s) and the new ones (a): no order works.
    const a = s.assign(s.add(1));
    await expect(a.add(s).realize()).rejects.toThrow(/reads its old values after it is written/);
    await expect(realizeAll([s.assign(s.add(1)), s.assign(s.add(2))])).rejects.toThrow(/two assignments into one/);
    expect(Array.from(await s.data())).toEqual([1, 2, 3, 4]); // nothing launched
  });
});
