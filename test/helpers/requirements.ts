// requirements.ts: whether this machine has the hardware or system software a test may skip without
// (a WebGPU adapter, chromium, nvcc, a GPU) and, where it does not, the reason (skip_reasons.ts) the
// test puts in its name. Every skip in test/ asks here, so they all read alike. KILN_TEST_NO_CHROMIUM=1
// and KILN_TEST_NO_WEBGPU=1 make this machine look like one without them (see vitest.config.ts).

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { getBackend } from "../../src/index.js";
import { missingReason, noWebgpu } from "./skip_reasons.js";

/** Debian's chromium, which the browser tests drive (and whose SwiftShader gives Dawn its adapter). */
export const CHROMIUM = "/usr/bin/chromium";

/** Why the browser tests cannot run here, or undefined when chromium is installed. */
export function chromiumMissing(): string | undefined {
  if (process.env.KILN_TEST_NO_CHROMIUM === "1") return missingReason("chromium", "KILN_TEST_NO_CHROMIUM=1");
  return existsSync(CHROMIUM) ? undefined : missingReason("chromium", `${CHROMIUM} not found`);
}

/**
 * Why the webgpu backend cannot start here, or undefined when it can.
 * NOTE: KILN_TEST_NO_WEBGPU and KILN_TEST_NO_CHROMIUM act through VK_ICD_FILENAMES (vitest.config.ts), so
 * Dawn itself finds no adapter, here and in every `kiln` a test starts; the reason then names the variable.
 */
export async function webgpuMissing(): Promise<string | undefined> {
  try {
    await getBackend("webgpu");
    return undefined;
  } catch (err) {
    return noWebgpu(err);
  }
}

/** Why the npm package test cannot pack and install here (no npm on PATH), or undefined when it can. */
export function npmMissing(): string | undefined {
  const r = spawnSync("npm", ["--version"], { stdio: "ignore" });
  return r.status === 0 ? undefined : missingReason("npm", r.error ? "not on PATH" : `npm --version exited with ${r.status}`);
}

/** Why experiment tracking cannot run here (the optional better-sqlite3 did not build), or undefined when it can. */
export function sqliteMissing(): string | undefined {
  try {
    createRequire(import.meta.url)("better-sqlite3");
    return undefined;
  } catch (err) {
    return missingReason("sqlite", (err as Error).message.split("\n")[0]!);
  }
}

/** Why the numpy reference scripts (test/helpers/*.py) cannot run here, or undefined when they can. */
export function numpyMissing(): string | undefined {
  const r = spawnSync("python3", ["-c", "import numpy"], { encoding: "utf8" });
  if (r.error) return missingReason("numpy", "python3 is not on PATH");
  return r.status === 0 ? undefined : missingReason("numpy", "python3 cannot import numpy");
}

/** Why CUDA code cannot be compiled here (no nvcc on PATH), or undefined when it can. */
export function nvccMissing(): string | undefined {
  const r = spawnSync("nvcc", ["--version"], { encoding: "utf8" });
  if (r.error) return missingReason("nvcc", "not on PATH");
  return r.status === 0 ? undefined : missingReason("nvcc", `nvcc --version exited with ${r.status}`);
}

/** Why CUDA code cannot run here (nvidia-smi lists no GPU), or undefined when it can. */
export function cudaGpuMissing(): string | undefined {
  const r = spawnSync("nvidia-smi", ["-L"], { encoding: "utf8" });
  if (r.error) return missingReason("gpu", "no nvidia-smi on PATH");
  return r.status === 0 && /^GPU \d+:/m.test(r.stdout) ? undefined : missingReason("gpu", "nvidia-smi lists no GPU");
}
