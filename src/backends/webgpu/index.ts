// The webgpu backend's entry point: start a backend on the best adapter found (see device.ts), and the
// WGSL pieces routines are written with. Loaded lazily by the backend registry (it pulls in Dawn in Node).

import { WebgpuBackend } from "./backend.js";
import type { WebgpuOptions } from "./device.js";
import { requestWebgpuDevice } from "./device.js";

export { WebgpuBackend } from "./backend.js";
export type { WebgpuBuffer, WebgpuExecutable } from "./backend.js";
export type { AdapterPeek, OptionalFeature, WebgpuOptions } from "./device.js";
export { peekWebgpuAdapter } from "./device.js";
export { renderEpilogueWgsl, renderWgsl, wgslBinding } from "./render_wgsl.js";

/**
 * A backend on a new device. Rejects with the reason when there is no adapter (e.g. no Vulkan driver).
 * `options.disableFeatures` keeps optional features (subgroups, shader-f16) off, to test the paths without them.
 */
export async function createWebgpuBackend(options: WebgpuOptions = {}): Promise<WebgpuBackend> {
  return new WebgpuBackend(await requestWebgpuDevice(options));
}
export { SHADER_NAMES, setShaderTexts } from "./shader_text.js";
export type { ShaderName } from "./shader_text.js";
