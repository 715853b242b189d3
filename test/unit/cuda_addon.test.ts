// cuda_addon.test.ts: the native addon's build and library probe, without a GPU. `npm run build:cuda`
// (cuda/build.mjs) prints one line and succeeds where nvcc is missing; where nvcc is present it builds
// the addon (into a copy of cuda/ in a temp folder, so this tree's own build is left alone), which
// dlopens real libraries, and `kiln backends` then names the missing piece instead of "not built".

import { cpSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { afterAll, describe, expect, it } from "vitest";
import { KILN_BIN, runProcess } from "../helpers/kiln_cli.js";
import { findNvcc } from "../helpers/cuda_compile.js";
import { missingReason, skipLabel } from "../helpers/skip_reasons.js";

const CUDA_DIR = fileURLToPath(new URL("../../cuda", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "kiln-cuda-addon-"));
const nvcc = findNvcc();
const noNvcc = nvcc ? undefined : missingReason("nvcc", "not on PATH, nor in CUDA_HOME/bin or /usr/local/cuda/bin");
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** `kiln backends --json` with webgpu kept out (no Vulkan driver), so only cuda's probe is of interest. */
async function cudaReason(env: NodeJS.ProcessEnv): Promise<string> {
  const r = await runProcess(process.execPath, [KILN_BIN, "backends", "--json"], { env: { ...process.env, VK_ICD_FILENAMES: "/nonexistent/icd.json", ...env }, timeoutMs: 40_000 });
  const report = JSON.parse(r.stdout) as { backends: { name: string; available: boolean; reason?: string }[] };
  const cuda = report.backends.find((b) => b.name === "cuda")!;
  expect(cuda.available).toBe(false);
  return cuda.reason!;
}

describe("npm run build:cuda", () => {
  it("prints one line and succeeds where there is no nvcc", async () => {
    const r = await runProcess(process.execPath, [join(CUDA_DIR, "build.mjs")], { env: { ...process.env, NVCC: "/nonexistent/nvcc" }, timeoutMs: 20_000 });
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split("\n")).toEqual([expect.stringMatching(/^build:cuda: skipped, no nvcc \(NVCC=\/nonexistent\/nvcc does not run\)/)]);
  });

  it("without the addon, kiln backends says cuda is not built and how to build it", async () => {
    expect(await cudaReason({ KILN_CUDA_ADDON: join(work, "missing", "kiln_cuda.node") })).toMatch(/^cuda: not built yet: the native addon .*missing\/kiln_cuda\.node did not load .*; run `npm run build:cuda`/);
  });

  it.skipIf(!nvcc)(`builds the addon, which dlopens real libraries and names what is missing${skipLabel(noNvcc)}`, async () => {
    const copy = join(work, "cuda");
    const ownBuild = join(CUDA_DIR, "build");
    cpSync(CUDA_DIR, copy, { recursive: true, filter: (src) => src !== ownBuild && !src.startsWith(`${ownBuild}/`) });
    // NOTE: the routines' fatbins are cuda_routines.test.ts's to compile (cached there); here the addon alone.
    const built = await runProcess(process.execPath, [join(copy, "build.mjs"), "--addon-only"], { timeoutMs: 110_000 });
    expect(built.code, built.stderr).toBe(0);
    const addonPath = join(copy, "build", "Release", "kiln_cuda.node");
    const addon = createRequire(import.meta.url)(addonPath) as { openFirst(c: string[]): { path?: string; errors?: string[] } };
    // A library every Linux has, after one that does not exist: dlopen's own error for the first.
    expect(addon.openFirst([join(work, "libnothere.so"), "libc.so.6"])).toEqual({ path: "libc.so.6" });
    expect(addon.openFirst([join(work, "libnothere.so")]).errors).toEqual([expect.stringMatching(/libnothere\.so: cannot open shared object file/)]);
    expect(() => addon.openFirst("libc.so.6" as unknown as string[])).toThrow(/expected an array/);

    // The runtime's calls, where the libraries are missing or wrong: a JS error naming the call and the
    // cause (dlopen's text, the missing entry point), repeated by every later call; never an abort.
    type Runtime = Record<string, (...args: unknown[]) => unknown>;
    const rt = addon as unknown as Runtime;
    expect(() => rt.memAlloc!(16)).toThrow(/^kiln_cuda\.memAlloc: the CUDA driver is not loaded \(call loadDriver\(path\) first\)$/);
    expect(() => rt.loadDriver!(join(work, "libcuda.so.1"))).toThrow(/^kiln_cuda\.loadDriver: no NVIDIA driver: .*libcuda\.so\.1: cannot open shared object file/);
    expect(() => rt.launch!(1n, [1, 1, 1], [32, 1, 1], 0, 0n, [], "")).toThrow(/^kiln_cuda\.launch: the CUDA driver is not loaded \(no NVIDIA driver: .*libcuda\.so\.1: cannot open/);
    // A library that opens but is not the driver: the first entry point it lacks is named.
    expect(() => rt.loadDriver!("libc.so.6")).toThrow(/^kiln_cuda\.loadDriver: libc\.so\.6 lacks cuGetErrorName/);
    expect(() => rt.loadNvrtc!("libm.so.6")).toThrow(/^kiln_cuda\.loadNvrtc: libm\.so\.6 lacks nvrtcGetErrorString/);
    expect(() => rt.compile!("__global__ void k() {}", "k.cu", [])).toThrow(/^kiln_cuda\.compile: NVRTC is not loaded \(libm\.so\.6 lacks nvrtcGetErrorString\)/);
    expect(() => rt.loadCublasLt!(join(work, "libcublasLt.so.13"))).toThrow(/^kiln_cuda\.loadCublasLt: cuBLASLt not found: .*libcublasLt\.so\.13: cannot open/);
    expect(() => rt.matmul!({ m: 2, n: 2, k: 2 })).toThrow(/^kiln_cuda\.matmul: cuBLASLt is not loaded \(cuBLASLt not found/);
    expect(() => rt.ncclCommInit!(Buffer.alloc(128), 2, 0)).toThrow(/^kiln_cuda\.ncclCommInit: NCCL is not loaded \(call loadNccl\(path\) first\)/);
    // NCCL's type and op numbers (src/dist/nccl/nccl_types.ts) are range-checked before anything else.
    expect(() => rt.ncclCollective!("allReduce", 1n, 0n, 1n, 1n, 4, 12, 0)).toThrow(/^kiln_cuda\.ncclCollective\(allReduce\): ncclDataType_t 12 is outside 0\.\.11$/);
    expect(() => rt.ncclCollective!("allReduce", 1n, 0n, 1n, 1n, 4, 7, 5)).toThrow(/^kiln_cuda\.ncclCollective\(allReduce\): ncclRedOp_t 5 is outside 0\.\.4$/);
    expect(() => rt.ncclCollective!("allReduce", 1n, 0n, 1n, 1n, 4, 7, 0)).toThrow(/^kiln_cuda\.ncclCollective: NCCL is not loaded/);
    expect(() => rt.ncclCommAbort!(1n)).toThrow(/^kiln_cuda\.ncclCommAbort: NCCL is not loaded/);
    expect(() => rt.ncclCommAsyncError!(1n)).toThrow(/^kiln_cuda\.ncclCommAsyncError: NCCL is not loaded/);
    expect(() => rt.streamQuery!(1n)).toThrow(/^kiln_cuda\.streamQuery: the CUDA driver is not loaded/);
    // libnccl missing, or a library that is not NCCL: dlopen's text, or the first entry point it lacks.
    expect(() => rt.loadNccl!(join(work, "libnccl.so.2"))).toThrow(/^kiln_cuda\.loadNccl: NCCL not found: .*libnccl\.so\.2: cannot open shared object file/);
    expect(() => rt.loadNccl!("libm.so.6")).toThrow(/^kiln_cuda\.loadNccl: libm\.so\.6 lacks ncclGetErrorString$/);
    expect(() => rt.ncclUniqueId!()).toThrow(/^kiln_cuda\.ncclUniqueId: NCCL is not loaded \(libm\.so\.6 lacks ncclGetErrorString\)$/);
    expect(() => rt.loadNvrtc!(42)).toThrow(/^kiln_cuda\.loadNvrtc: argument 0 must be a string$/);

    const libs = join(work, "libs");
    mkdirSync(libs);
    const reason = await cudaReason({ KILN_CUDA_ADDON: addonPath, KILN_CUDA_LIB_PATH: libs });
    expect(reason).not.toMatch(/not built/);
    // Without a GPU: no driver library. With one, the first piece missing, or that only the runtime is.
    expect(reason).toMatch(/^cuda: (no NVIDIA driver: libcuda\.so\.1 not found|the NVIDIA driver .* does not start|the NVIDIA driver found no GPU|missing |driver \d+ with)/);
  }, 150_000);
});
