// cuda_render.test.ts: the CUDA C renderer (src/backends/cuda/render_cuda.ts) checked without a GPU.
// Every kernel the conformance suite produces (recorded by running it with kernel_recorder.ts as its
// "cuda" backend) is rendered, compiled by nvcc for sm_90a (skipped, with the reason, where nvcc is
// missing), and compiled as host C++ through a shim (cuda_host_shim.h: blockIdx/threadIdx as loops,
// __syncthreads as a barrier between fibers) with ASan and UBSan, run on the recorded inputs and
// compared with the cpu backend's recorded outputs. Compiled outputs and records are cached by hash
// (cuda_compile.ts cacheDir()), so a rerun on an unchanged tree takes seconds.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { alu, c, load, v } from "../../src/core/ir.js";
import type { KernelSpec } from "../../src/core/ir.js";
import { BINARY_OPS, UNARY_OPS } from "../../src/core/ops.js";
import { CUDA_ALU } from "../../src/backends/cuda/cuda_ops.js";
import { renderCuda } from "../../src/backends/cuda/render_cuda.js";
import type { KernelRecord } from "../helpers/kernel_recorder.js";
import { batch, compileCached, deviceUnit, findNvcc, hostLink, hostMain, hostUnit, HOST_FLAGS, pool, toolVersion } from "../helpers/cuda_compile.js";
import { blocksRun, conformanceKernels, firstMismatch, launchFile, readOutputs } from "../helpers/cuda_record.js";
import { killGroups, start } from "../helpers/launch_procs.js";
import { missingReason } from "../helpers/skip_reasons.js";

const UNITS = 4;
const CXX = process.env.CXX ?? "g++";

describe("render_cuda", () => {
  const sum: KernelSpec = {
    name: "sum rows", n: 3, out: "f32", inputs: ["f32"],
    reduce: { op: "sum", size: 1000, dtype: "f32" },
    body: load(1, alu("add", alu("mul", v("gid"), c(1000)), v("ridx")), "f32"),
  };

  it("spells every unary and binary op of the op table", () => {
    expect([...UNARY_OPS, ...BINARY_OPS, "where"].filter((op) => !(op in CUDA_ALU))).toEqual([]);
  });

  it("gives a long reduction over few outputs a block each, and a short one a thread each", () => {
    const long = renderCuda(sum);
    expect([long.grid, long.block, long.blockSync]).toEqual([3, 256, true]);
    expect(long.code).toContain("__syncthreads()");
    const short = renderCuda({ ...sum, n: 1000, reduce: { op: "sum", size: 3, dtype: "f32" }, body: load(1, alu("add", alu("mul", v("gid"), c(3)), v("ridx")), "f32") });
    expect([short.grid, short.block, short.blockSync]).toEqual([4, 256, false]);
    expect(short.code).not.toContain("__syncthreads");
  });

  it("names one entry per source: a kernel of the same name with other code gets another entry", () => {
    const a = renderCuda(sum);
    const b = renderCuda({ ...sum, body: load(1, alu("add", v("gid"), v("ridx")), "f32") });
    expect(a.entry).toMatch(/^k_sum_rows_[0-9a-f]{8}$/);
    expect(a.entry).not.toBe(b.entry);
  });

  it("names the kernel, slot and dtype of a load it cannot render", () => {
    expect(() => renderCuda({ ...sum, body: load(2, v("ridx"), "f32") })).toThrow(/cuda: kernel 'sum rows' loads slot 2, which it does not have/);
    expect(() => renderCuda({ ...sum, body: load(1, v("ridx"), "i32") })).toThrow(/loads slot 1 as i32, but the slot holds f32/);
    expect(() => renderCuda({ ...sum, reduce: undefined })).toThrow(/reads 'ridx', which is not defined there/);
    expect(() => renderCuda({ ...sum, body: alu("xor", load(1, v("ridx"), "f32"), c(1, "f32")) })).toThrow(/cuda: xor is not defined on f32/);
  });
});

describe("conformance kernels in CUDA C, without a GPU", () => {
  let records: KernelRecord[] = [];
  let launches: KernelRecord[] = [];
  let kernels: KernelRecord[] = [];
  const work = mkdtempSync(join(tmpdir(), "kiln-cuda-test-"));

  beforeAll(async () => {
    ({ records } = await conformanceKernels(90_000));
    launches = records.filter((r) => r.code !== undefined);
    kernels = [...new Map(launches.map((r) => [r.code!, r])).values()];
  }, 100_000);
  afterAll(() => {
    killGroups();
    rmSync(work, { recursive: true, force: true });
  });

  it("every kernel of the conformance suite renders", () => {
    const errors = records.filter((r) => r.renderError).map((r) => `${r.test}: ${r.kernel}: ${r.renderError}`);
    expect(errors).toEqual([]);
    // NOTE: a floor, so that a recorder that records nothing cannot pass (there are ~850 today).
    expect(kernels.length).toBeGreaterThan(300);
    expect(kernels.some((k) => k.blockSync)).toBe(true);
  });

  it("compiles every kernel with nvcc for sm_90a (ptxas included)", async (ctx) => {
    const nvcc = findNvcc();
    if (!nvcc) return ctx.skip(missingReason("nvcc", "not on PATH, nor in CUDA_HOME/bin or /usr/local/cuda/bin"));
    const version = toolVersion(nvcc);
    const units = batch(kernels.map((k) => ({ entry: k.entry!, code: k.code!, dtypes: k.dtypes! })), UNITS);
    await pool(units.map((u) => () => compileCached(nvcc, version, ["-std=c++17", "-cubin", "-arch=sm_90a", "-Werror", "all-warnings"], deviceUnit(u), ".cubin", 80_000)), 2);
  }, 120_000);

  it("runs every kernel as host C++ through the shim and matches the cpu backend", async (ctx) => {
    let version: string;
    try {
      version = toolVersion(CXX);
    } catch (err) {
      return ctx.skip(missingReason("cxx", `${CXX}: ${(err as Error).message}`));
    }
    const units = batch(kernels.map((k) => ({ entry: k.entry!, code: k.code!, dtypes: k.dtypes! })), UNITS);
    const objects = await pool([
      () => hostMain(CXX, version, 80_000),
      ...units.map((u) => async () => (await compileCached(CXX, version, [...HOST_FLAGS, "-c"], hostUnit(u), ".o", 80_000)).path),
    ], 2);
    const runner = await hostLink(CXX, objects, 60_000);
    writeFileSync(join(work, "launches.bin"), launchFile(launches));
    const ended = await start(runner, [join(work, "launches.bin"), join(work, "outputs.bin")], 60_000).ended;
    // NOTE: ASan warns once that it does not fully support swapcontext; the runner tells it of every switch.
    const stderr = ended.stderr.replace(/^==\d+==WARNING: ASan doesn't fully support makecontext\/swapcontext.*\n/m, "");
    expect(stderr, "the host runner (ASan/UBSan report, if any)").toBe("");
    expect(ended.code).toBe(0);
    const outputs = readOutputs(readFileSync(join(work, "outputs.bin")));
    expect(outputs.length).toBe(launches.length);
    const bad = launches.flatMap((r, i) => {
      // Block g of a block reduction writes output g; the host runs the first SYNC_BLOCKS of them.
      const why = firstMismatch(r, outputs[i]!, r.blockSync ? blocksRun(r) : Infinity);
      return why ? [`${r.test}: kernel ${r.kernel} (${r.entry}): ${why}`] : [];
    });
    expect(bad).toEqual([]);
  }, 150_000);

  it("the comparison fails on a wrong value, a NaN for a number, and a wrong int", () => {
    const f32 = launches.find((r) => r.dtypes![0] === "f32" && !r.reduceSize && r.output!.length > 8)!;
    const out = Buffer.from(f32.output!, "base64");
    expect(firstMismatch(f32, out)).toBeUndefined();
    const off = Buffer.from(out);
    off.writeFloatLE(off.readFloatLE(0) * 1.01 + 0.01, 0);
    expect(firstMismatch(f32, off)).toMatch(/^element 0 is/);
    off.writeFloatLE(NaN, 0);
    expect(firstMismatch(f32, off)).toMatch(/^element 0 is NaN/);
    const i32 = launches.find((r) => r.dtypes![0] === "i32" && r.output!.length > 8)!;
    const iout = Buffer.from(i32.output!, "base64");
    iout.writeInt32LE(iout.readInt32LE(4) + 1, 4);
    expect(firstMismatch(i32, iout)).toMatch(/^element 1 is/);
  });
});
