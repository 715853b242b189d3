// NOTE: Dawn reads VK_ICD_FILENAMES with C's getenv in the main process; vitest's workers get a
// private copy of process.env, so the SwiftShader driver must be named here, before any worker starts.
import { existsSync } from "node:fs";
import { defineConfig } from "vitest/config";

const swiftshader = "/usr/lib/chromium/vk_swiftshader_icd.json";
if (!process.env.VK_ICD_FILENAMES && existsSync(swiftshader)) process.env.VK_ICD_FILENAMES = swiftshader;
process.env.XDG_RUNTIME_DIR ??= "/tmp";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
