// Tests the cpu backend's hand-written routines (matmul, softmax, attention) through the backend's
// launch path against float64 references written here. Sizes are odd and small on purpose: they hit
// the kernel's panel edges, k-blocking, batch broadcast and f16/bf16 conversions. Speed is bench/'s job.

import { describe, expect, it } from "vitest";
import { CpuBackend } from "../../src/backends/cpu/backend.js";
import { buildCpuRoutine, supportsCpuRoutine } from "../../src/backends/cpu/routines.js";
import type { DType } from "../../src/core/dtype.js";
import { bf16BitsToF32, decode, encode, f16BitsToF32, roundTo } from "../../src/core/dtype.js";
import { add, alu, c, cast, load, mod, mul, v } from "../../src/core/ir.js";
import type { RoutineName } from "../../src/core/ops.js";
import type { AttentionSpec, MatmulSpec, RoutineSpecs, SoftmaxSpec } from "../../src/core/routines.js";

const cpu = new CpuBackend();

/** Deterministic values in [-1, 1), rounded to the dtype they will be stored in. */
function rand(n: number, dtype: DType, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return roundTo(s / 2 ** 31 - 1, dtype);
  });
}

/** Launch a routine on buffers holding `inputs`; returns the output's values. */
async function launch<R extends RoutineName>(name: R, spec: RoutineSpecs[R], out: DType, outLen: number,
  inputs: { dtype: DType; values: number[] }[]): Promise<number[]> {
  const exe = await cpu.routine(name, spec);
  const ob = cpu.alloc(Math.max(1, outLen) * 8);
  const bufs = inputs.map(({ dtype, values }) => {
    const bytes = encode(values, dtype);
    const b = cpu.alloc(Math.max(8, bytes.byteLength));
    cpu.write(b, bytes);
    return b;
  });
  cpu.launch(exe, [ob, ...bufs]);
  return decode(await cpu.read(ob), out, outLen);
}

/** |got - want| <= atol + rtol |want| per element, NaN only where NaN is expected. */
function expectClose(got: number[], want: number[], rtol: number, atol: number[] | number): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    const g = got[i]!;
    if (Number.isNaN(w)) { expect(g, `element ${i}`).toBeNaN(); continue; }
    const tol = (typeof atol === "number" ? atol : atol[i]!) + rtol * Math.abs(w);
    if (!(Math.abs(g - w) <= tol)) expect.fail(`element ${i}: got ${g}, want ${w} (tol ${tol})`);
  }
}

// ---- matmul ----

function matmulSpec(p: Partial<MatmulSpec> & Pick<MatmulSpec, "m" | "n" | "k">): MatmulSpec {
  return { batch: 1, transA: false, transB: false, aBatchStride: p.m * p.k, bBatchStride: p.k * p.n, dtype: "f32", out: "f32", ...p };
}

/** Float64 reference; also returns sum |a||b| per element, the scale of f32 accumulation error. */
function refMatmul(s: MatmulSpec, a: number[], b: number[]): { c: number[]; mag: number[] } {
  const c: number[] = [];
  const mag: number[] = [];
  for (let bi = 0; bi < s.batch; bi++) {
    for (let i = 0; i < s.m; i++) {
      for (let j = 0; j < s.n; j++) {
        let acc = 0;
        let m = 0;
        for (let p = 0; p < s.k; p++) {
          const x = a[bi * s.aBatchStride + (s.transA ? p * s.m + i : i * s.k + p)]!;
          const y = b[bi * s.bBatchStride + (s.transB ? j * s.k + p : p * s.n + j)]!;
          acc += x * y;
          m += Math.abs(x * y);
        }
        c.push(acc);
        mag.push(m);
      }
    }
  }
  return { c, mag };
}

/** Worst-case error of k f32 multiply-adds: (k + 1) u sum |a b| (Higham's gamma_k bound, u = 2^-24). */
const f32SumBound = (k: number, mag: number) => (k + 1) * 2 ** -24 * mag + 1e-30;

const operandLen = (batch: number, stride: number, size: number) => (batch - 1) * stride + size;

async function checkMatmul(s: MatmulSpec, seed = 1): Promise<void> {
  const a = rand(operandLen(s.batch, s.aBatchStride, s.m * s.k), s.dtype, seed);
  const b = rand(operandLen(s.batch, s.bBatchStride, s.k * s.n), s.dtype, seed + 7);
  const got = await launch("matmul", s, s.out, s.batch * s.m * s.n, [{ dtype: s.dtype, values: a }, { dtype: s.dtype, values: b }]);
  const { c, mag } = refMatmul(s, a, b);
  const outEps = { f64: 0, f32: 2 ** -24, f16: 2 ** -11, bf16: 2 ** -8 }[s.out as "f64"] ?? 0;
  if (s.dtype === "f64") expectClose(got, c, outEps, 0);
  else expectClose(got, c, outEps, mag.map((x) => f32SumBound(s.k, x)));
}

describe("cpu matmul routine", () => {
  it.each([
    [1, 1, 1], [7, 13, 5], [65, 33, 17], [4, 8, 1], [3, 200, 2],
  ])("f32 %ix%ix%i matches the float64 reference", async (m, n, k) => {
    await checkMatmul(matmulSpec({ m, n, k }));
  });

  it("blocks over k and over many A panels (k > 256, m > 256)", async () => {
    await checkMatmul(matmulSpec({ m: 261, n: 9, k: 300 }));
  });

  it.each([[true, false], [false, true], [true, true]])("transA=%s transB=%s", async (transA, transB) => {
    await checkMatmul(matmulSpec({ m: 11, n: 19, k: 23, transA, transB }));
  });

  it("batched with B broadcast (bBatchStride 0) and A broadcast (aBatchStride 0)", async () => {
    await checkMatmul(matmulSpec({ batch: 3, m: 5, n: 9, k: 7, bBatchStride: 0 }));
    await checkMatmul(matmulSpec({ batch: 2, m: 6, n: 10, k: 3, aBatchStride: 0, transB: true }));
  });

  it("f16 in and out, bf16 in and out, mixed out dtypes", async () => {
    await checkMatmul(matmulSpec({ m: 17, n: 15, k: 33, dtype: "f16", out: "f16" }));
    await checkMatmul(matmulSpec({ batch: 2, m: 9, n: 12, k: 20, dtype: "bf16", out: "bf16", transA: true }));
    await checkMatmul(matmulSpec({ m: 5, n: 6, k: 7, dtype: "f16", out: "f32" }));
    await checkMatmul(matmulSpec({ m: 5, n: 6, k: 7, dtype: "bf16", out: "f64" }));
  });

  it("f64 is computed exactly in doubles (same sums as the reference)", async () => {
    await checkMatmul(matmulSpec({ batch: 2, m: 13, n: 7, k: 29, dtype: "f64", out: "f64", transB: true, bBatchStride: 0 }));
    await checkMatmul(matmulSpec({ m: 6, n: 5, k: 4, dtype: "f64", out: "f32", transA: true }));
  });

  it("k = 0 gives zeros", async () => {
    const got = await launch("matmul", matmulSpec({ m: 2, n: 3, k: 0 }), "f32", 6, [{ dtype: "f32", values: [] }, { dtype: "f32", values: [] }]);
    expect(got).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it.each(["f32", "f16", "f64"] as const)("applies a bias + residual + relu epilogue (%s operands)", async (dtype) => {
    const [batch, m, n, k] = [2, 7, 10, 9];
    // out[gid] = max(acc + bias[gid % n] + residual[gid], 0), bias in slot 3 (f16), residual in slot 4 (f32)
    const epilogue = {
      expr: alu("max", add(add(v("acc", "f32"), load(3, mod(v("gid"), c(n)), "f16")), load(4, v("gid"), "f32")), c(0, "f32")),
      inputs: ["f16", "f32"] as DType[],
    };
    const s = matmulSpec({ batch, m, n, k, dtype, out: "f32", epilogue });
    const a = rand(batch * m * k, dtype, 3);
    const b = rand(batch * k * n, dtype, 4);
    const bias = rand(n, "f16", 5);
    const residual = rand(batch * m * n, "f32", 6);
    const got = await launch("matmul", s, "f32", batch * m * n, [
      { dtype, values: a }, { dtype, values: b }, { dtype: "f16", values: bias }, { dtype: "f32", values: residual },
    ]);
    const { c: ref, mag } = refMatmul(s, a, b);
    const want = ref.map((x, gid) => Math.max(x + bias[gid % n]! + residual[gid]!, 0));
    expectClose(got, want, 2 ** -23, mag.map((x) => f32SumBound(k, x)));
    expect(got.some((x) => x === 0) && got.some((x) => x > 0)).toBe(true);
  });
});

describe("cpu matmul routine, n = 1 or k = 1 (row dots, outer products: JS loops in doubles)", () => {
  // NOTE: these paths sum each element in doubles in the reference's order and round once, so the
  // result is the reference rounded to f32 exactly (bit for bit), epilogue included.
  const exact = async (s: MatmulSpec, epi?: { bias: number[]; residual: number[] }) => {
    const a = rand(operandLen(s.batch, s.aBatchStride, s.m * s.k), s.dtype, 11);
    const b = rand(operandLen(s.batch, s.bBatchStride, s.k * s.n), s.dtype, 12);
    const extra = epi ? [{ dtype: "f16" as DType, values: epi.bias }, { dtype: "f32" as DType, values: epi.residual }] : [];
    const got = await launch("matmul", s, s.out, s.batch * s.m * s.n, [{ dtype: s.dtype, values: a }, { dtype: s.dtype, values: b }, ...extra]);
    const { c: ref } = refMatmul(s, a, b);
    const want = ref.map((x, gid) => roundTo(epi ? Math.max(x + epi.bias[gid % s.n]! + epi.residual[gid]!, 0) : x, s.out));
    expect(got).toEqual(want);
  };
  const epilogueFor = (n: number, len: number) => ({
    spec: {
      expr: alu("max", add(add(v("acc", "f32"), load(3, mod(v("gid"), c(n)), "f16")), load(4, v("gid"), "f32")), c(0, "f32")),
      inputs: ["f16", "f32"] as DType[],
    },
    values: { bias: rand(n, "f16", 13), residual: rand(len, "f32", 14) },
  });

  it.each([[false, false], [true, false], [false, true], [true, true]])("n = 1 (x @ ones, LayerNorm's mean) transA=%s transB=%s", async (transA, transB) => {
    await exact(matmulSpec({ m: 37, n: 1, k: 19, transA, transB }));
  });

  it.each([[false, false], [true, false], [false, true], [true, true]])("k = 1 (outer product) transA=%s transB=%s", async (transA, transB) => {
    await exact(matmulSpec({ m: 23, n: 17, k: 1, transA, transB }));
  });

  it("n = 1 and k = 1 with an epilogue, batched with a broadcast operand, f64 out", async () => {
    for (const [n, k] of [[1, 31], [29, 1], [1, 1]] as const) {
      const [batch, m] = [3, 9];
      const e = epilogueFor(n, batch * m * n);
      await exact(matmulSpec({ batch, m, n, k, bBatchStride: 0, epilogue: e.spec }), e.values);
      await exact(matmulSpec({ batch, m, n, k, aBatchStride: 0, transA: true, out: "f64" }));
    }
  });

  it("spans several store blocks (8192 doubles each): many rows for n = 1, wide rows for k = 1", async () => {
    const rowDots = epilogueFor(1, 9000);
    await exact(matmulSpec({ m: 9000, n: 1, k: 3, epilogue: rowDots.spec }), rowDots.values);
    const outer = epilogueFor(8200, 3 * 8200);
    await exact(matmulSpec({ m: 3, n: 8200, k: 1, epilogue: outer.spec }), outer.values);
    await exact(matmulSpec({ m: 70, n: 130, k: 5, dtype: "f64", out: "f64" }));
  });

  it("takes the JS loop for f32 n = 1 and k = 1 only", () => {
    const path = (s: MatmulSpec) => buildCpuRoutine("matmul", s).source.split("\n")[0];
    expect(path(matmulSpec({ m: 768, n: 1, k: 128 }))).toContain("JS loop");
    expect(path(matmulSpec({ m: 768, n: 128, k: 1 }))).toContain("JS loop");
    expect(path(matmulSpec({ m: 768, n: 2, k: 128 }))).not.toContain("JS loop");
    // The launch profile labels a routine "(+epilogue)" by its source: the k = 1 store shows there with one.
    const epilogue = { expr: add(v("acc", "f32"), load(3, v("gid"), "f32")), inputs: ["f32"] as DType[] };
    expect(buildCpuRoutine("matmul", matmulSpec({ m: 8, n: 4, k: 1, epilogue })).source).toContain("storeOuter");
    expect(buildCpuRoutine("matmul", matmulSpec({ m: 8, n: 4, k: 1 })).source).toContain("// no epilogue");
  });
});

describe("cpu matmul routine, few rows (decode: B streamed, not packed)", () => {
  // Odd k (k % 4 = 1, 2, 3) hits the dot tiles' masked tail; n past one chunk of B rows (k = 131: 124 rows)
  // and k past one chunk of B (64 rows) hit the chunk edges; odd n hits the last partial group of columns.
  const shapes: [number, number, number][] = [[1, 523, 131], [2, 37, 130], [3, 9, 129], [5, 523, 131], [17, 70, 67], [3, 10, 2], [2, 5, 3]];
  it.each(shapes.flatMap(([m, n, k]) => [false, true].map((transB) => [m, n, k, transB] as const)))(
    "f32 %ix%ix%i transB=%s matches the float64 reference", async (m, n, k, transB) => {
      await checkMatmul(matmulSpec({ m, n, k, transB }));
    });

  it("transA gathers A's columns, for both B layouts", async () => {
    await checkMatmul(matmulSpec({ m: 3, n: 21, k: 13, transA: true, transB: true }));
    await checkMatmul(matmulSpec({ m: 5, n: 21, k: 70, transA: true, transB: false }));
  });

  it("f16 and bf16 B (widened a chunk at a time) and f16/bf16/f64 out", async () => {
    await checkMatmul(matmulSpec({ m: 3, n: 300, k: 131, dtype: "f16", out: "f16", transB: true }));
    await checkMatmul(matmulSpec({ m: 2, n: 45, k: 131, dtype: "f16", out: "f32" }));
    await checkMatmul(matmulSpec({ m: 5, n: 300, k: 131, dtype: "bf16", out: "bf16", transB: true }));
    await checkMatmul(matmulSpec({ m: 1, n: 45, k: 70, dtype: "bf16", out: "f64", transA: true }));
  });

  it.each(["f16", "bf16"] as const)("widens every %s bit pattern exactly (1 x 1 @ 1 x 65536, both layouts)", async (dtype) => {
    const toF32 = dtype === "f16" ? f16BitsToF32 : bf16BitsToF32;
    const b = Array.from({ length: 65536 }, (_, h) => toF32(h));
    const want = b.map((x) => x + 0); // the sum starts at +0, so -0 comes out +0 (as in the reference)
    for (const transB of [false, true]) {
      const s = matmulSpec({ m: 1, n: 65536, k: 1, dtype, transB });
      const got = await launch("matmul", s, "f32", 65536, [{ dtype, values: [1] }, { dtype, values: b }]);
      const bad = got.findIndex((g, h) => !Object.is(g, want[h]) && !(Number.isNaN(g) && Number.isNaN(want[h])));
      expect(bad, `bit pattern ${bad}: got ${got[bad]}, want ${want[bad]}`).toBe(-1);
    }
  });

  it("folds every batch into one pass when B is broadcast, and runs per batch when A is", async () => {
    await checkMatmul(matmulSpec({ batch: 3, m: 2, n: 29, k: 11, bBatchStride: 0, transB: true }));
    await checkMatmul(matmulSpec({ batch: 3, m: 1, n: 29, k: 70, bBatchStride: 0 }));
    await checkMatmul(matmulSpec({ batch: 2, m: 3, n: 13, k: 9, bBatchStride: 0, transA: true, dtype: "f16", out: "f16" }));
    await checkMatmul(matmulSpec({ batch: 3, m: 1, n: 17, k: 6, aBatchStride: 0, transB: true }));
    await checkMatmul(matmulSpec({ batch: 2, m: 2, n: 17, k: 6, aBatchStride: 0 }));
  });

  it.each([false, true])("applies an epilogue per output element (gid across folded batches, transB=%s)", async (transB) => {
    const [batch, m, n, k] = [3, 1, 11, 5];
    // out[gid] = acc * 2 + bias[gid % n] + gid
    const epilogue = {
      expr: add(add(mul(v("acc", "f32"), c(2, "f32")), load(3, mod(v("gid"), c(n)), "f32")), cast(v("gid"), "f32")),
      inputs: ["f32"] as DType[],
    };
    const s = matmulSpec({ batch, m, n, k, transB, bBatchStride: 0, epilogue });
    const a = rand(batch * m * k, "f32", 8);
    const b = rand(k * n, "f32", 9);
    const bias = rand(n, "f32", 10);
    const got = await launch("matmul", s, "f32", batch * m * n, [{ dtype: "f32", values: a }, { dtype: "f32", values: b }, { dtype: "f32", values: bias }]);
    const { c: ref, mag } = refMatmul(s, a, b);
    expectClose(got, ref.map((x, gid) => 2 * x + bias[gid % n]! + gid), 2 ** -22, mag.map((x) => 2 * f32SumBound(k, x)));
  });

  it("takes the few-rows path for decode shapes and packs B for many rows", () => {
    const path = (s: MatmulSpec) => buildCpuRoutine("matmul", s).source.split("\n")[0];
    expect(path(matmulSpec({ m: 1, n: 64, k: 32, transB: true }))).toMatch(/few rows/);
    expect(path(matmulSpec({ batch: 8, m: 8, n: 64, k: 32, bBatchStride: 0 }))).toMatch(/few rows/);
    expect(path(matmulSpec({ m: 257, n: 64, k: 32, transB: true }))).toMatch(/packed/);
    expect(path(matmulSpec({ m: 129, n: 64, k: 32 }))).toMatch(/packed/);
  });

  it("the packed path still matches the reference past the switch (B transposed, A transposed, f16)", async () => {
    await checkMatmul(matmulSpec({ m: 258, n: 9, k: 7, transB: true }));
    await checkMatmul(matmulSpec({ m: 130, n: 10, k: 13, dtype: "f16", out: "f32", transA: true }));
  });
});

// ---- softmax ----

function refSoftmax(x: number[], rows: number, cols: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    const row = x.slice(r * cols, (r + 1) * cols);
    const max = row.reduce((m, y) => Math.max(m, y), -Infinity);
    const e = row.map((y) => Math.exp(y - max));
    const sum = e.reduce((s, y) => s + y, 0);
    out.push(...e.map((y) => y / sum));
  }
  return out;
}

async function checkSoftmax(rows: number, cols: number, x: number[], dtype: DType = "f32", out: DType = "f32") {
  const s: SoftmaxSpec = { rows, cols, dtype, out };
  const got = await launch("softmax", s, out, rows * cols, [{ dtype, values: x }]);
  const outEps = { f64: 2 ** -52, f32: 2 ** -24, f16: 2 ** -11, bf16: 2 ** -8 }[out as "f64"] ?? 0;
  expectClose(got, refSoftmax(x.map((y) => roundTo(y, dtype)), rows, cols), 2 * outEps, 1e-300);
}

describe("cpu softmax routine", () => {
  it("matches exp(x - max) / sum over odd shapes and dtypes", async () => {
    await checkSoftmax(7, 13, rand(91, "f32", 9).map((y) => 8 * y));
    await checkSoftmax(1, 1, [3.5]);
    await checkSoftmax(3, 33, rand(99, "f16", 2).map((y) => 4 * y), "f16", "f16");
    await checkSoftmax(2, 5, rand(10, "bf16", 3), "bf16", "f32");
    await checkSoftmax(4, 6, rand(24, "f64", 4), "f64", "f64");
  });

  it("stays finite for large logits and propagates NaN and all -inf rows as NaN", async () => {
    const x = [
      1000, 1001, 999, -1000,
      NaN, 1, 2, 3,
      -Infinity, -Infinity, -Infinity, -Infinity,
      -Infinity, 0, -Infinity, 1,
      Infinity, 0, 1, 2,
    ];
    await checkSoftmax(5, 4, x);
    const got = await launch("softmax", { rows: 5, cols: 4, dtype: "f32", out: "f32" }, "f32", 20, [{ dtype: "f32", values: x }]);
    expect(got.slice(0, 4).every(Number.isFinite)).toBe(true);
    expect(got.slice(4, 12).every(Number.isNaN)).toBe(true);
    expect(got.slice(12, 16)[0]).toBe(0);
  });
});

// ---- attention ----

function refAttention(s: AttentionSpec, q: number[], k: number[], v: number[]): number[] {
  const { batch, heads, kvHeads, tq, tk, headDim: d } = s;
  const out: number[] = [];
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const g = Math.floor(h / (heads / kvHeads));
      for (let i = 0; i < tq; i++) {
        const qOff = ((b * heads + h) * tq + i) * d;
        const scores: number[] = [];
        for (let j = 0; j < tk; j++) {
          const kOff = ((b * kvHeads + g) * tk + j) * d;
          let dot = 0;
          for (let x = 0; x < d; x++) dot += q[qOff + x]! * k[kOff + x]!;
          scores.push(s.causal && j > i + tk - tq ? -Infinity : dot * s.scale);
        }
        const p = refSoftmax(scores, 1, tk);
        for (let x = 0; x < d; x++) {
          let acc = 0;
          for (let j = 0; j < tk; j++) acc += p[j]! * v[((b * kvHeads + g) * tk + j) * d + x]!;
          out.push(acc);
        }
      }
    }
  }
  return out;
}

async function checkAttention(p: Omit<AttentionSpec, "scale" | "dtype" | "out"> & { dtype?: DType; out?: DType }) {
  const s: AttentionSpec = { dtype: "f32", out: "f32", scale: 1 / Math.sqrt(p.headDim), ...p };
  const qLen = s.batch * s.heads * s.tq * s.headDim;
  const kvLen = s.batch * s.kvHeads * s.tk * s.headDim;
  const q = rand(qLen, s.dtype, 11).map((x) => roundTo(3 * x, s.dtype));
  const k = rand(kvLen, s.dtype, 12);
  const v = rand(kvLen, s.dtype, 13);
  const got = await launch("attention", s, s.out, qLen, [q, k, v].map((values) => ({ dtype: s.dtype, values })));
  const outEps = { f64: 2 ** -52, f32: 2 ** -24, f16: 2 ** -11, bf16: 2 ** -8 }[s.out as "f64"] ?? 0;
  // NOTE: f32, f16 and bf16 data are computed in f32 (the wasm kernel): dot products of headDim terms and a
  // sum over tk keys, so an absolute error of a few f32 ulps times sqrt(headDim * tk); f64 in doubles.
  const atol = s.dtype === "f64" ? 1e-12 : 4 * 2 ** -24 * Math.sqrt(s.headDim * s.tk);
  expectClose(got, refAttention(s, q, k, v), 2 * outEps, atol);
}

describe("cpu attention routine", () => {
  const base = { batch: 2, heads: 4, kvHeads: 2 };
  it("causal prefill (tq = tk) with grouped-query heads, headDim 16", async () => {
    await checkAttention({ ...base, tq: 9, tk: 9, headDim: 16, causal: true });
  });
  it("decode-like (tq = 1 < tk) causal and non-causal, headDim 64", async () => {
    await checkAttention({ ...base, tq: 1, tk: 13, headDim: 64, causal: true });
    await checkAttention({ batch: 1, heads: 2, kvHeads: 2, tq: 1, tk: 13, headDim: 64, causal: false });
  });
  it("spans several key blocks (tk > 64), tq < tk causal, one kv head", async () => {
    await checkAttention({ batch: 1, heads: 3, kvHeads: 1, tq: 5, tk: 150, headDim: 16, causal: true });
    await checkAttention({ batch: 1, heads: 2, kvHeads: 1, tq: 3, tk: 70, headDim: 8, causal: false });
  });
  it("f16 in and out, f64 in and out", async () => {
    await checkAttention({ ...base, tq: 6, tk: 6, headDim: 16, causal: true, dtype: "f16", out: "f16" });
    await checkAttention({ ...base, tq: 4, tk: 7, headDim: 16, causal: true, dtype: "f64", out: "f64" });
  });
});

// ---- support and caching ----

describe("cpu routine support", () => {
  it("refuses int dtypes and bad head groupings, naming the routine", () => {
    expect(supportsCpuRoutine("matmul", matmulSpec({ m: 2, n: 2, k: 2, dtype: "i32" }))).toBe(false);
    expect(supportsCpuRoutine("softmax", { rows: 1, cols: 2, dtype: "f32", out: "u8" })).toBe(false);
    const bad: AttentionSpec = { batch: 1, heads: 3, kvHeads: 2, tq: 1, tk: 1, headDim: 4, causal: false, scale: 1, dtype: "f32", out: "f32" };
    expect(supportsCpuRoutine("attention", bad)).toBe(false);
    expect(() => buildCpuRoutine("attention", bad)).toThrow(/attention.*kvHeads/);
    expect(supportsCpuRoutine("matmul", matmulSpec({ m: 2, n: 2, k: 2, dtype: "bf16", out: "f16" }))).toBe(true);
  });

  it("caches one executable per spec", () => {
    const s = matmulSpec({ m: 3, n: 4, k: 5 });
    expect(buildCpuRoutine("matmul", s)).toBe(buildCpuRoutine("matmul", { ...s }));
    expect(buildCpuRoutine("matmul", s)).not.toBe(buildCpuRoutine("matmul", { ...s, transB: true }));
  });

  it("names the shape when a buffer is too small", () => {
    const exe = buildCpuRoutine("matmul", matmulSpec({ m: 3, n: 4, k: 5 }));
    expect(() => exe.run([new Float32Array(12), new Float32Array(15), new Float32Array(3)], [], [])).toThrow(/matmul.*B/);
  });
});
