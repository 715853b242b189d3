// quiet_start.test.ts: `kiln generate` and `kiln serve`, spawned through bin/kiln.mjs where WebGPU
// has no adapter, print none of Dawn's raw warnings ("Couldn't load Vulkan", "vkCreateInstance: Found
// no drivers!") and say once, in kiln's words, which backend they chose and why the others were not.
// Two ways of having no adapter: VK_ICD_FILENAMES naming no driver, and no Vulkan loader at all
// (libvulkan.so.1 hidden by bind-mounting an empty file over it in a private mount namespace).

import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { KILN_BIN, runProcess } from "../helpers/kiln_cli.js";
import { missingReason, skipLabel } from "../helpers/skip_reasons.js";


/** What Dawn and the Vulkan loader write to stderr themselves. */
const DAWN_NOISE = /Couldn't load Vulkan|vkCreateInstance|Warning:|loader_get_json|BackendVk|VulkanError/;

/** No Vulkan driver: the loader is there, the only driver file named does not exist. */
const NO_DRIVER: NodeJS.ProcessEnv = { ...process.env, VK_ICD_FILENAMES: "/nonexistent/kiln_icd.json" };
delete NO_DRIVER.KILN_BACKEND;

const GENERATE = [KILN_BIN, "generate", "--prompt", "Once", "--max-tokens", "2", "--temperature", "0"];

/** The backend line: present exactly once, cpu chosen by auto, with webgpu's and cuda's reasons. */
function expectBackendLine(text: string, webgpuWhy: RegExp): void {
  const lines = text.split("\n").filter((l) => /backend: /.test(l));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/backend: cpu \(JavaScript on .*\), chosen by auto; cuda: (not built|no NVIDIA driver).*; webgpu: /);
  expect(lines[0]!.slice(lines[0]!.indexOf("webgpu: "))).toMatch(webgpuWhy);
}

describe("a quiet start without a WebGPU adapter", () => {
  it("kiln generate: no Vulkan driver", async () => {
    const { code, stdout, stderr } = await runProcess(process.execPath, GENERATE, { env: NO_DRIVER });
    expect(code, stderr).toBe(0);
    expect(stdout).toBe("Once upon a\n");
    expect(stderr).not.toMatch(DAWN_NOISE);
    expectBackendLine(stderr, /^webgpu: the Vulkan loader found no driver; VK_ICD_FILENAMES=\/nonexistent\/kiln_icd\.json does not exist$/);
  });

  it("kiln generate --backend webgpu: kiln's error, not Dawn's warnings", async () => {
    const { code, stderr } = await runProcess(process.execPath, [...GENERATE, "--backend", "webgpu"], { env: NO_DRIVER });
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/no WebGPU adapter: the Vulkan loader found no driver/);
    expect(stderr).not.toMatch(DAWN_NOISE);
  });

  it("kiln serve: the backend line among its start-up lines, nothing from Dawn", async () => {
    const child = spawn(process.execPath, [KILN_BIN, "serve", "--port", "0"], { env: NO_DRIVER, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`kiln serve did not start within 60 s: ${out}${err}`)), 60_000);
        child.stdout.on("data", (d: string) => {
          out += d;
          if (out.includes("kiln serving")) (clearTimeout(timer), resolve());
        });
        child.once("exit", (code) => reject(new Error(`kiln serve exited early (${code}): ${out}${err}`)));
      });
    } finally {
      child.kill("SIGTERM");
    }
    await new Promise((r) => child.once("close", r));
    expectBackendLine(out, /^webgpu: the Vulkan loader found no driver/);
    // The backend line comes before the model is served.
    expect(out.indexOf("backend: ")).toBeLessThan(out.indexOf("kiln serving"));
    expect(err).not.toMatch(DAWN_NOISE);
  });

  describe("no Vulkan loader", () => {
    const loaders = ["/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib/chromium"]
      .map((d) => `${d}/libvulkan.so.1`).filter((p) => existsSync(p)).map((p) => realpathSync(p));
    const canUnshare = (() => {
      try {
        execFileSync("unshare", ["-rm", "true"], { stdio: "ignore" });
        return true;
      } catch {
        return false;
      }
    })();
    const dir = mkdtempSync(join(tmpdir(), "kiln-novulkan-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    // NOTE: hiding an installed loader takes a private mount namespace (unshare); a machine without one needs nothing.
    it.skipIf(loaders.length > 0 && !canUnshare)(`kiln generate says Dawn could not load the Vulkan loader, in its own words${skipLabel(loaders.length > 0 && !canUnshare ? missingReason("unshare", "unshare -rm failed") : undefined)}`, async () => {
      const empty = join(dir, "empty.so");
      writeFileSync(empty, "");
      const mounts = [...new Set(loaders)].map((p) => `mount --bind ${empty} ${p}`);
      const script = [...mounts, `exec "$@"`].join(" && ");
      const { code, stdout, stderr } = loaders.length
        ? await runProcess("unshare", ["-rm", "sh", "-c", script, "sh", process.execPath, ...GENERATE], { env: NO_DRIVER })
        : await runProcess(process.execPath, GENERATE, { env: NO_DRIVER });
      expect(code, stderr).toBe(0);
      expect(stdout).toBe("Once upon a\n");
      expect(stderr).not.toMatch(DAWN_NOISE);
      expectBackendLine(stderr, /^webgpu: (Dawn could not load the Vulkan loader \(.*libvulkan\.so\.1.*\); install libvulkan1|Dawn found no Vulkan loader)/);
    });
  });
});
