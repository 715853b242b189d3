// The cpu matmul's worker threads split C by columns, and each element is computed by one thread in the
// same order as on one thread: outputs must be bit-identical for 1, 2 and 3 threads (3 splits the panel
// counts unevenly). Each count runs in its own process, as the pool is per process.

import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runProcess } from "../helpers/kiln_cli.js";

const CHILD = fileURLToPath(new URL("./cpu_matmul_threads_child.ts", import.meta.url));

async function run(threads: string): Promise<{ threads: number; sha256: string }> {
  const r = await runProcess(process.execPath, ["--import", "tsx", CHILD], { env: { ...process.env, KILN_CPU_THREADS: threads } });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { threads: number; sha256: string };
}

describe("cpu matmul worker threads", () => {
  it("give bit-identical products for 1, 2 and 3 threads", async () => {
    const [one, two, three] = await Promise.all([run("1"), run("2"), run("3")]);
    expect([one.threads, two.threads, three.threads]).toEqual([1, 2, 3]);
    expect(two.sha256).toBe(one.sha256);
    expect(three.sha256).toBe(one.sha256);
  }, 120_000);

  it("refuses a KILN_CPU_THREADS that is not a count, naming it", async () => {
    const r = await runProcess(process.execPath, ["--import", "tsx", CHILD], { env: { ...process.env, KILN_CPU_THREADS: "two" } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('KILN_CPU_THREADS must be an integer from 1 to 256, got "two"');
  }, 60_000);
});
