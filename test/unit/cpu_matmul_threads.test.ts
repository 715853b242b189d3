// The cpu backend's worker threads split C by columns (tile products by column tiles, decode products and
// the quantized GEMV by rows of B), and each element is computed by one thread in the same order as on one thread: outputs must
// be bit-identical for 1, 2 and 3 threads (3 splits the panel counts unevenly), the threaded runs must
// really have shared tasks of both kinds, and the decode products must match f64 within their dtype's
// rounding. Each count runs in its own process, as the pool is per process. Also: KILN_THREADS and its
// older name KILN_CPU_THREADS, and a bad value's error.

import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runProcess } from "../helpers/kiln_cli.js";

const CHILD = fileURLToPath(new URL("./cpu_matmul_threads_child.ts", import.meta.url));

interface ChildResult {
  threads: number;
  shared: { tiles: number; dots: number; qdots: number };
  sha256: string;
  maxRelErr: { f32: number; f16: number; bf16: number; q8_0: number; q4_0: number };
}

async function run(env: Record<string, string>): Promise<ChildResult> {
  const clean = { ...process.env };
  delete clean.KILN_THREADS;
  delete clean.KILN_CPU_THREADS;
  const r = await runProcess(process.execPath, ["--import", "tsx", CHILD], { env: { ...clean, ...env } });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as ChildResult;
}

describe("cpu worker threads", () => {
  it("give bit-identical products for 1, 2 and 3 threads, packed and decode, within f64's of each dtype", async () => {
    const [one, two, three] = await Promise.all([run({ KILN_THREADS: "1" }), run({ KILN_THREADS: "2" }), run({ KILN_CPU_THREADS: "3" })]);
    expect([one.threads, two.threads, three.threads]).toEqual([1, 2, 3]);
    expect(one.shared).toEqual({ tiles: 0, dots: 0, qdots: 0 });
    for (const r of [two, three]) {
      expect(r.shared.tiles).toBeGreaterThan(0);
      expect(r.shared.dots).toBeGreaterThan(0);
      expect(r.shared.qdots).toBeGreaterThan(0);
    }
    expect(two.sha256).toBe(one.sha256);
    expect(three.sha256).toBe(one.sha256);
    // Relative to the largest |value|: f32 sums in f32; f16/bf16 outputs are rounded to 11 and 8 bits.
    expect(one.maxRelErr.f32).toBeLessThan(1e-5);
    expect(one.maxRelErr.f16).toBeLessThan(1e-3);
    expect(one.maxRelErr.bf16).toBeLessThan(8e-3);
    // The quantized GEMV against dequantize-then-matmul in f64: only f32 summation apart.
    expect(one.maxRelErr.q8_0).toBeLessThan(1e-5);
    expect(one.maxRelErr.q4_0).toBeLessThan(1e-5);
  }, 120_000);

  it("refuses a KILN_THREADS that is not a count, naming it", async () => {
    const bad = [["KILN_THREADS", "two"], ["KILN_THREADS", "0"], ["KILN_CPU_THREADS", "1.5"]] as const;
    const runs = await Promise.all(bad.map(([name, value]) => runProcess(process.execPath, ["--import", "tsx", CHILD], { env: { ...process.env, KILN_THREADS: "", KILN_CPU_THREADS: "", [name]: value }, timeoutMs: 50_000 })));
    runs.forEach((r, i) => {
      const [name, value] = bad[i]!;
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`${name} must be an integer from 1 to 256, got ${JSON.stringify(value)}`);
    });
  }, 60_000);
});
