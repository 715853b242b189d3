// NOTE: Dawn reads VK_ICD_FILENAMES with C's getenv in the main process; vitest's workers get a
// private copy of process.env, so the SwiftShader driver must be named here, before any worker starts.
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";
import LongestFirst from "./test/helpers/longest_first.js";
import SkipReporter from "./test/helpers/skip_reporter.js";

const swiftshader = "/usr/lib/chromium/vk_swiftshader_icd.json";
// NOTE: KILN_TEST_NO_CHROMIUM=1 (no browser, so no SwiftShader either) and KILN_TEST_NO_WEBGPU=1 show how
// the tests behave on a machine without them: Dawn is pointed at a Vulkan driver file that does not exist,
// so the test workers and every `kiln` they start find no adapter, and the skip reason names the variable.
const simulated = ["KILN_TEST_NO_CHROMIUM", "KILN_TEST_NO_WEBGPU"].find((v) => process.env[v] === "1");
if (simulated) process.env.VK_ICD_FILENAMES = `/nonexistent/${simulated}`;
if (!process.env.VK_ICD_FILENAMES && existsSync(swiftshader)) process.env.VK_ICD_FILENAMES = swiftshader;
process.env.XDG_RUNTIME_DIR ??= "/tmp";
// Dawn dlopens libvulkan.so.1; where Debian's libvulkan1 is missing, chromium's bundled copy serves.
// NOTE: the dynamic loader reads LD_LIBRARY_PATH at process start, so this reaches the forked test workers only.
const systemVulkan = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"].some((d) => existsSync(`${d}/libvulkan.so.1`));
if (!systemVulkan && existsSync("/usr/lib/chromium/libvulkan.so.1")) {
  process.env.LD_LIBRARY_PATH = [process.env.LD_LIBRARY_PATH, "/usr/lib/chromium"].filter(Boolean).join(":");
}

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // NOTE: vitest's default is one worker fewer than the cores: one worker on the 2-core CI machine,
    // where most files wait on child processes (kiln CLIs, ranks, Chromium) and the second core idles.
    // Two workers there: 203 files in 1037 s (2026-12-07, the machine loaded only by the suite's own child
    // processes), where one worker took 1098 s for 174 files; the tests bound their own waits for that load.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    // The longest files start first (their measured durations), so the workers end together (longest_first.ts).
    sequence: { sequencer: LongestFirst },
    // The skip summary (and, under CI=true, the check that nothing was skipped that CI did not expect).
    reporters: ["default", new SkipReporter()],
  },
});
