// webgpu_backend.test.ts: the webgpu runtime and the kernel shapes render_wgsl.ts makes (elementwise,
// reductions per invocation and per workgroup, packed sub-word outputs, 2-D dispatch), each checked
// against the cpu backend on the same KernelSpec; plus ordering, aliasing, errors and disposal.
// Skips without an adapter (CI requires one).

import { afterAll, describe, expect, it } from "vitest";
import type { Executable } from "../../src/core/backend.js";
import type { DType } from "../../src/core/dtype.js";
import { decode, encode } from "../../src/core/dtype.js";
import type { Expr, KernelSpec } from "../../src/core/ir.js";
import { add, alu, c, cast, idiv, load, lt, mod, mul, v, where } from "../../src/core/ir.js";
import { skipLabel } from "../helpers/skip_reasons.js";
import { expectLikeCpu, runSpec, tryWebgpu } from "./webgpu_compare.js";

const { gpu, missing } = await tryWebgpu();
afterAll(() => gpu?.dispose());
const gid = v("gid");
const ridx = v("ridx");

/** out[row] = reduce over `cols` of body(x[row * cols + ridx]), with an optional epilogue. */
function rowReduce(name: string, op: "sum" | "max", rows: number, cols: number, out: DType, inDtype: DType = "f32",
  body: (x: Expr) => Expr = (x) => x, epilogue?: Expr): KernelSpec {
  const x = load(1, add(mul(gid, c(cols)), ridx), inDtype);
  const red = inDtype === "f16" || inDtype === "bf16" ? "f32" : inDtype;
  return { name, n: rows, out, inputs: [inDtype], reduce: { op, size: cols, dtype: red }, body: cast(body(x), red), epilogue };
}

const floats = (n: number, seed = 1) => Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 3);

describe.skipIf(!gpu)(`webgpu backend${skipLabel(missing)}`, () => {
  const g = gpu!;

  it("reports its device and capabilities", () => {
    expect(g.info.name).toBe("webgpu");
    expect(g.info.device.length).toBeGreaterThan(0);
    expect(g.caps.dtypes).not.toContain("f64");
    expect(g.caps.maxBufferBytes).toBeGreaterThan(2 ** 20);
  });

  it("runs an elementwise kernel: out = exp(x) * 2", async () => {
    for (const n of [1, 7, 1000]) {
      const spec: KernelSpec = { name: "exp2x", n, out: "f32", inputs: ["f32"], body: mul(alu("exp", load(1, gid, "f32")), c(2, "f32")) };
      await expectLikeCpu(g, spec, [floats(n)]);
    }
  });

  it("sums and maxes rows, one invocation per row, with an epilogue", async () => {
    const epi = mul(v("acc", "f32"), c(0.5, "f32"));
    await expectLikeCpu(g, rowReduce("rowsum", "sum", 5, 37, "f32", "f32", (x) => x, epi), [floats(5 * 37)]);
    const data = floats(4 * 9);
    data[10] = NaN; // row 1 has a NaN: max keeps it
    await expectLikeCpu(g, rowReduce("rowmax", "max", 4, 9, "f32"), [data]);
    await expectLikeCpu(g, rowReduce("rowsum_i32", "sum", 3, 11, "i32", "i32"), [Array.from({ length: 33 }, (_, i) => i * 7 - 100)]);
  });

  it("reduces long rows per workgroup: a full sum of 100k values and a NaN-sticky max", async () => {
    const n = 100_000;
    const ones = Array.from({ length: n }, (_, i) => (i % 7) - 3);
    const full = rowReduce("fullsum", "sum", 1, n, "f32");
    expect(g.source(await g.compile(full))).toContain("workgroupBarrier");
    await expectLikeCpu(g, full, [ones]);
    const data = floats(3 * 300);
    data[450] = NaN;
    await expectLikeCpu(g, rowReduce("wgmax", "max", 3, 300, "f32"), [data]);
    await expectLikeCpu(g, rowReduce("wgmax_i32", "max", 2, 1000, "i32", "i32"), [Array.from({ length: 2000 }, (_, i) => (i * 7919) % 1000 - 500)]);
  });

  it("packs sub-word outputs whole words at a time: f16, bf16, u8, bool with odd n", async () => {
    const x = load(1, gid, "f32");
    for (const out of ["f16", "bf16", "u8", "bool"] as const) {
      const body = out === "bool" ? lt(x, c(0, "f32")) : out === "u8" ? cast(mul(x, c(40, "f32")), "u8") : cast(x, out);
      await expectLikeCpu(g, { name: `pack_${out}`, n: 7, out, inputs: ["f32"], body }, [floats(7)]);
    }
    // The same packed outputs from workgroup reductions (one workgroup per word, lanes in turn).
    await expectLikeCpu(g, rowReduce("wg_f16", "sum", 3, 300, "f16", "f16"), [floats(900)], 2e-3);
    await expectLikeCpu(g, rowReduce("wg_bool", "max", 5, 300, "bool", "bool"), [Array.from({ length: 1500 }, (_, i) => (i === 310 || i === 1499 ? 1 : 0))]);
  });

  it("reads packed inputs: f16, bf16, u8 and bool loads", async () => {
    for (const d of ["f16", "bf16", "u8", "bool"] as const) {
      const body = cast(load(1, alu("sub", c(8), gid), d), "f32"); // reversed, so odd and even lanes cross
      const data = d === "u8" ? [0, 1, 2, 127, 128, 200, 254, 255, 9] : d === "bool" ? [1, 0, 0, 1, 1, 1, 0, 1, 0] : floats(9);
      await expectLikeCpu(g, { name: `load_${d}`, n: 9, out: "f32", inputs: [d], body }, [data]);
    }
  });

  it("keeps the bits of elements past n in a packed output's last word", async () => {
    const out = g.alloc(8 * 2);
    g.write(out, encode([9, 9, 9, 9, 9, 9, 9, 9], "f16"));
    const exe = await g.compile({ name: "partial_f16", n: 7, out: "f16", inputs: [], body: cast(gid, "f16") });
    g.launch(exe, [out]);
    expect(decode(await g.read(out), "f16")).toEqual([0, 1, 2, 3, 4, 5, 6, 9]);
    g.free(out);
  });

  it("launches more than 65535 workgroups through a 2-D grid", async () => {
    const n = 65535 * 64 + 100;
    const spec: KernelSpec = { name: "iota_big", n, out: "i32", inputs: [], body: alu("xor", gid, c(5)) };
    const got = await runSpec(g, spec, []);
    for (const i of [0, 1, 65535 * 64 - 1, 65535 * 64, n - 1]) expect(got[i]).toBe(i ^ 5);
  });

  it("keeps program order between writes and batched launches", async () => {
    const exe = await g.compile({ name: "plus1", n: 4, out: "f32", inputs: ["f32"], body: add(load(1, gid, "f32"), c(1, "f32")) });
    const [a, b1, b2] = [g.alloc(16), g.alloc(16), g.alloc(16)];
    g.write(a, encode([1, 2, 3, 4], "f32"));
    g.launch(exe, [b1, a]);
    g.write(a, encode([10, 20, 30, 40], "f32")); // recorded after the launch: must not be seen by it
    g.launch(exe, [b2, a]);
    expect(decode(await g.read(b1), "f32")).toEqual([2, 3, 4, 5]);
    expect(decode(await g.read(b2), "f32")).toEqual([11, 21, 31, 41]);
    for (const x of [a, b1, b2]) g.free(x);
  });

  it("runs a kernel whose output is also an input (in place), reading the old values", async () => {
    const exe = await g.compile({ name: "shift", n: 5, out: "f32", inputs: ["f32"], body: load(1, mod(add(gid, c(1)), c(5)), "f32") });
    const a = g.alloc(20);
    g.write(a, encode([0, 1, 2, 3, 4], "f32"));
    g.launch(exe, [a, a]);
    expect(decode(await g.read(a), "f32")).toEqual([1, 2, 3, 4, 0]);
    g.free(a);
  });

  it("hands out zeroed memory, also when it reuses a freed buffer", async () => {
    const a = g.alloc(1000);
    g.write(a, new Uint8Array(1000).fill(7));
    await g.read(a);
    g.free(a);
    const b = g.alloc(1000);
    expect((await g.read(b)).every((x) => x === 0)).toBe(true);
    g.free(b);
  });

  it("reads odd byte counts and writes bytes that fill no whole word, keeping their neighbours", async () => {
    const a = g.alloc(11);
    g.write(a, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]));
    expect([...(await g.read(a, 5))]).toEqual([1, 2, 3, 4, 5]);
    g.write(a, new Uint8Array([20, 21]), 1); // inside word 0
    g.write(a, new Uint8Array([30, 31, 32, 33, 34, 35]), 3); // end of word 0, all of word 1, start of word 2
    expect([...(await g.read(a))]).toEqual([1, 20, 21, 30, 31, 32, 33, 34, 35, 10, 11]);
    // Recorded after a pending launch that reads the buffer: the launch still sees the old bytes.
    const exe = await g.compile({ name: "copy_u8", n: 11, out: "u8", inputs: ["u8"], body: load(1, gid, "u8") });
    const b = g.alloc(11);
    g.launch(exe, [b, a]);
    g.write(a, new Uint8Array([99]), 10); // the buffer's last byte: padded, no merge
    g.write(a, new Uint8Array([98]), 5);
    expect([...(await g.read(b))]).toEqual([1, 20, 21, 30, 31, 32, 33, 34, 35, 10, 11]);
    expect([...(await g.read(a))]).toEqual([1, 20, 21, 30, 31, 98, 33, 34, 35, 10, 99]);
    g.free(a);
    g.free(b);
  });

  it("caches pipelines by source and shares them between kernels of the same shape", async () => {
    const body = mul(load(1, gid, "f32"), c(3, "f32"));
    const a = await g.compile({ name: "k_a", n: 10, out: "f32", inputs: ["f32"], body });
    const b = await g.compile({ name: "k_b", n: 10, out: "f32", inputs: ["f32"], body });
    expect(b.name).toBe("k_b");
    expect(b.pipeline).toBe(a.pipeline);
  });

  it("refuses f64 and names the kernel", async () => {
    await expect(g.compile({ name: "dbl", n: 1, out: "f64", inputs: [], body: c(1, "f64") })).rejects.toThrow(/^webgpu: f64 is not supported in kernel 'dbl'/);
  });

  it("reports a validation error from a launch at the next synchronize", async () => {
    const exe = await g.compile({ name: "one_input", n: 4, out: "f32", inputs: ["f32"], body: load(1, gid, "f32") });
    const bufs = [g.alloc(16), g.alloc(16), g.alloc(16)];
    // Three buffers into a two-slot layout: WebGPU rejects the bind group on the device timeline.
    g.launch({ ...exe, slots: undefined } as Executable, bufs);
    await expect(g.synchronize()).rejects.toThrow(/webgpu: validation error/);
    await g.synchronize(); // the error was reported once; the backend goes on
    for (const b of bufs) g.free(b);
  });

  it("reports WGSL that does not compile as an error naming it, with the source", async () => {
    const bad = (g as unknown as { pipeline(code: string, name: string, layout: "auto"): Promise<unknown> }).pipeline;
    await expect(bad.call(g, "fn main( {", "broken_kernel", "auto")).rejects.toThrow(/'broken_kernel' failed to compile[^]*fn main\( \{/);
  });

  it("rejects pending reads and every later call once disposed, instead of hanging", async () => {
    const { gpu: other } = await tryWebgpu();
    const b = other!.alloc(64);
    const pending = other!.read(b);
    other!.dispose();
    await expect(pending).rejects.toThrow(/disposed|lost/);
    await expect(other!.read(b)).rejects.toThrow(/webgpu: backend disposed/);
    expect(() => other!.alloc(4)).toThrow(/webgpu: backend disposed/);
    await expect(other!.synchronize()).rejects.toThrow(/webgpu: backend disposed/);
  });

  it("turns a lost device into errors: pending reads reject and later calls throw", async () => {
    const { gpu: other } = await tryWebgpu();
    const b = other!.alloc(64);
    const pending = other!.read(b);
    (other as unknown as { device: GPUDevice }).device.destroy(); // what a driver reset looks like from here
    await expect(pending).rejects.toThrow(/webgpu: device lost \(destroyed/);
    expect(() => other!.alloc(4)).toThrow(/webgpu: device lost/);
    await expect(other!.compile({ name: "late", n: 1, out: "f32", inputs: [], body: c(1, "f32") })).rejects.toThrow(/device lost/);
    other!.dispose();
  });

  it("agrees with the cpu backend on integer index math (div, mod, where) in a gather", async () => {
    const idx = load(2, gid, "i32");
    const body = where(lt(idx, c(0)), c(-1, "f32"), load(1, mod(idiv(idx, c(2)), c(6)), "f32"));
    await expectLikeCpu(g, { name: "gather", n: 8, out: "f32", inputs: ["f32", "i32"], body }, [floats(6), [0, 3, -4, 11, 7, 2, -1, 5]]);
  });
});
