// views.test.ts: buffer views (tensor/buffer_view.ts, Backend.view) on every backend present: a view
// reads its range of the base, kernels and assignments through it write the base's memory (and only
// that range), a view of a view, and the errors (unaligned, out of range, unrealized or disposed base).

import { describe, expect, it } from "vitest";
import { bufferView, realizeAll, tensor } from "../../src/index.js";
import { noBackend, skipLabel } from "../helpers/skip_reasons.js";
import { backendsUnderTest, values } from "./harness.js";

const backends = await backendsUnderTest();

for (const b of backends) {
  describe.skipIf(!b.backend)(`buffer views on ${b.name}${skipLabel(noBackend(b.name, b.missing))}`, () => {
    const backend = b.backend!;
    // Offsets in elements that are legal on this backend (webgpu: multiples of 64 f32s).
    const step = (backend.caps.viewAlignBytes ?? 4) / 4;
    const n = 4 * step + 10;
    const host = Float32Array.from(values(n, "f32", 7));
    const base = () => tensor(host.slice(), { backend, shape: [n] });

    it("reads its range of the base, in its own shape", async () => {
      const v = bufferView(base(), step, [2, 3]);
      expect(Array.from(await v.data())).toEqual(Array.from(host.subarray(step, step + 6)));
      expect(await v.toArray()).toEqual([Array.from(host.subarray(step, step + 3)), Array.from(host.subarray(step + 3, step + 6))]);
    });

    it("kernels read it (a sum and an elementwise op of two views)", async () => {
      const p = base();
      const [x, y] = [bufferView(p, 0, [5]), bufferView(p, 2 * step, [5])];
      const got = await x.mul(2).add(y).data();
      const want = Array.from({ length: 5 }, (_, i) => Math.fround(Math.fround(host[i]! * 2) + host[2 * step + i]!));
      expect(Array.from(got)).toEqual(want);
      expect(await y.sum().item()).toBeCloseTo(host.subarray(2 * step, 2 * step + 5).reduce((a, c) => a + c, 0), 4);
    });

    it("an assignment into a view writes the base's memory there and nowhere else", async () => {
      const p = base();
      const v = bufferView(p, step, [3]);
      await realizeAll([v.assign(v.mul(10).add(1))]);
      const want = host.slice();
      for (let i = step; i < step + 3; i++) want[i] = Math.fround(Math.fround(host[i]! * 10) + 1);
      expect(Array.from(await p.data())).toEqual(Array.from(want));
      // The base's new values are what a second view over the same range sees.
      expect(Array.from(await bufferView(p, step, [3]).data())).toEqual(Array.from(want.subarray(step, step + 3)));
    });

    it("assignments into the base and reads of views order like reads of the base", async () => {
      const p = base();
      const v = bufferView(p, 0, [4]);
      const before = v.mul(1).contiguous(); // reads the old values
      const write = p.assign(p.add(1));
      await realizeAll([write, before]);
      expect(Array.from(await before.data())).toEqual(Array.from(host.subarray(0, 4)));
      expect(Array.from(await v.data())).toEqual(Array.from(host.subarray(0, 4), (x) => Math.fround(x + 1)));
    });

    it("two assignments into disjoint views of one base in one realization", async () => {
      const p = base();
      const at = step * Math.ceil(4 / step);
      const [x, y] = [bufferView(p, 0, [3]), bufferView(p, at, [3])];
      await realizeAll([x.assign(y.mul(2)), y.assign(y.add(1))]);
      const got = await p.data();
      for (let i = 0; i < 3; i++) {
        expect(got[i]).toBe(Math.fround(host[at + i]! * 2)); // read y before y was written
        expect(got[at + i]).toBe(Math.fround(host[at + i]! + 1));
      }
      expect(got[3]).toBe(host[3]);
    });

    it("a view of a view is a view of the base", async () => {
      const p = base();
      const outer = bufferView(p, step, [3 * step]);
      const inner = bufferView(outer, step, [2]);
      expect(inner.node.viewOf?.base).toBe(p.node);
      expect(Array.from(await inner.data())).toEqual(Array.from(host.subarray(2 * step, 2 * step + 2)));
    });

    it("refuses unaligned, out-of-range and unrealized bases; a disposed base makes the view unusable", async () => {
      const p = base();
      expect(() => bufferView(p, n - 2, [3])).toThrow(/outside the base's/);
      expect(() => bufferView(p.add(1), 0, [2])).toThrow(/must be realized/);
      if (step > 1) expect(() => bufferView(p, 1, [2])).toThrow(/multiples of 256 bytes/);
      const v = bufferView(p, 0, [2]);
      p.dispose();
      expect(() => bufferView(p, 0, [2])).toThrow(/disposed/);
      await expect(v.add(1).data()).rejects.toThrow(/view of a disposed tensor/);
    });

    it("an assignment reading an overlapping but different view is refused", async () => {
      const p = base();
      const [x, y] = [bufferView(p, 0, [2 * step]), bufferView(p, step, [2 * step])];
      await expect(realizeAll([x.assign(y.add(1))])).rejects.toThrow(/shares part of its memory/);
    });
  });
}
