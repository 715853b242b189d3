// bench_page_data.test.ts checks the benchmark page's plain-data parts in Node (no browser): how runs
// become charts (series.ts), the log axes (chart.ts's pure helpers) and the browser's MachineInfo.
// The page itself is tested in Chromium (test/e2e/bench_page.test.ts).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseResults } from "../../bench/lib/results.js";
import type { CaseResult, KernelResults } from "../../bench/lib/results.js";
import { browserMachineInfo } from "../../apps/web/src/bench/browser_machine.js";
import { formatTick, logAxis } from "../../apps/web/src/bench/chart.js";
import { chartsOf } from "../../apps/web/src/bench/series.js";

const load = (name: string) => parseResults(readFileSync(`bench/results/${name}`, "utf8"), name);

describe("benchmark page charts", () => {
  it("makes one chart per op and one line per (run, variant, dtype), colours shared across runs", () => {
    const cpu = load("kernels-cpu-amd-epyc-2c.json");
    const gpu = load("kernels-webgpu-amd-epyc-2c.json");
    const charts = chartsOf([gpu, cpu]);
    expect(charts.map((c) => [c.op, c.unit])).toEqual([["matmul", "GFLOP/s"], ["softmax", "GB/s"], ["attention", "GFLOP/s"], ["elementwise", "GB/s"]]);
    const matmul = charts[0]!;
    const key = (l: (typeof matmul.lines)[number]) => `${l.run} ${l.variant} ${l.dtype}`;
    expect(matmul.lines.map(key).sort()).toEqual(
      ["0 primitive f16", "0 primitive f32", "0 routine f16", "0 routine f32", "1 naive-js f32", "1 primitive f16", "1 primitive f32", "1 routine f16", "1 routine f32"],
    );
    const routine = matmul.lines.filter((l) => l.variant === "routine" && l.dtype === "f32");
    expect(new Set(routine.map((l) => l.series)).size).toBe(1);
    expect(routine.map((l) => l.runLabel)).toEqual(["webgpu amd-epyc-2c", "cpu amd-epyc-2c"]);
    for (const l of matmul.lines) {
      const xs = l.points.map((p) => p.x);
      expect(xs).toEqual([...xs].sort((a, b) => a - b));
    }
    const rows = matmul.lines.reduce((n, l) => n + l.points.length, 0);
    expect(rows).toBe([...gpu.cases, ...cpu.cases].filter((c) => c.op === "matmul").length);
  });

  it("leaves out rows a log axis cannot place", () => {
    const r = load("kernels-cpu-amd-epyc-2c.json");
    const broken: KernelResults = { ...r, cases: r.cases.map((c, i): CaseResult => (i === 0 ? { ...c, throughput: 0 } : c)) };
    const matmulPoints = chartsOf([broken])[0]!.lines.reduce((n, l) => n + l.points.length, 0);
    expect(matmulPoints).toBe(r.cases.filter((c) => c.op === "matmul").length - 1);
  });

  it("puts log ticks on whole decades, with 2x and 5x over short ranges", () => {
    expect(logAxis(3e5, 2e9)).toEqual({ lo: 1e5, hi: 1e10, ticks: [1e5, 1e6, 1e7, 1e8, 1e9, 1e10] });
    expect(logAxis(0.03, 0.4)).toEqual({ lo: 0.01, hi: 1, ticks: [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1] });
    expect(logAxis(5, 5)).toEqual({ lo: 1, hi: 10, ticks: [1, 2, 5, 10] });
    expect(() => logAxis(0, 1)).toThrow(/0 < min <= max/);
    expect([2e6, 1e9, 5e3, 1, 0.05, 1e-5].map(formatTick)).toEqual(["2M", "1G", "5k", "1", "0.05", "1e-5"]);
  });
});

describe("browser MachineInfo", () => {
  const info = { name: "webgpu" as const, device: "", details: { vendor: "google", architecture: "swiftshader" }, software: true };
  it("names the adapter in the tag and reads what the navigator tells", () => {
    const nav = { userAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/131.0.0.0 Safari/537.36", hardwareConcurrency: 2, deviceMemory: 8 };
    expect(browserMachineInfo(info, nav)).toEqual({ os: "X11; Linux x86_64", cpu: "browser", cores: 2, memoryGiB: 8, node: "HeadlessChrome 131.0.0.0", tag: "browser-google-swiftshader" });
    const hinted = { ...nav, userAgentData: { platform: "Linux", brands: [{ brand: "Not A(Brand", version: "8" }, { brand: "Chromium", version: "131" }] } };
    const cpu = browserMachineInfo({ name: "cpu", device: "JavaScript", details: {}, software: true }, hinted);
    expect([cpu.os, cpu.node, cpu.tag]).toEqual(["Linux", "Chromium 131", "browser-linux"]);
  });
});
