// fit_check.ts: does a model's every weight fit one buffer of the backend? Checked before any upload,
// so a model too large for an adapter is refused with the tensor, its size and the adapter's limit by
// name, instead of failing halfway through loading (or, in a browser, losing the device).

import type { Backend } from "../core/backend.js";
import { numel } from "./formats/file_tensor.js";
import type { LoadedModel } from "./types.js";

/** Throws naming the first weight larger than the backend's largest buffer (weights are f32 on the device). */
export function checkModelFits(loaded: LoadedModel, backend: Pick<Backend, "name" | "caps">): void {
  const max = backend.caps.maxBufferBytes;
  for (const [name, t] of loaded.tensors) {
    const bytes = 4 * numel(t.shape);
    if (bytes <= max) continue;
    const limit = backend.name === "webgpu" ? `this adapter's limit (maxStorageBufferBindingSize / maxBufferSize) of ${max} bytes` : `${backend.name}'s largest buffer of ${max} bytes`;
    throw new Error(`${loaded.source}: the model is too large for ${backend.name} here: tensor '${name}' [${t.shape.join(", ")}] needs ${bytes} bytes as f32, over ${limit}`);
  }
}
