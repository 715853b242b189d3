// dawn_node.ts is WebGPU in Node: Dawn from the `webgpu` package and the Vulkan loader it needs. Node
// only (device.ts loads it only there, after dawn_probe.ts has found an adapter in a child process);
// it does not pick adapters or limits (device.ts does). The environment checks are vulkan_env.ts's.

import { existsSync } from "node:fs";
import { constants } from "node:os";
import { create, globals } from "webgpu";
import { CHROMIUM_DIR, hasVulkanLoader } from "./vulkan_env.js";

// NOTE: Dawn aborts or deadlocks at random if the object `create()` returned is collected while a device
// made from it lives, so it is kept here for the life of the process.
let gpu: GPU | undefined;

/** Dawn's GPU object, created once; Dawn's GPUBufferUsage, GPUMapMode, ... become globals where missing. */
export function nodeGpu(): GPU {
  if (!gpu) {
    preloadChromiumVulkanLoader();
    for (const [k, v] of Object.entries(globals)) if (!(k in globalThis)) Object.assign(globalThis, { [k]: v });
    gpu = create([]);
  }
  return gpu;
}

/**
 * NOTE: Dawn dlopens libvulkan.so.1 by name. Where no Vulkan loader is installed but chromium's copy is
 * (it ships one next to SwiftShader), that copy is loaded first and kept resident, so Dawn's dlopen finds it.
 */
function preloadChromiumVulkanLoader(): void {
  const bundled = `${CHROMIUM_DIR}/libvulkan.so.1`;
  if (process.platform !== "linux" || !existsSync(bundled) || hasVulkanLoader()) return;
  const { RTLD_NOW = 2, RTLD_GLOBAL = 0x100, RTLD_NODELETE = 0x1000 } = constants.dlopen as Record<string, number | undefined>;
  try {
    process.dlopen({ exports: {} }, bundled, RTLD_NOW | RTLD_GLOBAL | RTLD_NODELETE);
  } catch {
    // Expected: it is not a Node addon, so Node refuses it after loading it; RTLD_NODELETE keeps it loaded.
  }
}
