// vulkan_env.ts: what Dawn needs from the environment in Node on Linux, read without loading Dawn:
// whether a Vulkan loader (libvulkan.so.1) is where the dynamic linker looks, chromium's bundled copy
// and SwiftShader driver, and why Dawn found no adapter as far as the environment tells. Node only
// (dawn_node.ts and dawn_probe.ts use it).

import { existsSync } from "node:fs";

export const CHROMIUM_DIR = "/usr/lib/chromium";
const SWIFTSHADER_ICD = `${CHROMIUM_DIR}/vk_swiftshader_icd.json`;

/** Whether a Vulkan loader (libvulkan.so.1) is where the dynamic linker looks for it. */
export function hasVulkanLoader(): boolean {
  const dirs = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib",
    "/lib/x86_64-linux-gnu", "/lib64", ...(process.env.LD_LIBRARY_PATH ?? "").split(":").filter(Boolean)];
  return dirs.some((d) => existsSync(`${d}/libvulkan.so.1`));
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
