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
