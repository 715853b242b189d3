// cuda_routines.test.ts: every hand-written routine in cuda/routines/ compiles with nvcc for the three
// targets kiln ships (sm_90a cubin: Hopper's wgmma/TMA target; sm_80 cubin: Ampere; compute_90 PTX: any
// later GPU JITs it), with every warning an error, and exports the extern "C" entries the runtime looks
// up by name. Outputs are cached by a hash of nvcc's version, the flags and the sources (KILN_CUDA_CACHE),
// so an unchanged tree recompiles nothing. Skipped with the reason where nvcc is missing (CI).
// NOTE: what runs them on a GPU is npm run test:gpu (bench/gpu/); here nothing executes them.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
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
const source = (f: string) => readFileSync(join(DIR, f), "utf8").replace('#include "common.cuh"', common);

describe("cuda/routines", () => {
  it("has a routine for each of shaders/ and what training and serving need", () => {
    const shaders = readdirSync(fileURLToPath(new URL("../../shaders", import.meta.url))).filter((f) => f.endsWith(".wgsl")).map((f) => f.replace(".wgsl", ""));
    // concat and kv_write are copies the runtime does with cuMemcpy; the rest have a .cu of the same name.
    const needed = [...shaders.filter((s) => s !== "concat" && s !== "kv_write"), "rmsnorm", "layernorm", "rope", "cross_entropy", "adamw", "embedding"];
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
});
