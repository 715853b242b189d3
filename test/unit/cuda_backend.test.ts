// cuda_backend.test.ts: the cuda backend's start, without a GPU: getBackend("cuda") rejects with one
// sentence naming the missing piece (the addon, else the driver, else a library), never a crash; and
// the NVRTC targets per architecture. On a machine with every piece, the backend starts instead and the
// conformance suite (npm run test:gpu) is what checks it.

import { describe, expect, it } from "vitest";
import { getBackend } from "../../src/backends/index.js";
import { nvrtcOptions } from "../../src/backends/cuda/backend.js";
import { cudaUnavailableReason, probeCuda } from "../../src/backends/cuda/probe.js";

describe("cuda backend without a GPU", () => {
  const reason = cudaUnavailableReason(probeCuda());

  it.skipIf(!reason)("getBackend('cuda') rejects with the probe's sentence naming what is missing", async () => {
    const err = await getBackend("cuda").then(() => undefined, (e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toBe(reason);
    expect(err!.message).toMatch(/^cuda: (not built yet: the native addon .* did not load|no NVIDIA driver: libcuda\.so\.1 not found|the NVIDIA driver .* does not start|the NVIDIA driver found no GPU|missing )/);
  });

  it("compiles for sm_90a on Hopper (wgmma/TMA need the a target) and the plain target elsewhere", () => {
    expect(nvrtcOptions(9, 0)[0]).toBe("-arch=sm_90a");
    expect(nvrtcOptions(8, 0)[0]).toBe("-arch=sm_80");
    expect(nvrtcOptions(10, 0)[0]).toBe("-arch=sm_100");
  });
});

describe("npm run test:gpu without a GPU", () => {
  it("prints its plan within the 8-minute budget and one 'no GPU' line, and exits 0", async () => {
    const { runProcess } = await import("../helpers/kiln_cli.js");
    const r = await runProcess(process.execPath, ["bench/gpu/run.mjs"], { env: { ...process.env, KILN_GPU_DRY_RUN: "1" }, timeoutMs: 20_000 });
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines.at(-1)).toBe("test:gpu: no GPU (KILN_GPU_DRY_RUN=1); nothing run");
    expect(r.stdout).toMatch(/conformance on cuda .*KILN_CONFORMANCE_CUDA=1 .*vitest run test\/conformance/);
    expect(r.stdout).toMatch(/compute-sanitizer --tool memcheck/);
    expect(r.stdout).toMatch(/bench\/gpu\/kernels\.ts/);
    const limits = [...r.stdout.matchAll(/\((\d+) s\):/g)].map((m) => Number(m[1]));
    expect(limits.length).toBeGreaterThanOrEqual(6);
    expect(limits.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(480);
  }, 30_000);
});
