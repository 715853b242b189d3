// Conformance: the named routines (matmul with fused epilogues, softmax, flash attention) and the
// composites built from primitives, on every backend, against the f64 primitive reference.

import { describe, expect, it } from "vitest";
import type { DType, Tensor } from "../../src/index.js";
import {
  argmax, attention, attentionBackward, concat, crossEntropy, gelu, layernorm, logSoftmax, matmul, relu, rmsnorm, scatterAdd, silu, softmax,
} from "../../src/index.js";
import { schedule } from "../../src/core/schedule.js";
import { noBackend, skipLabel } from "../helpers/skip_reasons.js";
import { backendsUnderTest, conform, values } from "./harness.js";

const backends = await backendsUnderTest();
const FLOATS: DType[] = ["f32", "f16", "bf16"];

/** Matmul tolerances grow with the reduction length (sums of k rounded products). */
const kScale = (k: number) => Math.max(1, Math.sqrt(k));

for (const b of backends) {
  describe.skipIf(!b.backend)(`routines on ${b.name}${skipLabel(noBackend(b.name, b.missing))}`, () => {
    for (const dt of FLOATS) {
      it(`matmul ${dt}: odd sizes, batches, broadcast, transposed views`, async (ctx) => {
        const cases: [number[], number[]][] = [
          [[1, 1], [1, 1]], [[7, 5], [5, 13]], [[65, 17], [17, 33]], [[3, 4, 6], [6, 5]], [[2, 3, 4, 6], [3, 6, 5]],
          [[0, 4], [4, 3]], [[5], [5, 3]], [[4, 5], [5]],
        ];
        for (const [sa, sb] of cases) {
          const k = sa[sa.length - 1]!;
          await conform(ctx, b, "matmul", dt, [{ shape: sa }, { shape: sb, seed: 3 }], (x, y) => matmul(x, y), kScale(k));
        }
        // Transposed storage: (n, k) read as (k, n) without a copy, and (k, m) read as (m, k).
        await conform(ctx, b, "matmul transB", dt, [{ shape: [9, 11] }, { shape: [7, 11], seed: 2 }], (x, y) => matmul(x, y.transpose()), kScale(11));
        await conform(ctx, b, "matmul transA", dt, [{ shape: [11, 9] }, { shape: [11, 7], seed: 2 }], (x, y) => matmul(x.transpose(), y), kScale(11));
      });

      it(`matmul ${dt} with a fused epilogue: bias, activation, residual`, async (ctx) => {
        await conform(ctx, b, "matmul epilogue", dt, [{ shape: [2, 6, 8] }, { shape: [8, 10], seed: 2 }, { shape: [10], seed: 3 }, { shape: [2, 6, 10], seed: 4 }],
          (x, w, bias, res) => gelu(matmul(x, w).add(bias)).add(res), kScale(8) * 2);
        await conform(ctx, b, "matmul relu", dt, [{ shape: [5, 3] }, { shape: [3, 4], seed: 2 }], (x, w) => relu(matmul(x, w)).mul(2), 2);
      });

      it(`softmax ${dt}: rows, odd columns, -inf, NaN`, async (ctx) => {
        await conform(ctx, b, "softmax", dt, [{ shape: [5, 37], lo: -5, hi: 5 }], (x) => softmax(x), 2);
        await conform(ctx, b, "softmax axis 0", dt, [{ shape: [6, 3] }], (x) => softmax(x, 0), 2);
        const data = [1, -Infinity, 2, 3, -Infinity, -Infinity, -Infinity, -Infinity, NaN, 1, 2, 3];
        await conform(ctx, b, "softmax edge", dt, [{ shape: [4, 3], data }], (x) => softmax(x));
      });

      it(`scatter-add ${dt}: duplicates, out-of-range and negative indices, untouched rows, empty, trailing axes`, async (ctx) => {
        const scatter = (size: number) => (i: Tensor, s: Tensor) => scatterAdd(size, i, s);
        // Index 5 and -1 are out of range for 4 rows: they add nothing (as a gather there reads 0).
        await conform(ctx, b, "scatter-add", dt, [{ shape: [7], dtype: "i32", data: [1, 3, 1, 5, 1, -1, 3] }, { shape: [7, 6] }], scatter(4), 2);
        await conform(ctx, b, "scatter-add trailing axes", dt, [{ shape: [4], dtype: "i32", data: [2, 0, 2, 2] }, { shape: [4, 2, 3] }], scatter(3), 2);
        await conform(ctx, b, "scatter-add empty", dt, [{ shape: [0], dtype: "i32", data: [] }, { shape: [0, 5] }], scatter(3));
        // More rows and columns than one split of owners: the webgpu routine spreads rows over splits.
        const idx = values(300, "i32", 5).map((x) => ((x % 70) + 70) % 70);
        await conform(ctx, b, "scatter-add large", dt, [{ shape: [300], dtype: "i32", data: idx }, { shape: [300, 33] }], scatter(70), 4);
      });

      it(`concat ${dt}: last axis, middle axis, one part, seven parts`, async (ctx) => {
        await conform(ctx, b, "concat", dt, [{ shape: [2, 3] }, { shape: [2, 1], seed: 2 }, { shape: [2, 4], seed: 3 }], (x, y, z) => concat([x, y, z], 1));
        await conform(ctx, b, "concat middle axis", dt, [{ shape: [2, 3, 5] }, { shape: [2, 2, 5], seed: 2 }], (x, y) => concat([x, y], 1));
        await conform(ctx, b, "concat axis 0", dt, [{ shape: [3, 2] }, { shape: [1, 2], seed: 2 }], (x, y) => concat([x, y], 0));
        await conform(ctx, b, "concat one part", dt, [{ shape: [2, 3] }], (x) => concat([x], 1));
        const seven = Array.from({ length: 7 }, (_, i) => ({ shape: [3, i + 1], seed: i + 1 }));
        await conform(ctx, b, "concat seven parts", dt, seven, (...xs) => concat(xs, 1));
      });

      it(`attention ${dt}: causal, non-causal, decode, grouped-query`, async (ctx) => {
        const cases: [number[], number[], boolean][] = [
          [[1, 2, 5, 8], [1, 2, 5, 8], true], [[2, 2, 7, 16], [2, 2, 9, 16], false], [[1, 4, 1, 16], [1, 2, 11, 16], true],
          [[1, 4, 6, 64], [1, 2, 6, 64], true], [[1, 1, 3, 4], [1, 1, 3, 4], false],
        ];
        for (const [sq, sk, causal] of cases) {
          await conform(ctx, b, "attention", dt, [{ shape: sq }, { shape: sk, seed: 2 }, { shape: sk, seed: 3 }],
            (q, k, v) => attention(q, k, v, { causal }), kScale(sk[3]!) * 2);
        }
      });

      // NOTE: the reference runs with routines off: attentionBackward is then the composed formula from
      // primitives in f64 (linalg.ts), independent of every backend's routine.
      it(`attention_backward ${dt}: causal, tq < tk, grouped-query, odd sizes`, async (ctx) => {
        const cases: [number[], number[], boolean][] = [
          [[1, 2, 5, 8], [1, 2, 5, 8], true], [[2, 4, 7, 12], [2, 2, 9, 12], false], [[1, 4, 3, 16], [1, 1, 11, 16], true],
          [[1, 4, 13, 5], [1, 2, 19, 5], true],
        ];
        for (const [sq, sk, causal] of cases) {
          await conform(ctx, b, "attention_backward", dt, [{ shape: sq }, { shape: sk, seed: 2 }, { shape: sk, seed: 3 }, { shape: sq, seed: 4 }],
            (q, k, v, dO) => {
              const [dq, dk, dv] = attentionBackward(q, k, v, attention(q, k, v, { causal }), dO, { causal });
              return concat([dq.flatten(), dk.flatten(), dv.flatten()], 0);
            }, kScale(sk[2]!) * 4);
        }
        // NOTE: a software GPU compiles each case's kernels (forward, backward, concat) in seconds, more under load.
      }, 240_000);
    }

    it("composites: gelu, silu, rmsnorm, layernorm, log-softmax, cross-entropy", async (ctx) => {
      for (const dt of FLOATS) {
        const s = dt === "f32" ? 5 : 2;
        await conform(ctx, b, "gelu tanh", dt, [{ shape: [41], lo: -4, hi: 4 }], (x) => gelu(x), s);
        await conform(ctx, b, "gelu erf", dt, [{ shape: [41], lo: -4, hi: 4 }], (x) => gelu(x, "erf"), s);
        await conform(ctx, b, "silu", dt, [{ shape: [41], lo: -4, hi: 4 }], (x) => silu(x), s);
        await conform(ctx, b, "rmsnorm", dt, [{ shape: [3, 17] }, { shape: [17], seed: 2 }], (x, w) => rmsnorm(x, w), s);
        await conform(ctx, b, "layernorm", dt, [{ shape: [3, 17] }, { shape: [17], seed: 2 }, { shape: [17], seed: 3 }], (x, w, c) => layernorm(x, w, c), s * 2);
        await conform(ctx, b, "logsoftmax", dt, [{ shape: [4, 9] }], (x) => logSoftmax(x), s);
        await conform(ctx, b, "cross-entropy", dt, [{ shape: [6, 9] }, { shape: [6], dtype: "i32", data: [0, 8, 3, 3, 1, 7] }], (x, t) => crossEntropy(x, t), s);
      }
    });

    // NOTE: exact composites without a routine: on cpu they would be compared with themselves, so cpu
    // has hand-written cases for them in spec_shape.ts instead.
    if (b.name !== "cpu") {
      it("composites: concat, scatter-add, argmax", async (ctx) => {
        for (const dt of ["f32", "i32"] as DType[]) {
          await conform(ctx, b, "concat", dt, [{ shape: [2, 3] }, { shape: [2, 1], seed: 2 }, { shape: [2, 4], seed: 3 }], (x, y, z) => concat([x, y, z], 1));
          await conform(ctx, b, "scatter-add", dt, [{ shape: [5], dtype: "i32", data: [1, 3, 1, 0, 1] }, { shape: [5, 4] }], (i, s) => scatterAdd(4, i, s));
          await conform(ctx, b, "argmax", dt, [{ shape: [4, 7] }], (x) => argmax(x, -1));
        }
      });
    }
  });
}

describe("fusion (schedule shape, backend-independent)", () => {
  const cpu = backends[0]!.backend!;
  const kernels = (t: Tensor) => schedule([t.node]);
  it("an elementwise chain into a reduction is one kernel", async () => {
    const { tensor } = await import("../../src/index.js");
    const x = tensor([[1, 2], [3, 4]], { backend: cpu });
    const items = kernels(x.mul(2).exp().add(1).sum(1).mul(3));
    expect(items).toHaveLength(1);
    expect(items[0]!.kind === "kernel" && items[0]!.spec.epilogue).toBeTruthy();
  });
  it("matmul + bias + activation + residual is one routine with an epilogue", async () => {
    const { tensor } = await import("../../src/index.js");
    const x = tensor([[1, 2], [3, 4]], { backend: cpu });
    const items = kernels(gelu(matmul(x, x).add(tensor([1, 2], { backend: cpu }))).add(x));
    expect(items).toHaveLength(1);
    expect(items[0]!.kind).toBe("routine");
  });
  it("a costly chain read by two kernels is stored once; contiguous() stores on request", async () => {
    const { tensor } = await import("../../src/index.js");
    const xs = [1, 2, 3, 4, 5].map((k) => tensor([[k, 2], [3, k]], { backend: cpu }));
    const chain = xs.reduce((a, b) => a.add(b)); // reads 5 buffers
    const [r1, r2] = [chain.sum(0), chain.max(1)];
    const items = schedule([r1.node, r2.node]);
    expect(items).toHaveLength(3);
    expect(items[0]!.out).toBe(chain.node);
    const cheap = xs[0]!.mul(2);
    expect(schedule([cheap.sum(0).node, cheap.max(1).node])).toHaveLength(2); // one load: recomputing is cheaper
    expect(schedule([cheap.contiguous().sum().node])).toHaveLength(2);
    expect(Array.from(await r1.data())).toEqual([15 + 15, 10 + 15]); // chain = [[15, 10], [15, 15]]
  });
  it("softmax from primitives is two reductions and one elementwise kernel at most", async () => {
    const { tensor, softmaxReference } = await import("../../src/index.js");
    const x = tensor([[1, 2], [3, 4]], { backend: cpu });
    expect(kernels(softmaxReference(x)).length).toBeLessThanOrEqual(3);
  });
});
