// webgpu_routines.test.ts checks the hand-written WGSL routines (src/backends/webgpu/routines.ts) on a real
// WebGPU device (Dawn; SwiftShader without a GPU) against float64 loops written here. It drives the device
// directly with a tiny harness, so it does not depend on the webgpu backend's runtime. Without an adapter it
// skips, saying why.

import { afterAll, describe, expect, it } from "vitest";
import type { BackendCaps } from "../../src/core/backend.js";
import type { DType } from "../../src/core/dtype.js";
import { decode, encode, roundTo } from "../../src/core/dtype.js";
import { add, alu, c, load, mod, v } from "../../src/core/ir.js";
import type { AttentionSpec, MatmulSpec, SoftmaxSpec } from "../../src/core/routines.js";
import type { WebgpuRoutineSource } from "../../src/backends/webgpu/routines.js";
import { buildWebgpuRoutine, supportsWebgpuRoutine } from "../../src/backends/webgpu/routines.js";
import { nodeGpu } from "../../src/backends/webgpu/dawn_node.js";
import { webgpuMissing } from "../helpers/requirements.js";
import { skipLabel } from "../helpers/skip_reasons.js";

// NOTE: nodeGpu() keeps Dawn's GPU object alive for the whole process, as the device needs.
const adapter = await nodeGpu().requestAdapter();
const device = adapter ? await adapter.requestDevice() : undefined;
// NOTE: the reason comes from starting the backend, which says why Dawn has no adapter.
const missing = device ? undefined : await webgpuMissing();
afterAll(() => device?.destroy());

const caps: BackendCaps = {
  dtypes: ["f32", "f16", "bf16", "i32", "u32", "u8", "bool"],
  maxBufferBytes: device?.limits.maxStorageBufferBindingSize ?? 2 ** 27,
  f16Math: false,
  subgroups: false,
};

// ---- harness ----

/** Run a routine: slot 0 is `outBytes` long and starts as 0x7f bytes, so an unwritten element shows. */
async function run(src: WebgpuRoutineSource, inputs: readonly Uint8Array[], outBytes: number): Promise<Uint8Array> {
  const dev = device!;
  const padded = (n: number) => Math.max(4, Math.ceil(n / 4) * 4);
  dev.pushErrorScope("validation");
  const module = dev.createShaderModule({ code: src.code });
  const info = await module.getCompilationInfo();
  const errors = info.messages.filter((m) => m.type === "error");
  if (errors.length) throw new Error(`${src.name}: ${errors.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join("\n")}`);
  const pipeline = dev.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
  const make = (bytes: Uint8Array, usage: number) => {
    const buf = dev.createBuffer({ size: padded(bytes.byteLength), usage, mappedAtCreation: true });
    new Uint8Array(buf.getMappedRange()).set(bytes);
    buf.unmap();
    return buf;
  };
  const out = make(new Uint8Array(padded(outBytes)).fill(0x7f), GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
  const bufs = [out, ...inputs.map((b) => make(b, GPUBufferUsage.STORAGE))];
  const readback = dev.createBuffer({ size: padded(outBytes), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const bindGroup = dev.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: bufs.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const enc = dev.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(...src.dispatch);
  pass.end();
  enc.copyBufferToBuffer(out, 0, readback, 0, padded(outBytes));
  dev.queue.submit([enc.finish()]);
  await readback.mapAsync(GPUMapMode.READ);
  const bytes = new Uint8Array(readback.getMappedRange().slice(0, outBytes));
  readback.unmap();
  const err = await dev.popErrorScope();
  for (const b of [...bufs, readback]) b.destroy();
  if (err) throw new Error(`${src.name}: ${err.message}`);
  return bytes;
}

let seed = 12345;
/** Uniform in [-1, 1), from a fixed-seed LCG, rounded to what `dtype` holds (the device reads exactly these). */
function randn(n: number, dtype: DType): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    out.push(roundTo((seed / 2 ** 32) * 2 - 1, dtype));
  }
  return out;
}

/** Elementwise |got - want| <= atol + rtol |want|, NaN only where NaN is wanted. */
function expectClose(got: readonly number[], want: readonly number[], atol: number, rtol: number, what: string): void {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const [g, w] = [got[i]!, want[i]!];
    if (Number.isNaN(w) || Number.isNaN(g)) {
      expect(Number.isNaN(g), `${what}[${i}]: got ${g}, want ${w}`).toBe(Number.isNaN(w));
      continue;
    }
    if (Math.abs(g - w) > atol + rtol * Math.abs(w)) expect.fail(`${what}[${i}]: got ${g}, want ${w}`);
  }
}

/** Tolerances for an output dtype: f32 math, then the output's own rounding. */
const tol = (out: DType): [number, number] => (out === "f32" ? [2e-5, 2e-5] : out === "f16" ? [1e-3, 2e-3] : [8e-3, 1.6e-2]);

// ---- references (float64 loops) ----

function matmulRef(s: MatmulSpec, a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = [];
  for (let bi = 0; bi < s.batch; bi++) {
    for (let i = 0; i < s.m; i++) {
      for (let j = 0; j < s.n; j++) {
        let acc = 0;
        for (let p = 0; p < s.k; p++) {
          const av = a[bi * s.aBatchStride + (s.transA ? p * s.m + i : i * s.k + p)]!;
          const bv = b[bi * s.bBatchStride + (s.transB ? j * s.k + p : p * s.n + j)]!;
          acc += av * bv;
        }
        out.push(acc);
      }
    }
  }
  return out;
}

function softmaxRef(s: SoftmaxSpec, x: readonly number[]): number[] {
  const out: number[] = [];
  for (let r = 0; r < s.rows; r++) {
    const row = x.slice(r * s.cols, (r + 1) * s.cols);
    const max = row.reduce((m, v) => (v > m || v !== v ? v : m), -Infinity);
    const e = row.map((v) => Math.exp(v - max));
    const sum = e.reduce((t, v) => t + v, 0);
    out.push(...e.map((v) => v / sum));
  }
  return out;
}

/** Dense attention: masked scores are -inf, so a query that sees no key is NaN (as the primitives give). */
function attentionRef(s: AttentionSpec, q: readonly number[], k: readonly number[], v: readonly number[]): number[] {
  const { batch, heads, kvHeads, tq, tk, headDim: d } = s;
  const out: number[] = [];
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const kvOff = (b * kvHeads + Math.floor(h / (heads / kvHeads))) * tk * d;
      for (let i = 0; i < tq; i++) {
        const qOff = ((b * heads + h) * tq + i) * d;
        const scores: number[] = [];
        for (let j = 0; j < tk; j++) {
          let dot = 0;
          for (let x = 0; x < d; x++) dot += q[qOff + x]! * k[kvOff + j * d + x]!;
          scores.push(s.causal && j > i + tk - tq ? -Infinity : dot * s.scale);
        }
        const p = softmaxRef({ rows: 1, cols: tk, dtype: "f64", out: "f64" }, scores);
        for (let x = 0; x < d; x++) {
          let acc = 0;
          for (let j = 0; j < tk; j++) acc += p[j]! * v[kvOff + j * d + x]!;
          out.push(acc);
        }
      }
    }
  }
  return out;
}

// ---- tests ----

const mm = (m: number, n: number, k: number, over: Partial<MatmulSpec> = {}): MatmulSpec => ({
  batch: 1, m, n, k, transA: false, transB: false, aBatchStride: m * k, bBatchStride: k * n, dtype: "f32", out: "f32", ...over,
});

/** Checks a matmul; with `bias`, under the epilogue relu(acc + bias[col]) with a bias of that dtype in slot 3. */
async function checkMatmul(spec: MatmulSpec, bias?: DType): Promise<void> {
  const epilogue = bias && {
    expr: alu("max", add(v("acc", "f32"), load(3, mod(v("gid"), c(spec.n)), bias)), c(0, "f32")),
    inputs: [bias],
  };
  const s = { ...spec, epilogue };
  const aLen = s.aBatchStride * (s.batch - 1) + s.m * s.k;
  const bLen = s.bBatchStride * (s.batch - 1) + s.k * s.n;
  const [a, b, bi] = [randn(aLen, s.dtype), randn(bLen, s.dtype), randn(s.n, bias ?? "f32")];
  const src = buildWebgpuRoutine("matmul", s, caps);
  const inputs = [encode(a, s.dtype), encode(b, s.dtype), ...(bias ? [encode(bi, bias)] : [])];
  const got = decode(await run(src, inputs, s.batch * s.m * s.n * (s.out === "f32" ? 4 : 2)), s.out);
  const want = matmulRef(s, a, b).map((x, i) => (bias ? Math.max(x + bi[i % s.n]!, 0) : x));
  const [atol, rtol] = tol(s.out);
  expectClose(got, want.map((x) => roundTo(x, s.out)), atol * Math.sqrt(s.k), rtol, src.name);
}

describe.skipIf(!device)(`webgpu routines: matmul${skipLabel(missing)}`, () => {
  it("1x1x1", () => checkMatmul(mm(1, 1, 1)));
  it("7x13x5", () => checkMatmul(mm(7, 13, 5)));
  it("65x33x17 (two row tiles, a partial k tile)", () => checkMatmul(mm(65, 33, 17)));
  it("batched with broadcast B", () => checkMatmul(mm(5, 9, 20, { batch: 3, bBatchStride: 0 })));
  it("batched with broadcast A", () => checkMatmul(mm(18, 6, 3, { batch: 2, aBatchStride: 0 })));
  it("transA and transB", async () => {
    await checkMatmul(mm(19, 7, 33, { batch: 2, transA: true }));
    await checkMatmul(mm(19, 7, 33, { batch: 2, transB: true }));
    await checkMatmul(mm(70, 67, 9, { transA: true, transB: true }));
  });
  it("f16 inputs and f16 output (odd n: rows end mid-word)", () => checkMatmul(mm(9, 11, 7, { batch: 2, dtype: "f16", out: "f16" })));
  it("f16 and bf16 mixes", async () => {
    await checkMatmul(mm(66, 64, 18, { dtype: "f16", out: "f16" }));
    await checkMatmul(mm(5, 7, 40, { dtype: "bf16", out: "bf16", transB: true }));
    await checkMatmul(mm(3, 5, 8, { dtype: "f16", out: "f32" }));
    await checkMatmul(mm(3, 5, 8, { dtype: "f32", out: "bf16" }));
  });
  it("epilogue: bias + relu", async () => {
    await checkMatmul(mm(7, 13, 5), "f32");
    await checkMatmul(mm(9, 11, 70, { batch: 2, bBatchStride: 0, dtype: "f16", out: "f16" }), "f16");
    await checkMatmul(mm(65, 6, 3, { transB: true, dtype: "bf16", out: "f32" }), "bf16");
  });
});

describe("webgpu routines: what is supported", () => {
  it("says no to other dtypes, empty shapes, wide heads and oversized dispatches", () => {
    expect(supportsWebgpuRoutine("matmul", mm(2, 2, 2), caps)).toBe(true);
    expect(supportsWebgpuRoutine("matmul", mm(2, 2, 2, { dtype: "f64" }), caps)).toBe(false);
    expect(supportsWebgpuRoutine("matmul", mm(2, 2, 2, { out: "i32" }), caps)).toBe(false);
    expect(supportsWebgpuRoutine("matmul", mm(2, 0, 2), caps)).toBe(false);
    expect(supportsWebgpuRoutine("matmul", mm(64 * 65536, 1, 1), { ...caps, maxBufferBytes: 2 ** 31 })).toBe(false);
    const sixInputs = { expr: v("acc", "f32"), inputs: Array<DType>(6).fill("f32") };
    expect(supportsWebgpuRoutine("matmul", { ...mm(2, 2, 2), epilogue: sixInputs }, caps)).toBe(false);
    expect(supportsWebgpuRoutine("softmax", { rows: 2, cols: 3, dtype: "i32", out: "f32" }, caps)).toBe(false);
    const att: AttentionSpec = { batch: 1, heads: 2, kvHeads: 2, tq: 1, tk: 1, headDim: 256, causal: true, scale: 1, dtype: "f32", out: "f32" };
    expect(supportsWebgpuRoutine("attention", att, caps)).toBe(true);
    expect(supportsWebgpuRoutine("attention", { ...att, headDim: 257 }, caps)).toBe(false);
    expect(supportsWebgpuRoutine("attention", { ...att, kvHeads: 3 }, caps)).toBe(false);
    expect(() => buildWebgpuRoutine("attention", { ...att, headDim: 300 }, caps)).toThrow(/attention.*headDim 300/);
  });
});

async function checkSoftmax(s: SoftmaxSpec, x: readonly number[]): Promise<void> {
  const src = buildWebgpuRoutine("softmax", s, caps);
  const got = decode(await run(src, [encode(x, s.dtype)], s.rows * s.cols * (s.out === "f32" ? 4 : 2)), s.out);
  const [atol, rtol] = tol(s.out);
  expectClose(got, softmaxRef(s, x).map((v) => roundTo(v, s.out)), atol, rtol, src.name);
}

describe.skipIf(!device)(`webgpu routines: softmax${skipLabel(missing)}`, () => {
  it("odd columns, -inf, NaN, +inf and all -inf rows", async () => {
    const cols = 7;
    const rows = [
      randn(cols, "f32").map((v) => v * 8),
      [-Infinity, 1, 2, -Infinity, 3, -1, -Infinity],
      [0, 1, NaN, 2, 3, 4, 5],
      Array<number>(cols).fill(-Infinity),
      [1, Infinity, 2, 3, 4, 5, 6],
      [-1e30, -1e30, 5, -1e30, -Infinity, 3e30, -3e30],
    ];
    await checkSoftmax({ rows: rows.length, cols, dtype: "f32", out: "f32" }, rows.flat());
  });
  it("long rows (several columns per thread)", () => checkSoftmax({ rows: 3, cols: 300, dtype: "f32", out: "f32" }, randn(900, "f32").map((v) => v * 20)));
  it("one column", () => checkSoftmax({ rows: 5, cols: 1, dtype: "f16", out: "f16" }, randn(5, "f16")));
  it("f16 and bf16 with odd columns (rows start mid-word)", async () => {
    const x = randn(5 * 13, "f16").map((v) => v * 4);
    x[3] = -Infinity;
    x[20] = NaN;
    await checkSoftmax({ rows: 5, cols: 13, dtype: "f16", out: "f16" }, x);
    await checkSoftmax({ rows: 5, cols: 13, dtype: "bf16", out: "bf16" }, randn(5 * 13, "bf16"));
    await checkSoftmax({ rows: 4, cols: 9, dtype: "f16", out: "f32" }, randn(36, "f16"));
  });
});

async function checkAttention(over: Partial<AttentionSpec>): Promise<void> {
  const s: AttentionSpec = {
    batch: 1, heads: 2, kvHeads: 2, tq: 7, tk: 7, headDim: 16, causal: true, scale: 0, dtype: "f32", out: "f32", ...over,
  };
  const spec = { ...s, scale: over.scale ?? 1 / Math.sqrt(s.headDim) };
  const qLen = s.batch * s.heads * s.tq * s.headDim;
  const kvLen = s.batch * s.kvHeads * s.tk * s.headDim;
  const [q, k, v] = [randn(qLen, s.dtype).map((x) => roundTo(x * 2, s.dtype)), randn(kvLen, s.dtype), randn(kvLen, s.dtype)];
  const src = buildWebgpuRoutine("attention", spec, caps);
  const got = decode(await run(src, [q, k, v].map((x) => encode(x, s.dtype)), qLen * (s.out === "f32" ? 4 : 2)), s.out);
  const [atol, rtol] = tol(s.out);
  expectClose(got, attentionRef(spec, q, k, v).map((x) => roundTo(x, s.out)), atol * 5, rtol, src.name);
}

describe.skipIf(!device)(`webgpu routines: attention${skipLabel(missing)}`, () => {
  it("tq = tk, causal and not", async () => {
    await checkAttention({ causal: true });
    await checkAttention({ causal: false });
  });
  it("decode-like: tq < tk", async () => {
    await checkAttention({ tq: 1, tk: 37, headDim: 64 });
    await checkAttention({ tq: 3, tk: 21, causal: true, batch: 2 });
  });
  it("grouped-query: heads 4, kvHeads 2", () => checkAttention({ heads: 4, kvHeads: 2, tq: 5, tk: 9, batch: 2 }));
  it("headDim 64 over several query and key blocks", () => checkAttention({ tq: 20, tk: 35, headDim: 64, heads: 1, kvHeads: 1 }));
  it("headDim 100 and 256", async () => {
    await checkAttention({ tq: 9, tk: 11, headDim: 100, heads: 1, kvHeads: 1 });
    await checkAttention({ tq: 3, tk: 6, headDim: 256, heads: 1, kvHeads: 1, causal: false });
  });
  it("queries that see no key are NaN (tq > tk, causal)", () => checkAttention({ tq: 6, tk: 3 }));
  it("f16 and bf16, odd headDim (rows start mid-word)", async () => {
    await checkAttention({ dtype: "f16", out: "f16", headDim: 5, tq: 4, tk: 6 });
    await checkAttention({ dtype: "bf16", out: "bf16", heads: 4, kvHeads: 1, tq: 3, tk: 3 });
  });
});
