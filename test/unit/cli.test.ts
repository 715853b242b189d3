// cli.test.ts: the `kiln` command end to end, through its launcher (bin/kiln.mjs) as a user runs
// it: `kiln backends --json` reports cpu as available with a passing check, and usage mistakes exit 2.
// What the check computes is backend_check.ts's business; the backends themselves have their own tests.

import { describe, expect, it } from "vitest";
import { kiln } from "../helpers/kiln_cli.js";


interface Report {
  backends: { name: string; available: boolean; reason?: string; check?: { pass: boolean; maxAbsError: number | null } }[];
  auto: string;
  ok: boolean;
}

describe("kiln", () => {
  it("backends --json lists every backend, cpu available and passing its check", async () => {
    const { code, stdout } = await kiln("backends", "--json");
    const report = JSON.parse(stdout) as Report;
    expect(report.backends.map((b) => b.name)).toEqual(["cuda", "webgpu", "cpu"]);
    const cpu = report.backends.find((b) => b.name === "cpu")!;
    expect(cpu.available).toBe(true);
    expect(cpu.check?.pass).toBe(true);
    expect(cpu.check?.maxAbsError).toBeLessThan(1e-4);
    for (const b of report.backends) if (!b.available) expect(b.reason).toMatch(/\S/);
    expect(report.backends.some((b) => b.name === report.auto && b.available)).toBe(true);
    expect(code).toBe(report.ok ? 0 : 1);
  });

  it("an unknown command exits 2 with a message and the usage", async () => {
    const { code, stdout, stderr } = await kiln("frobnicate");
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toContain("unknown command 'frobnicate'");
    expect(stderr).toContain("Usage: kiln <command>");
  });

  it("an unknown flag exits 2 and shows the command's usage", async () => {
    const { code, stderr } = await kiln("backends", "--bogus");
    expect(code).toBe(2);
    expect(stderr).toContain("Unknown option '--bogus'");
    expect(stderr).toContain("Usage: kiln backends");
  });
});
