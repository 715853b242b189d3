// dawn_node.ts is WebGPU in Node: Dawn from the `webgpu` package, the Vulkan loader it needs, and why
// it found no adapter when it did not. Node only (device.ts loads it only there); it does not pick
// adapters or limits (device.ts does).

import { existsSync } from "node:fs";
import { constants } from "node:os";
import { create, globals } from "webgpu";

// NOTE: Dawn aborts or deadlocks at random if the object `create()` returned is collected while a device
// made from it lives, so it is kept here for the life of the process.
let gpu: GPU | undefined;

const CHROMIUM_DIR = "/usr/lib/chromium";
const SWIFTSHADER_ICD = `${CHROMIUM_DIR}/vk_swiftshader_icd.json`;

/** Dawn's GPU object, created once; Dawn's GPUBufferUsage, GPUMapMode, ... become globals where missing. */
export function nodeGpu(): GPU {
  if (!gpu) {
    preloadChromiumVulkanLoader();
    for (const [k, v] of Object.entries(globals)) if (!(k in globalThis)) Object.assign(globalThis, { [k]: v });
    gpu = create([]);
  }
  return gpu;
}

/** Whether a Vulkan loader (libvulkan.so.1) is where the dynamic linker looks for it. */
function hasVulkanLoader(): boolean {
  const dirs = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib",
    "/lib/x86_64-linux-gnu", "/lib64", ...(process.env.LD_LIBRARY_PATH ?? "").split(":").filter(Boolean)];
  return dirs.some((d) => existsSync(`${d}/libvulkan.so.1`));
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

/** Why Dawn found no adapter, as far as we can tell from here. */
export function whyNoNodeAdapter(): string {
  const icd = process.env.VK_ICD_FILENAMES;
  if (!hasVulkanLoader() && !existsSync(`${CHROMIUM_DIR}/libvulkan.so.1`)) {
    return "Dawn found no Vulkan loader (libvulkan.so.1); install libvulkan1, or chromium (which ships one and SwiftShader)";
  }
  if (!icd) {
    return existsSync(SWIFTSHADER_ICD)
      ? `Dawn found no usable Vulkan driver; set VK_ICD_FILENAMES=${SWIFTSHADER_ICD} (SwiftShader) before the first adapter request`
      : "Dawn found no usable Vulkan driver; install chromium for SwiftShader or set VK_ICD_FILENAMES";
  }
  return existsSync(icd) ? `Dawn found no usable adapter with VK_ICD_FILENAMES=${icd}` : `VK_ICD_FILENAMES=${icd} does not exist`;
}
