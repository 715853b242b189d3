// Conformance: every primitive op of the op table, every dtype each backend supports, against the
// float64 cpu reference. Shapes include 0 and 1 sized axes, odd sizes, broadcasting and views.
// NOTE: cpu is not in this loop: its reference is built by the same renderer and lowering, so a cpu
// case here could not fail. spec.test.ts pins cpu's semantics with hand-written expected values.

import { describe, expect, it } from "vitest";
import type { DType } from "../../src/index.js";
import { arange } from "../../src/index.js";
import { BINARY_OPS, UNARY_OPS } from "../../src/core/ops.js";
import { noBackend, skipLabel } from "../helpers/skip_reasons.js";
import { backendsUnderTest, conform, expectClose, tolerance } from "./harness.js";

const backends = await backendsUnderTest();
const FLOATS: DType[] = ["f32", "f16", "bf16"];
const INTS: DType[] = ["i32", "u32", "u8"];

// Each unary op's domain, so random inputs exercise it rather than produce NaN everywhere.
const UNARY_DOMAIN: Record<(typeof UNARY_OPS)[number], [number, number] | "int"> = {
  neg: [-3, 3], recip: [0.5, 3], sqrt: [0, 4], exp: [-4, 4], log: [0.1, 4], sin: [-3, 3], cos: [-3, 3],
  tanh: [-3, 3], abs: [-3, 3], floor: [-3, 3], not: "int",
};

const BINARY_FLOAT = BINARY_OPS.filter((o) => !["and", "or", "xor", "shl", "shr"].includes(o));

for (const b of backends.filter((x) => x.name !== "cpu")) {
  describe.skipIf(!b.backend)(`ops on ${b.name}${skipLabel(noBackend(b.name, b.missing))}`, () => {
    for (const op of UNARY_OPS) {
      const dom = UNARY_DOMAIN[op];
      const dtypes = dom === "int" ? (["i32", "u32", "bool"] as DType[]) : FLOATS;
      for (const dt of dtypes) {
        it(`unary ${op} ${dt}`, async (ctx) => {
          const [lo, hi] = dom === "int" ? [-100, 100] : dom;
          // Transcendentals differ by a few ulp between JS and GPUs; f32 gets a wider band for them.
          const scale = ["exp", "log", "sin", "cos", "tanh", "sqrt", "recip"].includes(op) && dt === "f32" ? 5 : 1;
          for (const shape of [[0], [1], [37], [3, 5, 7]]) {
            await conform(ctx, b, `unary ${op}`, dt, [{ shape, lo, hi }], (x) => x.unary(op), scale);
          }
        });
      }
    }

    for (const op of BINARY_FLOAT) {
      for (const dt of [...FLOATS, ...INTS]) {
        if (op === "pow" && !FLOATS.includes(dt)) continue;
        it(`binary ${op} ${dt} with broadcasting`, async (ctx) => {
          const lo = op === "pow" ? 0.1 : -2, hi = 2;
          await conform(ctx, b, `binary ${op}`, dt, [{ shape: [3, 1, 5], lo, hi }, { shape: [4, 5], lo: op === "pow" ? -2 : lo, hi, seed: 99 }], (x, y) => x.binary(op, y), op === "pow" ? 5 : 1);
          await conform(ctx, b, `binary ${op}`, dt, [{ shape: [1] }, { shape: [0, 1], seed: 3 }], (x, y) => x.binary(op, y));
        });
      }
    }

    for (const op of ["and", "or", "xor", "shl", "shr"] as const) {
      for (const dt of ["i32", "u32", ...(op.startsWith("sh") ? [] : ["bool"])] as DType[]) {
        it(`bitwise ${op} ${dt}`, async (ctx) => {
          const second = op.startsWith("sh") ? { shape: [9], data: [0, 1, 2, 3, 5, 8, 13, 21, 31] } : { shape: [9], seed: 5 };
          await conform(ctx, b, `bitwise ${op}`, dt, [{ shape: [2, 9] }, second], (x, y) => x.binary(op, y));
        });
      }
    }

    it("where with broadcasting and mixed operands", async (ctx) => {
      for (const dt of [...FLOATS, "i32"] as DType[]) {
        await conform(ctx, b, "where", dt, [{ shape: [4, 1], dtype: "bool" }, { shape: [4, 6] }, { shape: [6], seed: 4 }], (c, x, y) => c.where(x, y));
      }
    });

    const CASTS: [DType, DType][] = [
      ["f32", "i32"], ["f32", "u8"], ["f32", "bool"], ["f32", "f16"], ["f32", "bf16"], ["f16", "f32"], ["bf16", "f32"],
      ["f16", "bf16"], ["i32", "f32"], ["i32", "u32"], ["u8", "i32"], ["bool", "f32"], ["bool", "i32"], ["u32", "f16"],
    ];
    for (const [from, to] of CASTS) {
      it(`cast ${from} -> ${to}`, async (ctx) => {
        const lo = ["u8", "u32"].includes(to) ? 0 : -100, hi = to === "u8" ? 255 : 100;
        await conform(ctx, b, `cast ${from} ${to}`, from, [{ shape: [5, 7], lo, hi }], (x) => x.cast(to));
      });
    }

    for (const dt of [...FLOATS, "i32", "u32"] as DType[]) {
      it(`reductions ${dt}: sum and max over axes, keepdim, sizes 0 and 1`, async (ctx) => {
        const tol = dt === "f32" ? 1 : 4;
        for (const op of ["sum", "max"] as const) {
          for (const [shape, axis, keep] of [
            [[3, 4, 5], 1, false], [[3, 4, 5], [0, 2], true], [[3, 4, 5], undefined, false], [[1], 0, true],
            [[7, 1, 3], 1, false], [[33, 65], -1, false], [[2, 0, 3], 2, false],
          ] as [number[], number | number[] | undefined, boolean][]) {
            await conform(ctx, b, `reduce ${op}`, dt, [{ shape, lo: -2, hi: 2 }], (x) => x.reduce(op, axis, keep), tol);
          }
        }
        // An empty reduction: sum is 0, max is -inf.
        await conform(ctx, b, "reduce sum empty axis", dt, [{ shape: [3, 0] }], (x) => x.sum(1));
      });
    }

    it("large full reductions (one output, many elements)", async (ctx) => {
      await conform(ctx, b, "reduce sum large", "f32", [{ shape: [70001], lo: 0, hi: 1 }], (x) => x.sum(), 50);
      await conform(ctx, b, "reduce max large", "f32", [{ shape: [256, 513] }], (x) => x.max());
      await conform(ctx, b, "reduce sum columns", "f32", [{ shape: [2000, 3] }], (x) => x.sum(0), 20);
    });

    for (const dt of [...FLOATS, "i32", "u8", "bool"] as DType[]) {
      it(`movement views without copies ${dt}: permute, expand, pad, shrink, reshape`, async (ctx) => {
        await conform(ctx, b, "permute", dt, [{ shape: [2, 3, 4] }], (x) => x.permute([2, 0, 1]));
        await conform(ctx, b, "expand", dt, [{ shape: [3, 1] }], (x) => x.broadcastTo([2, 3, 5]));
        await conform(ctx, b, "pad", dt, [{ shape: [3, 4] }], (x) => x.pad([[1, 2], [0, 3]]));
        await conform(ctx, b, "shrink", dt, [{ shape: [5, 6] }], (x) => x.shrink([[1, 4], [2, 5]]));
        await conform(ctx, b, "view chain", dt, [{ shape: [4, 6] }], (x) =>
          x.transpose().reshape([3, 8]).slice(1, 2, 7).pad([[0, 1], [1, 0]]).permute([1, 0]).reshape([-1]));
        await conform(ctx, b, "reshape of a non-contiguous view", dt, [{ shape: [3, 5] }], (x) => x.transpose().reshape([5, 3]));
      });
    }

    it("views feeding arithmetic: a non-contiguous operand in an elementwise chain", async (ctx) => {
      await conform(ctx, b, "view arithmetic", "f32", [{ shape: [6, 4] }, { shape: [4, 6], seed: 2 }], (x, y) =>
        x.transpose().mul(y).add(y.slice(1, 0, 1)).exp().sum(0));
    });

    for (const dt of ["f32", "f16", "i32"] as DType[]) {
      it(`gather ${dt}: rows, columns, out-of-range reads 0`, async (ctx) => {
        const idx = { shape: [5], dtype: "i32" as DType, data: [2, 0, 2, 3, 1] };
        await conform(ctx, b, "gather rows", dt, [{ shape: [4, 3] }, idx], (x, i) => x.gather(0, i));
        await conform(ctx, b, "gather cols", dt, [{ shape: [3, 4] }, idx], (x, i) => x.gather(1, i));
        await conform(ctx, b, "gather oob", dt, [{ shape: [4, 3] }, { shape: [3], dtype: "i32", data: [-1, 4, 1] }], (x, i) => x.gather(0, i));
      });
    }

    it("iota and arange", async (ctx) => {
      await conform(ctx, b, "arange", "f32", [{ shape: [1] }], (x) => arange(2, 40, 3, { backend: x.backend }).cast("f32").add(x));
    });

    it("NaN and Inf propagate", async (ctx) => {
      const data = [NaN, Infinity, -Infinity, 0, -0, 1, -1, 3e38];
      const inp = [{ shape: [8], data }, { shape: [8], data: [1, 2, Infinity, -Infinity, NaN, 0, 0, 3e38] }];
      for (const op of ["add", "sub", "mul", "div", "max", "min", "cmplt", "cmpeq"] as const) {
        await conform(ctx, b, `nan ${op}`, "f32", inp, (x, y) => x.binary(op, y));
      }
      for (const op of ["exp", "log", "sqrt", "abs", "neg", "tanh"] as const) {
        await conform(ctx, b, `nan ${op}`, "f32", inp.slice(0, 1), (x) => x.unary(op));
      }
      await conform(ctx, b, "nan sum", "f32", inp.slice(0, 1), (x) => x.reshape([2, 4]).sum(1));
      await conform(ctx, b, "nan max-reduce", "f32", inp.slice(0, 1), (x) => x.reshape([2, 4]).max(1));
    });
  });
}

describe("conformance setup", () => {
  it("runs on cpu always", () => {
    expect(backends.find((b) => b.name === "cpu")?.backend).toBeDefined();
  });
  it("the comparison fails on a wrong value, NaN mismatch or Inf mismatch", () => {
    const tol = tolerance("f32");
    expect(() => expectClose([1, 2, 3], [1, 2, 3.001], tol, "x")).toThrow(/element 2/);
    expect(() => expectClose([NaN], [1], tol, "x")).toThrow(/element 0/);
    expect(() => expectClose([1], [NaN], tol, "x")).toThrow(/element 0/);
    expect(() => expectClose([Infinity], [-Infinity], tol, "x")).toThrow(/element 0/);
    expect(() => expectClose([NaN, Infinity, 1], [NaN, Infinity, 1 + 1e-7], tol, "x")).not.toThrow();
  });
});
