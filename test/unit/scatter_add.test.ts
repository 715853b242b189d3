// scatterAdd (the embedding gradient) as a routine: it is chosen over the one-hot reduction, sums a
// real vocabulary's rows against sums written here, and names what is wrong with bad input. The
// routine's agreement with its reference on every backend is the conformance suite's (routines.test.ts).

import { describe, expect, it } from "vitest";
import { getBackend, scatterAdd, tensor } from "../../src/index.js";
import { schedule } from "../../src/core/schedule.js";

const cpu = await getBackend("cpu");

describe("scatterAdd", () => {
  it("is one scatter_add routine, not a one-hot reduction, at GPT-2's vocabulary (50257 rows)", async () => {
    const rows = 50257, cols = 16, n = 64;
    const idx = Array.from({ length: n }, (_, i) => (i * 7919) % 97 === 3 ? rows + i : (i * 104729) % rows);
    idx[5] = idx[9]!; // a repeated token
    const src = Array.from({ length: n * cols }, (_, i) => Math.sin(i + 1) * 2);
    const out = scatterAdd(rows, tensor(idx, { backend: cpu, dtype: "i32" }), tensor(src, { backend: cpu, shape: [n, cols] }));
    const items = schedule([out.node]);
    expect(items.map((it) => (it.kind === "routine" ? "routine" : it.kind))).toEqual(["routine"]);
    const want = new Map<number, number[]>();
    idx.forEach((r, i) => {
      if (r >= rows) return; // out of range: adds nothing
      const acc = want.get(r) ?? new Array<number>(cols).fill(0);
      for (let c = 0; c < cols; c++) acc[c]! += src[i * cols + c]!;
      want.set(r, acc);
    });
    const got = await out.data();
    expect(got.length).toBe(rows * cols);
    let nonzero = 0, bad = "";
    for (let r = 0; r < rows; r++) {
      const w = want.get(r);
      for (let c = 0; c < cols; c++) {
        const g = got[r * cols + c]!;
        const expected = w ? w[c]! : 0;
        if (Math.abs(g - expected) > 1e-5 && !bad) bad = `row ${r} col ${c}: ${g}, want ${expected}`;
        if (g !== 0) nonzero++;
      }
    }
    expect(bad).toBe("");
    expect(nonzero).toBe(want.size * cols);
  });

  it("names what is wrong with its input", () => {
    const i = tensor([0, 1], { backend: cpu, dtype: "i32" });
    const s = tensor([[1, 2], [3, 4]], { backend: cpu });
    expect(() => scatterAdd(3, tensor([0.5, 1], { backend: cpu }), s)).toThrow(/integer indices.*\(2\) f32/);
    expect(() => scatterAdd(3, tensor([0, 1, 2], { backend: cpu, dtype: "i32" }), s)).toThrow(/src \(N, \.\.\.\).*\(3\) i32 and \(2, 2\)/);
    expect(() => scatterAdd(-1, i, s)).toThrow(/size >= 0.*got -1/);
  });
});
