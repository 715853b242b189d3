// bench.test.ts runs the kernel benchmark's suite in-process on cpu with the tiny sizes and the quick
// policy, and checks the shape of its plain-data result and of the markdown made from it. No timing
// thresholds: only that every field is there and every number is finite and positive.

import { describe, expect, it } from "vitest";
import { getBackend } from "../../src/index.js";
import { PROFILES } from "../../bench/lib/cases.js";
import { machineInfo, slug } from "../../bench/lib/machine.js";
import { renderMarkdown } from "../../bench/lib/markdown.js";
import { parseResults, resultsBaseName } from "../../bench/lib/results.js";
import { runSuite } from "../../bench/lib/suite.js";
import { QUICK_POLICY, median } from "../../bench/lib/timing.js";

const POSITIVE = ["kernels", "firstMs", "medianMs", "minMs", "maxMs", "reps", "work", "throughput"] as const;

describe("kernel benchmark suite", () => {
  it("times every case and variant on cpu and returns plain data", async () => {
    const cpu = await getBackend("cpu");
    const r = await runSuite(cpu, { profile: PROFILES.tiny, policy: QUICK_POLICY, quick: true, machine: machineInfo("unit test") });

    expect(r).toMatchObject({ suite: "kernels", version: 1, profile: "tiny", quick: true, skipped: [] });
    expect(Number.isNaN(Date.parse(r.date))).toBe(false);
    expect(r.machine.tag).toBe("unit-test");
    for (const key of ["os", "cpu", "node"] as const) expect(r.machine[key].length).toBeGreaterThan(0);
    expect(r.machine.cores).toBeGreaterThan(0);
    expect(r.backend.name).toBe("cpu");

    // 9 routine cases (6 matmul incl. f16 and 2 decode-shaped, softmax, 2 attention) x 2 variants, the elementwise chain, the JS loop.
    expect(r.cases.length).toBe(9 * 2 + 1 + 1);
    expect(new Set(r.cases.map((c) => c.variant))).toEqual(new Set(["routine", "primitive", "naive-js"]));
    expect(r.cases.filter((c) => c.dtype === "f16").length).toBe(2);
    for (const c of r.cases) {
      expect(c.name.length, c.name).toBeGreaterThan(0);
      expect(c.backend).toBe("cpu");
      expect(c.software).toBe(false);
      expect(["GFLOP/s", "GB/s"]).toContain(c.unit);
      expect(c.shapes.length).toBeGreaterThan(0);
      for (const key of POSITIVE) {
        expect(Number.isFinite(c[key]), `${c.name} ${c.variant} ${key}`).toBe(true);
        expect(c[key], `${c.name} ${c.variant} ${key}`).toBeGreaterThan(0);
      }
      expect(c.minMs).toBeLessThanOrEqual(c.medianMs);
      expect(c.medianMs).toBeLessThanOrEqual(c.maxMs);
      expect(c.reps).toBeGreaterThanOrEqual(QUICK_POLICY.slowReps);
      if (c.variant !== "primitive") {
        // Each routine and the JS loop are checked against another path; f16 rounds to ~1e-3 relative.
        expect(c.maxAbsDiff, `${c.name} ${c.variant}`).toBeLessThan(c.dtype === "f16" ? 0.05 : 1e-4);
      }
    }
    // Plain data: survives a JSON round trip unchanged and parses as a results file.
    const text = JSON.stringify(r);
    expect(JSON.parse(text)).toEqual(r);
    expect(resultsBaseName(parseResults(text, "inline"))).toBe("kernels-cpu-unit-test");

    const md = renderMarkdown(r);
    expect(md.split("\n").filter((l) => l.startsWith("| ")).length).toBe(1 + r.cases.length);
    expect(md).toContain("plain JS triple loop");
  });

  it("rejects a file that is not a kernel benchmark result, naming it", () => {
    expect(() => parseResults(JSON.stringify({ suite: "serving" }), "x.json")).toThrow(/x\.json: not a kernel benchmark result/);
  });

  it("makes tags and medians", () => {
    expect(slug("Intel(R) Xeon(R) CPU E5-2690 v4 @ 2.60GHz")).toBe("intel-xeon-e5-2690-v4");
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
  });
});
