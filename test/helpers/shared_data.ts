// shared_data.ts: where tests find the read-only data in ../shared (next to the repository root):
// llama.cpp's vocab files and test vectors, the tiny random GGUF. Returns undefined when the data is not
// there, so a test can skip cleanly (`describe.skipIf(!path)`). The bundled default model lives in
// the repository itself (models/stories260K) and is not found through here.

import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const SHARED = fileURLToPath(new URL("../../../shared/", import.meta.url));

/** Absolute path of `rel` inside ../shared, or undefined when it does not exist. */
export function sharedPath(rel: string): string | undefined {
  const p = SHARED + rel;
  return existsSync(p) ? p : undefined;
}
