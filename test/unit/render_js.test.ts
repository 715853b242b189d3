// render_js.test.ts: the cpu renderer's cheap spellings, each checked against values computed here.
// A non-zero constant divisor needs no x / 0 guard (index math divides by shape constants in every
// generated kernel), yet division must still truncate toward zero, keep x / 0 = x and x % 0 = 0 where the
// divisor is not a constant. A kernel split into rows computes row-invariant nodes once per row.

import { describe, expect, it } from "vitest";
import type { Expr, KernelSpec } from "../../src/core/ir.js";
import { add, alu, c, idiv, load, mod, v } from "../../src/core/ir.js";
import { renderJs } from "../../src/backends/cpu/render_js.js";

const gid = v("gid");

describe("render_js: integer division", () => {
  it("integer division and remainder by a non-zero constant are spelled without the x / 0 guard", () => {
    const spec = (d: Expr): KernelSpec => ({ name: "k", n: 4, out: "i32", inputs: ["i32"], body: add(idiv(load(1, gid, "i32"), d), mod(gid, d)) });
    expect(renderJs(spec(c(3)))).not.toContain("=== 0");
    expect(renderJs(spec(load(1, c(0), "i32")))).toContain("=== 0");
    // And still truncates toward zero, keeps x / 0 = x and x % 0 = 0.
    const run = (d: Expr, data: number[]) => {
      const out = new Int32Array(4);
      new Function(renderJs(spec(d)))()(out, Int32Array.from(data));
      return [...out];
    };
    expect(run(c(3), [-7, 7, -1, 5])).toEqual([-2 + 0, 2 + 1, 0 + 2, 1 + 0]);
    expect(run(load(1, c(0), "i32"), [0, 7, -1, 5])).toEqual([0 + 0, 7 + 0, -1 + 0, 5 + 0]);
  });

  it("a constant divisor keeps each dtype's wrap: MIN / -1 = MIN and MIN % -1 = 0 (i32), unsigned u32 and u8", () => {
    const MIN = -(2 ** 31);
    const run = (dtype: "i32" | "u32" | "u8", d: number, x: number[], op: typeof idiv) => {
      const out = dtype === "i32" ? new Int32Array(x.length) : dtype === "u32" ? new Uint32Array(x.length) : new Uint8Array(x.length);
      const inp = dtype === "i32" ? Int32Array.from(x) : dtype === "u32" ? Uint32Array.from(x) : Uint8Array.from(x);
      const spec: KernelSpec = { name: "k", n: x.length, out: dtype, inputs: [dtype], body: op(load(1, gid, dtype), c(d, dtype)) };
      new Function(renderJs(spec))()(out, inp);
      return [...out];
    };
    expect(run("i32", -1, [MIN, 7, -7], idiv)).toEqual([MIN, -7, 7]);
    expect(run("i32", -1, [MIN, 7, -7], mod)).toEqual([0, 0, 0]);
    expect(run("i32", -4, [-9, 9], mod)).toEqual([-1, 1]);
    expect(run("u32", 2, [2 ** 32 - 1, 7], idiv)).toEqual([2147483647, 3]);
    expect(run("u32", 10, [2 ** 32 - 1, 7], mod)).toEqual([5, 7]);
    expect(run("u8", 3, [200, 7], idiv)).toEqual([66, 2]);
  });
});

describe("render_js: rows", () => {
  // x[gid] - m[gid / 4] * sqrt(v[gid / 4]) + w[gid % 4]: a layernorm-like kernel over rows of 4.
  const row = (n: number): KernelSpec => {
    const r = idiv(gid, c(4));
    const scaled = alu("mul", load(2, r, "f32"), alu("sqrt", load(3, r, "f32")));
    return { name: "k", n, out: "f32", inputs: ["f32", "f32", "f32", "f32"], body: add(alu("sub", load(1, gid, "f32"), scaled), load(4, mod(gid, c(4)), "f32")) };
  };
  const run = (k: KernelSpec, x: number[], m: number[], v2: number[], w: number[]) => {
    const out = new Float32Array(k.n);
    new Function(renderJs(k))()(out, Float32Array.from(x), Float32Array.from(m), Float32Array.from(v2), Float32Array.from(w));
    return [...out];
  };

  it("computes what reads gid only as gid / D (D a multiple of the row) once per row, with the same values", () => {
    const src = renderJs(row(12));
    const outer = src.slice(0, src.indexOf("for (let gid = row;"));
    expect(outer).toContain("Math.sqrt");
    expect(outer).not.toMatch(/b1\[|b4\[/);
    const x = [1.5, -2, 3.25, 4, 5, 6, 7, 8, 9, 10, 11, 12.5];
    const [m, v2, w] = [[0.5, -1, 2], [4, 2, 9], [0.1, 0.2, 0.3, 0.4]];
    const want = x.map((xi, i) => Math.fround(xi - Math.fround(m[Math.floor(i / 4)]!) * Math.sqrt(Math.fround(v2[Math.floor(i / 4)]!)) + Math.fround(w[i % 4]!)));
    expect(run(row(12), x, m, v2, w)).toEqual(want);
  });

  it("keeps the flat loop when the rows do not tile the output", () => {
    expect(renderJs(row(10))).not.toContain("row");
    const x = Array.from({ length: 10 }, (_, i) => i / 3);
    const [m, v2, w] = [[0.5, -1, 2], [4, 2, 9], [0.1, 0.2, 0.3, 0.4]];
    const want = x.map((xi, i) => Math.fround(Math.fround(xi) - Math.fround(m[Math.floor(i / 4)]!) * Math.sqrt(Math.fround(v2[Math.floor(i / 4)]!)) + Math.fround(w[i % 4]!)));
    expect(run(row(10), x, m, v2, w)).toEqual(want);
  });
});

describe("render_js: reductions along the outputs (neighbouring columns summed side by side)", () => {
  const ridx = v("ridx");
  // Column reduction of a (rows, cols) f32 matrix in slot 1: out[gid] = op over ridx of x[ridx * cols + gid].
  const colReduce = (op: "sum" | "max", rows: number, cols: number, epilogue?: Expr): KernelSpec => ({
    name: "k", n: cols, out: "f32", inputs: ["f32", "f32"],
    reduce: { op, size: rows, dtype: "f32" },
    body: alu("mul", load(1, add(alu("mul", ridx, c(cols)), gid), "f32"), load(2, ridx, "f32")),
    ...(epilogue ? { epilogue } : {}),
  });
  const run = (k: KernelSpec, x: number[], w: number[]) => {
    const out = new Float32Array(k.n);
    new Function(renderJs(k))()(out, Float32Array.from(x), Float32Array.from(w));
    return [...out];
  };
  const [rows, cols] = [37, 8];
  const x = Array.from({ length: rows * cols }, (_, i) => Math.fround(Math.sin(i * 1.7) * 3));
  const w = Array.from({ length: rows }, (_, i) => Math.fround(1 + i / 7));
  // Each column summed over ridx in increasing order in doubles, then rounded once: the plain form's bits.
  const colSums = Array.from({ length: cols }, (_, j) => {
    let acc = 0;
    for (let r = 0; r < rows; r++) acc += Math.fround(x[r * cols + j]!) * w[r]!;
    return acc;
  });

  it("a column sum takes 4 columns per pass over ridx, with the same bits as a column at a time", () => {
    const src = renderJs(colReduce("sum", rows, cols));
    expect(src).toContain("gid += 4");
    expect(src).toContain("acc3 +=");
    // The weight reads only ridx: loaded once per step, shared by the four columns.
    expect(src.split("b2[ridx]").length - 1).toBe(1);
    expect(run(colReduce("sum", rows, cols), x, w)).toEqual(colSums.map(Math.fround));
  });

  it("with an epilogue (reads the sum as stored) and for max, NaN sticky and -Infinity kept", () => {
    const epi = add(alu("mul", v("acc", "f32"), c(2, "f32")), load(2, gid, "f32"));
    expect(run(colReduce("sum", rows, cols, epi), x, w)).toEqual(colSums.map((s, j) => Math.fround(Math.fround(s) * 2 + w[j]!)));
    const xm = [...x];
    xm[2 * cols + 1] = NaN;
    for (let r = 0; r < rows; r++) xm[r * cols + 3] = -Infinity;
    const want = Array.from({ length: cols }, (_, j) => {
      let acc = -Infinity;
      for (let r = 0; r < rows; r++) { const t = Math.fround(xm[r * cols + j]!) * w[r]!; if (t > acc || t !== t) acc = t; }
      return Math.fround(acc);
    });
    expect(renderJs(colReduce("max", rows, cols))).toContain("acc3");
    const got = run(colReduce("max", rows, cols), xm, w);
    expect(got[1]).toBeNaN();
    expect(got[3]).toBe(-Infinity);
    expect(got).toEqual(want);
  });

  it("keeps one column at a time for row sums, outputs not a multiple of 4, and index math that reads memory", () => {
    const rowSum: KernelSpec = { name: "k", n: rows, out: "f32", inputs: ["f32"], reduce: { op: "sum", size: cols, dtype: "f32" },
      body: load(1, add(alu("mul", gid, c(cols)), ridx), "f32") };
    expect(renderJs(rowSum)).not.toContain("acc0");
    expect(renderJs(colReduce("sum", rows, 6))).not.toContain("acc0");
    const gathered: KernelSpec = { ...colReduce("sum", rows, cols), body: load(1, add(alu("mul", load(2, ridx, "i32"), c(cols)), gid), "f32") };
    expect(renderJs(gathered)).not.toContain("acc0");
  });
});
