// cuda_routines.test.ts: every hand-written routine in cuda/routines/ compiles with nvcc for the three
// targets kiln ships (sm_90a cubin: Hopper's wgmma/TMA target; sm_80 cubin: Ampere; compute_90 PTX: any
// later GPU JITs it), with every warning an error, and exports the extern "C" entries the runtime looks
// up by name. Outputs are cached by a hash of nvcc's version, the flags and the sources (KILN_CUDA_CACHE),
// so an unchanged tree recompiles nothing. Skipped with the reason where nvcc is missing (CI).
// The routines that need no block sync or warp shuffle also compile as host C++ (f32, with ASan and
// UBSan; test/helpers/cuda_routine_host.h) and run on the cpu against kiln's cpu backend: rope so far.
// NOTE: what runs them on a GPU is npm run test:gpu (bench/gpu/).

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { getBackend, tensor } from "../../src/index.js";
import { applyRope, ropeFrequencies, ropeTables } from "../../src/models/rope.js";
import { compileCached, findNvcc, pool, toolVersion } from "../helpers/cuda_compile.js";
import { missingReason, skipLabel } from "../helpers/skip_reasons.js";

const DIR = fileURLToPath(new URL("../../cuda/routines", import.meta.url));
const nvcc = findNvcc();
const noNvcc = nvcc ? undefined : missingReason("nvcc", "not on PATH, nor in CUDA_HOME/bin or /usr/local/cuda/bin");
const FLAGS = [
  "-fatbin", "-Werror", "all-warnings", "--threads", "2",
  "-gencode", "arch=compute_90a,code=sm_90a", "-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=compute_90",
];
const files = readdirSync(DIR).filter((f) => f.endsWith(".cu")).sort();
/** Each file as one source (common.cuh inlined, so the cache key covers it and the compile needs no -I). */
const common = readFileSync(join(DIR, "common.cuh"), "utf8").replace("#pragma once\n", "");
const HELPERS = fileURLToPath(new URL("../helpers", import.meta.url));
const CXX = process.env.CXX ?? "g++";
const cxxVersion = (() => { const r = spawnSync(CXX, ["--version"], { encoding: "utf8" }); return r.status === 0 ? r.stdout.split("\n")[0]! : undefined; })();
const noCxx = cxxVersion ? undefined : missingReason("cxx", `${CXX} does not run`);
const source = (f: string) => readFileSync(join(DIR, f), "utf8").replace('#include "common.cuh"', common);

describe("cuda/routines", () => {
  it("has a routine for each of shaders/ and what training and serving need", () => {
    const shaders = readdirSync(fileURLToPath(new URL("../../shaders", import.meta.url))).filter((f) => f.endsWith(".wgsl")).map((f) => f.replace(".wgsl", ""));
    // concat and kv_write are copies the runtime does with cuMemcpy; the rest have a .cu of the same name.
    // NOTE: matmul_q (quantized GEMV/GEMM, issue 13) has no .cu yet: the cuda backend dequantizes from primitives.
    const notYet = ["concat", "kv_write", "matmul_q"];
    const needed = [...shaders.filter((s) => !notYet.includes(s)), "rmsnorm", "layernorm", "rope", "cross_entropy", "adamw", "embedding"];
    expect(files.map((f) => f.replace(".cu", ""))).toEqual(expect.arrayContaining(needed));
  });

  it.skipIf(!nvcc)(`every routine compiles for sm_90a, sm_80 and compute_90 PTX and exports its entries${skipLabel(noNvcc)}`, async () => {
    const version = toolVersion(nvcc!);
    const built = await pool(files.map((f) => () => compileCached(nvcc!, version, FLAGS, source(f), ".cubin", 100_000).then((r) => ({ f, ...r }))), 2);
    for (const { f, path } of built) {
      // cuobjdump lists the fatbin's ELF cubins and PTX; each entry must be there for each target.
      const dump = spawnSync(join(nvcc!, "..", "cuobjdump"), ["--list-elf", "--list-ptx", path], { encoding: "utf8", timeout: 20_000 });
      if (dump.status === 0) {
        expect(dump.stdout, f).toMatch(/sm_90a/);
        expect(dump.stdout, f).toMatch(/sm_80/);
        expect(dump.stdout, f).toMatch(/ptx/i);
      }
      const entries = [...source(f).matchAll(/extern "C" __global__ void (?:__launch_bounds__\(\d+\) )?(\w+)##sfx/g)].map((m) => m[1]!);
      expect(entries.length, `${f} declares no extern "C" entry`).toBeGreaterThan(0);
      const bytes = readFileSync(path).toString("latin1");
      for (const e of entries) for (const sfx of ["f32", "f16", "bf16"]) expect(bytes.includes(`${e}${sfx}`), `${f}: ${e}${sfx} missing from the fatbin`).toBe(true);
    }
  }, 150_000);

  it.skipIf(!cxxVersion)(`rope.cu, run on the cpu as host C++, rotates as kiln's cpu backend does${skipLabel(noCxx)}`, async () => {
    const [T, H, D] = [6, 3, 16];
    const main = readFileSync(join(HELPERS, "cuda_rope_host.cpp"), "utf8").replace("#include ROPE_CU", source("rope.cu"));
    const flags = ["-std=c++17", "-O0", "-g0", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", `-I${HELPERS}`];
    const { path } = await compileCached(CXX, cxxVersion!, flags, `// ${readFileSync(join(HELPERS, "cuda_routine_host.h"), "utf8").length}\n${main}`, ".run", 60_000);
    const x = Float32Array.from({ length: T * H * D }, (_, i) => Math.sin(i * 1.7) * 3);
    const freqs = ropeFrequencies(D, 10000);
    const input = Buffer.concat([
      Buffer.from(Int32Array.of(T, H, D).buffer), Buffer.from(Float32Array.of(10000).buffer),
      Buffer.from(Int32Array.from({ length: T }, (_, t) => t).buffer), Buffer.from(Float32Array.from(freqs).buffer), Buffer.from(x.buffer),
    ]);
    const run = spawnSync(path, [], { input, timeout: 20_000, maxBuffer: 1 << 20 });
    expect(run.status, run.stderr?.toString()).toBe(0);
    const got = new Float32Array(new Uint8Array(run.stdout).buffer);
    const cpu = await getBackend("cpu");
    const { cos, sin } = ropeTables(T, D, freqs, cpu, "f32");
    const want = (await applyRope(tensor(x, { backend: cpu, dtype: "f32", shape: [T, H, D] }), cos, sin).data()) as Float32Array;
    expect(got.length).toBe(want.length);
    for (let i = 0; i < want.length; i++) {
      // f32 angles (pos * freq) against f64 tables: a few ulp of an angle below 6 radians.
      expect(Math.abs(got[i]! - want[i]!), `element ${i} (t ${Math.floor(i / (H * D))}, d ${i % D})`).toBeLessThan(2e-5 * (1 + Math.abs(want[i]!)));
    }
    // Not the identity: position 0 is, later positions are not.
    expect(got.slice(H * D).some((v, i) => Math.abs(v - x[H * D + i]!) > 1e-3)).toBe(true);
  }, 90_000);
});
