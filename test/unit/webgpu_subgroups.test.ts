// webgpu_subgroups.test.ts: the webgpu backend's subgroup paths (workgroup reductions in render_wgsl.ts,
// softmax's row reduction in shaders/softmax.wgsl) against the same kernels with subgroups turned off
// (createWebgpuBackend({ disableFeatures: ["subgroups"] })), both compared with the cpu backend: odd sizes,
// sizes that are no multiple of any subgroup size, NaN, infinities, signed zeros, packed outputs.
// Also how optional features are reported and turned off. Skips without an adapter.

import { afterAll, describe, expect, it } from "vitest";
import type { Backend } from "../../src/core/backend.js";
import type { DType } from "../../src/core/dtype.js";
import { decode, encode, itemsize } from "../../src/core/dtype.js";
import type { Expr, KernelSpec } from "../../src/core/ir.js";
import { add, c, cast, load, mul, v } from "../../src/core/ir.js";
import type { SoftmaxSpec } from "../../src/core/routines.js";
import { nodeGpu } from "../../src/backends/webgpu/dawn_node.js";
import { createWebgpuBackend } from "../../src/backends/webgpu/index.js";
import { missingReason, skipLabel } from "../helpers/skip_reasons.js";
import { cpu, expectSame, runSpec, tryWebgpu } from "./webgpu_compare.js";

// NOTE: this file compares both paths itself, so a KILN_WEBGPU_DISABLE set for the whole run is ignored here.
const savedDisable = process.env.KILN_WEBGPU_DISABLE;
const { gpu: withSubgroups, missing } = await withoutEnvDisable(tryWebgpu);
const plain = withSubgroups ? await withoutEnvDisable(() => createWebgpuBackend({ disableFeatures: ["subgroups"] })) : undefined;
const adapter = withSubgroups ? await nodeGpu().requestAdapter({ powerPreference: "high-performance" }) : null;
/** kiln uses subgroups where the adapter has them and WGSL has the subgroup_id builtin (see device.ts). */
const subgroupsUsable = !!adapter?.features.has("subgroups") && nodeGpu().wgslLanguageFeatures.has("subgroup_id");
const noSubgroups = withSubgroups && !withSubgroups.caps.subgroups
  ? missingReason("subgroups", `${withSubgroups.info.device} has no subgroups feature or no subgroup_id builtin`) : undefined;
afterAll(() => {
  withSubgroups?.dispose();
  plain?.dispose();
});

const gid = v("gid");
const ridx = v("ridx");

/** out[row] = reduce over `cols` of x[row * cols + ridx] (in f32 for f16/bf16 inputs). */
function rowReduce(name: string, op: "sum" | "max", rows: number, cols: number, out: DType, inDtype: DType = "f32"): KernelSpec {
  const x: Expr = load(1, add(mul(gid, c(cols)), ridx), inDtype);
  const red = inDtype === "f16" || inDtype === "bf16" ? "f32" : inDtype;
  return { name, n: rows, out, inputs: [inDtype], reduce: { op, size: cols, dtype: red }, body: cast(x, red) };
}

/** `make()` with KILN_WEBGPU_DISABLE unset. */
async function withoutEnvDisable<T>(make: () => Promise<T>): Promise<T> {
  delete process.env.KILN_WEBGPU_DISABLE;
  try {
    return await make();
  } finally {
    if (savedDisable !== undefined) process.env.KILN_WEBGPU_DISABLE = savedDisable;
  }
}

/** WGSL that uses subgroups (comments may mention them). */
const SUBGROUP_CODE = /enable subgroups|subgroup[A-Z]|@builtin\(subgroup|num_subgroups/;

const floats = (n: number, seed = 1) => Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 3);

/** Runs `spec` on the cpu backend and on both webgpu backends; each must match the cpu's answer. */
async function expectBothLikeCpu(spec: KernelSpec, inputs: readonly (readonly number[])[], tol?: number): Promise<void> {
  const want = await runSpec(cpu, spec, inputs);
  for (const g of [withSubgroups!, plain!]) {
    expectSame(await runSpec(g, spec, inputs), want, spec.out, `${spec.name} (subgroups ${g.caps.subgroups ? "on" : "off"})`, tol);
  }
}

/** Runs routine softmax on `b` from host values. */
async function runSoftmax(b: Backend, spec: SoftmaxSpec, x: readonly number[]): Promise<number[]> {
  const exe = await b.routine("softmax", spec);
  const n = spec.rows * spec.cols;
  const out = b.alloc(n * itemsize(spec.out));
  const bytes = encode(x, spec.dtype);
  const inp = b.alloc(bytes.byteLength);
  b.write(inp, bytes);
  b.launch(exe, [out, inp]);
  const got = decode(await b.read(out), spec.out, n);
  b.free(out);
  b.free(inp);
  return got;
}

describe.skipIf(!withSubgroups)(`webgpu subgroups${skipLabel(missing)}`, () => {
  const sg = withSubgroups!;
  const off = plain!;

  it("reports the optional features the adapter has, unless turned off", async () => {
    // NOTE: SwiftShader has subgroups (and the subgroup_id builtin) but not shader-f16.
    expect(sg.caps.subgroups).toBe(subgroupsUsable);
    expect(sg.caps.f16Math).toBe(adapter!.features.has("shader-f16"));
    expect(off.caps.subgroups).toBe(false);
    expect(off.caps.f16Math).toBe(sg.caps.f16Math);
    expect(off.info.details.features).not.toMatch(/subgroups/);
    const noF16 = await withoutEnvDisable(() => createWebgpuBackend({ disableFeatures: ["shader-f16"] }));
    expect(noF16.caps.f16Math).toBe(false);
    expect(noF16.caps.subgroups).toBe(sg.caps.subgroups);
    noF16.dispose();
  });

  it("turns features off through KILN_WEBGPU_DISABLE and names an unknown one", async () => {
    try {
      process.env.KILN_WEBGPU_DISABLE = "subgroups";
      const b = await createWebgpuBackend();
      expect(b.caps.subgroups).toBe(false);
      b.dispose();
      process.env.KILN_WEBGPU_DISABLE = "subgroups,warp-drive";
      await expect(createWebgpuBackend()).rejects.toThrow(/cannot disable feature 'warp-drive'.*shader-f16, subgroups/);
    } finally {
      if (savedDisable === undefined) delete process.env.KILN_WEBGPU_DISABLE;
      else process.env.KILN_WEBGPU_DISABLE = savedDisable;
    }
  });

  it.skipIf(!!noSubgroups)(`emits subgroup operations only where subgroups are on${skipLabel(noSubgroups)}`, async () => {
    const spec = rowReduce("src_sum", "sum", 1, 1000, "f32");
    const on = sg.source(await sg.compile(spec))!;
    expect(on).toMatch(/^enable subgroups;/);
    expect(on).toContain("subgroupAdd(");
    expect(off.source(await off.compile(spec))).not.toMatch(SUBGROUP_CODE);
    expect(sg.source(await sg.compile(rowReduce("src_max", "max", 2, 300, "f32")))).toContain("k_sg_fmax(");
    // Few values per output: one invocation per output, no workgroup reduction and no subgroups.
    expect(sg.source(await sg.compile(rowReduce("src_short", "sum", 4, 9, "f32")))).not.toMatch(SUBGROUP_CODE);
    const softmax: SoftmaxSpec = { rows: 2, cols: 37, dtype: "f32", out: "f32" };
    expect(sg.source(await sg.routine("softmax", softmax))).toMatch(/^enable subgroups;/m);
    expect(off.source(await off.routine("softmax", softmax))).not.toMatch(SUBGROUP_CODE);
  });

  it("sums 70001 values per workgroup as the cpu does, with and without subgroups", async () => {
    const n = 70001;
    const ints = Array.from({ length: n }, (_, i) => (i % 7) - 3 + (i === n - 1 ? 1000 : 0));
    await expectBothLikeCpu(rowReduce("sum70001_ints", "sum", 1, n, "f32"), [ints]);
    await expectBothLikeCpu(rowReduce("sum70001", "sum", 1, n, "f32"), [floats(n)], 1e-4);
    await expectBothLikeCpu(rowReduce("sum70001_i32", "sum", 1, n, "i32", "i32"), [ints]);
  });

  it("reduces rows whose length is no multiple of the subgroup or workgroup size", async () => {
    for (const [rows, cols] of [[1, 256], [3, 257], [2, 999], [5, 263]] as const) {
      const data = floats(rows * cols, cols);
      await expectBothLikeCpu(rowReduce(`sum_${rows}x${cols}`, "sum", rows, cols, "f32"), [data], 2e-5);
      await expectBothLikeCpu(rowReduce(`max_${rows}x${cols}`, "max", rows, cols, "f32"), [data]);
      const ints = data.map((x) => Math.round(x * 1000));
      await expectBothLikeCpu(rowReduce(`max_i32_${rows}x${cols}`, "max", rows, cols, "i32", "i32"), [ints]);
      await expectBothLikeCpu(rowReduce(`sum_u32_${rows}x${cols}`, "sum", rows, cols, "u32", "u32"), [ints.map((x) => Math.abs(x))]);
    }
  });

  it("keeps max NaN-sticky and gets the infinities and signed zeros of sum and max right", async () => {
    const cols = 301;
    const rows: number[][] = [
      floats(cols, 1).map((x, i) => (i === 150 ? NaN : x)), // one NaN in the middle
      floats(cols, 2).map((x, i) => (i === cols - 1 ? NaN : x)), // NaN in the last, partial subgroup
      Array.from({ length: cols }, () => -Infinity), // max -inf, sum -inf
      floats(cols, 3).map((x, i) => (i === 7 ? Infinity : x)), // max and sum +inf
      floats(cols, 4).map((x, i) => (i === 3 ? Infinity : i === 200 ? -Infinity : x)), // sum NaN, max +inf
      Array.from({ length: cols }, (_, i) => (i % 3 === 0 ? -0 : 0)), // zeros of both signs
      Array.from({ length: cols }, () => -0),
      floats(cols, 5).map((x, i) => (i === 0 ? NaN : i === 1 ? Infinity : x - 1e9)), // NaN next to inf, large negatives
    ];
    const data = rows.flat();
    // NOTE: a max of zeros may give either zero (the cpu keeps the first it meets); expectSame takes both.
    for (const op of ["sum", "max"] as const) await expectBothLikeCpu(rowReduce(`edges_${op}`, op, rows.length, cols, "f32"), [data], 2e-5);
  });

  it("reduces into packed outputs (f16, bf16, u8, bool), several elements per workgroup", async () => {
    const data = floats(5 * 300).map((x, i) => (i === 310 ? NaN : x));
    await expectBothLikeCpu(rowReduce("wg_f16_max", "max", 5, 300, "f16", "f16"), [data]);
    await expectBothLikeCpu(rowReduce("wg_bf16_sum", "sum", 5, 300, "bf16", "bf16"), [data.map((x) => (Number.isNaN(x) ? 1 : x))], 2e-2);
    const bytes = Array.from({ length: 5 * 300 }, (_, i) => (i * 37) % 256);
    await expectBothLikeCpu(rowReduce("wg_u8_sum", "sum", 5, 300, "u8", "u8"), [bytes]);
    await expectBothLikeCpu(rowReduce("wg_u8_max", "max", 5, 300, "u8", "u8"), [bytes.map((x) => x % 200)]);
    const bools = Array.from({ length: 5 * 300 }, (_, i) => (i === 310 || i === 1499 ? 1 : 0));
    await expectBothLikeCpu(rowReduce("wg_bool_any", "max", 5, 300, "bool", "bool"), [bools]);
    await expectBothLikeCpu(rowReduce("wg_bool_sum", "sum", 5, 300, "bool", "bool"), [bools]);
  });

  it("computes softmax with and without subgroups as the cpu backend does: odd sizes, NaN, -inf", async () => {
    for (const [rows, cols] of [[3, 1], [4, 5], [3, 37], [2, 255], [2, 1001]] as const) {
      for (const dtype of ["f32", "f16"] as const) {
        const spec: SoftmaxSpec = { rows, cols, dtype, out: dtype };
        // Row 0 far below zero: exp(x) alone would underflow, so each subgroup's sums must be rescaled to its max.
        const x = floats(rows * cols, cols).map((v, i) => v * 4 - (i < cols ? 500 : 0));
        if (cols > 1) {
          x[1] = -Infinity; // row 0: a -inf entry gives exactly 0
          x[cols + cols - 1] = NaN; // row 1: NaN in the last column makes the row NaN
        }
        if (rows > 2) for (let j = 0; j < cols; j++) x[2 * cols + j] = -Infinity; // row 2: all -inf is NaN
        const want = await runSoftmax(cpu, spec, x);
        for (const g of [sg, off]) {
          const what = `softmax ${rows}x${cols} ${dtype} (subgroups ${g.caps.subgroups ? "on" : "off"})`;
          expectSame(await runSoftmax(g, spec, x), want, dtype, what, dtype === "f32" ? 2e-5 : 2e-3);
        }
      }
    }
  });
});
