// skip_reporter.test.ts: the skip summary and the CI rule (test/helpers/skip_reporter.ts) on real vitest
// runs of a tiny suite written to a temporary folder: a passing test and skips for chromium, WebGPU,
// nvcc (by ctx.skip) and for no reason. Without CI=true the run passes and ends with the skips grouped
// by reason; with CI=true it fails, naming every skip but the nvcc one (CI has no nvcc, so it may skip).

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { missingReason, skipLabel } from "../helpers/skip_reasons.js";

const VITEST = fileURLToPath(new URL("../../node_modules/vitest/vitest.mjs", import.meta.url));
const REPORTER = fileURLToPath(new URL("../helpers/skip_reporter.ts", import.meta.url));

const NO_CHROMIUM = missingReason("chromium", "/usr/bin/chromium not found");
const NO_WEBGPU = missingReason("webgpu", "Dawn found no usable Vulkan driver");
const NO_NVCC = missingReason("nvcc", "not on PATH");

const dir = mkdtempSync(join(tmpdir(), "kiln-skip-reporter-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const q = JSON.stringify;
writeFileSync(join(dir, "vitest.config.mjs"),
  `export default { test: { root: ${q(dir)}, include: ["*.fixture.js"], globals: true, reporters: ["default", ${q(REPORTER)}] } };\n`);
writeFileSync(join(dir, "ci_fails.fixture.js"), [
  `it("adds", () => expect(1 + 1).toBe(2));`,
  `describe.skip(${q(`browser page${skipLabel(NO_CHROMIUM)}`)}, () => { it("loads", () => {}); it("renders", () => {}); });`,
  `it.skip(${q(`matmul on webgpu${skipLabel(NO_WEBGPU)}`)}, () => {});`,
  `it.skip("a bare skip", () => {});`,
].join("\n"));
writeFileSync(join(dir, "nvcc.fixture.js"), [
  `it("multiplies", () => expect(2 * 3).toBe(6));`,
  `it("compiles a kernel with nvcc", (ctx) => ctx.skip(${q(NO_NVCC)}));`,
].join("\n"));

/** `vitest run` over the fixture files, with CI=true or without CI; its exit code and output. */
function vitest(ci: boolean): Promise<{ code: number | null; out: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("VITEST") && k !== "CI"));
  if (ci) env.CI = "true";
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [VITEST, "run", "--config", join(dir, "vitest.config.mjs")], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d));
    child.stderr.on("data", (d: Buffer) => (out += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, out }));
  });
}

describe("the skip reporter", () => {
  it("ends a run with the skips grouped by reason, and under CI=true fails on the ones CI does not expect", async () => {
    const [local, ci] = await Promise.all([vitest(false), vitest(true)]);

    expect(local.code, local.out).toBe(0);
    expect(local.out).toContain("Skipped: 5 tests, by reason");
    expect(local.out).toContain(`   2  ${NO_CHROMIUM}\n`);
    expect(local.out).toContain(`   1  ${NO_WEBGPU}\n`);
    expect(local.out).toContain(`   1  ${NO_NVCC}\n`);
    expect(local.out).toMatch(/ {3}1 {2}no reason given/);
    expect(local.out).not.toContain("CI=true");

    expect(ci.code, ci.out).toBe(1);
    expect(ci.out).toContain("Skipped: 5 tests, by reason");
    expect(ci.out).toContain("CI=true: 4 skips are not expected in CI");
    expect(ci.out).toContain(`   ${NO_CHROMIUM}:\n     ci_fails.fixture.js > browser page > loads\n     ci_fails.fixture.js > browser page > renders\n`);
    expect(ci.out).toContain(`   ${NO_WEBGPU}:\n     ci_fails.fixture.js > matmul on webgpu\n`);
    expect(ci.out).toMatch(/ {3}no reason given.*:\n {5}ci_fails\.fixture\.js > a bare skip\n/);
    expect(ci.out).not.toContain("> compiles a kernel with nvcc");
  }, 60_000);
});
