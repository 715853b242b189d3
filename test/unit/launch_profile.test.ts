// KILN_PROFILE's launch profile: replayed jit steps are timed per launch name, and routines are named by
// what their source says they are (their executable names are hashes).

import { afterEach, describe, expect, it } from "vitest";
import { CpuBackend } from "../../src/backends/cpu/backend.js";
import { launchProfileReport, resetLaunchProfile, setLaunchProfiling } from "../../src/core/launch_profile.js";
import { jit, matmul, tensor } from "../../src/index.js";

afterEach(() => {
  setLaunchProfiling(false);
  resetLaunchProfile();
});

describe("launch profile", () => {
  it("counts each replayed launch under a readable name, and nothing while off", async () => {
    const backend = new CpuBackend();
    const w = tensor(Array.from({ length: 64 }, (_, i) => [i % 7, (i * 3) % 5]), { backend });
    const f = jit((x: typeof w) => [matmul(x, w).exp().sum()]);
    const x = () => tensor(Array.from({ length: 16 }, (_, i) => Array.from({ length: 64 }, (_, j) => ((i + j) % 9) / 9)), { backend });
    resetLaunchProfile();
    await f(x()); // capture
    await f(x()); // replayed, profiling off
    expect(launchProfileReport()).toMatch(/0\.0 ms in 0 launches/);
    setLaunchProfiling(true);
    for (let i = 0; i < 3; i++) await f(x());
    const report = launchProfileReport();
    expect(report).toMatch(/matmul cpu routine matmul 1x\(16x64 @ 64x2\)/);
    const counts = [...report.matchAll(/\s(\d+)x {2}/g)].map((m) => Number(m[1]));
    expect(counts.length).toBeGreaterThanOrEqual(2);
    for (const n of counts) expect(n % 3).toBe(0);
  });
});
