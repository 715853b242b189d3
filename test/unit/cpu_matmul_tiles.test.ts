// The cpu matmul's packed paths with each micro-tile (3 x 12 where the engine has relaxed-SIMD FMA, 4 x 8
// on the plain kernel, KILN_CPU_FMA=0): at shapes off the tile and k-block multiples, both layouts of A
// and B, batches (own and shared B), every output within the f32 accumulation bound of a float64
// reference, and the same bits on 1 and 2 threads for each kernel (the 2-thread runs must have shared
// their products). Each setting runs in its own process (cpu_matmul_tiles_child.ts): the kernel and the
// pool are per process.

import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runProcess } from "../helpers/kiln_cli.js";

const CHILD = fileURLToPath(new URL("./cpu_matmul_tiles_child.ts", import.meta.url));

interface ChildResult {
  fma: boolean;
  tile: { MR: number; NR: number };
  threads: number;
  shared: number;
  paths: string[];
  sha256: string;
  worst: number;
}

async function run(threads: number, fma?: "0"): Promise<ChildResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, KILN_THREADS: String(threads) };
  delete env.KILN_CPU_THREADS;
  if (fma === undefined) delete env.KILN_CPU_FMA;
  else env.KILN_CPU_FMA = fma;
  const r = await runProcess(process.execPath, ["--import", "tsx", CHILD], { env, timeoutMs: 50_000 });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as ChildResult;
}

describe("cpu matmul micro-tiles", () => {
  it("3 x 12 (FMA) and 4 x 8 (plain): within the f32 bound of float64, the same bits on 1 and 2 threads", async () => {
    const [fma1, fma2, plain1, plain2] = await Promise.all([run(1), run(2), run(1, "0"), run(2, "0")]);
    expect([fma1.fma, fma2.fma, plain1.fma, plain2.fma]).toEqual([true, true, false, false]);
    expect(fma1.tile).toEqual({ MR: 3, NR: 12 });
    expect(plain1.tile).toEqual({ MR: 4, NR: 8 });
    // Both packed paths ran (no case fell to the few-rows path), named with their tile.
    expect(fma1.paths.every((p) => p.includes("3x12 micro-kernel tiles"))).toBe(true);
    expect(fma1.paths.some((p) => p.includes("swapped"))).toBe(true);
    expect(fma1.paths.some((p) => !p.includes("swapped"))).toBe(true);
    expect(plain1.paths.every((p) => p.includes("4x8 micro-kernel tiles"))).toBe(true);
    for (const r of [fma1, fma2, plain1, plain2]) expect(r.worst).toBeLessThan(1);
    expect([fma1.shared, plain1.shared]).toEqual([0, 0]);
    expect(fma2.shared).toBeGreaterThan(0);
    expect(plain2.shared).toBeGreaterThan(0);
    expect(fma2.sha256).toBe(fma1.sha256);
    expect(plain2.sha256).toBe(plain1.sha256);
    // The two kernels round differently (one rounding per product with FMA): different bits, both in bound.
    expect(fma1.sha256).not.toBe(plain1.sha256);
  }, 60_000);
});
