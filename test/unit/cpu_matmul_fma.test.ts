// The cpu matmul micro-kernel's relaxed-SIMD FMA variant (matmul_kernel.ts useFma) and its plain SIMD path:
// each process picks one (Node 20 validates relaxed SIMD only behind --experimental-wasm-relaxed-simd, which
// the kernel sets itself at run time), so the test runs a child under each setting (no flag, the CLI flag,
// KILN_CPU_FMA=0) and checks which kernel ran and that its products stay within the f32 accumulation bound
// of a float64 reference; a bad KILN_CPU_FMA is refused, naming it.

import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runProcess } from "../helpers/kiln_cli.js";

const CHILD = fileURLToPath(new URL("./cpu_matmul_fma_child.ts", import.meta.url));
const RELAXED = "--experimental-wasm-relaxed-simd";

async function run(flags: string[], fma?: string): Promise<{ fma: boolean; worst: number }> {
  const env: NodeJS.ProcessEnv = { ...process.env, KILN_CPU_THREADS: "1" };
  if (fma === undefined) delete env.KILN_CPU_FMA;
  else env.KILN_CPU_FMA = fma;
  const r = await runProcess(process.execPath, [...flags, "--import", "tsx", CHILD], { env, timeoutMs: 50_000 });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { fma: boolean; worst: number };
}

describe("cpu matmul, relaxed-SIMD FMA and plain SIMD kernels", () => {
  it("uses FMA without a CLI flag (and with one), the plain kernel with KILN_CPU_FMA=0; all within the f32 bound", async () => {
    const [plainNode, relaxed, off] = await Promise.all([run([]), run([RELAXED]), run([], "0")]);
    expect(plainNode.fma).toBe(true);
    expect(relaxed.fma).toBe(true);
    expect(off.fma).toBe(false);
    for (const r of [plainNode, relaxed, off]) expect(r.worst).toBeLessThan(1);
    // The same module either way: the flag set at run time gives the CLI flag's results.
    expect(plainNode.worst).toBe(relaxed.worst);
  }, 60_000);

  it("refuses a KILN_CPU_FMA that is not 0 or 1, naming it", async () => {
    const r = await runProcess(process.execPath, ["--import", "tsx", CHILD], { env: { ...process.env, KILN_CPU_FMA: "yes" }, timeoutMs: 50_000 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('KILN_CPU_FMA must be 0 or 1, got "yes"');
  }, 60_000);
});
