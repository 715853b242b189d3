// webgpu_render.test.ts: every ALU op on every dtype it is defined on, and every cast between dtypes,
// rendered to WGSL and run on the device, against the cpu backend (render_js.ts is the spec) on edge
// values: NaN, infinities, signed zeros, integer overflow, division by zero, large shifts.
// Also checks the WGSL pieces routines use (wgslBinding, renderEpilogueWgsl). Skips without an adapter.

import { afterAll, describe, expect, it } from "vitest";
import type { Executable } from "../../src/core/backend.js";
import type { DType } from "../../src/core/dtype.js";
import { decode, encode, itemsize } from "../../src/core/dtype.js";
import type { KernelSpec } from "../../src/core/ir.js";
import { alu, c, cast, load, v } from "../../src/core/ir.js";
import type { AluOp } from "../../src/core/ops.js";
import { BINARY_OPS, FLOAT_ONLY, INT_ONLY, UNARY_OPS } from "../../src/core/ops.js";
import { renderEpilogueWgsl, wgslBinding } from "../../src/backends/webgpu/render_wgsl.js";
import { skipLabel } from "../helpers/skip_reasons.js";
import { expectLikeCpu, expectSame, tryWebgpu } from "./webgpu_compare.js";

const { gpu, missing } = await tryWebgpu();
afterAll(() => gpu?.dispose());
const gid = v("gid");

const I32_MIN = -2147483648;
/** Operand pairs per dtype, element by element: edge cases first. */
const OPERANDS: Record<"f32" | "i32" | "u32" | "u8" | "bool", [number[], number[]]> = {
  f32: [
    [-3.5, -1, -0.5, -0, 0, 0.5, 1, 2.25, 7, 100, NaN, Infinity, -Infinity, 1e-3, 5, -7.5],
    [2, 0, -2, 3, 0, -0, -1, 1.5, NaN, 2, 1, 1, 2, 3, Infinity, 2],
  ],
  i32: [
    [0, 1, -1, 7, -7, 100000, I32_MIN, 2147483647, 3, 12, -12, 5, I32_MIN, 9],
    [3, 0, 2, -2, 3, 100000, -1, 1, 0, 35, -1, 32, 2, -9],
  ],
  u32: [
    [0, 1, 7, 4294967295, 2147483648, 3000000000, 12, 5, 100, 65536, 3, 9],
    [3, 0, 2, 1, 31, 2, 33, 0, 7, 65536, 4294967295, 1],
  ],
  u8: [
    [0, 1, 7, 255, 128, 200, 12, 5, 100, 3, 9, 250],
    [3, 0, 2, 1, 7, 2, 9, 0, 7, 255, 128, 6],
  ],
  bool: [
    [0, 0, 1, 1],
    [0, 1, 0, 1],
  ],
};
/** Finite, moderate arguments for transcendentals (GPU precision is specified there). */
const TRANSCENDENTAL_ARGS = [-3, -1.25, -0.5, 0, 0.25, 0.5, 1, 2, 3.5, 10, 20, NaN];

/** Whether the op table defines `op` on `d` (what the renderer refuses otherwise). */
function defined(op: AluOp, d: DType): boolean {
  if (d === "f32") return !INT_ONLY.has(op);
  if (d === "bool") return !FLOAT_ONLY.has(op) && !["div", "mod", "shl", "shr"].includes(op);
  return !FLOAT_ONLY.has(op);
}

const tolFor = (op: AluOp) => (op === "sin" || op === "cos" ? 1e-3 : FLOAT_ONLY.has(op) ? 2e-4 : 1e-6);

describe.skipIf(!gpu)(`webgpu renderer${skipLabel(missing)}`, () => {
  const g = gpu!;

  for (const d of ["f32", "i32", "u32", "u8", "bool"] as const) {
    it(`spells every unary and binary op on ${d} as the cpu backend does`, async () => {
      const [a, b] = OPERANDS[d];
      for (const op of [...UNARY_OPS, ...BINARY_OPS]) {
        const unary = (UNARY_OPS as readonly string[]).includes(op);
        const x = load(1, gid, d);
        const body = unary ? alu(op, x) : alu(op, x, load(2, gid, d));
        const args = d === "f32" && FLOAT_ONLY.has(op) ? TRANSCENDENTAL_ARGS : a;
        const spec: KernelSpec = { name: `${op}_${d}`, n: args.length, out: body.dtype, inputs: unary ? [d] : [d, d], body };
        if (!defined(op, d)) {
          await expect(g.compile(spec), spec.name).rejects.toThrow(/is not defined on/);
          continue;
        }
        await expectLikeCpu(g, spec, unary ? [args] : [args, b.slice(0, args.length)], tolFor(op));
      }
    });
  }

  it("selects with where on every dtype", async () => {
    for (const d of ["f32", "i32", "u32", "u8", "bool"] as const) {
      const [a, b] = OPERANDS[d];
      const cond = a.map((_, i) => i % 3 === 0 ? 1 : 0);
      const body = alu("where", load(3, gid, "bool"), load(1, gid, d), load(2, gid, d));
      await expectLikeCpu(g, { name: `where_${d}`, n: a.length, out: d, inputs: [d, d, "bool"], body }, [a, b, cond]);
    }
  });

  it("casts between every pair of dtypes as the cpu backend does", async () => {
    const sources: Record<string, number[]> = {
      f32: [-3.7, -1, -0.5, -0, 0.49, 1.5, 255.9, 256, 65520, 70000, 3e9, -3e9, 1e10, NaN, Infinity, -Infinity, 1e-8, 2.5e-5, 5e-40],
      f16: [-3.7, -1, 0.5, 1.5, 255.9, 65504, Infinity, NaN, 6e-8, -2e-5],
      bf16: [-3.7, 1.5, 255.9, 3e9, -3e9, 1e30, NaN, -Infinity, 1e-39],
      i32: [I32_MIN, -300, -1, 0, 1, 255, 256, 65535, 70000, 2147483647, 16777217],
      u32: [0, 1, 255, 256, 2147483648, 4294967295, 16777217, 300],
      u8: [0, 1, 127, 128, 255],
      bool: [0, 1, 1, 0, 1],
    };
    const dtypes = Object.keys(sources) as DType[];
    for (const from of dtypes) {
      for (const to of dtypes) {
        if (from === to) continue;
        const data = sources[from]!;
        const spec: KernelSpec = { name: `cast_${from}_${to}`, n: data.length, out: to, inputs: [from], body: cast(load(1, gid, from), to) };
        await expectLikeCpu(g, spec, [data], 0);
      }
    }
  });

  it("stores a value of another dtype the way a typed-array store converts it", async () => {
    // The value's dtype differs from the output's: JS converts on store (ToInt32, rounding to f16, ...).
    const data = [-3.7, 1.5, 3e9, -3e9, NaN, 255.5, 65520];
    for (const out of ["i32", "u32", "u8", "f16", "bf16"] as const) {
      await expectLikeCpu(g, { name: `store_f32_${out}`, n: data.length, out, inputs: ["f32"], body: load(1, gid, "f32") }, [data], 0);
    }
  });

  it("wgslBinding declares a slot and its loader in the compute type", () => {
    const f16 = wgslBinding(3, "f16", "read");
    expect(f16).toContain("@group(0) @binding(3) var<storage, read> b3: array<u32>;");
    expect(f16).toContain("fn ld3(i: i32) -> f32");
    expect(wgslBinding(0, "bool", "read_write")).toContain("fn ld0(i: i32) -> bool");
    expect(() => wgslBinding(1, "f64", "read")).toThrow(/f64 is not supported/);
  });

  it("renderEpilogueWgsl computes an epilogue over absolute slots, inside a routine-like shader", async () => {
    // out = max(acc, 0) * scale[gid % 3] + bias[gid]: acc from slot 1, scale (f16) in slot 2, bias in slot 3.
    const scale = load(2, alu("mod", gid, c(3)), "f16");
    const expr = alu("add", alu("mul", alu("max", v("acc", "f32"), c(0, "f32")), cast(scale, "f32")), load(3, gid, "f32"));
    const epi = { expr, inputs: ["f16", "f32"] as DType[] };
    expect(() => renderEpilogueWgsl(epi, 4)).toThrow(/loads slot 2/);
    const code = [
      wgslBinding(0, "f32", "read_write"),
      wgslBinding(1, "f32", "read"),
      renderEpilogueWgsl(epi, 2),
      "@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) {",
      "  let gid = i32(id.x);",
      "  if (gid < 10) { b0[gid] = epilogue(ld1(gid), gid); }",
      "}",
    ].join("\n");
    // Compiled and launched as the backend does a routine: its pipeline cache, 'auto' layout, every slot bound.
    const internals = g as unknown as { pipeline(code: string, name: string, layout: "auto"): Promise<GPUComputePipeline> };
    const pipeline = await internals.pipeline.call(g, code, "epilogue_test", "auto");
    const acc = [-2, -1, 0, 1, 2, 3, 4, 5, 6, 7];
    const scales = [0.5, 2, -1];
    const bias = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    const bufs = [g.alloc(40), ...([[acc, "f32"], [scales, "f16"], [bias, "f32"]] as const).map(([vals, d]) => {
      const b = g.alloc(vals.length * itemsize(d));
      g.write(b, encode(vals, d));
      return b;
    })];
    g.launch({ name: "epilogue_test", source: code, pipeline, layout: pipeline.getBindGroupLayout(0), dispatch: [1, 1, 1] } as Executable, bufs);
    const want = acc.map((a, i) => Math.max(a, 0) * scales[i % 3]! + bias[i]!);
    expectSame(decode(await g.read(bufs[0]!), "f32"), want, "f32", "epilogue");
    for (const b of bufs) g.free(b);
  });
});
